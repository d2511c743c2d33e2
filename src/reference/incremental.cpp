// Incremental maps (reference.h): a synthetic anomaly changes a small part of a normal image, and only
// the patches that overlap the change get new nearest distances; the rest come from the normal image's.
#include <torch/torch.h>

#include <algorithm>
#include <array>

#include "internal.h"
#include "lriad/data/image_io.h"
#include "lriad/data/image_tensor.h"
#include "lriad/io/error.h"
#include "lriad/reference/patch_distance.h"
#include "lriad/reference/reference.h"

namespace lriad::reference {

using data::image_to_tensor;
using namespace detail;

bool NormalReference::updatable(const std::string& category, int image_side) const {
  auto it = banks_.find(category);
  if (it == banks_.end() || it->second.aligned || it->second.fine[0].defined()) return false;
  // A fine texture is given at fine_side (and brought to the model's side here), any other at S.
  const int side = it->second.fine_bank[0].defined() ? options_.fine_side : options_.side;
  return (side <= 0 || image_side == side) && image_side >= options_.patch;
}

torch::Tensor NormalReference::patch_distances(const cv::Mat& image, const std::string& category, int bank) const {
  if (!updatable(category, image.rows) || image.rows != image.cols || (bank != 0 && bank != 1))
    throw Error("patch_distances: category '" + category + "' at side " + std::to_string(image.rows) + ", bank " +
                    std::to_string(bank) + " cannot be updated incrementally",
                "check NormalReference::updatable first, and pass bank 0 or 1");
  torch::NoGradGuard no_grad;
  const Banks& b = banks_.at(category);
  const cv::Mat coarse = sized(image, options_.side);
  auto d = nearest_distances(patches_of(image_to_tensor(lit(coarse)), options_.patch), b.patches[size_t(bank)],
                             b.norms[size_t(bank)]);  // (g*g)
  const bool fine = b.fine_bank[size_t(bank)].defined();
  if (fine) d = torch::cat({d, texture_fine_distances(image, b, size_t(bank)).reshape({-1})});
  if (options_.photometric) {  // the lightings the distances were made under, for changed_deviation
    const Lighting c = lighting_of(coarse), f = fine ? lighting_of(image) : Lighting{};
    d = torch::cat({d, torch::tensor({float(c.gain), float(c.offset), float(f.gain), float(f.offset)})});
  }
  return d;
}

torch::Tensor NormalReference::changed_deviation(const cv::Mat& image, const std::string& category, int bank,
                                                 const std::array<torch::Tensor, 2>& base_distances,
                                                 const cv::Rect& changed, MapPart* at_peak) const {
  if (!updatable(category, image.rows) || image.rows != image.cols)
    throw Error("changed_deviation: category '" + category + "' at side " + std::to_string(image.rows) +
                    " cannot be updated incrementally",
                "check NormalReference::updatable first");
  torch::NoGradGuard no_grad;
  const Banks& b = banks_.at(category);
  const cv::Mat coarse = sized(image, options_.side);
  const int64_t k = options_.patch, S = coarse.rows, g = S - k + 1;
  const bool fine = b.fine_bank[0].defined();
  const int64_t f = fine ? fine_cells(image.rows, k) : 0;
  const int64_t n_light = options_.photometric ? 4 : 0;  // the normal image's lightings, after the distances
  for (size_t h = 0; h < 2; ++h) {
    const auto& base = base_distances[h];
    if (base.defined() && (base.dim() != 1 || base.numel() != g * g + f * f + n_light))
      throw Error("changed_deviation: the normal image's patch distances against bank " + std::to_string(h) +
                      " are not " + std::to_string(g * g + f * f + n_light) + " values",
                  "make them with patch_distances at the same side");
  }
  // With photometric normalisation the changed patches are lit as the normal image was, so that
  // they meet its unchanged ones under one lighting; a change that moves the copy's own lighting by
  // more than kRelightTolerance is compared whole instead, as deviation() compares it.
  Lighting light_coarse, light_fine;
  if (options_.photometric) {
    const auto& any = base_distances[base_distances[0].defined() ? 0 : 1];
    if (!any.defined()) throw Error("changed_deviation: no patch distances of the normal image were given");
    const auto l = any.narrow(0, g * g + f * f, 4).to(torch::kDouble).contiguous();
    const double* v = l.data_ptr<double>();
    light_coarse = {v[0], v[1]};
    light_fine = {v[2], v[3]};
    if (lighting_change(lighting_of(coarse), light_coarse) > kRelightTolerance ||
        (fine && lighting_change(lighting_of(image), light_fine) > kRelightTolerance))
      return deviation(image, category, bank, at_peak);
  }
  // The patches of side k at `stride` (patch j covers pixels stride*j .. stride*j+k-1) that overlap
  // `area` (pixels of an image of side n): their (y0, x0, y1, x1) in the ((n-k)/stride+1)^2 layout,
  // empty when y1 < y0 or x1 < x0.
  auto touched = [k](const cv::Rect& area, int64_t n, int64_t stride) {
    const int64_t gn = (n - k) / stride + 1;
    const cv::Rect r = area & cv::Rect(0, 0, int(n), int(n));
    if (r.empty()) return std::array<int64_t, 4>{0, 0, -1, -1};
    auto first = [&](int64_t a) { return (std::max<int64_t>(0, a - k + 1) + stride - 1) / stride; };
    auto last = [&](int64_t b) { return std::min<int64_t>(gn - 1, b / stride); };
    return std::array<int64_t, 4>{first(r.y), first(r.x), last(r.y + r.height - 1), last(r.x + r.width - 1)};
  };
  // Those patches of `chw`, or an undefined tensor when there are none: (ny*nx, D).
  auto patches_in = [k](const torch::Tensor& chw, const std::array<int64_t, 4>& t, int64_t stride) {
    if (t[2] < t[0] || t[3] < t[1]) return torch::Tensor();
    return patches_of(
        chw.narrow(1, stride * t[0], stride * (t[2] - t[0]) + k).narrow(2, stride * t[1], stride * (t[3] - t[1]) + k),
        int(k), int(stride));
  };
  // The change at the model's side: a resized pixel spreads over the ones it overlaps (one more for the interpolation).
  cv::Rect coarse_change = changed;
  if (image.rows != S && !changed.empty()) {
    const double s = double(S) / image.rows;
    const int x0 = int(std::floor(changed.x * s)) - 1, y0 = int(std::floor(changed.y * s)) - 1;
    const int x1 = int(std::ceil((changed.x + changed.width) * s)) + 1,
              y1 = int(std::ceil((changed.y + changed.height) * s)) + 1;
    coarse_change = cv::Rect(x0, y0, x1 - x0, y1 - y0);
  }
  const auto tc = touched(coarse_change, S, 1);
  const cv::Mat lit_coarse = lit(coarse, &light_coarse);                   // lit as the normal image was
  const torch::Tensor q = patches_in(image_to_tensor(lit_coarse), tc, 1);  // the coarse patches the change touches
  // The fine comparison's high-pass reaches ceil(4 sigma) pixels (OpenCV's Gaussian kernel for
  // floats) beyond the change; its patches lie on a grid of step kFineStride.
  std::array<int64_t, 4> tf{0, 0, -1, -1};
  torch::Tensor qf;
  if (fine && !changed.empty()) {
    const int reach = int(std::ceil(4 * options_.fine_sigma)) + 1;
    tf = touched(cv::Rect(changed.x - reach, changed.y - reach, changed.width + 2 * reach, changed.height + 2 * reach),
                 image.rows, kFineStride);
    if (tf[2] >= tf[0] && tf[3] >= tf[1])
      qf = patches_in(grey_to_tensor(fine_image(lit(image, &light_fine), false, options_.fine_sigma)), tf, kFineStride);
  }
  auto against = [&](size_t h) {  // the parts, each (S,S)
    const auto& base = base_distances[h];
    if (!base.defined())
      throw Error(
          "changed_deviation: the normal image's patch distances against bank " + std::to_string(h) + " are missing",
          "make them with patch_distances at the same side");
    auto best = base.narrow(0, 0, g * g).view({g, g}).clone();  // (g,g)
    if (q.defined())
      best.narrow(0, tc[0], tc[2] - tc[0] + 1)
          .narrow(1, tc[1], tc[3] - tc[1] + 1)
          .copy_(nearest_distances(q, b.patches[h], b.norms[h]).view({tc[2] - tc[0] + 1, tc[3] - tc[1] + 1}));
    Parts p;
    p[size_t(MapPart::Patches)] = finish_map(best, S, k) / b.scale[h];
    if (b.scene[h].defined())  // a fixed scene's comparison by place, made whole (N images x its shifts)
      p[size_t(MapPart::Patches)] =
          torch::maximum(p[size_t(MapPart::Patches)], raw_scene(lit_coarse, b, h) / b.scene_scale[h]);
    if (fine) {
      auto best_fine = base.narrow(0, g * g, f * f).view({f, f}).clone();  // (f,f)
      if (qf.defined())
        best_fine.narrow(0, tf[0], tf[2] - tf[0] + 1)
            .narrow(1, tf[1], tf[3] - tf[1] + 1)
            .copy_(nearest_distances(qf, b.fine_bank[h], b.fine_bank_norms[h])
                       .view({tf[2] - tf[0] + 1, tf[3] - tf[1] + 1}));
      p[size_t(MapPart::Fine)] = texture_fine_map(best_fine, b, h, S);
    }
    colour_parts(p, coarse, b, h);
    return p;
  };
  if (bank == kBothBanks) return joined({against(0), against(1)}, at_peak);
  return joined({against(bank == 1 ? 1 : 0)}, at_peak);
}

}  // namespace lriad::reference
