// Normal-reference deviation maps (see reference.h).
#include "lriad/data/reference.h"

#include <ATen/CPUGeneratorImpl.h>
#include <torch/torch.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <limits>

#include <opencv2/imgproc.hpp>

#include "lriad/data/image_io.h"
#include "lriad/data/image_tensor.h"
#include "lriad/data/patch_distance.h"
#include "lriad/data/pose.h"
#include "lriad/io/error.h"
#include "lriad/io/safetensors.h"
#include "lriad/model/weights.h"

namespace lriad::data {
namespace {

// Every K x K patch at `stride`: (C,S,S) -> (g^2, CK^2), g = (S-K)/stride + 1.
torch::Tensor patches_of(const torch::Tensor& chw, int k, int stride = 1) {
  namespace F = torch::nn::functional;
  return F::unfold(chw.unsqueeze(0), F::UnfoldFuncOptions({k, k}).stride(stride))[0].t().contiguous();
}

constexpr int kFineStride = NormalReference::kFineTextureStride;

// The fine comparison of textures' patches per side at fine side F: ((F-K)/2 + 1).
int64_t fine_cells(int64_t F, int64_t k) { return (F - k) / kFineStride + 1; }

torch::Tensor from_st(const io::StTensor& t) {
  if (t.dtype != "F32") throw Error("reference tensor has dtype " + t.dtype + ", expected F32");
  return model::from_st_tensor(t);  // checks the byte length against the shape
}

io::StTensor to_st(const torch::Tensor& t) { return model::to_st_tensor(t.to(torch::kCPU, torch::kFloat32)); }

// Farthest-point (k-center greedy) selection of m rows of `pool` (P,D), distances in a random
// 24-d projection; starts from row 0. -> (m,D)
torch::Tensor coreset(const torch::Tensor& pool, int64_t m, uint64_t seed) {
  const int64_t P = pool.size(0);
  if (P <= m) return pool;
  constexpr int kDim = 24;
  auto gen = at::detail::createCPUGenerator(seed);
  // Stored dimension by dimension, (24,P), so that each pass over the rows runs in vector
  // instructions; every row's distance still sums its 24 terms in order (the same picks as a
  // row-by-row loop; `lriad bench` data section: reference build 9.0 -> 4.8 s).
  const auto proj = torch::mm(pool, torch::randn({pool.size(1), kDim}, gen)).t().contiguous();  // (24,P)
  const float* p = proj.data_ptr<float>();
  std::vector<float> nearest(static_cast<size_t>(P), std::numeric_limits<float>::infinity()), d(static_cast<size_t>(P));
  std::vector<int64_t> pick;
  pick.reserve(size_t(m));
  int64_t current = 0;
  for (int64_t i = 0; i < m; ++i) {
    pick.push_back(current);
    std::fill(d.begin(), d.end(), 0.f);
    for (int k = 0; k < kDim; ++k) {
      const float* x = p + k * P;
      const float c = x[current];
      for (int64_t r = 0; r < P; ++r) {
        const float t = x[r] - c;
        d[size_t(r)] += t * t;
      }
    }
    for (int64_t r = 0; r < P; ++r) nearest[size_t(r)] = std::min(nearest[size_t(r)], d[size_t(r)]);
    current = std::max_element(nearest.begin(), nearest.end()) - nearest.begin();  // the first farthest
  }
  return pool.index_select(0, torch::tensor(pick, torch::kInt64)).contiguous();
}

// What the region comparison compares: `image` (CV_32FC3 RGB at any side) averaged down to `side`,
// per pixel r/(sum+0.05), g/(sum+0.05) (a shade of light changes neither) and 0.1*sum/3 (a faint
// brightness, so black and white are not one colour). -> (3,side,side)
torch::Tensor region_features(const cv::Mat& image, int side) {
  const auto rgb = image_to_tensor(resize_square(image, side));  // (3,R,R)
  const auto sum = rgb.sum(0, true);                 // (1,R,R)
  return torch::cat({rgb.narrow(0, 0, 2) / (sum + 0.05), 0.1 * sum / 3}, 0).contiguous();  // (3,R,R)
}

// The bank of `patches` (P,D): a random pool of 5x `size` first (the greedy pass is O(pool x
// bank)), then its coreset of `size` rows. -> (M,D)
torch::Tensor bank_of(torch::Tensor patches, int64_t size, uint64_t seed) {
  auto gen = at::detail::createCPUGenerator(seed);
  const int64_t pool = 5 * size;
  if (patches.size(0) > pool) patches = patches.index_select(0, torch::randperm(patches.size(0), gen).narrow(0, 0, pool));
  return coreset(patches, size, seed + 7919).contiguous();
}

// `image` rotated about its centre by `degrees`, edges mirrored.
cv::Mat rotated(const cv::Mat& image, double degrees) {
  cv::Mat out;
  const cv::Point2f centre(float(image.cols) / 2.f, float(image.rows) / 2.f);
  cv::warpAffine(image, out, cv::getRotationMatrix2D(centre, degrees, 1.0), image.size(), cv::INTER_LINEAR,
                 cv::BORDER_REFLECT);
  return out;
}

// Smoothed (S,S) map from per-patch distances (g,g), g = S-K+1, edges repeated.
torch::Tensor finish_map(torch::Tensor best, int64_t S, int64_t k) {
  const int64_t g = S - k + 1;
  auto map = best.reshape({1, 1, g, g});
  map = torch::avg_pool2d(map, 3, 1, 1, false, false);  // a little smoothing: one noisy patch is not a defect
  const int64_t lo = (k - 1) / 2, hi = k - 1 - lo;       // back to S x S, edges repeated
  map = torch::nn::functional::pad(map, torch::nn::functional::PadFuncOptions({lo, hi, lo, hi}).mode(torch::kReplicate));
  return map.view({S, S});
}

constexpr int kPolarHarmonics = 2;  // angle terms of a round part's ring-by-ring fit (polar_residual)

// What the fine comparison compares, from an image in its canonical pose: (H,W) CV_32FC1.
// Round parts: the luminance (the channels' mean) minus its ring-by-ring fit (data::polar_residual),
// so each part's own turning marks and lighting drop out and scratches and stains stay. Other parts:
// the luminance minus its Gaussian blur (sigma px), which keeps lines and edges a few pixels wide and
// drops lighting gradients and broad stains.
cv::Mat fine_image(const cv::Mat& canonical_rgb, bool polar, double sigma) {
  cv::Mat gray, blurred;
  cv::transform(canonical_rgb, gray, cv::Matx13f(1.f / 3, 1.f / 3, 1.f / 3));
  if (polar) return polar_residual(gray, kPolarHarmonics);
  cv::GaussianBlur(gray, blurred, cv::Size(0, 0), sigma, sigma, cv::BORDER_REPLICATE);
  return gray - blurred;
}

// How far normal images typically are from their neighbours at each position of the canonical
// frame, relative to the frame's median: maps (N,F,F) of unseen normal images -> (F,F) >= 1. The
// per-position median, box-smoothed (5 x 5), floored at its own median: sharp edges whose place
// varies from part to part (a bore's rim, a chamfer) weigh less; plain faces keep their full weight.
torch::Tensor spread_of(const torch::Tensor& maps) {
  const int64_t F = maps.size(1);
  auto m = std::get<0>(maps.median(0)).view({1, 1, F, F});
  m = torch::avg_pool2d(m, 5, 1, 2, false, false).view({F, F});
  const double floor = std::max(1e-6, m.median().item<double>());
  return (m.clamp_min(floor) / floor).contiguous();
}

torch::Tensor gray_to_tensor(const cv::Mat& m) {  // CV_32FC1 (H,W) -> (1,H,W), copied
  const cv::Mat c = m.isContinuous() ? m : m.clone();
  return torch::from_blob(c.data, {1, c.rows, c.cols}, torch::kFloat32).clone();
}

constexpr int kThumb = 16;  // side of the thumbnails that pick the fine comparison's neighbours

torch::Tensor thumbnail(const cv::Mat& canonical) {  // -> (3,16,16)
  cv::Mat t;
  cv::resize(canonical, t, cv::Size(kThumb, kThumb), 0, 0, cv::INTER_AREA);
  return image_to_tensor(t);
}

double median_of(std::vector<double> v) {  // v non-empty; the mean of the middle two for an even count
  std::sort(v.begin(), v.end());
  const size_t n = v.size();
  return n % 2 ? v[n / 2] : 0.5 * (v[n / 2 - 1] + v[n / 2]);
}

std::string exact(double x) {  // round-trips through std::stod
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.17g", x);
  return buf;
}

cv::Mat tensor_to_mat(const torch::Tensor& map) {  // (H,W) float -> CV_32FC1 (copy)
  const auto c = map.contiguous();
  return cv::Mat(int(c.size(0)), int(c.size(1)), CV_32FC1, const_cast<float*>(c.data_ptr<float>())).clone();
}

}  // namespace

NormalReference NormalReference::build(const std::map<std::string, std::array<std::vector<cv::Mat>, 2>>& halves,
                                       const Options& options) {
  torch::NoGradGuard no_grad;
  NormalReference ref;
  ref.options_ = options;
  uint64_t salt = 0;
  for (const auto& [cat, given] : halves) {
    if (given[0].empty() || given[1].empty())
      throw Error("reference: category " + cat + " needs at least two normal training images",
                  "add normal images, or set model.reference=none");
    std::array<std::vector<cv::Mat>, 2> half;  // at the model's side
    for (int h = 0; h < 2; ++h)
      for (const auto& img : given[h]) half[h].push_back(ref.sized(img, options.side));
    Banks b;
    std::array<std::vector<Pose>, 2> poses;  // of each half's images, found once
    std::vector<Pose> every;
    for (int h = 0; h < 2 && options.align; ++h)
      for (const auto& img : half[h]) {
        poses[h].push_back(estimate_pose(img));
        every.push_back(poses[h].back());
      }
    b.aligned = options.align && is_object_category_from(every);
    for (int h = 0; h < 2 && b.aligned; ++h) {
      std::vector<torch::Tensor> canon;
      for (size_t i = 0; i < half[h].size(); ++i) canon.push_back(image_to_tensor(to_canonical(half[h][i], poses[h][i])));
      b.normals[h] = torch::stack(canon).contiguous();  // (N,3,S,S)
    }
    // The fine comparison needs the images at fine_side at least: enlarged ones would make its
    // normals blurrier than the images it is later given.
    bool fine = b.aligned && options.fine_side > 0;
    for (int h = 0; h < 2 && fine; ++h)
      for (const auto& img : given[h]) fine = fine && img.rows >= options.fine_side && img.cols >= options.fine_side;
    b.polar = fine && options.polar && is_round_category_from(every);
    // Each half's images at fine_side in their canonical pose, and those poses: the bank's normals
    // here, the other bank's unseen images for the spread and the scale below.
    std::array<std::vector<cv::Mat>, 2> fine_canon;
    std::array<std::vector<Pose>, 2> fine_poses;
    for (int h = 0; h < 2 && fine; ++h) {
      std::vector<torch::Tensor> fine, thumbs;
      for (const auto& img : given[h]) {
        const cv::Mat f = ref.sized(img, options.fine_side);
        fine_poses[h].push_back(estimate_pose(f));
        fine_canon[h].push_back(to_canonical(f, fine_poses[h].back()));
        const cv::Mat& canon = fine_canon[h].back();
        fine.push_back(gray_to_tensor(fine_image(canon, b.polar, options.fine_sigma)));
        thumbs.push_back(thumbnail(canon));
      }
      b.fine[h] = torch::stack(fine).contiguous();      // (N,1,F,F)
      b.thumbs[h] = torch::stack(thumbs).contiguous();  // (N,3,16,16)
    }
    for (int h = 0; h < 2 && options.colour; ++h) b.palette[size_t(h)] = ColourPalette::build(half[h]);
    for (int h = 0; h < 2 && !b.aligned && options.region_side > 0; ++h) {
      std::vector<torch::Tensor> all;
      for (const auto& img : half[h]) all.push_back(patches_of(region_features(img, options.region_side), kRegionPatch));
      auto p = bank_of(torch::cat(all, 0), options.bank_size, options.seed * 1000003 + 500009 + uint64_t(h));  // (M, 3*3^2)
      b.region_norms[size_t(h)] = p.pow(2).sum(1);
      b.region[size_t(h)] = std::move(p);
    }
    // A texture's fine comparison, likewise from images at fine_side at least.
    bool fine_texture = !b.aligned && options.fine_textures && options.side > 0 && options.fine_side > options.side;
    for (int h = 0; h < 2 && fine_texture; ++h)
      for (const auto& img : given[h]) fine_texture = fine_texture && img.rows >= options.fine_side && img.cols >= options.fine_side;
    std::array<std::vector<cv::Mat>, 2> fine_half;  // a fine texture's images at fine_side
    for (int h = 0; h < 2 && fine_texture; ++h) {
      std::vector<torch::Tensor> all;
      for (const auto& img : given[h]) {
        fine_half[h].push_back(ref.sized(img, options.fine_side));
        all.push_back(patches_of(gray_to_tensor(fine_image(fine_half[h].back(), false, options.fine_sigma)), options.patch));
      }
      auto p = bank_of(torch::cat(all, 0), options.bank_size, options.seed * 1000003 + 700001 + uint64_t(h));  // (M, K^2)
      b.fine_bank_norms[size_t(h)] = p.pow(2).sum(1);
      b.fine_bank[size_t(h)] = std::move(p);
    }
    for (int h = 0; h < 2 && !b.aligned; ++h) {
      std::vector<torch::Tensor> all;
      for (const auto& img : half[h]) {
        all.push_back(patches_of(image_to_tensor(img), options.patch));
        for (int r = 1; r <= options.rotations; ++r)
          all.push_back(patches_of(image_to_tensor(rotated(img, 360.0 * r / (options.rotations + 1))), options.patch));
      }
      ++salt;
      const auto p = bank_of(torch::cat(all, 0), options.bank_size, options.seed * 1000003 + salt);  // (M, 3K^2)
      b.patches[h] = p;
      b.norms[h] = p.pow(2).sum(1);
    }
    // Scale of bank h: the median peak of the raw map over the other half's images (unseen by it).
    // The median, not the mean: a few odd normal images (a part the pose puts off by some degrees)
    // peak at 2-4x the rest and would move the scale, and with it where "above normal" starts.
    // The fine map's scale likewise, measured at the model's side where the two maps meet, after
    // its positions are weighed by the same images' spread (spread_of).
    for (int h = 0; h < 2; ++h) {
      std::vector<double> peaks, fine_peaks, region_peaks;
      std::vector<torch::Tensor> fine_maps;  // (F,F) each, canonical frame
      for (const auto& img : half[1 - h]) peaks.push_back(ref.raw_deviation(img, b, h).max().item<double>());
      for (const auto& canon : fine_canon[1 - h]) fine_maps.push_back(ref.fine_canonical(canon, b, h));
      if (!fine_maps.empty()) b.fine_spread[size_t(h)] = spread_of(torch::stack(fine_maps));
      for (size_t i = 0; i < fine_maps.size(); ++i)
        fine_peaks.push_back(in_image_frame(fine_maps[i] / b.fine_spread[size_t(h)], fine_poses[1 - h][i],
                                            half[1 - h][i].rows).max().item<double>());
      for (const auto& img : half[1 - h])
        if (b.region[size_t(h)].defined()) region_peaks.push_back(ref.raw_region(img, b, size_t(h)).max().item<double>());
      b.scale[h] = std::max(1e-6, median_of(peaks));
      if (!region_peaks.empty()) b.region_scale[size_t(h)] = std::max(1e-6, median_of(region_peaks));
      // A fine texture's scale: its map's median peak at fine_side, before it is averaged down.
      for (const auto& img : fine_half[1 - h])
        fine_peaks.push_back(ref.texture_fine_map(ref.texture_fine_distances(img, b, size_t(h)), b, size_t(h), 0)
                                 .max().item<double>());
      if (!fine_peaks.empty()) b.fine_scale[h] = std::max(1e-6, median_of(fine_peaks));
    }
    ref.banks_[cat] = std::move(b);
  }
  return ref;
}

cv::Mat NormalReference::sized(const cv::Mat& image, int side) const {
  return side <= 0 || (image.rows == side && image.cols == side) ? image : resize_square(image, side);
}

torch::Tensor NormalReference::fine_canonical(const cv::Mat& canon, const Banks& b, int bank) const {
  torch::NoGradGuard no_grad;
  const auto q = gray_to_tensor(fine_image(canon, b.polar, options_.fine_sigma));  // (1,F,F)
  auto normals = b.fine[size_t(bank)];                                            // (N,1,F,F)
  if (options_.neighbours > 0 && options_.neighbours < normals.size(0)) {
    const auto& thumbs = b.thumbs[size_t(bank)];
    const auto d = (thumbs - thumbnail(canon).unsqueeze(0).to(thumbs.device())).pow(2).sum({1, 2, 3});  // (N)
    normals = normals.index_select(0, std::get<1>(d.topk(options_.neighbours, 0, /*largest=*/false)));
  }
  const int64_t k = options_.patch, F = q.size(1);
  return finish_map(positional_distance(q, normals, k, options_.fine_shift), F, k);  // (F,F)
}

torch::Tensor NormalReference::in_image_frame(const torch::Tensor& map, const Pose& pose, int64_t out) {
  cv::Mat back = from_canonical(tensor_to_mat(map), pose);
  if (back.rows != out) cv::resize(back, back, cv::Size(int(out), int(out)), 0, 0, back.rows > out ? cv::INTER_AREA : cv::INTER_LINEAR);
  return gray_to_tensor(back)[0];  // (out,out)
}

torch::Tensor NormalReference::raw_fine(const cv::Mat& image, const Banks& b, int bank, int64_t out) const {
  const Pose pose = estimate_pose(image);
  auto map = fine_canonical(to_canonical(image, pose), b, bank);  // (F,F)
  if (b.fine_spread[size_t(bank)].defined()) map = map / b.fine_spread[size_t(bank)];
  return in_image_frame(map, pose, out);
}

torch::Tensor NormalReference::texture_fine_distances(const cv::Mat& image, const Banks& b, size_t h) const {
  torch::NoGradGuard no_grad;
  const int64_t k = options_.patch;
  const auto q = gray_to_tensor(fine_image(image, false, options_.fine_sigma));  // (1,F,F)
  const int64_t f = fine_cells(q.size(1), k);
  return nearest_distances(patches_of(q, int(k), kFineStride), b.fine_bank[h], b.fine_bank_norms[h]).view({f, f});
}

torch::Tensor NormalReference::texture_fine_map(const torch::Tensor& distances, const Banks& b, size_t h, int64_t out) const {
  namespace Fn = torch::nn::functional;
  const int64_t k = options_.patch, F = options_.fine_side, f = distances.size(0);
  // 3x3 smoothing on the patch grid, each patch's value over the two pixels its step covers, edges
  // repeated: the patch at (2i, 2j) covers pixels 2i .. 2i+K-1, its centre 2i + (K-1)/2.
  auto map = torch::avg_pool2d(distances.reshape({1, 1, f, f}), 3, 1, 1, false, false);
  map = map.repeat_interleave(kFineStride, 2).repeat_interleave(kFineStride, 3);  // (1,1,2f,2f)
  const int64_t lo = (k - 1) / 2, hi = std::max<int64_t>(0, F - kFineStride * f - lo);
  map = Fn::pad(map, Fn::PadFuncOptions({lo, hi, lo, hi}).mode(torch::kReplicate)).narrow(2, 0, F).narrow(3, 0, F);
  cv::Mat m = tensor_to_mat(map.reshape({F, F}) / b.fine_scale[h]);  // (F,F)
  if (out > 0 && m.rows != out) cv::resize(m, m, cv::Size(int(out), int(out)), 0, 0, m.rows > out ? cv::INTER_AREA : cv::INTER_LINEAR);
  return gray_to_tensor(m)[0];  // (out,out); out 0: (F,F)
}

torch::Tensor NormalReference::raw_deviation(const cv::Mat& image, const Banks& b, int bank) const {
  torch::NoGradGuard no_grad;
  const int64_t k = options_.patch;
  if (b.aligned) {
    const Pose pose = estimate_pose(image);
    const auto chw = image_to_tensor(to_canonical(image, pose));  // (3,S,S)
    const auto map = finish_map(positional_distance(chw, b.normals[size_t(bank)], k, options_.shift), chw.size(1), k);
    cv::Mat back = from_canonical(tensor_to_mat(map), pose);  // CV_32FC1 (S,S), a fresh continuous matrix
    return gray_to_tensor(back)[0];  // (S,S)
  }
  const auto chw = image_to_tensor(image);  // (3,S,S)
  return finish_map(nearest_distances(patches_of(chw, int(k)), b.patches[size_t(bank)], b.norms[size_t(bank)]), chw.size(1), k);
}

torch::Tensor NormalReference::with_colour(torch::Tensor map, const cv::Mat& coarse, const Banks& b, size_t h) const {
  if (!b.palette[h].empty()) map = torch::maximum(map, gray_to_tensor(b.palette[h].novelty(coarse))[0]);
  if (b.region[h].defined()) {
    namespace F = torch::nn::functional;
    const auto region = (raw_region(coarse, b, h) / b.region_scale[h]).view({1, 1, options_.region_side, options_.region_side});
    const auto up = F::interpolate(region, F::InterpolateFuncOptions()
                                               .size(std::vector<int64_t>{map.size(0), map.size(1)})
                                               .mode(torch::kBilinear)
                                               .align_corners(false));  // (1,1,S,S)
    map = torch::maximum(map, up[0][0]);
  }
  return map;
}

torch::Tensor NormalReference::raw_region(const cv::Mat& coarse, const Banks& b, size_t h) const {
  torch::NoGradGuard no_grad;
  const int R = options_.region_side;
  return finish_map(nearest_distances(patches_of(region_features(coarse, R), kRegionPatch), b.region[h], b.region_norms[h]),
                    R, kRegionPatch);  // (R,R)
}

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
  const auto coarse = image_to_tensor(sized(image, options_.side));  // (3,S,S)
  auto d = nearest_distances(patches_of(coarse, options_.patch), b.patches[size_t(bank)], b.norms[size_t(bank)]);  // (g*g)
  if (b.fine_bank[size_t(bank)].defined()) d = torch::cat({d, texture_fine_distances(image, b, size_t(bank)).reshape({-1})});
  return d;
}

torch::Tensor NormalReference::changed_deviation(const cv::Mat& image, const std::string& category, int bank,
                                                 const std::array<torch::Tensor, 2>& base_distances,
                                                 const cv::Rect& changed) const {
  if (!updatable(category, image.rows) || image.rows != image.cols)
    throw Error("changed_deviation: category '" + category + "' at side " + std::to_string(image.rows) +
                    " cannot be updated incrementally", "check NormalReference::updatable first");
  torch::NoGradGuard no_grad;
  const Banks& b = banks_.at(category);
  const cv::Mat coarse = sized(image, options_.side);
  const int64_t k = options_.patch, S = coarse.rows, g = S - k + 1;
  const bool fine = b.fine_bank[0].defined();
  const int64_t f = fine ? fine_cells(image.rows, k) : 0;
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
    return patches_of(chw.narrow(1, stride * t[0], stride * (t[2] - t[0]) + k).narrow(2, stride * t[1], stride * (t[3] - t[1]) + k),
                      int(k), int(stride));
  };
  // The change at the model's side: a resized pixel spreads over the ones it overlaps (one more for the interpolation).
  cv::Rect coarse_change = changed;
  if (image.rows != S && !changed.empty()) {
    const double s = double(S) / image.rows;
    const int x0 = int(std::floor(changed.x * s)) - 1, y0 = int(std::floor(changed.y * s)) - 1;
    const int x1 = int(std::ceil((changed.x + changed.width) * s)) + 1, y1 = int(std::ceil((changed.y + changed.height) * s)) + 1;
    coarse_change = cv::Rect(x0, y0, x1 - x0, y1 - y0);
  }
  const auto tc = touched(coarse_change, S, 1);
  const torch::Tensor q = patches_in(image_to_tensor(coarse), tc, 1);  // the coarse patches the change touches
  // The fine comparison's high-pass reaches ceil(4 sigma) pixels (OpenCV's Gaussian kernel for
  // floats) beyond the change; its patches lie on a grid of step kFineStride.
  std::array<int64_t, 4> tf{0, 0, -1, -1};
  torch::Tensor qf;
  if (fine && !changed.empty()) {
    const int reach = int(std::ceil(4 * options_.fine_sigma)) + 1;
    tf = touched(cv::Rect(changed.x - reach, changed.y - reach, changed.width + 2 * reach, changed.height + 2 * reach), image.rows,
                 kFineStride);
    if (tf[2] >= tf[0] && tf[3] >= tf[1])
      qf = patches_in(gray_to_tensor(fine_image(image, false, options_.fine_sigma)), tf, kFineStride);
  }
  auto against = [&](size_t h) {  // (S,S)
    const auto& base = base_distances[h];
    if (!base.defined() || base.dim() != 1 || base.numel() != g * g + f * f)
      throw Error("changed_deviation: the normal image's patch distances against bank " + std::to_string(h) +
                      " are missing or not " + std::to_string(g * g + f * f) + " values",
                  "make them with patch_distances at the same side");
    auto best = base.narrow(0, 0, g * g).view({g, g}).clone();  // (g,g)
    if (q.defined())
      best.narrow(0, tc[0], tc[2] - tc[0] + 1).narrow(1, tc[1], tc[3] - tc[1] + 1)
          .copy_(nearest_distances(q, b.patches[h], b.norms[h]).view({tc[2] - tc[0] + 1, tc[3] - tc[1] + 1}));
    auto map = finish_map(best, S, k) / b.scale[h];
    if (fine) {
      auto best_fine = base.narrow(0, g * g, f * f).view({f, f}).clone();  // (f,f)
      if (qf.defined())
        best_fine.narrow(0, tf[0], tf[2] - tf[0] + 1).narrow(1, tf[1], tf[3] - tf[1] + 1)
            .copy_(nearest_distances(qf, b.fine_bank[h], b.fine_bank_norms[h]).view({tf[2] - tf[0] + 1, tf[3] - tf[1] + 1}));
      map = torch::maximum(map, texture_fine_map(best_fine, b, h, S));
    }
    return with_colour(map, coarse, b, h);
  };
  if (bank == kBothBanks) return (against(0) + against(1)) / 2;
  return against(bank == 1 ? 1 : 0);
}

torch::Tensor NormalReference::deviation(const cv::Mat& image, const std::string& category, int bank) const {
  auto it = banks_.find(category);
  if (it == banks_.end())
    throw Error("the normal reference has no category '" + category + "'",
                "the policy compares images with the normal images of the categories it was trained on");
  const Banks& b = it->second;
  const cv::Mat coarse = sized(image, options_.side);
  const cv::Mat fine = b.fine[0].defined() || b.fine_bank[0].defined() ? sized(image, options_.fine_side) : cv::Mat();
  auto against = [&](size_t h) {  // (S,S)
    auto map = raw_deviation(coarse, b, int(h)) / b.scale[h];
    if (b.fine[0].defined()) map = torch::maximum(map, raw_fine(fine, b, int(h), map.size(0)) / b.fine_scale[h]);
    if (b.fine_bank[0].defined())
      map = torch::maximum(map, texture_fine_map(texture_fine_distances(fine, b, h), b, h, map.size(0)));
    return with_colour(map, coarse, b, h);
  };
  if (bank == kBothBanks) return (against(0) + against(1)) / 2;
  return against(bank == 1 ? 1 : 0);
}

torch::Tensor NormalReference::with_deviation(const cv::Mat& image, const std::string& category, int bank) const {
  const auto map = deviation(image, category, bank).unsqueeze(0);  // (1,S,S)
  return torch::cat({image_to_tensor(sized(image, int(map.size(1)))), map}, 0);  // (4,S,S)
}

void NormalReference::to(const torch::Device& device) {
  auto move = [&](std::array<torch::Tensor, 2>& pair) {
    for (auto& t : pair)
      if (t.defined()) t = t.to(device);
  };
  for (auto& [name, b] : banks_) {
    move(b.patches);
    move(b.norms);
    move(b.region);
    move(b.region_norms);
    move(b.fine_bank);
    move(b.fine_bank_norms);
    move(b.normals);  // a part's comparison by place
    move(b.fine);
    move(b.thumbs);   // fine_spread stays: it weighs the map, which comes back to the host
  }
  device_ = device;
}

std::vector<std::string> NormalReference::categories() const {
  std::vector<std::string> out;
  for (const auto& [c, _] : banks_) out.push_back(c);
  return out;
}

bool NormalReference::fine(const std::string& category) const {
  auto it = banks_.find(category);
  return it != banks_.end() && (it->second.fine[0].defined() || it->second.fine_bank[0].defined());
}

bool NormalReference::polar(const std::string& category) const {
  auto it = banks_.find(category);
  return it != banks_.end() && it->second.polar;
}

bool NormalReference::colour(const std::string& category) const {
  auto it = banks_.find(category);
  return it != banks_.end() && !it->second.palette[0].empty();
}

bool NormalReference::region(const std::string& category) const {
  auto it = banks_.find(category);
  return it != banks_.end() && it->second.region[0].defined();
}

bool NormalReference::aligned(const std::string& category) const {
  auto it = banks_.find(category);
  return it != banks_.end() && it->second.aligned;
}

double NormalReference::scale(const std::string& category, int bank) const {
  return banks_.at(category).scale[size_t(bank == 1)];
}

void NormalReference::save(const std::string& path) const {
  io::StFile f;
  f.metadata = {{"format", "lriad-reference"}, {"patch", std::to_string(options_.patch)},
                {"bank_size", std::to_string(options_.bank_size)}, {"shift", std::to_string(options_.shift)},
                {"side", std::to_string(options_.side)}, {"fine_side", std::to_string(options_.fine_side)},
                {"fine_sigma", exact(options_.fine_sigma)}, {"fine_shift", std::to_string(options_.fine_shift)},
                {"neighbours", std::to_string(options_.neighbours)}, {"region_side", std::to_string(options_.region_side)}};
  for (const auto& [cat, b] : banks_) {
    const std::string kind = b.aligned ? "/normals" : "/bank";
    for (int h = 0; h < 2; ++h)
      f.tensors[cat + kind + std::to_string(h)] = to_st(b.aligned ? b.normals[size_t(h)] : b.patches[size_t(h)]);
    f.tensors[cat + "/scale"] = to_st(torch::tensor({float(b.scale[0]), float(b.scale[1])}));
    for (int h = 0; h < 2; ++h)
      if (!b.palette[size_t(h)].empty())
        f.tensors[cat + "/palette" + std::to_string(h)] = to_st(torch::tensor(b.palette[size_t(h)].distances()));
    if (b.region[0].defined()) {
      for (int h = 0; h < 2; ++h) f.tensors[cat + "/region" + std::to_string(h)] = to_st(b.region[size_t(h)]);
      f.tensors[cat + "/region_scale"] = to_st(torch::tensor({float(b.region_scale[0]), float(b.region_scale[1])}));
    }
    if (b.fine_bank[0].defined()) {
      for (int h = 0; h < 2; ++h) f.tensors[cat + "/fine_bank" + std::to_string(h)] = to_st(b.fine_bank[size_t(h)]);
      f.tensors[cat + "/fine_scale"] = to_st(torch::tensor({float(b.fine_scale[0]), float(b.fine_scale[1])}));
    }
    if (!b.fine[0].defined()) continue;
    for (int h = 0; h < 2; ++h) {
      f.tensors[cat + "/fine" + std::to_string(h)] = to_st(b.fine[size_t(h)]);
      f.tensors[cat + "/thumbs" + std::to_string(h)] = to_st(b.thumbs[size_t(h)]);
    }
    f.tensors[cat + "/fine_scale"] = to_st(torch::tensor({float(b.fine_scale[0]), float(b.fine_scale[1])}));
    for (int h = 0; h < 2; ++h)  // absent from a reference loaded from a file made before the spread
      if (b.fine_spread[size_t(h)].defined()) f.tensors[cat + "/fine_spread" + std::to_string(h)] = to_st(b.fine_spread[size_t(h)]);
    f.tensors[cat + "/polar"] = to_st(torch::tensor({b.polar ? 1.f : 0.f}));
  }
  io::write_safetensors(path, f);
}

NormalReference NormalReference::load(const std::string& path) {
  const io::StFile f = io::read_safetensors(path);
  auto meta = [&](const std::string& key) {
    auto it = f.metadata.find(key);
    if (it == f.metadata.end()) throw Error(path + " is not an lriad reference (no '" + key + "' in its metadata)");
    return it->second;
  };
  if (meta("format") != "lriad-reference") throw Error(path + " is not an lriad reference file");
  NormalReference ref;
  ref.options_.patch = std::stoi(meta("patch"));
  ref.options_.bank_size = std::stoi(meta("bank_size"));
  if (f.metadata.count("shift")) ref.options_.shift = std::stoi(f.metadata.at("shift"));  // absent before pose alignment
  // Absent before the fine comparison: maps at the side of the image given, no fine comparison.
  auto optional_int = [&](const char* key, int fallback) {
    auto it = f.metadata.find(key);
    return it == f.metadata.end() ? fallback : std::stoi(it->second);
  };
  ref.options_.side = optional_int("side", 0);
  ref.options_.fine_side = optional_int("fine_side", 0);
  ref.options_.fine_shift = optional_int("fine_shift", 3);
  ref.options_.neighbours = optional_int("neighbours", 8);
  ref.options_.region_side = optional_int("region_side", 0);  // absent before the region comparison: off
  if (f.metadata.count("fine_sigma")) ref.options_.fine_sigma = std::stod(f.metadata.at("fine_sigma"));
  if (ref.options_.side < 0 || ref.options_.fine_side < 0 || ref.options_.fine_shift < 0 || ref.options_.fine_shift > 64 ||
      ref.options_.neighbours < 0 || !(ref.options_.fine_sigma > 0) ||
      (ref.options_.region_side != 0 && (ref.options_.region_side < kRegionPatch || ref.options_.region_side > 4096)))
    throw Error(path + ": reference metadata out of range (side, fine_side, fine_shift, neighbours, fine_sigma or region_side)");
  if (ref.options_.patch < 1 || ref.options_.shift < 0 || ref.options_.shift > 64)
    throw Error(path + ": reference metadata out of range (patch " + meta("patch") + ", shift " +
                std::to_string(ref.options_.shift) + ")");
  const int64_t dim = 3 * int64_t(ref.options_.patch) * ref.options_.patch;
  // A category's pair of extra banks: "<cat>/<name>0", "/<name>1" (M, cols) with "<cat>/<scale>" (2).
  auto bank_pair = [&](const std::string& cat, const std::string& name, const std::string& scale, int64_t cols,
                       std::array<torch::Tensor, 2>& banks, std::array<torch::Tensor, 2>& norms, std::array<double, 2>& scales) {
    const auto st = f.tensors.find(cat + "/" + scale);
    for (size_t h = 0; h < 2; ++h) {
      const std::string key = cat + "/" + name + std::to_string(h);
      const auto it = f.tensors.find(key);
      if (it == f.tensors.end() || st == f.tensors.end())
        throw Error(path + ": category " + cat + " has " + name + "0 but no " + (it == f.tensors.end() ? key : cat + "/" + scale));
      const auto bank = from_st(it->second), s = from_st(st->second);
      if (bank.dim() != 2 || bank.size(0) < 1 || bank.size(1) != cols || s.numel() != 2)
        throw Error(path + ": " + key + " must hold (M," + std::to_string(cols) + ") patches, with a 2-value " + scale);
      banks[h] = bank;
      norms[h] = bank.pow(2).sum(1);
      scales[h] = s[int64_t(h)].item<double>();
    }
  };
  for (const auto& [name, t] : f.tensors) {
    const auto slash = name.rfind('/');
    if (slash == std::string::npos || name.substr(slash) != "/scale") continue;
    const std::string cat = name.substr(0, slash);
    Banks b;
    const auto scale = from_st(t);
    if (scale.numel() != 2) throw Error(path + ": " + name + " must hold 2 values");
    b.aligned = f.tensors.count(cat + "/normals0") > 0;
    for (int h = 0; h < 2 && b.aligned; ++h) {
      const std::string key = cat + "/normals" + std::to_string(h);
      auto it = f.tensors.find(key);
      if (it == f.tensors.end()) throw Error(path + ": category " + cat + " has normals0 but no " + key);
      auto& n = b.normals[size_t(h)];
      n = from_st(it->second);
      if (n.dim() != 4 || n.size(0) < 1 || n.size(1) != 3 || n.size(2) != n.size(3) || n.size(2) < ref.options_.patch)
        throw Error(path + ": " + key + " must hold (N,3,S,S) images at least " + meta("patch") + " pixels wide");
      b.scale[size_t(h)] = scale[h].item<double>();
    }
    for (int h = 0; h < 2 && b.aligned && f.tensors.count(cat + "/fine0"); ++h) {
      auto get = [&](const std::string& key) {
        auto it = f.tensors.find(key);
        if (it == f.tensors.end()) throw Error(path + ": category " + cat + " has fine0 but no " + key);
        return from_st(it->second);
      };
      const auto fine = get(cat + "/fine" + std::to_string(h)), thumbs = get(cat + "/thumbs" + std::to_string(h));
      const auto fs = get(cat + "/fine_scale");
      if (fine.dim() != 4 || fine.size(0) < 1 || fine.size(1) != 1 || fine.size(2) != fine.size(3) ||
          fine.size(2) < ref.options_.patch || (ref.options_.fine_side > 0 && fine.size(2) != ref.options_.fine_side) ||
          thumbs.dim() != 4 || thumbs.size(0) != fine.size(0) ||
          thumbs.size(1) != 3 || thumbs.size(2) != kThumb || thumbs.size(3) != kThumb || fs.numel() != 2)
        throw Error(path + ": " + cat + "/fine" + std::to_string(h) + " must hold (N,1,F,F) maps, F = fine_side " +
                    std::to_string(ref.options_.fine_side) + ", with (N,3,16,16) thumbs and a 2-value fine_scale");
      b.fine[size_t(h)] = fine;
      b.thumbs[size_t(h)] = thumbs;
      b.fine_scale[size_t(h)] = fs[h].item<double>();
      // Absent before the spread and the round parts' fit: plain distances, high-passed luminance.
      const std::string spread = cat + "/fine_spread" + std::to_string(h);
      if (f.tensors.count(spread)) {
        b.fine_spread[size_t(h)] = get(spread);
        const auto& t = b.fine_spread[size_t(h)];
        if (t.dim() != 2 || t.size(0) != fine.size(2) || t.size(1) != fine.size(3) || !(t.min().item<double>() > 0))
          throw Error(path + ": " + spread + " must hold an (F,F) map of positive weights, F = " +
                      std::to_string(fine.size(2)));
      }
      if (f.tensors.count(cat + "/polar")) {
        const auto polar = get(cat + "/polar");
        if (polar.numel() != 1) throw Error(path + ": " + cat + "/polar must hold 1 value");
        b.polar = polar.item<double>() > 0.5;
      }
    }
    for (int h = 0; h < 2; ++h) {  // absent before the colour palette, or without it
      auto it = f.tensors.find(cat + "/palette" + std::to_string(h));
      if (it == f.tensors.end()) continue;
      const auto t = from_st(it->second).contiguous();
      try {
        b.palette[size_t(h)] = ColourPalette::from_distances(std::vector<float>(t.data_ptr<float>(), t.data_ptr<float>() + t.numel()));
      } catch (const Error& e) {
        rethrow_with_context(path + ": " + it->first, e);
      }
    }
    if (!b.aligned && ref.options_.region_side > 0 && f.tensors.count(cat + "/region0"))
      bank_pair(cat, "region", "region_scale", 3 * kRegionPatch * kRegionPatch, b.region, b.region_norms, b.region_scale);
    // Absent before the fine comparison of textures, or without it.
    if (!b.aligned && f.tensors.count(cat + "/fine_bank0")) {
      if (ref.options_.side <= 0 || ref.options_.fine_side <= ref.options_.side)
        throw Error(path + ": category " + cat + " has a fine comparison of textures, but the metadata no fine_side above side");
      bank_pair(cat, "fine_bank", "fine_scale", int64_t(ref.options_.patch) * ref.options_.patch, b.fine_bank, b.fine_bank_norms,
                b.fine_scale);
      ref.options_.fine_textures = true;
    }
    for (int h = 0; h < 2 && !b.aligned; ++h) {
      auto it = f.tensors.find(cat + "/bank" + std::to_string(h));
      if (it == f.tensors.end()) throw Error(path + ": category " + cat + " has no bank" + std::to_string(h));
      b.patches[size_t(h)] = from_st(it->second);
      if (b.patches[size_t(h)].dim() != 2 || b.patches[size_t(h)].size(1) != dim)
        throw Error(path + ": " + cat + "/bank" + std::to_string(h) + " does not hold patches of side " + meta("patch"));
      b.norms[size_t(h)] = b.patches[size_t(h)].pow(2).sum(1);
      b.scale[size_t(h)] = scale[h].item<double>();
    }
    ref.banks_[cat] = std::move(b);
  }
  if (ref.banks_.empty()) throw Error(path + " holds no categories");
  return ref;
}

}  // namespace lriad::data
