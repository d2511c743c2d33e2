// Region-level training anomalies: cut-and-paste patches (CutPaste, Li et al. 2021),
// Perlin-shaped foreign-texture blends (DRAEM, Zavrtanik et al. 2021), missing parts and
// parts shifted out of place.
#include <algorithm>
#include <cmath>

#include <opencv2/imgproc.hpp>

#include "internal.h"

namespace lriad::anomaly::detail {
namespace {

std::vector<cv::Point2f> rotated_rect(cv::Point2f c, double w, double h, double angle) {
  const float ca = static_cast<float>(std::cos(angle)), sa = static_cast<float>(std::sin(angle));
  const cv::Point2f ux(ca * static_cast<float>(w / 2), sa * static_cast<float>(w / 2));
  const cv::Point2f uy(-sa * static_cast<float>(h / 2), ca * static_cast<float>(h / 2));
  return {c - ux - uy, c + ux - uy, c + ux + uy, c - ux + uy};
}

// Weighted per-channel mean of `image` under `w`.
cv::Vec3f masked_mean(const cv::Mat& image, const cv::Mat& w) {
  const double total = cv::sum(w)[0];
  if (total <= 1e-6) return {0, 0, 0};
  const cv::Scalar s = cv::sum(util::mul3(image, w));
  return {static_cast<float>(s[0] / total), static_cast<float>(s[1] / total), static_cast<float>(s[2] / total)};
}

bool has_donor(const Context& c) { return c.donor.data != c.image.data; }

// Smooth fill with the image's own grain put back, so replaced areas are not suspiciously clean.
cv::Mat grained(const Context& c, Rng& rng, cv::Mat fill, const cv::Mat& where) {
  cv::Mat w;
  cv::Mat(where > 0).convertTo(w, CV_32F, 1.0 / 255);
  add_noise(fill, w, rng, c.noise_sigma * c.p->renoise, c.grey);
  return fill;
}

}  // namespace

cv::Mat paint_cut_paste(const Context& c, Rng& rng, cv::Mat& out) {
  const AnomalyParams& p = *c.p;
  // 1. The patch: a rectangle of random aspect, or a long thin "scar" as in CutPaste-Scar.
  const double s = draw_size(rng, c);
  double w, h;
  if (rng.chance(0.25)) {
    w = s * rng.uniform(1.3, 2.2);
    h = std::max(2.0 * c.unit, s * rng.uniform(0.12, 0.3));
  } else {
    const double aspect = std::exp(rng.uniform(std::log(0.3), std::log(3.3)));
    w = s * std::sqrt(aspect);
    h = s / std::sqrt(aspect);
  }
  const double dst_angle = rng.chance(0.6) ? rng.uniform(-M_PI / 4, M_PI / 4) : 0.0;
  const double rel_angle = rng.chance(0.5) ? rng.uniform(-M_PI, M_PI) : 0.0;
  const float flip = rng.chance(0.3) ? -1.f : 1.f;
  const cv::Point2f dst = draw_center(rng, c, 0.5 * std::max(w, h));
  // 2. Where it comes from: the donor, or elsewhere in the same image (far enough away that
  //    the paste is not a no-op).
  const bool from_donor = has_donor(c) && rng.chance(p.donor_prob);
  const cv::Mat& source = from_donor ? c.donor : c.image;
  const double margin = std::min(0.5 * std::max(w, h), 0.45 * c.side);
  cv::Point2f src;
  for (int i = 0; i < 16; ++i) {
    src = {static_cast<float>(rng.uniform(margin, source.cols - margin)),
           static_cast<float>(rng.uniform(margin, source.rows - margin))};
    if (from_donor || cv::norm(src - dst) > 0.7 * std::max(w, h)) break;
  }
  // 3. Resample: destination pixel q reads source pixel src + R(rel) F (q - dst).
  const double ca = std::cos(rel_angle), sa = std::sin(rel_angle);
  cv::Mat m = (cv::Mat_<double>(2, 3) << ca * flip, -sa, 0, sa * flip, ca, 0);
  m.at<double>(0, 2) = src.x - (m.at<double>(0, 0) * dst.x + m.at<double>(0, 1) * dst.y);
  m.at<double>(1, 2) = src.y - (m.at<double>(1, 0) * dst.x + m.at<double>(1, 1) * dst.y);
  cv::Mat patch;
  cv::warpAffine(source, patch, m, out.size(), cv::INTER_LINEAR | cv::WARP_INVERSE_MAP, cv::BORDER_REFLECT101);
  // 4. Feathered mask, colour jitter, and (usually) the destination's brightness.
  cv::Mat alpha = polygon_alpha(out.size(), rotated_rect(dst, w, h, dst_angle));
  alpha = util::blur(alpha, std::max(0.4 * c.unit, p.edge_softness * std::min(w, h) * rng.uniform(0.15, 1.0)));
  alpha = on_part(c, alpha);
  const cv::Vec3f gain(static_cast<float>(rng.uniform(0.9, 1.1)), static_cast<float>(rng.uniform(0.9, 1.1)),
                       static_cast<float>(rng.uniform(0.9, 1.1)));
  cv::Vec3f shift = cv::Vec3f::all(static_cast<float>(rng.uniform(-0.08, 0.08)));
  if (rng.chance(p.brightness_match)) {
    const cv::Vec3f d = masked_mean(out, alpha), q = masked_mean(patch, alpha);
    shift += (d - q.mul(gain)) * static_cast<float>(rng.uniform(0.7, 1.0));
  }
  for (int y = 0; y < patch.rows; ++y) {
    cv::Vec3f* q = patch.ptr<cv::Vec3f>(y);
    for (int x = 0; x < patch.cols; ++x) q[x] = q[x].mul(gain) + shift;
  }
  util::blend(out, alpha, patch);
  return alpha;
}

cv::Mat paint_texture_blend(const Context& c, Rng& rng, cv::Mat& out) {
  const AnomalyParams& p = *c.p;
  // 1. Shape: Perlin-perturbed ellipse, so the blend has lobes and islands, not a disc.
  const double r = 0.6 * draw_size(rng, c);
  const cv::Point2f at = draw_center(rng, c, r);
  cv::Mat mask = noisy_blob(rng, out.size(), at, r, rng.uniform(0.6, 1.6), rng.uniform(0, M_PI), rng.uniform(0.5, 1.0),
                            std::max(2.0, r * rng.uniform(0.3, 0.7)),
                            std::clamp(p.edge_softness * rng.uniform(0.3, 1.5), 0.02, 0.4));
  // 2. The foreign texture: the donor (or the image) rescaled and turned, or a procedural
  //    two-colour grain.
  cv::Mat texture;
  if (rng.chance(0.65)) {
    const cv::Mat& source = has_donor(c) && rng.chance(p.donor_prob) ? c.donor : c.image;
    const double scale = std::exp(rng.uniform(std::log(0.5), std::log(2.0)));
    cv::Mat m = cv::getRotationMatrix2D(at, rng.uniform(0, 360), scale);
    m.at<double>(0, 2) += rng.uniform(-0.5, 0.5) * c.side;
    m.at<double>(1, 2) += rng.uniform(-0.5, 0.5) * c.side;
    cv::warpAffine(source, texture, m, out.size(), cv::INTER_LINEAR, cv::BORDER_REFLECT101);
    if (rng.chance(0.4)) {
      const cv::Vec3f gain(static_cast<float>(rng.uniform(0.6, 1.4)), static_cast<float>(rng.uniform(0.6, 1.4)),
                           static_cast<float>(rng.uniform(0.6, 1.4)));
      for (auto it = texture.begin<cv::Vec3f>(); it != texture.end<cv::Vec3f>(); ++it) *it = (*it).mul(gain);
    }
  } else {
    const cv::Vec3f a(static_cast<float>(rng.uniform()), static_cast<float>(rng.uniform()),
                      static_cast<float>(rng.uniform()));
    const cv::Vec3f b = a * static_cast<float>(rng.uniform(0.3, 0.85));
    const cv::Mat grain = perlin_fbm(rng, out.size(), std::max(1.5, rng.uniform(1.0, 4.0) * c.unit), 3, 0.6);
    texture = util::colourize(cv::Mat(0.5 + 0.9 * grain), b, a);
  }
  // 3. Semi-transparent: beta of foreign texture over the surface.
  const double beta = rng.uniform(p.blend_min, p.blend_max);
  cv::Mat alpha = on_part(c, mask * beta);
  util::blend(out, alpha, texture);
  return alpha;
}

cv::Mat paint_missing_part(const Context& c, Rng& rng, cv::Mat& out) {
  const double r = 0.5 * draw_size(rng, c) * rng.uniform(0.8, 1.25);
  cv::Mat region, fill;
  if (c.part) {
    // A piece broken off the outline (mostly), or a component gone from inside: the
    // background shows through, with a crisp, slightly irregular edge.
    const cv::Point2f at = rng.chance(0.65) ? draw_edge_point(rng, c, 0.6 * r) : draw_center(rng, c, r);
    region = noisy_blob(rng, out.size(), at, r, rng.uniform(0.6, 1.6), rng.uniform(0, M_PI), rng.uniform(0.2, 0.6),
                        std::max(2.0, 0.5 * r), 0.04);
    region = on_part(c, region);
    fill = background_fill(c, 0);
  } else {
    // Textures: the structure is worn away to its large-scale colour, a little lighter or darker.
    const cv::Point2f at = draw_center(rng, c, r);
    region = noisy_blob(rng, out.size(), at, r, rng.uniform(0.6, 1.6), rng.uniform(0, M_PI), rng.uniform(0.3, 0.8),
                        std::max(2.0, 0.5 * r), rng.uniform(0.08, 0.3));
    fill = background_fill(c, std::max(2.0 * c.unit, r * rng.uniform(0.3, 0.6)));
    fill *= rng.uniform(0.9, 1.12);
  }
  fill = grained(c, rng, fill, region);
  util::blend(out, region, fill);
  return region;
}

cv::Mat paint_misplaced_part(const Context& c, Rng& rng, cv::Mat& out) {
  const double s = draw_size(rng, c) * rng.uniform(1.0, 1.4), r = 0.5 * s;
  const cv::Point2f at = c.part && rng.chance(0.6) ? draw_edge_point(rng, c, 0.7 * r) : draw_center(rng, c, r);
  // 1. The part: a compact lump or a rectangular piece, hard-edged (it was cut out).
  cv::Mat part;
  if (rng.chance(0.5)) {
    part = noisy_blob(rng, out.size(), at, r, rng.uniform(0.6, 1.6), rng.uniform(0, M_PI), 0.25, std::max(2.0, 0.6 * r),
                      0.03);
  } else {
    const double aspect = std::exp(rng.uniform(std::log(0.5), std::log(2.0)));
    part =
        polygon_alpha(out.size(), rotated_rect(at, s * std::sqrt(aspect), s / std::sqrt(aspect), rng.uniform(0, M_PI)));
  }
  part = on_part(c, part);
  // 2. Moved by a few px and turned by a few degrees about its centre.
  const double dist = rng.uniform(1.5 * c.unit, std::max(2.5 * c.unit, 0.18 * s));
  const double dir = rng.uniform(0, 2 * M_PI);
  const double turn = rng.chance(0.7) ? rng.uniform(2, 12) * (rng.chance(0.5) ? 1 : -1) : 0.0;
  cv::Mat m = cv::getRotationMatrix2D(at, turn, 1.0);
  m.at<double>(0, 2) += dist * std::cos(dir);
  m.at<double>(1, 2) += dist * std::sin(dir);
  cv::Mat moved, moved_mask;
  cv::warpAffine(c.image, moved, m, out.size(), cv::INTER_LINEAR, cv::BORDER_REFLECT101);
  cv::warpAffine(part, moved_mask, m, out.size(), cv::INTER_LINEAR, cv::BORDER_CONSTANT);
  // 3. Where it was and is no longer: background on parts, a shadowed gap in textures.
  cv::Mat gap = cv::max(part - moved_mask, 0.0);
  cv::Mat fill = c.part ? background_fill(c, 0) : util::blur(c.image, 2.0 * c.unit) * rng.uniform(0.45, 0.75);
  fill = grained(c, rng, fill, gap);
  util::blend(out, gap, fill);
  util::blend(out, moved_mask, moved);
  // 4. The leading edge (where the part now overlaps its surroundings) casts a faint,
  //    uneven shadow; the trailing edge already shows the gap. A full dark outline would
  //    read as a drawn frame, not as a displaced part.
  cv::Mat seam = moved_mask.mul(1.0 - moved_mask).mul(1.0 - part) * 4.0;
  seam = seam.mul(0.6 + 0.4 * perlin_fbm(rng, out.size(), std::max(2.0, 3.0 * c.unit), 2));
  if (rng.chance(0.7)) out = util::mul3(out, 1.0 - cv::max(seam, 0.0) * (0.1 + 0.3 * draw_contrast(rng, c)));
  return cv::max(cv::max(part, moved_mask), seam);
}

}  // namespace lriad::anomaly::detail
