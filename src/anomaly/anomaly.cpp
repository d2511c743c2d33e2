// Training anomalies: names, parameter checks, the per-image analysis (part or texture,
// background colour, noise level), placement draws, and the redraw-until-visible driver.
#include "lriad/anomaly/anomaly.h"

#include <algorithm>
#include <cmath>

#include <opencv2/imgproc.hpp>

#include "internal.h"
#include "lriad/io/error.h"

namespace lriad::anomaly {

namespace {

struct KindInfo {
  AnomalyKind kind;
  const char* name;
  const char* type_name;
  cv::Mat (*paint)(const detail::Context&, util::Rng&, cv::Mat&);
};

// The inspector's words: a pasted patch of other material reads as a "foreign patch", a
// semi-transparent foreign texture as "contamination"; the others are named as they look.
const KindInfo kKinds[] = {
    {AnomalyKind::CutPaste, "cut_paste", "foreign patch", detail::paint_cut_paste},
    {AnomalyKind::TextureBlend, "texture_blend", "contamination", detail::paint_texture_blend},
    {AnomalyKind::Scratch, "scratch", "scratch", detail::paint_scratch},
    {AnomalyKind::Crack, "crack", "crack", detail::paint_crack},
    {AnomalyKind::Hole, "hole", "hole", detail::paint_hole},
    {AnomalyKind::Stain, "stain", "stain", detail::paint_stain},
    {AnomalyKind::MissingPart, "missing_part", "missing part", detail::paint_missing_part},
    {AnomalyKind::MisplacedPart, "misplaced_part", "misplaced part", detail::paint_misplaced_part},
};

const KindInfo& info(AnomalyKind kind) {
  for (const auto& k : kKinds)
    if (k.kind == kind) return k;
  throw Error("unknown anomaly kind " + std::to_string(static_cast<int>(kind)));
}

void check_image(const cv::Mat& m, const char* what) {
  if (m.empty()) throw Error(std::string("make_anomaly: the ") + what + " image is empty");
  if (m.type() != CV_32FC3)
    throw Error(std::string("make_anomaly: the ") + what + " image has type " + std::to_string(m.type()) +
                    ", expected CV_32FC3 (" + std::to_string(CV_32FC3) + ")",
                "decode images with lriad::data::read_image (RGB float in [0,1])");
}

// Mean |change| over the footprint, averaged over channels.
double footprint_change(const cv::Mat& a, const cv::Mat& b, const cv::Mat& fp) {
  const int n = cv::countNonZero(fp);
  if (n == 0) return 0.0;
  cv::Mat d;
  cv::absdiff(a, b, d);
  const cv::Scalar s = cv::sum(d.mul(util::grey3(cv::Mat_<float>(fp))));
  return (s[0] + s[1] + s[2]) / (3.0 * n);
}

// Footprint from the painter's weight; everything outside it is reset to the input, so the
// footprint bounds the change exactly.
Anomaly finish(const detail::Context& c, cv::Mat out, const cv::Mat& weight, AnomalyKind kind) {
  Anomaly a;
  a.kind = kind;
  a.footprint = weight > detail::kFootprintAlpha;
  a.footprint &= 1;
  if (c.grey) {
    for (int y = 0; y < out.rows; ++y) {
      cv::Vec3f* p = out.ptr<cv::Vec3f>(y);
      for (int x = 0; x < out.cols; ++x) {
        const float l = detail::luma(p[x]);
        p[x] = cv::Vec3f(l, l, l);
      }
    }
  }
  cv::min(cv::max(out, 0.0), 1.0, out);
  c.image.copyTo(out, a.footprint == 0);
  a.image = out;
  const cv::Moments m = cv::moments(a.footprint, true);
  if (m.m00 > 0) {
    const float below_one = std::nextafter(1.f, 0.f);
    a.cx = std::min(below_one, static_cast<float>((m.m10 / m.m00 + 0.5) / out.cols));
    a.cy = std::min(below_one, static_cast<float>((m.m01 / m.m00 + 0.5) / out.rows));
  }
  return a;
}

}  // namespace

const char* to_string(AnomalyKind kind) { return info(kind).name; }

std::optional<AnomalyKind> parse_anomaly_kind(const std::string& name) {
  for (const auto& k : kKinds)
    if (name == k.name) return k.kind;
  return std::nullopt;
}

std::vector<AnomalyKind> all_anomaly_kinds() {
  std::vector<AnomalyKind> out;
  for (const auto& k : kKinds) out.push_back(k.kind);
  return out;
}

std::string Anomaly::type_name() const { return info(kind).type_name; }

void AnomalyParams::validate() const {
  auto fail = [](const std::string& what, const std::string& why) {
    throw Error("anomaly params: " + what + " " + why);
  };
  if (!(scale_min > 0 && scale_min <= scale_max && scale_max <= 0.6f))
    fail("scale_min/scale_max", "must satisfy 0 < min <= max <= 0.6: larger anomalies cover most of the image");
  if (!(contrast_min >= 0 && contrast_min <= contrast_max && contrast_max <= 1))
    fail("contrast_min/contrast_max", "must satisfy 0 <= min <= max <= 1");
  if (!(blend_min > 0 && blend_min <= blend_max && blend_max <= 1))
    fail("blend_min/blend_max", "must satisfy 0 < min <= max <= 1 (opacity of the foreign texture)");
  for (const auto& [name, v] : {std::pair<const char*, float>{"brightness_match", brightness_match},
                                {"donor_prob", donor_prob},
                                {"foreground_prob", foreground_prob}})
    if (!(v >= 0 && v <= 1)) fail(name, "is a probability and must lie in [0,1]");
  if (!(edge_softness >= 0 && edge_softness <= 1)) fail("edge_softness", "must lie in [0,1]");
  if (!(foreground_threshold > 0 && foreground_threshold < 1))
    fail("foreground_threshold", "must lie in (0,1): it is a colour difference");
  if (!(min_size_px >= 1)) fail("min_size_px", "must be >= 1");
  if (!(renoise >= 0 && renoise <= 4)) fail("renoise", "must lie in [0,4]");
  if (!(min_visible >= 0 && min_visible < 0.5f)) fail("min_visible", "must lie in [0,0.5)");
  if (max_attempts < 1) fail("max_attempts", "must be >= 1 (the first draw is an attempt)");
}

namespace detail {

Context analyse(const cv::Mat& image, const cv::Mat& donor, const AnomalyParams& p) {
  Context c;
  c.image = image;
  c.donor = donor.empty() ? image : donor;
  c.p = &p;
  c.side = std::min(image.cols, image.rows);
  c.unit = c.side / 128.0;
  // 1. Grey images stay grey.
  c.grey = true;
  for (int y = 0; y < image.rows && c.grey; ++y) {
    const cv::Vec3f* q = image.ptr<cv::Vec3f>(y);
    for (int x = 0; x < image.cols; ++x)
      if (std::abs(q[x][0] - q[x][1]) > 1e-3f || std::abs(q[x][1] - q[x][2]) > 1e-3f) {
        c.grey = false;
        break;
      }
  }
  // 2. Background colour: per-channel median of a border frame of the lightly blurred image.
  const cv::Mat smooth = util::blur(image, 1.0);
  const int bw = std::max(1, c.side / 32);
  std::vector<cv::Point> frame;
  for (int y = 0; y < image.rows; ++y)
    for (int x = 0; x < image.cols; ++x)
      if (x < bw || y < bw || x >= image.cols - bw || y >= image.rows - bw) frame.emplace_back(x, y);
  for (int ch = 0; ch < 3; ++ch) {
    std::vector<float> v;
    for (const auto& q : frame) v.push_back(smooth.at<cv::Vec3f>(q)[ch]);
    std::nth_element(v.begin(), v.begin() + static_cast<long>(v.size() / 2), v.end());
    c.border_median[ch] = v[v.size() / 2];
  }
  // 3. Foreground: pixels far from that colour. A border that is itself mostly "far" means a
  //    texture (or a busy scene): then anomalies go anywhere.
  cv::Mat fg(image.size(), CV_8U);
  for (int y = 0; y < image.rows; ++y) {
    const cv::Vec3f* q = smooth.ptr<cv::Vec3f>(y);
    uint8_t* f = fg.ptr<uint8_t>(y);
    for (int x = 0; x < image.cols; ++x) {
      const cv::Vec3f d = q[x] - c.border_median;
      f[x] = std::max({std::abs(d[0]), std::abs(d[1]), std::abs(d[2])}) > p.foreground_threshold;
    }
  }
  int border_fg = 0;
  for (const auto& q : frame) border_fg += fg.at<uint8_t>(q);
  cv::morphologyEx(fg, fg, cv::MORPH_OPEN, cv::getStructuringElement(cv::MORPH_ELLIPSE, {3, 3}));
  const double fg_frac = cv::countNonZero(fg) / static_cast<double>(image.total());
  c.part = border_fg < 0.2 * static_cast<double>(frame.size()) && fg_frac > 0.01 && fg_frac < 0.9;
  if (c.part) {
    c.fg = fg;
    cv::Mat grown;
    cv::dilate(fg, grown, cv::Mat());
    grown.convertTo(c.fg_soft, CV_32F);
    c.fg_soft = util::blur(c.fg_soft, 0.7);
    cv::distanceTransform(fg, c.fg_dist, cv::DIST_L2, 3);
    for (int y = 0; y < image.rows; ++y)
      for (int x = 0; x < image.cols; ++x)
        if (c.fg_dist.at<float>(y, x) >= 1.5f) c.fg_points.emplace_back(x, y);
    if (c.fg_points.empty()) c.part = false;
  }
  if (!c.part) c.fg = cv::Mat::ones(image.size(), CV_8U);
  // 4. Sensor noise: robust sigma of the fine residual (MAD), capped so texture detail is
  //    not mistaken for noise.
  cv::Mat g;
  cv::cvtColor(image, g, cv::COLOR_RGB2GRAY);
  cv::Mat resid = cv::abs(g - util::blur(g, 1.0));
  std::vector<float> r(resid.begin<float>(), resid.end<float>());
  std::nth_element(r.begin(), r.begin() + static_cast<long>(r.size() / 2), r.end());
  c.noise_sigma = std::min(0.03, 1.4826 * r[r.size() / 2] * 1.3);
  return c;
}

double draw_size(Rng& rng, const Context& c) {
  const double lo = std::max<double>(c.p->min_size_px, c.p->scale_min * c.side);
  const double hi = std::max<double>(lo, c.p->scale_max * c.side);
  // Log-uniform, leaning a little towards the large end (u^0.75): small defects are common in
  // real data, but a 4 px blob on a 128 px image teaches little.
  return lo * std::pow(hi / lo, std::pow(rng.uniform(), 0.75));
}

double draw_contrast(Rng& rng, const Context& c) { return rng.uniform(c.p->contrast_min, c.p->contrast_max); }

cv::Point2f draw_center(Rng& rng, const Context& c, double margin) {
  if (c.part && rng.chance(c.p->foreground_prob)) {
    const auto& q = c.fg_points[static_cast<size_t>(rng.uniform_int(0, static_cast<int>(c.fg_points.size()) - 1))];
    return {static_cast<float>(q.x + rng.uniform()), static_cast<float>(q.y + rng.uniform())};
  }
  const double mx = std::min(margin, 0.4 * c.image.cols), my = std::min(margin, 0.4 * c.image.rows);
  return {static_cast<float>(rng.uniform(mx, c.image.cols - mx)),
          static_cast<float>(rng.uniform(my, c.image.rows - my))};
}

float depth_at(const Context& c, const cv::Point2f& p) {
  return c.fg_dist.at<float>(util::pixel_of(p, c.fg_dist.size()));
}

cv::Point2f draw_edge_point(Rng& rng, const Context& c, double band) {
  if (!c.part) return draw_center(rng, c, band);
  cv::Point2f q;
  for (int i = 0; i < 64; ++i) {
    q = draw_center(rng, c, band);
    if (depth_at(c, q) <= band) break;
  }
  return q;
}

cv::Point2f draw_inner_point(Rng& rng, const Context& c, double depth) {
  if (!c.part) return draw_center(rng, c, depth);
  cv::Point2f best = draw_center(rng, c, depth);
  for (int i = 0; i < 32 && depth_at(c, best) < depth; ++i) {
    const cv::Point2f q = draw_center(rng, c, depth);
    if (depth_at(c, q) > depth_at(c, best)) best = q;
  }
  return best;
}

}  // namespace detail

Anomaly make_anomaly(const cv::Mat& normal, const cv::Mat& donor, AnomalyKind kind, uint64_t seed,
                     const AnomalyParams& p) {
  // 1. Check the inputs and look at the image once.
  p.validate();
  check_image(normal, "normal");
  if (!donor.empty()) {
    check_image(donor, "donor");
    if (donor.size() != normal.size())
      throw Error("make_anomaly: donor is " + std::to_string(donor.cols) + "x" + std::to_string(donor.rows) +
                      ", normal image " + std::to_string(normal.cols) + "x" + std::to_string(normal.rows),
                  "resize the donor to the normal image's size first");
  }
  const detail::Context c = detail::analyse(normal, donor, p);
  const KindInfo& k = info(kind);
  // 2. Paint; redraw from a derived seed while the result is invisible or too large, and
  //    keep the most visible admissible draw if none passes.
  Anomaly best;
  double best_change = -1.0;
  const double max_area = 0.45 * static_cast<double>(normal.total());
  for (int attempt = 0; attempt < p.max_attempts; ++attempt) {
    util::Rng rng(
        util::hash_combine(util::hash_combine(seed, static_cast<uint64_t>(kind) + 1), static_cast<uint64_t>(attempt)));
    cv::Mat out = normal.clone();
    const cv::Mat weight = k.paint(c, rng, out);
    Anomaly a = finish(c, out, weight, kind);
    const int area = cv::countNonZero(a.footprint);
    if (area == 0 || area > max_area) continue;
    const double change = footprint_change(a.image, normal, a.footprint);
    if (change > best_change) {
      best = std::move(a);
      best_change = change;
    }
    if (change >= p.min_visible) break;
  }
  if (best_change < 0)  // every draw was empty or huge: not expected with sane params
    throw Error(std::string("make_anomaly: could not place a ") + k.name + " anomaly in " +
                    std::to_string(p.max_attempts) + " attempts",
                "check scale_min/scale_max and that the image is not tiny");
  return best;
}

Anomaly make_random_anomaly(const cv::Mat& normal, const cv::Mat& donor, const std::map<AnomalyKind, double>& mix,
                            uint64_t seed, const AnomalyParams& p) {
  double total = 0.0;
  for (const auto& [kind, w] : mix) {
    if (!std::isfinite(w) || w < 0)
      throw Error(std::string("anomaly mix: weight of ") + to_string(kind) + " is " + std::to_string(w),
                  "weights must be finite and >= 0");
    total += w;
  }
  if (total <= 0) throw Error("anomaly mix: all weights are 0", "give at least one kind a positive weight");
  // The kind comes from its own stream; the anomaly itself is make_anomaly(..., kind, seed).
  util::Rng rng(util::hash_combine(seed, 0x6B696E64ull));  // "kind"
  const double u = rng.uniform() * total;
  double acc = 0.0;
  AnomalyKind picked = mix.rbegin()->first;
  for (const auto& [kind, w] : mix) {
    acc += w;
    if (w > 0 && u < acc) {
      picked = kind;
      break;
    }
  }
  while (mix.at(picked) <= 0) picked = std::prev(mix.find(picked))->first;  // rounding at the top
  return make_anomaly(normal, donor, picked, seed, p);
}

}  // namespace lriad::anomaly
