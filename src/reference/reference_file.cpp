// reference.safetensors: NormalReference::save and ::load (the layout is in reference.h).
#include <torch/torch.h>

#include <array>
#include <cmath>
#include <cstdio>
#include <optional>
#include <string>

#include "lriad/io/error.h"
#include "lriad/io/safetensors.h"
#include "lriad/io/st_tensor.h"
#include "lriad/reference/reference.h"
#include "internal.h"

namespace lriad::reference {
namespace {

torch::Tensor from_st(const io::StTensor& t) {
  if (t.dtype != "F32") throw Error("reference tensor has dtype " + t.dtype + ", expected F32");
  return io::from_st_tensor(t);  // checks the byte length against the shape
}

io::StTensor to_st(const torch::Tensor& t) { return io::to_st_tensor(t.to(torch::kCPU, torch::kFloat32)); }
io::StTensor pair_st(const std::array<double, 2>& v) { return to_st(torch::tensor({float(v[0]), float(v[1])})); }

std::string exact(double x) {  // round-trips through std::stod
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.17g", x);
  return buf;
}

std::string half(const std::string& cat, const std::string& name, size_t h) {
  return cat + "/" + name + std::to_string(h);
}

}  // namespace

void NormalReference::save(const std::string& path) const {
  io::StFile f;
  f.metadata = {{"format", "lriad-reference"},
                {"format_version", std::to_string(kFormatVersion)},
                {"patch", std::to_string(options_.patch)},
                {"bank_size", std::to_string(options_.bank_size)},
                {"shift", std::to_string(options_.shift)},
                {"side", std::to_string(options_.side)},
                {"fine_side", std::to_string(options_.fine_side)},
                {"fine_sigma", exact(options_.fine_sigma)},
                {"fine_shift", std::to_string(options_.fine_shift)},
                {"neighbours", std::to_string(options_.neighbours)},
                {"region_side", std::to_string(options_.region_side)},
                {"photometric", options_.photometric ? "1" : "0"},
                {"part_lighting", options_.part_lighting ? "1" : "0"},
                {"fixed_scenes", options_.fixed_scenes ? "1" : "0"}};
  for (const auto& [cat, b] : banks_) {
    for (size_t h = 0; h < 2; ++h)
      f.tensors[half(cat, b.aligned ? "normals" : "bank", h)] = to_st(b.aligned ? b.normals[h] : b.patches[h]);
    f.tensors[cat + "/scale"] = pair_st(b.scale);
    if (b.aspect != 1.0) f.tensors[cat + "/aspect"] = to_st(torch::tensor({float(b.aspect)}));
    for (size_t h = 0; h < 2; ++h)
      if (!b.palette[h].empty()) f.tensors[half(cat, "palette", h)] = to_st(torch::tensor(b.palette[h].distances()));
    if (b.region[0].defined()) {
      for (size_t h = 0; h < 2; ++h) f.tensors[half(cat, "region", h)] = to_st(b.region[h]);
      f.tensors[cat + "/region_scale"] = pair_st(b.region_scale);
    }
    if (b.scene[0].defined()) {
      for (size_t h = 0; h < 2; ++h) f.tensors[half(cat, "scene", h)] = to_st(b.scene[h]);
      f.tensors[cat + "/scene_scale"] = pair_st(b.scene_scale);
    }
    if (b.fine_bank[0].defined()) {
      for (size_t h = 0; h < 2; ++h) f.tensors[half(cat, "fine_bank", h)] = to_st(b.fine_bank[h]);
      f.tensors[cat + "/fine_scale"] = pair_st(b.fine_scale);
    }
    if (!b.fine[0].defined()) continue;
    for (size_t h = 0; h < 2; ++h) {
      f.tensors[half(cat, "fine", h)] = to_st(b.fine[h]);
      f.tensors[half(cat, "thumbs", h)] = to_st(b.thumbs[h]);
    }
    f.tensors[cat + "/fine_scale"] = pair_st(b.fine_scale);
    for (size_t h = 0; h < 2; ++h)  // absent from a version-1 reference made before the spread
      if (b.fine_spread[h].defined()) f.tensors[half(cat, "fine_spread", h)] = to_st(b.fine_spread[h]);
    f.tensors[cat + "/polar"] = to_st(torch::tensor({b.polar ? 1.f : 0.f}));
  }
  io::write_safetensors(path, f);
}

// One category's banks, read from the file: each step checks the shapes it reads and names the key.
struct NormalReference::FileReader {
  const io::StFile& f;
  const std::string& path;
  const std::string& cat;
  Options& options;
  int version;

  bool has(const std::string& name) const { return f.tensors.count(cat + "/" + name) > 0; }
  torch::Tensor get(const std::string& name, const std::string& because) const {
    const auto it = f.tensors.find(cat + "/" + name);
    if (it == f.tensors.end())
      throw Error(path + ": category " + cat + " has " + because + " but no " + cat + "/" + name);
    return from_st(it->second);
  }

  // Whether `t` holds (N,3,S,S) colour images of at least one patch's side: a part's or a scene's normals.
  bool images(const torch::Tensor& t) const {
    return t.dim() == 4 && t.size(0) >= 1 && t.size(1) == 3 && t.size(2) == t.size(3) && t.size(2) >= options.patch;
  }

  // A part's normal images in the canonical pose, "<cat>/normals0|1" (N,3,S,S).
  void aligned(Banks& b, const torch::Tensor& scale) const {
    for (size_t h = 0; h < 2; ++h) {
      auto& n = b.normals[h] = get("normals" + std::to_string(h), "normals0");
      if (!images(n))
        throw Error(path + ": " + half(cat, "normals", h) + " must hold (N,3,S,S) images at least " +
                    std::to_string(options.patch) + " pixels wide");
      b.scale[h] = scale[int64_t(h)].item<double>();
      // The lighting queries are relit to: made from the (relit) normals as build made it.
      if (options.part_lighting) b.light[h] = detail::mean_luminance(n);
      b.presence[h] = detail::part_presence(n);  // where the normal images show the part, made again too
    }
  }

  // A part's fine comparison: "<cat>/fine0|1" (N,1,F,F), "/thumbs0|1", "/fine_scale", "/fine_spread0|1",
  // "/polar" (the last two required from version 2 on).
  void fine_part(Banks& b) const {
    const auto fs = get("fine_scale", "fine0");
    for (size_t h = 0; h < 2; ++h) {
      const auto fine = get("fine" + std::to_string(h), "fine0"), thumbs = get("thumbs" + std::to_string(h), "fine0");
      if (fine.dim() != 4 || fine.size(0) < 1 || fine.size(1) != 1 || fine.size(2) != fine.size(3) ||
          fine.size(2) < options.patch || (options.fine_side > 0 && fine.size(2) != options.fine_side) ||
          thumbs.dim() != 4 || thumbs.size(0) != fine.size(0) || thumbs.size(1) != 3 || thumbs.size(2) != kThumb ||
          thumbs.size(3) != kThumb || fs.numel() != 2)
        throw Error(path + ": " + half(cat, "fine", h) + " must hold (N,1,F,F) maps, F = fine_side " +
                    std::to_string(options.fine_side) + ", with (N,3,16,16) thumbs and a 2-value fine_scale");
      b.fine[h] = fine;
      b.thumbs[h] = thumbs;
      b.fine_scale[h] = fs[int64_t(h)].item<double>();
      const std::string spread = "fine_spread" + std::to_string(h);
      if (version >= 2 || has(spread)) {  // version 1 before the spread: plain distances
        const auto t = b.fine_spread[h] = get(spread, "fine0");
        if (t.dim() != 2 || t.size(0) != fine.size(2) || t.size(1) != fine.size(3) || !(t.min().item<double>() > 0))
          throw Error(path + ": " + cat + "/" + spread +
                      " must hold an (F,F) map of positive weights, F = " + std::to_string(fine.size(2)));
      }
    }
    if (version >= 2 || has("polar")) {  // version 1 before the round parts' fit: high-passed luminance
      const auto polar = get("polar", "fine0");
      if (polar.numel() != 1) throw Error(path + ": " + cat + "/polar must hold 1 value");
      b.polar = polar.item<double>() > 0.5;
    }
  }

  // A fixed scene's normal images, "<cat>/scene0|1" (N,3,S,S), and "<cat>/scene_scale" (2).
  void scene(Banks& b) const {
    if (!options.fixed_scenes)
      throw Error(path + ": category " + cat + " is a fixed scene, but the metadata says fixed_scenes 0");
    const auto s = get("scene_scale", "scene0");
    for (size_t h = 0; h < 2; ++h) {
      const auto n = get("scene" + std::to_string(h), "scene0");
      if (!images(n) || (options.side > 0 && n.size(2) != options.side) || s.numel() != 2)
        throw Error(path + ": " + half(cat, "scene", h) + " must hold (N,3,S,S) images, S = side " +
                    std::to_string(options.side) + ", with a 2-value scene_scale");
      b.scene[h] = n;
      b.scene_scale[h] = s[int64_t(h)].item<double>();
      if (!(b.scene_scale[h] > 0) || !std::isfinite(b.scene_scale[h]))
        throw Error(path + ": " + cat + "/scene_scale must hold 2 positive values");
    }
  }

  // "<cat>/palette0|1": the colour palettes (absent without options.colour).
  void palettes(Banks& b) const {
    for (size_t h = 0; h < 2; ++h) {
      const std::string name = "palette" + std::to_string(h);
      if (!has(name)) continue;
      const auto t = get(name, name).contiguous();
      try {
        b.palette[h] =
            ColourPalette::from_distances(std::vector<float>(t.data_ptr<float>(), t.data_ptr<float>() + t.numel()));
      } catch (const Error& e) {
        rethrow_with_context(path + ": " + cat + "/" + name, e);
      }
    }
  }

  // A pair of patch banks "<cat>/<name>0|1" (M, cols) with their 2-value "<cat>/<scale>".
  void bank_pair(const std::string& name, const std::string& scale_name, int64_t cols,
                 std::array<torch::Tensor, 2>& banks, std::array<torch::Tensor, 2>& norms,
                 std::array<double, 2>& scales) const {
    const auto s = get(scale_name, name + "0");
    for (size_t h = 0; h < 2; ++h) {
      const auto bank = get(name + std::to_string(h), name + "0");
      if (bank.dim() != 2 || bank.size(0) < 1 || bank.size(1) != cols || s.numel() != 2)
        throw Error(path + ": " + half(cat, name, h) + " must hold (M," + std::to_string(cols) +
                    ") patches, with a 2-value " + scale_name);
      banks[h] = bank;
      norms[h] = bank.pow(2).sum(1);
      scales[h] = s[int64_t(h)].item<double>();
    }
  }

  Banks read(const torch::Tensor& scale) const {
    Banks b;
    b.aligned = has("normals0");
    if (b.aligned) {
      aligned(b, scale);
      if (has("aspect")) {  // version 5: photographs that were not square (absent: 1)
        const auto a = get("aspect", "aspect");
        if (a.numel() != 1 || !(a.item<double>() > 0) || !std::isfinite(a.item<double>()))
          throw Error(path + ": " + cat + "/aspect must hold 1 positive value (the photographs' width / height)");
        b.aspect = a.item<double>();
      }
      if (has("fine0")) fine_part(b);
    }
    palettes(b);
    // The colour of regions: every category has it from version 3 on; before, parts never did.
    if (options.region_side > 0 && (version >= 3 || has("region0")))
      bank_pair("region", "region_scale", 3 * kRegionPatch * kRegionPatch, b.region, b.region_norms, b.region_scale);
    if (b.aligned) {
      if (has("scene0")) throw Error(path + ": category " + cat + " is a part compared in its pose and a fixed scene");
      return b;
    }
    if (has("scene0")) scene(b);
    if (has("fine_bank0")) {  // a texture's fine comparison
      if (options.side <= 0 || options.fine_side <= options.side)
        throw Error(path + ": category " + cat +
                    " has a fine comparison of textures, but the metadata no fine_side above side");
      bank_pair("fine_bank", "fine_scale", int64_t(options.patch) * options.patch, b.fine_bank, b.fine_bank_norms,
                b.fine_scale);
      options.fine_textures = true;
    }
    for (size_t h = 0; h < 2; ++h) {
      const std::string name = "bank" + std::to_string(h);
      if (!has(name)) throw Error(path + ": category " + cat + " has no " + name);
      b.patches[h] = get(name, name);
      if (b.patches[h].dim() != 2 || b.patches[h].size(1) != 3 * int64_t(options.patch) * options.patch)
        throw Error(path + ": " + cat + "/" + name + " does not hold patches of side " + std::to_string(options.patch));
      b.norms[h] = b.patches[h].pow(2).sum(1);
      b.scale[h] = scale[int64_t(h)].item<double>();
    }
    return b;
  }
};

NormalReference NormalReference::load(const std::string& path) {
  // 1. the file, its kind and version
  const io::StFile f = io::read_safetensors(path);
  auto meta = [&](const std::string& key) -> const std::string* {
    const auto it = f.metadata.find(key);
    return it == f.metadata.end() ? nullptr : &it->second;
  };
  if (!meta("format") || *meta("format") != "lriad-reference") throw Error(path + " is not an lriad reference file");
  int version = 1;
  if (const auto* v = meta("format_version")) version = std::stoi(*v);
  if (version < 1 || version > kFormatVersion)
    throw Error(path + ": reference format version " + std::to_string(version) + ", this lriad reads 1 to " +
                    std::to_string(kFormatVersion),
                "build the reference again with this lriad (`lriad train`), or use the lriad that made it");

  // 2. the options: from version 2 on every key is required; version 1 falls back where a key came later
  NormalReference ref;
  Options& o = ref.options_;
  auto number = [&](const char* key, std::optional<double> v1_fallback) {
    const std::string* v = meta(key);
    if (!v && (version >= 2 || !v1_fallback))
      throw Error(path + " is not an lriad reference (no '" + key + "' in its metadata)");
    return v ? std::stod(*v) : *v1_fallback;
  };
  o.patch = int(number("patch", std::nullopt));
  o.bank_size = int(number("bank_size", std::nullopt));
  o.shift = int(number("shift", o.shift));    // version 1 before pose alignment
  o.side = int(number("side", 0));            // version 1 before the fine comparison: maps at the image's side ...
  o.fine_side = int(number("fine_side", 0));  // ... and no fine comparison
  o.fine_shift = int(number("fine_shift", 3));
  o.neighbours = int(number("neighbours", 8));
  o.region_side = int(number("region_side", 0));  // version 1 before the region comparison: off
  o.fine_sigma = number("fine_sigma", o.fine_sigma);
  const std::string* lit = meta("photometric");  // from version 4 on; earlier files compared textures as given
  if (version >= 4 && !lit) throw Error(path + " is not an lriad reference (no 'photometric' in its metadata)");
  if (lit && *lit != "0" && *lit != "1")
    throw Error(path + ": reference metadata 'photometric' is " + *lit + ", not 0 or 1");
  o.photometric = lit && *lit == "1";
  const std::string* parts_lit = meta("part_lighting");  // from version 6 on; earlier files compared parts as given
  if (version >= 6 && !parts_lit) throw Error(path + " is not an lriad reference (no 'part_lighting' in its metadata)");
  if (parts_lit && *parts_lit != "0" && *parts_lit != "1")
    throw Error(path + ": reference metadata 'part_lighting' is " + *parts_lit + ", not 0 or 1");
  o.part_lighting = parts_lit && *parts_lit == "1";
  const std::string* scenes = meta("fixed_scenes");  // from version 7 on; earlier files had none
  if (version >= 7 && !scenes) throw Error(path + " is not an lriad reference (no 'fixed_scenes' in its metadata)");
  if (scenes && *scenes != "0" && *scenes != "1")
    throw Error(path + ": reference metadata 'fixed_scenes' is " + *scenes + ", not 0 or 1");
  o.fixed_scenes = scenes && *scenes == "1";
  if (o.side < 0 || o.fine_side < 0 || o.fine_shift < 0 || o.fine_shift > 64 || o.neighbours < 0 ||
      !(o.fine_sigma > 0) || (o.region_side != 0 && (o.region_side < kRegionPatch || o.region_side > 4096)))
    throw Error(
        path +
        ": reference metadata out of range (side, fine_side, fine_shift, neighbours, fine_sigma or region_side)");
  if (o.patch < 1 || o.shift < 0 || o.shift > 64)
    throw Error(path + ": reference metadata out of range (patch " + std::to_string(o.patch) + ", shift " +
                std::to_string(o.shift) + ")");

  // 3. each category, found by its "<category>/scale"
  for (const auto& [name, t] : f.tensors) {
    const auto slash = name.rfind('/');
    if (slash == std::string::npos || name.substr(slash) != "/scale") continue;
    const std::string cat = name.substr(0, slash);
    const auto scale = from_st(t);
    if (scale.numel() != 2) throw Error(path + ": " + name + " must hold 2 values");
    ref.banks_[cat] = FileReader{f, path, cat, o, version}.read(scale);
  }
  if (ref.banks_.empty()) throw Error(path + " holds no categories");
  return ref;
}

}  // namespace lriad::reference
