// Defect painters: each draws one varied, softly blended defect onto a rendered scene and
// returns its footprint (CV_32F in [0,1]; the ground-truth mask is footprint > 0.35).
// Size, position, contrast and shape are drawn per defect, from obvious to subtle.
#include <algorithm>
#include <cmath>

#include <opencv2/imgproc.hpp>

#include "internal.h"

namespace lriad::demo {
namespace {

// The scene's scale: its height, which is the image side of a square (MVTec-layout) image.
int side(const cv::Mat& img) { return std::min(img.cols, img.rows); }
double unit_px(const Scene& s) { return side(s.image) / 128.0; }  // 1 px at the default size

// A point well inside the object's body (or the texture, away from the border).
cv::Point2f pick_point(Rng& rng, const Scene& s, double margin) {
  const int w = s.image.cols, h = s.image.rows;
  cv::Point2f best(w * 0.5f, h * 0.5f);
  for (int i = 0; i < 200; ++i) {
    const cv::Point2f p(static_cast<float>(rng.uniform(margin, w - margin)),
                        static_cast<float>(rng.uniform(margin, h - margin)));
    if (s.coverage.at<float>(util::pixel_of(p, s.coverage.size())) > 0.97f) return p;
    if (i == 0) best = p;
  }
  return best;
}

cv::Vec3f pick(Rng& rng, const std::vector<cv::Vec3f>& v, cv::Vec3f fallback) {
  return v.empty() ? fallback : v[static_cast<size_t>(rng.uniform_int(0, static_cast<int>(v.size()) - 1))];
}

// Local colour with the texture blurred away: targets follow the lighting under the defect.
cv::Mat local_mean(const cv::Mat& image, double sigma) { return blur(image, sigma); }

// Strength varying along a stroke: real scratches and cracks are intermittent.
cv::Mat intermittent(Rng& rng, cv::Size size, double cell, double floor) {
  cv::Mat n = value_noise(rng, size, cell, cell);
  return floor + (1.0 - floor) * (0.5 + 0.5 * n);
}

cv::Mat scratch(const Scene& s, const MaterialStyle& st, Rng& rng, cv::Mat& img) {
  const double u = unit_px(s);
  const double len = std::max(8.0 * u, s.feature * rng.uniform(0.35, 1.0));
  const double ang = rng.uniform(0, M_PI);
  const cv::Point2f mid = pick_point(rng, s, 0.15 * side(img));
  const cv::Point2f dir(static_cast<float>(std::cos(ang)), static_cast<float>(std::sin(ang)));
  auto path = curved_path(rng, mid - dir * static_cast<float>(len / 2), ang, len, 0.15);
  cv::Mat alpha = stroke_alpha(img.size(), path, rng.uniform(0.6, 1.8) * u, 0.3 * u);
  alpha = alpha.mul(s.coverage).mul(intermittent(rng, img.size(), 10 * u, 0.55));
  const double contrast = rng.uniform(0.15, 0.6);
  cv::Mat local = local_mean(img, 2.5 * u), target;
  if (st.scratch_sign > 0)
    target = local + (cv::Scalar::all(1.0) - local) * contrast + cv::Scalar::all(0.04);
  else
    target = local * (1.0 - contrast);
  blend(img, alpha, target);
  return alpha;
}

cv::Mat crack(const Scene& s, const MaterialStyle&, Rng& rng, cv::Mat& img) {
  const double u = unit_px(s);
  const double len = std::max(10.0 * u, s.feature * rng.uniform(0.4, 1.1));
  const double ang = rng.uniform(0, 2 * M_PI);
  const cv::Point2f mid = pick_point(rng, s, 0.15 * side(img));
  const cv::Point2f dir(static_cast<float>(std::cos(ang)), static_cast<float>(std::sin(ang)));
  const double width = rng.uniform(0.7, 1.6) * u;
  auto path = jagged_path(rng, mid - dir * static_cast<float>(len / 2), ang, len, 1.5 * u, 0.5);
  cv::Mat alpha = stroke_alpha(img.size(), path, width, 0.25 * u);
  if (rng.chance(0.6)) {  // a side branch, thinner
    const auto& from = path[static_cast<size_t>(rng.uniform_int(1, static_cast<int>(path.size()) - 1))];
    auto branch = jagged_path(rng, from, ang + rng.uniform(0.4, 0.9) * (rng.chance(0.5) ? 1 : -1),
                              len * rng.uniform(0.2, 0.45), 1.5 * u, 0.6);
    cv::max(alpha, stroke_alpha(img.size(), branch, width * 0.7, 0.25 * u), alpha);
  }
  alpha = alpha.mul(s.coverage).mul(intermittent(rng, img.size(), 6 * u, 0.7));
  cv::Mat target = local_mean(img, 2.0 * u) * rng.uniform(0.1, 0.55);
  blend(img, alpha, target);
  return alpha;
}

cv::Mat hole(const Scene& s, const MaterialStyle&, Rng& rng, cv::Mat& img) {
  const double u = unit_px(s);
  const double r = std::max(2.5 * u, s.feature * rng.uniform(0.05, 0.18));
  const cv::Point2f c = pick_point(rng, s, r + 0.08 * side(img));
  cv::Mat alpha = blob_alpha(rng, img.size(), c, r, rng.uniform(0.7, 1.3), rng.uniform(0, M_PI), 0.22, 0.5 * u);
  alpha = alpha.mul(s.coverage);
  // Inside: the backing, shadowed by the near wall (light from the top-left).
  cv::Mat wall;
  const cv::Mat shift = (cv::Mat_<double>(2, 3) << 1, 0, 0.35 * r, 0, 1, 0.35 * r);
  cv::warpAffine(alpha, wall, shift, alpha.size(), cv::INTER_LINEAR, cv::BORDER_CONSTANT);
  cv::Mat inside = mul3(s.background, (0.45 + 0.9 * (1.0 - wall)) * rng.uniform(0.8, 2.0));
  // A darker, slightly torn rim just inside the edge.
  cv::Mat rim = alpha.mul(1.0 - alpha) * 4.0;
  img = mul3(img, 1.0 - 0.3 * rim);
  blend(img, alpha, inside);
  return alpha;
}

cv::Mat stain(const Scene& s, const MaterialStyle& st, Rng& rng, cv::Mat& img) {
  const double u = unit_px(s);
  const double r = std::max(4.0 * u, s.feature * rng.uniform(0.1, 0.35));
  const cv::Point2f c = pick_point(rng, s, 0.1 * side(img));
  cv::Mat alpha = blob_alpha(rng, img.size(), c, r, rng.uniform(0.6, 1.5), rng.uniform(0, M_PI), 0.35, 0.2 * r);
  cv::Mat grain = fbm(rng, img.size(), std::max(2.0, r / 2), 3);
  alpha = alpha.mul(0.8 + 0.2 * grain).mul(s.coverage);
  cv::Mat ring = alpha.mul(1.0 - alpha) * 4.0;  // dried edge, as with coffee stains
  const cv::Vec3f tint = pick(rng, st.stain_tints, {0.6f, 0.5f, 0.4f});
  const float strength = static_cast<float>(rng.uniform(0.35, 1.0));
  for (int y = 0; y < img.rows; ++y)
    for (int x = 0; x < img.cols; ++x) {
      const float a = std::min(1.f, alpha.at<float>(y, x) + 0.3f * ring.at<float>(y, x)) * strength;
      cv::Vec3f& p = img.at<cv::Vec3f>(y, x);
      for (int ch = 0; ch < 3; ++ch) p[ch] *= 1.f - a * (1.f - tint[ch]);
    }
  return alpha;
}

cv::Mat contamination(const Scene& s, const MaterialStyle& st, Rng& rng, cv::Mat& img) {
  const double u = unit_px(s);
  const cv::Point2f c = pick_point(rng, s, 0.15 * side(img));
  const cv::Vec3f col = pick(rng, st.dirt_colors, {0.15f, 0.12f, 0.1f}) * static_cast<float>(rng.uniform(0.8, 1.2));
  cv::Mat alpha = cv::Mat::zeros(img.size(), CV_32F);
  const int n = rng.uniform_int(1, 4);
  for (int i = 0; i < n; ++i) {
    const cv::Point2f p = c + cv::Point2f(static_cast<float>(rng.normal(0, 0.06 * s.feature)),
                                          static_cast<float>(rng.normal(0, 0.06 * s.feature)));
    cv::Mat part;
    if (rng.chance(0.3)) {  // a fibre or hair
      auto path = curved_path(rng, p, rng.uniform(0, 2 * M_PI), s.feature * rng.uniform(0.15, 0.4), 0.4);
      part = stroke_alpha(img.size(), path, rng.uniform(0.6, 1.1) * u, 0.2 * u);
    } else {
      const double r = std::max(1.2 * u, s.feature * rng.uniform(0.02, 0.08)) * (i == 0 ? 1.5 : 1.0);
      part = blob_alpha(rng, img.size(), p, r, rng.uniform(0.6, 1.4), rng.uniform(0, M_PI), 0.35, 0.4 * u);
    }
    cv::max(alpha, part, alpha);
  }
  alpha = alpha.mul(s.coverage);
  cv::Mat shade = local_mean(img, 4 * u);  // dirt takes the scene's lighting
  cv::Mat target(img.size(), CV_32FC3);
  const cv::Scalar mean = cv::mean(img);
  const float m = static_cast<float>((mean[0] + mean[1] + mean[2]) / 3 + 1e-3);
  for (int y = 0; y < img.rows; ++y)
    for (int x = 0; x < img.cols; ++x) {
      const cv::Vec3f& l = shade.at<cv::Vec3f>(y, x);
      const float k = std::clamp((l[0] + l[1] + l[2]) / 3 / m, 0.6f, 1.4f);
      target.at<cv::Vec3f>(y, x) = col * k;
    }
  blend(img, alpha * rng.uniform(0.75, 1.0), target);
  return alpha;
}

cv::Mat dent(const Scene& s, const MaterialStyle&, Rng& rng, cv::Mat& img) {
  // A dent is seen by its shading: the slope facing the light brightens, the other darkens.
  const double u = unit_px(s);
  const double r = std::max(4.0 * u, s.feature * rng.uniform(0.08, 0.22));
  const cv::Point2f c = pick_point(rng, s, r + 0.05 * side(img));
  const double aspect = rng.uniform(0.6, 1.4), ang = rng.uniform(0, M_PI);
  cv::Mat g(img.size(), CV_32F), shade(img.size(), CV_32F);
  for (int y = 0; y < img.rows; ++y)
    for (int x = 0; x < img.cols; ++x) {
      const double dx = x - c.x, dy = y - c.y;
      const double ex = (dx * std::cos(ang) + dy * std::sin(ang)) / aspect;
      const double ey = -dx * std::sin(ang) + dy * std::cos(ang);
      g.at<float>(y, x) = static_cast<float>(std::exp(-(ex * ex + ey * ey) / (r * r)));
    }
  cv::Mat gx, gy;
  cv::Sobel(g, gx, CV_32F, 1, 0, 3, r / 16);  // ~ r * dg/dx, at most ~0.4
  cv::Sobel(g, gy, CV_32F, 0, 1, 3, r / 16);
  shade = -(gx + gy) * (rng.uniform(0.3, 0.8) / std::sqrt(2.0));
  g = g.mul(s.coverage);
  cv::Mat smooth = blur(img, 1.0 * u);
  blend(img, g * 0.6, smooth);
  img = mul3(img, 1.0 + shade.mul(s.coverage));
  return g * 1.3;  // footprint: where the bump is above ~27% of its depth
}

cv::Mat loose_thread(const Scene& s, const MaterialStyle&, Rng& rng, cv::Mat& img) {
  const double u = unit_px(s);
  const cv::Point2f p = pick_point(rng, s, 0.2 * side(img));
  auto path = curved_path(rng, p, rng.uniform(0, 2 * M_PI), s.feature * rng.uniform(0.3, 0.8), 0.35);
  const double w = rng.uniform(1.3, 2.4) * u;
  cv::Mat alpha = stroke_alpha(img.size(), path, w, 0.3 * u);
  cv::Mat core = stroke_alpha(img.size(), path, w * 0.4, 0.3 * u);
  // The thread is a lighter or darker copy of the yarn, with its own twist highlights.
  const cv::Scalar mean = cv::mean(img);
  const float k = static_cast<float>(rng.chance(0.5) ? rng.uniform(1.5, 2.1) : rng.uniform(0.35, 0.6));
  cv::Mat twist = intermittent(rng, img.size(), 1.5 * u, 0.7);
  cv::Mat target(img.size(), CV_32FC3);
  for (int y = 0; y < img.rows; ++y)
    for (int x = 0; x < img.cols; ++x) {
      const float t = twist.at<float>(y, x) * (0.8f + 0.3f * core.at<float>(y, x)) * k;
      target.at<cv::Vec3f>(y, x) =
          cv::Vec3f(static_cast<float>(mean[0]), static_cast<float>(mean[1]), static_cast<float>(mean[2])) * t;
    }
  blend(img, alpha, target);
  return alpha;
}

cv::Mat cut(const Scene& s, const MaterialStyle&, Rng& rng, cv::Mat& img) {
  const double u = unit_px(s);
  const double len = s.feature * rng.uniform(0.25, 0.6), ang = rng.uniform(0, M_PI);
  const cv::Point2f mid = pick_point(rng, s, 0.2 * side(img));
  const cv::Point2f dir(static_cast<float>(std::cos(ang)), static_cast<float>(std::sin(ang)));
  auto path = jagged_path(rng, mid - dir * static_cast<float>(len / 2), ang, len, 2.0 * u, 0.15);
  cv::Mat alpha = stroke_alpha(img.size(), path, rng.uniform(1.2, 2.8) * u, 0.3 * u);
  cv::Mat fray = intermittent(rng, img.size(), 1.5 * u, 0.5);  // frayed, uneven edges
  alpha = cv::min(alpha.mul(fray) * 1.4, 1.0);
  blend(img, alpha, s.background);
  return alpha;
}

cv::Mat missing_part(const Scene& s, const MaterialStyle&, Rng& rng, cv::Mat& img) {
  if (s.anchors.empty()) return hole(s, {}, rng, img);
  const Anchor& an = s.anchors[static_cast<size_t>(rng.uniform_int(0, static_cast<int>(s.anchors.size()) - 1))];
  const double depth = an.depth * rng.uniform(0.6, 1.3), u = unit_px(s);
  cv::Mat cut_a;
  if (an.round_bite) {
    cut_a = blob_alpha(rng, img.size(), an.pos - an.inward * static_cast<float>(0.2 * depth), depth,
                       rng.uniform(0.8, 1.5), rng.uniform(0, M_PI), 0.25, 0.4 * u);
  } else {  // a jagged fracture line across the corner/tip
    cv::Mat jag = value_noise(rng, img.size(), 3.0 * u, 3.0 * u);
    const double tilt = rng.normal(0, 0.3);
    const cv::Point2f n(
        an.inward.x * static_cast<float>(std::cos(tilt)) - an.inward.y * static_cast<float>(std::sin(tilt)),
        an.inward.x * static_cast<float>(std::sin(tilt)) + an.inward.y * static_cast<float>(std::cos(tilt)));
    cut_a = cv::Mat(img.size(), CV_32F);
    for (int y = 0; y < img.rows; ++y)
      for (int x = 0; x < img.cols; ++x) {
        const double proj = (x - an.pos.x) * n.x + (y - an.pos.y) * n.y;
        const double edge = depth * (1.0 + 0.15 * jag.at<float>(y, x));
        cut_a.at<float>(y, x) = static_cast<float>(std::clamp(edge - proj + 0.5, 0.0, 1.0));
      }
  }
  cv::Mat gone = cut_a.mul(s.coverage);
  cv::Mat fracture = cv::max(blur(cut_a, 1.2 * u) - cut_a, 0.0);  // rough, shadowed edge
  fracture = cv::min(fracture.mul(s.coverage) * 2.5, 1.0);
  img = mul3(img, 1.0 - 0.4 * fracture);
  blend(img, gone, s.background);
  return cv::max(gone, fracture * 0.5);
}

}  // namespace

cv::Mat paint_defect(DefectKind kind, const Scene& scene, const MaterialStyle& style, Rng& rng, cv::Mat& image) {
  switch (kind) {
    case DefectKind::Scratch:
      return scratch(scene, style, rng, image);
    case DefectKind::Crack:
      return crack(scene, style, rng, image);
    case DefectKind::Hole:
      return hole(scene, style, rng, image);
    case DefectKind::Stain:
      return stain(scene, style, rng, image);
    case DefectKind::Contamination:
      return contamination(scene, style, rng, image);
    case DefectKind::Dent:
      return dent(scene, style, rng, image);
    case DefectKind::LooseThread:
      return loose_thread(scene, style, rng, image);
    case DefectKind::Cut:
      return cut(scene, style, rng, image);
    case DefectKind::MissingPart:
      return missing_part(scene, style, rng, image);
    case DefectKind::Variant:
      break;  // drawn by re-rendering the scene, see render_sample
  }
  return cv::Mat::zeros(image.size(), CV_32F);
}

Variant draw_variant(const std::string& defect_name, Rng& rng) {
  Variant v;
  v.kind = defect_name;
  v.a = rng.uniform();
  v.b = rng.uniform();
  v.c = rng.uniform();
  return v;
}

}  // namespace lriad::demo
