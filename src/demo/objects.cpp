// Procedural object categories on a plain background: hex nut, pill, screw, bottle cap, washer.
// Shapes are signed-distance functions evaluated per pixel (anti-aliased edges, shading from
// the distance); pose, size, colour and lighting vary a little from image to image.
#include <algorithm>
#include <cmath>

#include <opencv2/imgproc.hpp>

#include "internal.h"

namespace lriad::demo {
namespace {

float coverage_from_sdf(double d) { return static_cast<float>(std::clamp(0.5 - d, 0.0, 1.0)); }

cv::Mat object_background(Rng& rng, cv::Size sz, float level, cv::Vec3f tint, double texture) {
  cv::Mat f = fbm(rng, sz, sz.height / 6.0, 4);
  cv::Mat grain = value_noise(rng, sz, 1.5, 1.5);
  cv::Mat light = lighting(rng, sz, 0.2, 0.12);
  const float lv = level * static_cast<float>(1.0 + rng.normal(0, 0.04));
  cv::Mat t = (1.0 + texture * f + texture * 0.5 * grain).mul(light) * lv;
  cv::Mat out(sz, CV_32FC3);
  for (int y = 0; y < sz.height; ++y)
    for (int x = 0; x < sz.width; ++x) out.at<cv::Vec3f>(y, x) = tint * t.at<float>(y, x);
  return out;
}

// Shadow of the object on the background, then the object on top.
Scene finish_object(cv::Mat background, const cv::Mat& body, const cv::Mat& alpha, double shadow_px,
                    float shadow_strength, double feature) {
  Scene s;
  cv::Mat shadow;
  const cv::Mat shift = (cv::Mat_<double>(2, 3) << 1, 0, shadow_px * 0.6, 0, 1, shadow_px);
  cv::warpAffine(alpha, shadow, shift, alpha.size(), cv::INTER_LINEAR, cv::BORDER_CONSTANT);
  shadow = blur(shadow, std::max(1.0, shadow_px));
  s.image = mul3(background, 1.0 - shadow_strength * shadow);
  blend(s.image, alpha, body);
  // A broken-off piece takes most of its own shadow with it.
  s.background = mul3(background, 1.0 - 0.5 * shadow_strength * shadow);
  s.coverage = alpha.clone();
  s.feature = feature;
  return s;
}

// Text as a soft alpha, drawn 4x supersampled and rotated about its centre.
cv::Mat text_alpha(cv::Size size, const std::string& text, cv::Point2f center, double height, double angle_deg,
                   double stroke) {
  const int k = 4;
  cv::Mat big = cv::Mat::zeros(size * k, CV_8U);
  const int font = cv::FONT_HERSHEY_SIMPLEX;
  const double scale = height * k / 22.0;  // Hershey simplex capitals are ~22 px at scale 1
  const int thick = std::max(1, static_cast<int>(std::lround(stroke * k)));
  int base = 0;
  const cv::Size ts = cv::getTextSize(text, font, scale, thick, &base);
  const cv::Point org(static_cast<int>(center.x * k - ts.width / 2.0),
                      static_cast<int>(center.y * k + ts.height / 2.0));
  cv::putText(big, text, org, font, scale, cv::Scalar(255), thick, cv::LINE_8);
  cv::Mat rot = cv::getRotationMatrix2D(center * static_cast<float>(k), angle_deg, 1.0);
  cv::warpAffine(big, big, rot, big.size(), cv::INTER_LINEAR);
  cv::Mat small;
  cv::resize(big, small, size, 0, 0, cv::INTER_AREA);
  small.convertTo(small, CV_32F, 1.0 / 255);
  return small;
}

// Anisotropic reflection of a turned (lathe) surface: a bow-tie highlight through the centre.
float turned_metal(double r, double theta, double light, const cv::Mat& rings, int ri) {
  const double bowtie = 0.5 + 0.5 * std::cos(2.0 * (theta - light));
  return static_cast<float>(0.42 + 0.22 * bowtie + 0.05 * rings.at<float>(0, ri));
}

}  // namespace

Scene render_hex_nut(Rng& rng, cv::Size canvas, const Variant&) {
  const double S = canvas.height, W = canvas.width;  // the part's scale, the frame's width
  cv::Mat bg = object_background(rng, canvas, 0.14f, {1, 1, 1}, 0.25);
  const cv::Point2f c(static_cast<float>(W / 2 + rng.normal(0, 0.03 * S)),
                      static_cast<float>(S / 2 + rng.normal(0, 0.03 * S)));
  const double a = 0.31 * S * (1 + rng.normal(0, 0.02));  // apothem
  const double phi = rng.uniform(0, M_PI / 3), light = rng.uniform(0, M_PI);
  const double rc = a * 1.03, rh = a * 0.48, pitch = std::max(1.5, 0.025 * S);
  const int n_rings = std::max(canvas.width, canvas.height);  // one value per px of radius
  cv::Mat rings = value_noise(rng, {n_rings, 1}, 2.0, 1.0);
  cv::Mat body(canvas, CV_32FC3), alpha(canvas, CV_32F);
  for (int y = 0; y < canvas.height; ++y)
    for (int x = 0; x < canvas.width; ++x) {
      const double px = x - c.x, py = y - c.y, r = std::hypot(px, py), th = std::atan2(py, px);
      double dhex = -1e9;
      for (int k = 0; k < 6; ++k) {
        const double n = phi + k * M_PI / 3;
        dhex = std::max(dhex, px * std::cos(n) + py * std::sin(n) - a);
      }
      const int ri = std::min(n_rings - 1, static_cast<int>(r));
      float v = turned_metal(r, th, light, rings, ri);
      if (r > rc) v = 0.6f * v + 0.1f * static_cast<float>(std::cos(th - light));  // chamfer
      if (r < rh * 1.22) {                                                         // threads inside the bore
        v = 0.22f + 0.1f * static_cast<float>(std::sin(2 * M_PI * (r / pitch + th / (2 * M_PI))));
      } else if (r < rh * 1.32) {
        v += 0.15f;  // bright inner chamfer
      }
      body.at<cv::Vec3f>(y, x) = cv::Vec3f(v, v, v);
      alpha.at<float>(y, x) = coverage_from_sdf(dhex) * coverage_from_sdf(rh - r);
    }
  Scene s = finish_object(bg, body, alpha, 0.02 * S, 0.5f, a);
  for (int k = 0; k < 6; ++k) {
    const double ang = phi + M_PI / 6 + k * M_PI / 3;
    const cv::Point2f dir(static_cast<float>(std::cos(ang)), static_cast<float>(std::sin(ang)));
    s.anchors.push_back(
        {c + dir * static_cast<float>(a / std::cos(M_PI / 6)), -dir, static_cast<float>(0.32 * a), false});
  }
  return s;
}

Scene render_pill(Rng& rng, cv::Size canvas, const Variant& v) {
  const double S = canvas.height, W = canvas.width;  // the part's scale, the frame's width
  cv::Mat bg = object_background(rng, canvas, 0.16f, {1.0f, 0.93f, 0.86f}, 0.3);
  const cv::Point2f c(static_cast<float>(W / 2 + rng.normal(0, 0.02 * S)),
                      static_cast<float>(S / 2 + rng.normal(0, 0.02 * S)));
  const double ang = rng.normal(0, 0.05), half = 0.22 * S * (1 + rng.normal(0, 0.02));
  const double R = 0.17 * S * (1 + rng.normal(0, 0.02));
  const cv::Point2f d(static_cast<float>(std::cos(ang)), static_cast<float>(std::sin(ang)));
  const cv::Vec3f cream(0.93f, 0.90f, 0.84f), red(0.80f, 0.36f, 0.30f);
  cv::Mat speck = value_noise(rng, canvas, 1.2, 1.2);
  const float speck_thr = static_cast<float>(rng.uniform(0.72, 0.82));
  // 1. imprint: normal "LR"; print errors lose it, change it, or shift it.
  std::string text = "LR";
  cv::Point2f text_c = c;
  float ink = 0.85f;
  if (v.kind == "print_error") {
    if (v.a < 0.35)
      ink = static_cast<float>(0.15 * v.b);  // missing
    else if (v.a < 0.7)
      text = (v.b < 0.5) ? "L" : (v.b < 0.75 ? "LB" : "IR");  // wrong
    else
      text_c += cv::Point2f(static_cast<float>((0.5 + v.b) * 0.1 * S), static_cast<float>((v.c - 0.5) * 0.15 * S));
  }
  cv::Mat print = text_alpha(canvas, text, text_c, 0.15 * S, -ang * 180 / M_PI, 0.022 * S);
  print = blur(print, 0.4) * ink;
  // 2. body: capsule distance, dome shading and a specular spot
  cv::Mat body(canvas, CV_32FC3), alpha(canvas, CV_32F);
  const cv::Point2f spot = c + cv::Point2f(static_cast<float>(-0.25 * half), static_cast<float>(-0.45 * R));
  for (int y = 0; y < canvas.height; ++y)
    for (int x = 0; x < canvas.width; ++x) {
      const cv::Point2f p(x - c.x, y - c.y);
      const double t = std::clamp(static_cast<double>(p.dot(d)), -half, half);
      const double dseg = cv::norm(p - d * static_cast<float>(t));
      const double h = std::sqrt(std::max(0.0, 1.0 - (dseg / R) * (dseg / R)));
      const double spec = std::exp(-cv::norm(cv::Point2f(x, y) - spot) / (0.25 * R));
      cv::Vec3f col = speck.at<float>(y, x) > speck_thr ? red : cream;
      col += (cv::Vec3f(0.45f, 0.22f, 0.2f) - col) * print.at<float>(y, x);
      body.at<cv::Vec3f>(y, x) =
          col * static_cast<float>(0.62 + 0.38 * h) + cv::Vec3f(1, 1, 1) * static_cast<float>(0.12 * spec);
      alpha.at<float>(y, x) = coverage_from_sdf(dseg - R);
    }
  Scene s = finish_object(bg, body, alpha, 0.025 * S, 0.45f, R);
  const cv::Point2f n(-d.y, d.x);
  for (int k = 0; k < 8; ++k) {  // rim points along both long sides and the two ends
    cv::Point2f pos, in;
    if (k < 6) {
      const float t = static_cast<float>(half * ((k % 3) - 1) * 0.8), side = k < 3 ? 1.f : -1.f;
      pos = c + d * t + n * static_cast<float>(side * R);
      in = -n * side;
    } else {
      const float side = k == 6 ? 1.f : -1.f;
      pos = c + d * static_cast<float>(side * (half + R));
      in = -d * side;
    }
    s.anchors.push_back({pos, in, static_cast<float>(0.3 * R), true});
  }
  return s;
}

Scene render_screw(Rng& rng, cv::Size canvas, const Variant& v) {
  const double S = canvas.height, W = canvas.width;  // the part's scale, the frame's width
  cv::Mat bg = object_background(rng, canvas, 0.8f, {1, 1, 1}, 0.04);
  const double ang = rng.uniform(0, 2 * M_PI);
  const cv::Point2f d(static_cast<float>(std::cos(ang)), static_cast<float>(std::sin(ang)));
  const cv::Point2f n(-d.y, d.x);
  const cv::Point2f c(static_cast<float>(W / 2 + rng.normal(0, 0.04 * S)),
                      static_cast<float>(S / 2 + rng.normal(0, 0.04 * S)));
  const double len = 0.74 * S * (1 + rng.normal(0, 0.02)), head = 0.13 * S, hw = 0.12 * S;
  const double rs = 0.058 * S, pitch = std::max(2.0, 0.045 * S);
  const double a0 = -len / 2 + head, a1 = len / 2, taper = a1 - 0.28 * (a1 - a0);
  const double shade_bias = rng.uniform(-0.05, 0.05);
  // thread_damage: a band of the shaft whose threads are flattened and slightly crushed
  const double dmg_a = a0 + (0.2 + 0.5 * v.a) * (taper - a0), dmg_w = (0.06 + 0.08 * v.b) * S;
  const bool damaged = v.kind == "thread_damage";
  cv::Mat body(canvas, CV_32FC3), alpha(canvas, CV_32F);
  for (int y = 0; y < canvas.height; ++y)
    for (int x = 0; x < canvas.width; ++x) {
      const cv::Point2f p(x - c.x, y - c.y);
      const double a = p.dot(d), b = p.dot(n);
      const bool in_dmg = damaged && std::abs(a - dmg_a) < dmg_w;
      double r = a < taper ? rs : rs * (1.0 - 0.85 * (a - taper) / (a1 - taper));
      const double tri = std::abs(std::fmod((a + 0.35 * b) / pitch + 1000.0, 1.0) - 0.5) * 2;
      if (!in_dmg)
        r += 0.12 * rs * (tri - 0.5) * (a < taper ? 1 : 0.5);  // thread crests
      else
        r *= 0.9;
      const double d_shaft = std::max({std::abs(b) - r, a - a1, a0 - 0.5 - a});
      const double hx = std::abs(a - (a0 - head / 2)) - head / 2 + 0.02 * S;
      const double hy = std::abs(b) - hw + 0.02 * S;
      const double d_head =
          std::hypot(std::max(hx, 0.0), std::max(hy, 0.0)) + std::min(std::max(hx, hy), 0.0) - 0.02 * S;
      double val;
      if (d_head < d_shaft) {
        const double h = std::sqrt(std::max(0.0, 1.0 - (b / hw) * (b / hw)));
        val = 0.2 + 0.3 * h * h + 0.1 * (a < a0 - head * 0.8);
      } else {
        const double h = std::sqrt(std::max(0.0, 1.0 - std::min(1.0, (b / rs) * (b / rs))));
        const double thread = in_dmg ? 0.5 : tri;
        val = 0.18 + 0.28 * h * (0.55 + 0.45 * thread) + 0.18 * std::exp(-std::pow((b / rs + 0.35) * 3, 2));
      }
      const float vv = static_cast<float>(val + shade_bias);
      body.at<cv::Vec3f>(y, x) = cv::Vec3f(vv, vv, vv);
      alpha.at<float>(y, x) = coverage_from_sdf(std::min(d_head, d_shaft));
    }
  Scene s = finish_object(bg, body, alpha, 0.02 * S, 0.3f, rs * 2.5);
  s.anchors.push_back({c + d * static_cast<float>(a1), -d, static_cast<float>(0.16 * S), false});
  return s;
}

Scene render_bottle_cap(Rng& rng, cv::Size canvas, const Variant& v) {
  const double S = canvas.height, W = canvas.width;  // the part's scale, the frame's width
  cv::Mat bg = object_background(rng, canvas, 0.78f, {0.98f, 0.96f, 0.92f}, 0.05);
  const cv::Point2f c(static_cast<float>(W / 2 + rng.normal(0, 0.03 * S)),
                      static_cast<float>(S / 2 + rng.normal(0, 0.03 * S)));
  const double R = 0.38 * S * (1 + rng.normal(0, 0.015)), rot = rng.uniform(0, 360);
  const cv::Vec3f paint(0.72f + static_cast<float>(rng.normal(0, 0.02)), 0.12f, 0.11f);
  const int ridges = std::max(24, static_cast<int>(2 * M_PI * R / std::max(3.0, 0.04 * S)));
  // 1. print: a ring and "LR"; print errors drop the text, break the ring, or shift it all
  cv::Point2f pc = c;
  bool text_on = true;
  double gap = 0.0;
  if (v.kind == "print_error") {
    if (v.a < 0.35)
      text_on = false;
    else if (v.a < 0.7)
      gap = (0.6 + 1.2 * v.b);  // radians of missing ring
    else
      pc += cv::Point2f(static_cast<float>((0.08 + 0.08 * v.b) * R), static_cast<float>((v.c - 0.5) * 0.2 * R));
  }
  cv::Mat ink = text_on ? text_alpha(canvas, "LR", pc, 0.2 * S, rot, 0.03 * S) : cv::Mat::zeros(canvas, CV_32F);
  const double gap_at = rot * M_PI / 180;
  cv::Mat body(canvas, CV_32FC3), alpha(canvas, CV_32F);
  for (int y = 0; y < canvas.height; ++y)
    for (int x = 0; x < canvas.width; ++x) {
      const double px = x - c.x, py = y - c.y, r = std::hypot(px, py), th = std::atan2(py, px);
      double shade;
      if (r > 0.86 * R) {  // knurled skirt, rounding off towards the outer edge
        const double t = (r - 0.86 * R) / (0.14 * R);
        shade = (0.8 + 0.2 * std::cos(ridges * th)) * (1.0 - 0.45 * t * t);
      } else {
        shade = 0.95 - 0.08 * r / R - 0.35 * std::exp(-std::pow((r - 0.85 * R) / (0.015 * S + 0.5), 2));
      }
      const double spec = std::exp(-std::hypot(px + 0.35 * R, py + 0.35 * R) / (0.22 * R));
      const double rr = std::hypot(x - pc.x, y - pc.y), tp = std::atan2(y - pc.y, x - pc.x);
      const double dang = std::abs(std::remainder(tp - gap_at, 2 * M_PI));
      const float ring = (dang < gap / 2) ? 0.f : coverage_from_sdf(std::abs(rr - 0.6 * R) - 0.025 * S);
      const float w = std::max(ring, ink.at<float>(y, x)) * 0.9f;
      cv::Vec3f col = paint + (cv::Vec3f(0.93f, 0.92f, 0.9f) - paint) * w;
      body.at<cv::Vec3f>(y, x) = col * static_cast<float>(shade) + cv::Vec3f(1, 1, 1) * static_cast<float>(0.22 * spec);
      alpha.at<float>(y, x) = coverage_from_sdf(r - R);
    }
  return finish_object(bg, body, alpha, 0.03 * S, 0.35f, R);
}

Scene render_washer(Rng& rng, cv::Size canvas, const Variant& v) {
  const double S = canvas.height, W = canvas.width;  // the part's scale, the frame's width
  cv::Mat bg = object_background(rng, canvas, 0.3f, {1, 1, 1}, 0.15);
  const cv::Point2f c(static_cast<float>(W / 2 + rng.normal(0, 0.03 * S)),
                      static_cast<float>(S / 2 + rng.normal(0, 0.03 * S)));
  const double R = 0.37 * S * (1 + rng.normal(0, 0.015)), r_in = 0.42 * R;
  const double light = rng.uniform(0, M_PI);
  const int n_rings = std::max(canvas.width, canvas.height);
  cv::Mat rings = value_noise(rng, {n_rings, 1}, 1.5, 1.0);
  cv::Point2f hc = c;  // misplaced: the punched hole is off centre
  if (v.kind == "misplaced") {
    const double off = (0.03 + 0.05 * v.a) * S, t = 2 * M_PI * v.b;
    hc += cv::Point2f(static_cast<float>(off * std::cos(t)), static_cast<float>(off * std::sin(t)));
  }
  cv::Mat body(canvas, CV_32FC3), alpha(canvas, CV_32F);
  for (int y = 0; y < canvas.height; ++y)
    for (int x = 0; x < canvas.width; ++x) {
      const double px = x - c.x, py = y - c.y, r = std::hypot(px, py), th = std::atan2(py, px);
      const double rh = std::hypot(x - hc.x, y - hc.y);
      const int ri = std::min(n_rings - 1, static_cast<int>(r));
      float val = turned_metal(r, th, light, rings, ri);
      const double edge = std::min(R - r, rh - r_in);  // rounded edges catch the light
      if (edge < 0.03 * S) val += 0.12f * static_cast<float>(1.0 - edge / (0.03 * S));
      body.at<cv::Vec3f>(y, x) = cv::Vec3f(val, val, val);
      alpha.at<float>(y, x) = coverage_from_sdf(r - R) * coverage_from_sdf(r_in - rh);
    }
  Scene s = finish_object(bg, body, alpha, 0.02 * S, 0.45f, R * 0.6);
  return s;
}

}  // namespace lriad::demo
