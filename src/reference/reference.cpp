// Normal-reference deviation maps (see reference.h).
#include "lriad/reference/reference.h"

#include <ATen/CPUGeneratorImpl.h>
#include <torch/torch.h>

#include <algorithm>
#include <cmath>
#include <limits>

#include <opencv2/imgproc.hpp>

#include "lriad/data/image_io.h"
#include "lriad/data/image_tensor.h"
#include "lriad/reference/patch_distance.h"
#include "internal.h"
#include "lriad/io/error.h"
#include "lriad/reference/pose.h"
#include "lriad/reference/scene.h"

namespace lriad::reference {

using data::image_to_tensor;
using data::resize_square;

namespace detail {

constexpr int kPolarHarmonics = 2;  // angle terms of a round part's ring-by-ring fit (polar_residual)

// Every K x K patch at `stride`: (C,S,S) -> (g^2, CK^2), g = (S-K)/stride + 1.
torch::Tensor patches_of(const torch::Tensor& chw, int k, int stride) {
  namespace F = torch::nn::functional;
  return F::unfold(chw.unsqueeze(0), F::UnfoldFuncOptions({k, k}).stride(stride))[0].t().contiguous();
}

// The fine comparison of textures' patches per side at fine side F: ((F-K)/2 + 1).
int64_t fine_cells(int64_t F, int64_t k) { return (F - k) / kFineStride + 1; }

// Smoothed (S,S) map from per-patch distances (g,g), g = S-K+1, edges repeated.
torch::Tensor finish_map(torch::Tensor best, int64_t S, int64_t k) {
  const int64_t g = S - k + 1;
  auto map = best.reshape({1, 1, g, g});
  map = torch::avg_pool2d(map, 3, 1, 1, false, false);  // a little smoothing: one noisy patch is not a defect
  const int64_t lo = (k - 1) / 2, hi = k - 1 - lo;      // back to S x S, edges repeated
  map =
      torch::nn::functional::pad(map, torch::nn::functional::PadFuncOptions({lo, hi, lo, hi}).mode(torch::kReplicate));
  return map.view({S, S});
}

// The comparison by place of `chw` (C,S,S) with `normals` (N,C,S,S), +-shift pixels: (S,S).
torch::Tensor by_place(const torch::Tensor& chw, const torch::Tensor& normals, int64_t k, int64_t shift) {
  return finish_map(positional_distance(chw, normals, k, shift), chw.size(1), k);
}

// What the fine comparison compares, from an image in its canonical pose: (H,W) CV_32FC1.
// Round parts: the luminance (the channels' mean) minus its ring-by-ring fit (reference::polar_residual),
// so each part's own turning marks and lighting drop out and scratches and stains stay. Other parts:
// the luminance minus its Gaussian blur (sigma px), which keeps lines and edges a few pixels wide and
// drops lighting gradients and broad stains.
cv::Mat fine_image(const cv::Mat& canonical_rgb, bool polar, double sigma) {
  cv::Mat grey, blurred;
  cv::transform(canonical_rgb, grey, cv::Matx13f(1.f / 3, 1.f / 3, 1.f / 3));
  if (polar) return polar_residual(grey, kPolarHarmonics);
  cv::GaussianBlur(grey, blurred, cv::Size(0, 0), sigma, sigma, cv::BORDER_REPLICATE);
  return grey - blurred;
}

Lighting lighting_of(const cv::Mat& rgb) {
  cv::Mat grey;
  cv::transform(rgb, grey, cv::Matx13f(1.f / 3, 1.f / 3, 1.f / 3));
  cv::Scalar mean, sd;
  cv::meanStdDev(grey, mean, sd);
  Lighting l;
  l.gain = kPhotometricSpread / std::max(1e-3, sd[0]);
  l.offset = kPhotometricMean - l.gain * mean[0];
  return l;
}

cv::Mat relit(const cv::Mat& rgb, const Lighting& light) {
  cv::Mat out;
  rgb.convertTo(out, rgb.type(), light.gain, light.offset);
  return out;
}

cv::Mat photometric(const cv::Mat& rgb) { return relit(rgb, lighting_of(rgb)); }

cv::Mat part_field(const cv::Mat& canonical_rgb, const cv::Mat& reference) {
  if (canonical_rgb.type() != CV_32FC3 || reference.type() != CV_32FC1 || canonical_rgb.size() != reference.size())
    throw Error("part_field: expected a CV_32FC3 image and a CV_32FC1 reference of one size");
  const int H = canonical_rgb.rows, W = canonical_rgb.cols;
  cv::Mat grey;
  cv::transform(canonical_rgb, grey, cv::Matx13f(1.f / 3, 1.f / 3, 1.f / 3));
  constexpr int kTerms = 6;  // 1, u, v, u^2, uv, v^2 with u, v in [-1, 1] across the frame
  auto terms = [&](int y, int x, double* phi) {
    const double u = (x + 0.5) / W * 2 - 1, v = (y + 0.5) / H * 2 - 1;
    phi[0] = 1, phi[1] = u, phi[2] = v, phi[3] = u * u, phi[4] = u * v, phi[5] = v * v;
  };
  std::vector<uint8_t> keep(size_t(H) * W, 1);
  cv::Matx<double, kTerms, 1> c = cv::Matx<double, kTerms, 1>::zeros();
  auto field_at = [&](int y, int x) {  // the fitted field at a pixel
    double phi[kTerms], f = 0;
    terms(y, x, phi);
    for (int i = 0; i < kTerms; ++i) f += c(i) * phi[i];
    return f;
  };
  std::vector<double> residual(size_t(H) * W);
  for (int pass = 0; pass < 2; ++pass) {
    // Least squares of grey = field * reference over the kept pixels: rows a = reference * terms.
    cv::Matx<double, kTerms, kTerms> ata = cv::Matx<double, kTerms, kTerms>::zeros();
    cv::Matx<double, kTerms, 1> atb = cv::Matx<double, kTerms, 1>::zeros();
    double phi[kTerms];
    for (int y = 0; y < H; ++y)
      for (int x = 0; x < W; ++x) {
        if (!keep[size_t(y) * W + x]) continue;
        terms(y, x, phi);
        const double r = reference.at<float>(y, x), g = grey.at<float>(y, x);
        for (int i = 0; i < kTerms; ++i) {
          atb(i) += r * phi[i] * g;
          for (int j = 0; j < kTerms; ++j) ata(i, j) += r * r * phi[i] * phi[j];
        }
      }
    cv::solve(ata, atb, c, cv::DECOMP_SVD);  // least norm where the reference cannot carry a fit
    if (pass == 1) break;
    // Drop the pixels furthest off (beyond 3 robust standard deviations of the residual) and fit again.
    for (int y = 0; y < H; ++y)
      for (int x = 0; x < W; ++x)
        residual[size_t(y) * W + x] = std::abs(grey.at<float>(y, x) - field_at(y, x) * reference.at<float>(y, x));
    std::vector<double> sorted = residual;
    const auto mid = sorted.begin() + std::ptrdiff_t(sorted.size() / 2);
    std::nth_element(sorted.begin(), mid, sorted.end());
    const double cut = std::max(1e-4, 3 * 1.4826 * *mid);
    for (size_t i = 0; i < residual.size(); ++i) keep[i] = residual[i] <= cut;
  }
  cv::Mat field(H, W, CV_32FC1);
  for (int y = 0; y < H; ++y)
    for (int x = 0; x < W; ++x) {
      const double f = field_at(y, x);
      // No fit to be had (an all-black reference), or a field near 0 somewhere: no relighting.
      if (!std::isfinite(f) || f < 0.05) return cv::Mat();
      field.at<float>(y, x) = float(f);
    }
  return field;
}

namespace {
cv::Mat divided(const cv::Mat& rgb, const cv::Mat& field) {  // CV_32FC3 / CV_32FC1, every channel
  cv::Mat f3;
  cv::merge(std::vector<cv::Mat>{field, field, field}, f3);
  cv::Mat out;
  cv::divide(rgb, f3, out);
  return out;
}
}  // namespace

cv::Mat relit_part(const cv::Mat& image, const cv::Mat& reference, double aspect) {
  const Pose pose = estimate_pose(image, aspect);
  const cv::Mat field = part_field(to_canonical(image, pose), reference);
  return field.empty() ? image : divided(image, from_canonical(field, pose));
}

cv::Mat part_relit(const cv::Mat& canonical_rgb, const cv::Mat& reference) {
  const cv::Mat field = part_field(canonical_rgb, reference);
  return field.empty() ? canonical_rgb.clone() : divided(canonical_rgb, field);
}

cv::Mat mean_luminance(const torch::Tensor& normals) {
  const auto t = normals.to(torch::kCPU, torch::kFloat32).contiguous();  // (N,3,S,S)
  if (t.dim() != 4 || t.size(1) != 3 || t.size(0) < 1) throw Error("mean_luminance: expected normals (N,3,S,S)");
  const int64_t n = t.size(0), hw = t.size(2) * t.size(3);
  std::vector<double> sum(size_t(hw), 0.0);
  const float* p = t.data_ptr<float>();
  for (int64_t i = 0; i < n * 3; ++i)
    for (int64_t j = 0; j < hw; ++j) sum[size_t(j)] += p[i * hw + j];
  cv::Mat out(int(t.size(2)), int(t.size(3)), CV_32FC1);
  for (int64_t j = 0; j < hw; ++j) out.at<float>(int(j)) = float(sum[size_t(j)] / double(n * 3));
  return out;
}

cv::Mat part_presence(const torch::Tensor& normals) {
  if (normals.dim() != 4 || normals.size(1) != 3 || normals.size(0) < 1)
    throw Error("part_presence: expected normals (N,3,S,S)");
  const auto t = normals.to(torch::kCPU, torch::kFloat32).permute({0, 2, 3, 1}).contiguous();  // (N,S,S,3)
  const int n = int(t.size(0)), H = int(t.size(1)), W = int(t.size(2));
  cv::Mat sum = cv::Mat::zeros(H, W, CV_32FC1), mask;
  for (int i = 0; i < n; ++i) {
    const cv::Mat rgb(H, W, CV_32FC3, t[i].data_ptr<float>());
    part_mask(rgb).convertTo(mask, CV_32F, 1.0 / 255);
    sum += mask;
  }
  return sum / double(n);
}

double lighting_change(const Lighting& a, const Lighting& b) {
  const double mean = (kPhotometricMean - b.offset) / b.gain, sd = kPhotometricSpread / b.gain;  // b's image's
  auto moved = [&](double x) { return std::abs((a.gain - b.gain) * x + (a.offset - b.offset)); };
  return std::max(moved(mean - 2 * sd), moved(mean + 2 * sd));
}

torch::Tensor grey_to_tensor(const cv::Mat& m) {  // CV_32FC1 (H,W) -> (1,H,W), copied
  const cv::Mat c = m.isContinuous() ? m : m.clone();
  return torch::from_blob(c.data, {1, c.rows, c.cols}, torch::kFloat32).clone();
}

double median_of(std::vector<double> v) {  // v non-empty; the mean of the middle two for an even count
  std::sort(v.begin(), v.end());
  const size_t n = v.size();
  return n % 2 ? v[n / 2] : 0.5 * (v[n / 2 - 1] + v[n / 2]);
}

double quantile_of(std::vector<double> v, double q) {
  if (q == 0.5) return median_of(std::move(v));  // bit for bit what every run before the key used
  std::sort(v.begin(), v.end());
  const double at = q * double(v.size() - 1);
  const size_t lo = size_t(std::floor(at)), hi = std::min(v.size() - 1, lo + 1);
  return v[lo] + (at - double(lo)) * (v[hi] - v[lo]);
}

}  // namespace detail

using namespace detail;

namespace {

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
  const auto rgb = image_to_tensor(resize_square(image, side));                            // (3,R,R)
  const auto sum = rgb.sum(0, true);                                                       // (1,R,R)
  return torch::cat({rgb.narrow(0, 0, 2) / (sum + 0.05), 0.1 * sum / 3}, 0).contiguous();  // (3,R,R)
}

// The bank of `patches` (P,D): a random pool of 5x `size` first (the greedy pass is O(pool x
// bank)), then its coreset of `size` rows. -> (M,D)
torch::Tensor bank_of(torch::Tensor patches, int64_t size, uint64_t seed) {
  auto gen = at::detail::createCPUGenerator(seed);
  const int64_t pool = 5 * size;
  if (patches.size(0) > pool)
    patches = patches.index_select(0, torch::randperm(patches.size(0), gen).narrow(0, 0, pool));
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

torch::Tensor thumbnail(const cv::Mat& canonical) {  // -> (3,16,16)
  cv::Mat t;
  cv::resize(canonical, t, cv::Size(NormalReference::kThumb, NormalReference::kThumb), 0, 0, cv::INTER_AREA);
  return image_to_tensor(t);
}

cv::Mat tensor_to_mat(const torch::Tensor& map) {  // (H,W) float -> CV_32FC1 (copy)
  const auto c = map.contiguous();
  return cv::Mat(int(c.size(0)), int(c.size(1)), CV_32FC1, const_cast<float*>(c.data_ptr<float>())).clone();
}

}  // namespace

NormalReference NormalReference::build(const std::map<std::string, std::array<std::vector<cv::Mat>, 2>>& halves,
                                       const Options& options, const std::map<std::string, double>& aspects) {
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
    const auto given_aspect = aspects.find(cat);
    // Kept as the file keeps it (a float), so that a loaded reference poses images as this one does.
    const double aspect = given_aspect == aspects.end() ? 1.0 : double(float(given_aspect->second));
    if (!(aspect > 0) || !std::isfinite(aspect))
      throw Error("reference: category " + cat + " has an aspect of " + std::to_string(aspect),
                  "pass the photographs' width / height, or 1 for square ones");
    std::array<std::vector<Pose>, 2> poses;  // of each half's images, found once
    std::vector<Pose> every;
    for (int h = 0; h < 2 && options.align; ++h)
      for (const auto& img : half[h]) {
        poses[h].push_back(estimate_pose(img, aspect));
        every.push_back(poses[h].back());
      }
    b.aligned = options.align && is_part_category_from(every);
    if (b.aligned) b.aspect = aspect;
    // A fixed scene keeps its normal images as its patches see them, for the comparison by place
    // (at the model's side, where every image is brought to one square size).
    auto fixed_scene = [&] {
      std::vector<cv::Mat> all = half[0];
      all.insert(all.end(), half[1].begin(), half[1].end());
      return is_fixed_scene(all);
    };
    if (!b.aligned && options.fixed_scenes && options.side > 0 && fixed_scene()) {
      for (int h = 0; h < 2; ++h) {
        std::vector<torch::Tensor> t;
        for (const auto& img : half[h]) t.push_back(image_to_tensor(ref.lit(img)));
        b.scene[size_t(h)] = torch::stack(t).contiguous();  // (N,3,S,S)
      }
    }
    // What each bank keeps of its half: the images as given or, for a part with part_lighting, each
    // relit to its half's mean canonical lighting; an image compared later is relit to the mean of
    // these (b.light, made again from the file's normals when the reference is loaded).
    std::array<std::vector<cv::Mat>, 2> banked = half;
    const bool relight = b.aligned && options.part_lighting;
    for (int h = 0; h < 2 && b.aligned; ++h) {
      std::vector<torch::Tensor> t;
      for (size_t i = 0; i < half[h].size(); ++i) t.push_back(image_to_tensor(to_canonical(half[h][i], poses[h][i])));
      b.normals[h] = torch::stack(t).contiguous();  // (N,3,S,S)
      if (!relight) continue;
      const cv::Mat mean = mean_luminance(b.normals[h]);
      for (size_t i = 0; i < half[h].size(); ++i) {
        banked[h][i] = relit_part(half[h][i], mean, b.aspect);
        t[i] = image_to_tensor(
            to_canonical(banked[h][i], estimate_pose(banked[h][i], b.aspect)));  // as raw_deviation poses it
      }
      b.normals[h] = torch::stack(t).contiguous();
      b.light[h] = mean_luminance(b.normals[h]);
    }
    for (size_t h = 0; h < 2 && b.aligned; ++h) b.presence[h] = part_presence(b.normals[h]);
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
        fine_poses[h].push_back(estimate_pose(f, b.aspect));
        fine_canon[h].push_back(to_canonical(f, fine_poses[h].back()));
        const cv::Mat& canon = fine_canon[h].back();
        fine.push_back(grey_to_tensor(fine_image(canon, b.polar, options.fine_sigma)));
        thumbs.push_back(thumbnail(canon));
      }
      b.fine[h] = torch::stack(fine).contiguous();      // (N,1,F,F)
      b.thumbs[h] = torch::stack(thumbs).contiguous();  // (N,3,16,16)
    }
    for (int h = 0; h < 2 && options.colour; ++h) b.palette[size_t(h)] = ColourPalette::build(banked[h]);
    for (int h = 0; h < 2 && options.region_side > 0; ++h) {
      std::vector<torch::Tensor> all;
      for (const auto& img : banked[h])
        all.push_back(patches_of(region_features(img, options.region_side), kRegionPatch));
      auto p =
          bank_of(torch::cat(all, 0), options.bank_size, options.seed * 1000003 + 500009 + uint64_t(h));  // (M, 3*3^2)
      b.region_norms[size_t(h)] = p.pow(2).sum(1);
      b.region[size_t(h)] = std::move(p);
    }
    // A texture's fine comparison, likewise from images at fine_side at least.
    bool fine_texture = !b.aligned && options.fine_textures && options.side > 0 && options.fine_side > options.side;
    for (int h = 0; h < 2 && fine_texture; ++h)
      for (const auto& img : given[h])
        fine_texture = fine_texture && img.rows >= options.fine_side && img.cols >= options.fine_side;
    std::array<std::vector<cv::Mat>, 2> fine_half;  // a fine texture's images at fine_side
    for (int h = 0; h < 2 && fine_texture; ++h) {
      std::vector<torch::Tensor> all;
      for (const auto& img : given[h]) {
        fine_half[h].push_back(ref.sized(img, options.fine_side));
        all.push_back(patches_of(grey_to_tensor(fine_image(ref.lit(fine_half[h].back()), false, options.fine_sigma)),
                                 options.patch));
      }
      auto p =
          bank_of(torch::cat(all, 0), options.bank_size, options.seed * 1000003 + 700001 + uint64_t(h));  // (M, K^2)
      b.fine_bank_norms[size_t(h)] = p.pow(2).sum(1);
      b.fine_bank[size_t(h)] = std::move(p);
    }
    for (int h = 0; h < 2 && !b.aligned; ++h) {
      std::vector<torch::Tensor> all;
      for (const auto& img : half[h]) {
        const cv::Mat l = ref.lit(img);
        all.push_back(patches_of(image_to_tensor(l), options.patch));
        for (int r = 1; r <= options.rotations; ++r)
          all.push_back(patches_of(image_to_tensor(rotated(l, 360.0 * r / (options.rotations + 1))), options.patch));
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
      std::vector<double> peaks, fine_peaks, region_peaks, scene_peaks;
      std::vector<torch::Tensor> fine_maps;  // (F,F) each, canonical frame
      for (const auto& img : half[1 - h]) {
        const cv::Mat lit = ref.lit_part(img, b, size_t(h));  // relit as deviation() relights an image
        peaks.push_back(ref.raw_deviation(lit, b, h).max().item<double>());
        if (b.region[size_t(h)].defined())
          region_peaks.push_back(ref.raw_region(lit, b, size_t(h)).max().item<double>());
        if (b.scene[size_t(h)].defined())
          scene_peaks.push_back(ref.raw_scene(ref.lit(img), b, size_t(h)).max().item<double>());
      }
      for (const auto& canon : fine_canon[1 - h]) fine_maps.push_back(ref.fine_canonical(canon, b, h));
      if (!fine_maps.empty()) b.fine_spread[size_t(h)] = spread_of(torch::stack(fine_maps));
      for (size_t i = 0; i < fine_maps.size(); ++i)
        fine_peaks.push_back(
            in_image_frame(fine_maps[i] / b.fine_spread[size_t(h)], fine_poses[1 - h][i], half[1 - h][i].rows)
                .max()
                .item<double>());
      b.scale[h] = std::max(1e-6, quantile_of(peaks, options.scale_quantile));
      if (!region_peaks.empty())
        b.region_scale[size_t(h)] = std::max(1e-6, quantile_of(region_peaks, options.scale_quantile));
      if (!scene_peaks.empty())
        b.scene_scale[size_t(h)] = std::max(1e-6, quantile_of(scene_peaks, options.scale_quantile));
      // A fine texture's scale: its map's median peak at fine_side, before it is averaged down.
      for (const auto& img : fine_half[1 - h])
        fine_peaks.push_back(
            ref.texture_fine_map(ref.texture_fine_distances(img, b, size_t(h)), b, size_t(h), 0).max().item<double>());
      if (!fine_peaks.empty()) b.fine_scale[h] = std::max(1e-6, quantile_of(fine_peaks, options.scale_quantile));
    }
    ref.banks_[cat] = std::move(b);
  }
  return ref;
}

cv::Mat NormalReference::lit(const cv::Mat& image, const detail::Lighting* given) const {
  if (!options_.photometric) return image;
  return given ? relit(image, *given) : photometric(image);
}

cv::Mat NormalReference::sized(const cv::Mat& image, int side) const {
  return side <= 0 || (image.rows == side && image.cols == side) ? image : resize_square(image, side);
}

torch::Tensor NormalReference::fine_canonical(const cv::Mat& canon, const Banks& b, int bank) const {
  torch::NoGradGuard no_grad;
  const auto q = grey_to_tensor(fine_image(canon, b.polar, options_.fine_sigma));  // (1,F,F)
  auto normals = b.fine[size_t(bank)];                                             // (N,1,F,F)
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
  if (back.rows != out)
    cv::resize(back, back, cv::Size(int(out), int(out)), 0, 0, back.rows > out ? cv::INTER_AREA : cv::INTER_LINEAR);
  return grey_to_tensor(back)[0];  // (out,out)
}

torch::Tensor NormalReference::raw_fine(const cv::Mat& image, const Banks& b, int bank, int64_t out) const {
  const Pose pose = estimate_pose(image, b.aspect);
  auto map = fine_canonical(to_canonical(image, pose), b, bank);  // (F,F)
  if (b.fine_spread[size_t(bank)].defined()) map = map / b.fine_spread[size_t(bank)];
  return in_image_frame(map, pose, out);
}

torch::Tensor NormalReference::texture_fine_distances(const cv::Mat& image, const Banks& b, size_t h) const {
  torch::NoGradGuard no_grad;
  const int64_t k = options_.patch;
  const auto q = grey_to_tensor(fine_image(lit(image), false, options_.fine_sigma));  // (1,F,F)
  const int64_t f = fine_cells(q.size(1), k);
  return nearest_distances(patches_of(q, int(k), kFineStride), b.fine_bank[h], b.fine_bank_norms[h]).view({f, f});
}

torch::Tensor NormalReference::texture_fine_map(const torch::Tensor& distances, const Banks& b, size_t h,
                                                int64_t out) const {
  namespace Fn = torch::nn::functional;
  const int64_t k = options_.patch, F = options_.fine_side, f = distances.size(0);
  // 3x3 smoothing on the patch grid, each patch's value over the two pixels its step covers, edges
  // repeated: the patch at (2i, 2j) covers pixels 2i .. 2i+K-1, its centre 2i + (K-1)/2.
  auto map = torch::avg_pool2d(distances.reshape({1, 1, f, f}), 3, 1, 1, false, false);
  map = map.repeat_interleave(kFineStride, 2).repeat_interleave(kFineStride, 3);  // (1,1,2f,2f)
  const int64_t lo = (k - 1) / 2, hi = std::max<int64_t>(0, F - kFineStride * f - lo);
  map = Fn::pad(map, Fn::PadFuncOptions({lo, hi, lo, hi}).mode(torch::kReplicate)).narrow(2, 0, F).narrow(3, 0, F);
  cv::Mat m = tensor_to_mat(map.reshape({F, F}) / b.fine_scale[h]);  // (F,F)
  if (out > 0 && m.rows != out)
    cv::resize(m, m, cv::Size(int(out), int(out)), 0, 0, m.rows > out ? cv::INTER_AREA : cv::INTER_LINEAR);
  return grey_to_tensor(m)[0];  // (out,out); out 0: (F,F)
}

torch::Tensor NormalReference::raw_deviation(const cv::Mat& image, const Banks& b, int bank) const {
  torch::NoGradGuard no_grad;
  const int64_t k = options_.patch;
  if (b.aligned) {
    const Pose pose = estimate_pose(image, b.aspect);
    const auto chw = image_to_tensor(to_canonical(image, pose));  // (3,S,S)
    const auto map = by_place(chw, b.normals[size_t(bank)], k, options_.shift);
    cv::Mat back = from_canonical(tensor_to_mat(map), pose);  // CV_32FC1 (S,S), a fresh continuous matrix
    return grey_to_tensor(back)[0];                           // (S,S)
  }
  const auto chw = image_to_tensor(lit(image));  // (3,S,S)
  return finish_map(nearest_distances(patches_of(chw, int(k)), b.patches[size_t(bank)], b.norms[size_t(bank)]),
                    chw.size(1), k);
}

torch::Tensor NormalReference::raw_scene(const cv::Mat& lit, const Banks& b, size_t h) const {
  torch::NoGradGuard no_grad;
  return by_place(image_to_tensor(lit), b.scene[h], options_.patch, options_.shift);  // (3,S,S) -> (S,S)
}

cv::Mat NormalReference::lit_part(const cv::Mat& image, const Banks& b, size_t h) const {
  const cv::Mat& light = b.light[h];
  if (light.empty()) return image;
  if (image.size() != light.size())
    throw Error("reference: a part's image at " + std::to_string(image.cols) + "x" + std::to_string(image.rows) +
                " px, its lighting at " + std::to_string(light.cols) + " px");
  return relit_part(image, light, b.aspect);
}

void NormalReference::colour_parts(Parts& parts, const cv::Mat& coarse, const Banks& b, size_t h) const {
  if (!b.palette[h].empty()) parts[size_t(MapPart::Colour)] = grey_to_tensor(b.palette[h].novelty(coarse))[0];
  if (b.region[h].defined()) {
    namespace F = torch::nn::functional;
    const int64_t S = coarse.rows;
    const auto region =
        (raw_region(coarse, b, h) / b.region_scale[h]).view({1, 1, options_.region_side, options_.region_side});
    const auto up = F::interpolate(
        region,
        F::InterpolateFuncOptions().size(std::vector<int64_t>{S, S}).mode(torch::kBilinear).align_corners(false));
    parts[size_t(MapPart::Region)] = up[0][0];  // (S,S)
  }
}

torch::Tensor NormalReference::joined(const std::vector<Parts>& banks, MapPart* at_peak) {
  auto one = [](const Parts& p) {  // the per-pixel maximum, in the parts' order
    torch::Tensor map;
    for (const auto& t : p)
      if (t.defined()) map = map.defined() ? torch::maximum(map, t) : t;
    return map;
  };
  torch::Tensor map = one(banks[0]);
  if (banks.size() == 2) map = (map + one(banks[1])) / 2;
  if (at_peak) {
    const int64_t at = map.argmax().item<int64_t>();
    double best = -1;
    for (int k = 0; k < kMapParts; ++k) {
      double v = 0;
      bool any = false;
      for (const auto& p : banks)
        if (p[size_t(k)].defined()) {
          v += p[size_t(k)].reshape({-1})[at].item<double>();
          any = true;
        }
      v /= double(banks.size());
      if (any && v > best) {
        best = v;
        *at_peak = MapPart(k);
      }
    }
  }
  return map;
}

torch::Tensor NormalReference::raw_region(const cv::Mat& coarse, const Banks& b, size_t h) const {
  torch::NoGradGuard no_grad;
  const int R = options_.region_side;
  return finish_map(
      nearest_distances(patches_of(region_features(coarse, R), kRegionPatch), b.region[h], b.region_norms[h]), R,
      kRegionPatch);  // (R,R)
}

torch::Tensor NormalReference::deviation(const cv::Mat& image, const std::string& category, int bank,
                                         MapPart* at_peak) const {
  const Banks& b = banks_of(category);
  const cv::Mat coarse = sized(image, options_.side);
  const cv::Mat fine = b.fine[0].defined() || b.fine_bank[0].defined() ? sized(image, options_.fine_side) : cv::Mat();
  const cv::Mat scene_lit = b.scene[0].defined() ? lit(coarse) : cv::Mat();  // a fixed scene's, for both banks
  auto against = [&](size_t h) {                                             // the parts, each (S,S)
    Parts p;
    auto& patches = p[size_t(MapPart::Patches)];
    auto& lines = p[size_t(MapPart::Fine)];
    const cv::Mat lit_image = lit_part(coarse, b, h);  // a part relit to the bank's lighting (part_lighting)
    patches = raw_deviation(lit_image, b, int(h)) / b.scale[h];
    if (b.scene[h].defined()) patches = torch::maximum(patches, raw_scene(scene_lit, b, h) / b.scene_scale[h]);
    if (b.fine[0].defined()) lines = raw_fine(fine, b, int(h), patches.size(0)) / b.fine_scale[h];
    if (b.fine_bank[0].defined()) {
      const auto t = texture_fine_map(texture_fine_distances(fine, b, h), b, h, patches.size(0));
      lines = lines.defined() ? torch::maximum(lines, t) : t;
    }
    colour_parts(p, lit_image, b, h);
    return p;
  };
  if (bank == kBothBanks) return joined({against(0), against(1)}, at_peak);
  return joined({against(bank == 1 ? 1 : 0)}, at_peak);
}

const NormalReference::Banks& NormalReference::banks_of(const std::string& category) const {
  auto it = banks_.find(category);
  if (it == banks_.end())
    throw Error("the normal reference has no category '" + category + "'",
                "the policy compares images with the normal images of the categories it was trained on");
  return it->second;
}

cv::Mat NormalReference::colour_novelty(const cv::Mat& image, const std::string& category, int bank) const {
  const Banks& b = banks_of(category);
  if (b.palette[0].empty()) return cv::Mat();
  const cv::Mat coarse = sized(image, options_.side);
  // As deviation's colour part: the palette's novelty of the image relit to the bank's lighting.
  const auto against = [&](size_t h) { return b.palette[h].novelty(lit_part(coarse, b, h)); };  // (S,S)
  if (bank == kBothBanks) return cv::Mat((against(0) + against(1)) * 0.5);
  return against(bank == 1 ? 1 : 0);
}

cv::Mat NormalReference::absent(const cv::Mat& image, const std::string& category, int bank) const {
  const Banks& b = banks_of(category);
  if (!b.aligned || b.presence[0].empty()) return cv::Mat();
  const cv::Mat coarse = sized(image, options_.side);
  const cv::Mat share = bank == kBothBanks ? cv::Mat((b.presence[0] + b.presence[1]) * 0.5)
                                           : b.presence[bank == 1 ? 1 : 0];  // (S,S) canonical
  if (share.size() != coarse.size())
    throw Error("absent: the image of category '" + category + "' is " + std::to_string(coarse.cols) +
                    " px, its normals " + std::to_string(share.cols) + " px",
                "give images at the reference's side");
  const cv::Mat present = from_canonical(share, estimate_pose(coarse, b.aspect)) >= kPresent;  // CV_8UC1
  // Minus slivers a pixel wide along the outline, where a pose a little off puts the normals' edge.
  cv::Mat absent = present & ~part_mask(coarse) & background_mask(coarse);
  cv::morphologyEx(absent, absent, cv::MORPH_OPEN, cv::getStructuringElement(cv::MORPH_ELLIPSE, {3, 3}));
  return absent;
}

torch::Tensor NormalReference::with_deviation(const cv::Mat& image, const std::string& category, int bank,
                                              MapPart* at_peak) const {
  const auto map = deviation(image, category, bank, at_peak).unsqueeze(0);       // (1,S,S)
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
    move(b.scene);    // a fixed scene's
    move(b.fine);
    move(b.thumbs);  // fine_spread stays: it weighs the map, which comes back to the host
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

bool NormalReference::scene(const std::string& category) const {
  auto it = banks_.find(category);
  return it != banks_.end() && it->second.scene[0].defined();
}

double NormalReference::aspect(const std::string& category) const {
  auto it = banks_.find(category);
  return it == banks_.end() ? 1.0 : it->second.aspect;
}

bool NormalReference::aligned(const std::string& category) const {
  auto it = banks_.find(category);
  return it != banks_.end() && it->second.aligned;
}

double NormalReference::scale(const std::string& category, int bank) const {
  return banks_.at(category).scale[size_t(bank == 1)];
}

}  // namespace lriad::reference
