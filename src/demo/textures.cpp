// Procedural texture categories: twill fabric, brushed metal, wood, ceramic tiles, granite.
// Each draws a slightly larger canvas and rotates it a few degrees so that no two images
// share the exact orientation, lighting or colour, as with real line-scan captures.
#include <algorithm>
#include <cmath>

#include <opencv2/imgproc.hpp>

#include "internal.h"

namespace lriad::demo {
namespace {

// Canvas drawn before rotate_crop: large enough for a 5 degree turn without border artefacts,
// and square, so that fabric's quarter turn of a wide image still lands on drawn pixels.
cv::Size padded(cv::Size out) {
  const int side = std::max(out.width, out.height);
  return cv::Size(side * 11 / 10 + 4, side * 11 / 10 + 4);
}

cv::Vec3f jitter_color(Rng& rng, cv::Vec3f c, double brightness, double hue) {
  const float b = static_cast<float>(1.0 + rng.normal(0, brightness));
  for (int i = 0; i < 3; ++i) c[i] = std::clamp(c[i] * b + static_cast<float>(rng.normal(0, hue)), 0.f, 1.f);
  return c;
}

Scene texture_scene(cv::Mat image, float backing) {
  Scene s;
  s.background = image * backing;
  s.image = std::move(image);
  s.coverage = cv::Mat::ones(s.image.size(), CV_32F);
  s.feature = std::min(s.image.cols, s.image.rows) * 0.5;
  return s;
}

// One twill weave sample: warp (vertical) threads float over two weft threads, then under one,
// which gives denim's diagonal ribs.
float weave_shade(double u, double v, double period, uint64_t seed, bool* warp_on_top) {
  const double fu = u / period, fv = v / period;
  const int64_t i = static_cast<int64_t>(std::floor(fu)), j = static_cast<int64_t>(std::floor(fv));
  const double ou = fu - i, ov = fv - j;
  *warp_on_top = ((i - j) % 3 + 3) % 3 != 0;
  const double across = *warp_on_top ? ou : ov;
  const double along = *warp_on_top ? ov : ou;
  const double thread = *warp_on_top ? hash_unit(seed, i, 1) : hash_unit(seed, j, 2);
  const double profile = std::pow(std::sin(M_PI * across), 0.7);
  const double bump = 0.85 + 0.15 * std::sin(M_PI * along);
  return static_cast<float>((0.35 + 0.65 * profile) * bump * (0.9 + 0.2 * thread));
}

}  // namespace

Scene render_fabric(Rng& rng, cv::Size out, const Variant&) {
  const cv::Size canvas = padded(out);
  const double s = out.height / 128.0;
  const double period = std::max(3.2, rng.uniform(4.6, 5.4) * s);
  const uint64_t seed = rng.next();
  const cv::Vec3f warp_col = jitter_color(rng, {0.20f, 0.30f, 0.52f}, 0.05, 0.01);
  const cv::Vec3f weft_col = jitter_color(rng, {0.62f, 0.64f, 0.70f}, 0.05, 0.01);
  cv::Mat slub = value_noise(rng, canvas, 2.0 * s, 14.0 * s);  // thicker/thinner thread spans
  cv::Mat fuzz = value_noise(rng, canvas, 1.0, 1.0);
  cv::Mat image(canvas, CV_32FC3);
  for (int y = 0; y < canvas.height; ++y) {
    cv::Vec3f* row = image.ptr<cv::Vec3f>(y);
    for (int x = 0; x < canvas.width; ++x) {
      cv::Vec3f acc(0, 0, 0);
      for (int sy = 0; sy < 2; ++sy)  // 2x2 supersampling against moire
        for (int sx = 0; sx < 2; ++sx) {
          bool warp = false;
          const float sh = weave_shade(x + 0.25 + 0.5 * sx, y + 0.25 + 0.5 * sy, period, seed, &warp);
          acc += (warp ? warp_col : weft_col) * sh;
        }
      const float n = 1.f + 0.10f * slub.at<float>(y, x) + 0.06f * fuzz.at<float>(y, x);
      row[x] = acc * (0.25f * n);
    }
  }
  image = mul3(image, lighting(rng, canvas, 0.12, 0.08));
  image = rotate_crop(image, rng.normal(0, 1.5) + 90.0 * rng.uniform_int(0, 1), out);
  return texture_scene(image, 0.18f);
}

Scene render_brushed_metal(Rng& rng, cv::Size out, const Variant&) {
  const cv::Size canvas = padded(out);
  const double s = out.height / 128.0;
  const float base = static_cast<float>(rng.uniform(0.47, 0.57));
  cv::Mat streak = value_noise(rng, canvas, rng.uniform(40, 90) * s, 1.0);
  cv::Mat fine = value_noise(rng, canvas, 8.0 * s, 1.0);
  cv::Mat broad = fbm(rng, canvas, 64.0 * s, 3);
  cv::Mat field = base + 0.07 * streak + 0.035 * fine + 0.05 * broad;
  field = field.mul(lighting(rng, canvas, 0.25, 0.1));
  cv::Mat image = grey3(field);
  image = rotate_crop(image, rng.normal(0, 2.0), out);
  return texture_scene(image, 0.15f);
}

Scene render_wood(Rng& rng, cv::Size out, const Variant&) {
  // Rings are iso-lines of a distance to a far-away pith, warped by fBm; fibres are noise
  // stretched along the grain, pores short dark dashes.
  const cv::Size canvas = padded(out);
  const double s = out.height / 128.0;
  const double period = rng.uniform(9.0, 15.0) * s;
  // The pith lies well above or below the board: flat-sawn arcs, never a bull's eye.
  const double pith_y = (rng.chance(0.5) ? -1 : 1) * rng.uniform(1.2, 3.0) * out.height + 0.5 * out.height;
  const double pith_x = rng.uniform(-0.5, 1.5) * out.width;
  cv::Mat warp = fbm(rng, canvas, 48.0 * s, 3, 0.5, 3.0);
  cv::Mat fibre = value_noise(rng, canvas, 30.0 * s, 1.2);
  cv::Mat pores = value_noise(rng, canvas, 6.0 * s, 1.0);
  const cv::Vec3f light = jitter_color(rng, {0.80f, 0.62f, 0.42f}, 0.05, 0.015);
  const cv::Vec3f dark = jitter_color(rng, {0.52f, 0.33f, 0.19f}, 0.06, 0.015);
  const double warp_amp = rng.uniform(4.0, 9.0) * s;
  cv::Mat t(canvas, CV_32F);
  for (int y = 0; y < canvas.height; ++y)
    for (int x = 0; x < canvas.width; ++x) {
      const double d = std::hypot(x - pith_x, y - pith_y) + warp_amp * warp.at<float>(y, x);
      const double ring = d / period - std::floor(d / period);
      double late = std::pow(ring, 4.0);  // dark latewood band at the end of each ring
      late = 0.25 + 0.6 * late + 0.10 * fibre.at<float>(y, x);
      if (pores.at<float>(y, x) > 0.82f) late += 0.25;
      t.at<float>(y, x) = static_cast<float>(std::clamp(late, 0.0, 1.0));
    }
  cv::Mat image = colourize(t, light, dark);  // t = 0 light earlywood, 1 dark latewood
  image = mul3(image, lighting(rng, canvas, 0.15, 0.06));
  image = rotate_crop(image, rng.normal(0, 2.0), out);
  return texture_scene(image, 0.2f);
}

Scene render_tile(Rng& rng, cv::Size out, const Variant&) {
  const cv::Size canvas = padded(out);
  const double s = out.height / 128.0;
  const double pitch = out.height / rng.uniform(2.3, 3.0);
  const double grout = pitch * rng.uniform(0.05, 0.07), bevel = pitch * 0.05;
  const double ox = rng.uniform(0, pitch), oy = rng.uniform(0, pitch);
  const uint64_t seed = rng.next();
  const float base = static_cast<float>(rng.uniform(0.62, 0.7));
  cv::Mat mottle = fbm(rng, canvas, 24.0 * s, 4);
  cv::Mat speck = value_noise(rng, canvas, 1.5 * s, 1.5 * s);
  cv::Mat field(canvas, CV_32F);
  for (int y = 0; y < canvas.height; ++y)
    for (int x = 0; x < canvas.width; ++x) {
      const double u = (x + ox) / pitch, v = (y + oy) / pitch;
      const int64_t i = static_cast<int64_t>(std::floor(u)), j = static_cast<int64_t>(std::floor(v));
      const double du = (u - i) * pitch, dv = (v - j) * pitch;  // px from the tile's corner
      const double edge = std::min({du, dv, pitch - du, pitch - dv}) - grout * 0.5;
      float val = base + 0.05f * static_cast<float>(hash_unit(seed, i, j) - 0.5) + 0.05f * mottle.at<float>(y, x) +
                  0.02f * speck.at<float>(y, x);
      if (edge < bevel) {  // raised glaze: lit from the top-left
        const double w = 1.0 - std::clamp(edge / bevel, 0.0, 1.0);
        const bool lit = std::min(du, dv) < std::min(pitch - du, pitch - dv);
        val += static_cast<float>((lit ? 0.08 : -0.08) * w);
      }
      const float g = 1.f - smoothstep(-0.8f, 0.8f, static_cast<float>(edge));
      const float grout_val = 0.36f + 0.05f * speck.at<float>(y, x);
      field.at<float>(y, x) = val * (1.f - g) + grout_val * g;
    }
  field = field.mul(lighting(rng, canvas, 0.15, 0.08));
  cv::Mat image = rotate_crop(grey3(field), rng.normal(0, 1.2), out);
  return texture_scene(image, 0.35f);
}

Scene render_granite(Rng& rng, cv::Size canvas, const Variant&) {
  // Three minerals as soft-thresholded noise: dark mica flecks, pink feldspar, white quartz.
  const double s = canvas.height / 128.0;
  cv::Mat ground = fbm(rng, canvas, 20.0 * s, 4);
  cv::Mat mica = fbm(rng, canvas, 2.2 * s, 2);
  cv::Mat feld = fbm(rng, canvas, 4.0 * s, 3);
  cv::Mat quartz = fbm(rng, canvas, 3.0 * s, 2);
  const cv::Vec3f base = jitter_color(rng, {0.60f, 0.55f, 0.53f}, 0.04, 0.01);
  const cv::Vec3f pink = jitter_color(rng, {0.74f, 0.50f, 0.45f}, 0.04, 0.015);
  const cv::Vec3f white(0.86f, 0.85f, 0.83f), black(0.13f, 0.12f, 0.12f);
  const float mica_thr = static_cast<float>(rng.uniform(0.45, 0.55));
  cv::Mat image(canvas, CV_32FC3);
  for (int y = 0; y < canvas.height; ++y)
    for (int x = 0; x < canvas.width; ++x) {
      cv::Vec3f c = base * (1.f + 0.08f * ground.at<float>(y, x));
      c += (pink - c) * smoothstep(0.15f, 0.3f, feld.at<float>(y, x));
      c += (white - c) * smoothstep(0.35f, 0.5f, quartz.at<float>(y, x));
      c += (black - c) * smoothstep(mica_thr, mica_thr + 0.1f, mica.at<float>(y, x));
      image.at<cv::Vec3f>(y, x) = c;
    }
  image = mul3(image, lighting(rng, canvas, 0.12, 0.05));
  return texture_scene(image, 0.3f);
}

}  // namespace lriad::demo
