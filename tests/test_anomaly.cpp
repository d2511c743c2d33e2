// Tests for the mask-free training anomalies: footprint bounds the change, determinism,
// diversity of size and place, the kind mix, names, and placement on objects.
#include <cmath>
#include <filesystem>
#include <random>
#include <set>

#include <gtest/gtest.h>
#include <opencv2/imgcodecs.hpp>
#include <opencv2/imgproc.hpp>

#include "../src/anomaly/internal.h"
#include "lriad/anomaly/anomaly.h"
#include "lriad/data/image_io.h"
#include "lriad/io/error.h"
#include "lriad/util/image_ops.h"
#include "lriad/util/rng.h"

using namespace lriad::data;
using namespace lriad::anomaly;

namespace {

// A colour texture: two gradients, a woven sinusoid and per-pixel noise (+-0.06).
cv::Mat texture(int n, uint32_t seed) {
  std::mt19937 gen(seed);
  cv::Mat m(n, n, CV_32FC3);
  for (int y = 0; y < n; ++y)
    for (int x = 0; x < n; ++x) {
      const float g = static_cast<float>(gen()) / 4294967296.f * 0.12f - 0.06f;
      const float w = 0.08f * std::sin(x * 0.9f) * std::sin(y * 0.7f);
      m.at<cv::Vec3f>(y, x) = cv::Vec3f(0.3f + 0.4f * x / n + g + w, 0.35f + 0.3f * y / n + g + w, 0.5f + g);
    }
  return m;
}

// An object: a shaded disc of radius 0.3 n on a flat dark background with faint noise.
constexpr float kDiscRadius = 0.3f;
cv::Mat disc(int n, uint32_t seed) {
  std::mt19937 gen(seed);
  cv::Mat m(n, n, CV_32FC3);
  const float c = n / 2.f, r = kDiscRadius * n;
  for (int y = 0; y < n; ++y)
    for (int x = 0; x < n; ++x) {
      const float g = static_cast<float>(gen()) / 4294967296.f * 0.02f - 0.01f;
      const float d = std::hypot(x + 0.5f - c, y + 0.5f - c);
      const float shade = 0.85f + 0.15f * (c - x) / n;
      m.at<cv::Vec3f>(y, x) = d < r ? cv::Vec3f(0.75f, 0.6f, 0.4f) * shade + cv::Vec3f::all(g)
                                    : cv::Vec3f(0.15f, 0.15f, 0.18f) + cv::Vec3f::all(g);
    }
  return m;
}

bool on_disc(const Anomaly& a) { return std::hypot(a.cx - 0.5f, a.cy - 0.5f) < kDiscRadius; }

double mean_change_inside(const Anomaly& a, const cv::Mat& normal) {
  cv::Mat d;
  cv::absdiff(a.image, normal, d);
  const cv::Scalar s = cv::mean(d, a.footprint);
  return (s[0] + s[1] + s[2]) / 3;
}

}  // namespace

TEST(AnomalyNames, RoundTripAndTypeWords) {
  EXPECT_EQ(all_anomaly_kinds().size(), 8u);
  for (AnomalyKind k : all_anomaly_kinds()) EXPECT_EQ(parse_anomaly_kind(to_string(k)), k) << to_string(k);
  EXPECT_EQ(parse_anomaly_kind("scratches"), std::nullopt);
  EXPECT_EQ(parse_anomaly_kind(""), std::nullopt);
  EXPECT_EQ(parse_anomaly_kind("Scratch"), std::nullopt);  // names are lower case
  const std::map<AnomalyKind, std::string> words = {{AnomalyKind::CutPaste, "foreign patch"},
                                                    {AnomalyKind::TextureBlend, "contamination"},
                                                    {AnomalyKind::Scratch, "scratch"},
                                                    {AnomalyKind::Crack, "crack"},
                                                    {AnomalyKind::Hole, "hole"},
                                                    {AnomalyKind::Stain, "stain"},
                                                    {AnomalyKind::MissingPart, "missing part"},
                                                    {AnomalyKind::MisplacedPart, "misplaced part"}};
  for (const auto& [k, w] : words) {
    Anomaly a;
    a.kind = k;
    EXPECT_EQ(a.type_name(), w);
  }
}

// Every kind on a 64 px and a 128 px texture and on an object: the change is visible inside
// the footprint and exactly zero outside it. 0.015 mean |change| is ~4 grey levels of an
// 8-bit PNG (the driver redraws anything under min_visible = 0.02, and keeps the best draw).
TEST(AnomalyKinds, ChangeStaysInsideFootprint) {
  const std::vector<cv::Mat> normals = {texture(64, 1), texture(128, 2), disc(128, 3)};
  const cv::Mat donor64 = texture(64, 9), donor128 = disc(128, 8);
  for (AnomalyKind k : all_anomaly_kinds())
    for (size_t i = 0; i < normals.size(); ++i)
      for (uint64_t seed = 0; seed < 5; ++seed) {
        const cv::Mat& n = normals[i];
        const Anomaly a = make_anomaly(n, n.cols == 64 ? donor64 : donor128, k, seed);
        SCOPED_TRACE(std::string(to_string(k)) + " image " + std::to_string(i) + " seed " + std::to_string(seed));
        ASSERT_EQ(a.kind, k);
        ASSERT_EQ(a.image.type(), CV_32FC3);
        ASSERT_EQ(a.image.size(), n.size());
        ASSERT_EQ(a.footprint.type(), CV_8UC1);
        ASSERT_EQ(a.footprint.size(), n.size());
        double lo, hi;
        cv::minMaxLoc(a.footprint, &lo, &hi);
        EXPECT_LE(hi, 1.0);  // 0/1, not 0/255
        const int area = cv::countNonZero(a.footprint);
        EXPECT_GT(area, 0);
        EXPECT_LT(area, static_cast<int>(n.total() / 2));
        EXPECT_GT(mean_change_inside(a, n), 0.015);
        cv::Mat d;
        cv::absdiff(a.image, n, d);
        EXPECT_EQ(cv::norm(d, cv::NORM_INF, a.footprint == 0), 0.0);
        cv::minMaxLoc(a.image.reshape(1), &lo, &hi);
        EXPECT_GE(lo, 0.0);
        EXPECT_LE(hi, 1.0);
        EXPECT_GE(a.cx, 0.f);
        EXPECT_LT(a.cx, 1.f);
        EXPECT_GE(a.cy, 0.f);
        EXPECT_LT(a.cy, 1.f);
      }
}

TEST(AnomalyKinds, SameSeedSameImageOtherSeedOtherImage) {
  const cv::Mat n = texture(64, 4), donor = texture(64, 5);
  for (AnomalyKind k : all_anomaly_kinds()) {
    const Anomaly a = make_anomaly(n, donor, k, 42), b = make_anomaly(n, donor, k, 42);
    const Anomaly c = make_anomaly(n, donor, k, 43);
    EXPECT_EQ(cv::norm(a.image, b.image, cv::NORM_INF), 0.0) << to_string(k);
    EXPECT_EQ(cv::norm(a.footprint, b.footprint, cv::NORM_INF), 0.0) << to_string(k);
    EXPECT_GT(cv::norm(a.image, c.image, cv::NORM_INF), 0.0) << to_string(k);
  }
}

// 50 seeds per kind: footprint areas span >= 4x and centroids reach >= 6 of the 9 cells.
TEST(AnomalyKinds, SizeAndPlaceVary) {
  const cv::Mat n = texture(128, 6), donor = texture(128, 7);
  for (AnomalyKind k : all_anomaly_kinds()) {
    int min_area = INT32_MAX, max_area = 0;
    std::set<int> cells;
    for (uint64_t seed = 0; seed < 50; ++seed) {
      const Anomaly a = make_anomaly(n, donor, k, seed);
      const int area = cv::countNonZero(a.footprint);
      min_area = std::min(min_area, area);
      max_area = std::max(max_area, area);
      cells.insert(static_cast<int>(a.cy * 3) * 3 + static_cast<int>(a.cx * 3));
    }
    EXPECT_GE(max_area, 4 * min_area) << to_string(k) << ": areas " << min_area << ".." << max_area;
    EXPECT_GE(cells.size(), 6u) << to_string(k);
  }
}

// On an object, anomalies land on it: > 80% of the footprint centroids inside the disc.
TEST(AnomalyKinds, ObjectsGetAnomaliesOnTheObject) {
  const cv::Mat n = disc(96, 10), donor = texture(96, 11);
  for (AnomalyKind k : all_anomaly_kinds()) {
    int on = 0;
    for (uint64_t seed = 0; seed < 50; ++seed) on += on_disc(make_anomaly(n, donor, k, seed));
    EXPECT_GT(on, 40) << to_string(k);
  }
}

TEST(AnomalyPlaces, APointIsReadAtAPixelInsideTheImage) {
  // A point drawn in [0, n) rounds to n about half the time in its last half pixel.
  const cv::Size size(8, 6);
  EXPECT_EQ(lriad::util::pixel_of({7.6f, 5.7f}, size), cv::Point(7, 5));
  EXPECT_EQ(lriad::util::pixel_of({-0.7f, 2.4f}, size), cv::Point(0, 2));
  EXPECT_EQ(lriad::util::pixel_of({3.5f, 2.49f}, size), cv::Point(cv::Point2f(3.5f, 2.49f)));  // cvRound inside
}

TEST(AnomalyPlaces, WhatLiesBeyondTheImageNeverChangesADraw) {
  // An object filling the image to its right and bottom edges: its deepest pixels (fg_dist) sit on
  // the last column and row, and a point drawn there rounds off the image. The distance map is a
  // view of a larger buffer; its extra row and column hold 0 or 1e9. Reading them (as training did
  // before: whatever memory followed decided a hole's place, differently from run to run) would
  // make the draws differ.
  const int n = 16;
  std::vector<cv::Point2f> drawn[2];
  for (int v = 0; v < 2; ++v) {
    cv::Mat buffer(n + 1, n + 1, CV_32F, cv::Scalar(v ? 1e9f : 0.f));
    lriad::anomaly::detail::Context c;
    c.image = cv::Mat(n, n, CV_32FC3, cv::Scalar::all(0.5f));
    c.part = true;
    c.fg_dist = buffer(cv::Rect(0, 0, n, n));
    c.fg_dist.setTo(0.f);
    for (int i = 0; i < n; ++i) {
      c.fg_dist.at<float>(n - 1, i) = c.fg_dist.at<float>(i, n - 1) = 1.f;
      c.fg_points.emplace_back(i, n - 1);
      c.fg_points.emplace_back(n - 1, i);
    }
    AnomalyParams p;
    c.p = &p;
    for (uint64_t seed = 0; seed < 64; ++seed) {
      lriad::util::Rng inner(seed), edge(seed);
      drawn[v].push_back(lriad::anomaly::detail::draw_inner_point(inner, c, 4.0));
      drawn[v].push_back(lriad::anomaly::detail::draw_edge_point(edge, c, 0.5));
    }
  }
  ASSERT_EQ(drawn[0].size(), drawn[1].size());
  for (size_t i = 0; i < drawn[0].size(); ++i) EXPECT_EQ(drawn[0][i], drawn[1][i]) << "draw " << i;
}

TEST(AnomalyMix, ZeroWeightKindsNeverAppear) {
  const cv::Mat n = texture(64, 12);
  for (uint64_t seed = 0; seed < 40; ++seed) {
    const Anomaly a = make_random_anomaly(n, n, {{AnomalyKind::Scratch, 1.0}, {AnomalyKind::Hole, 0.0}}, seed);
    EXPECT_EQ(a.kind, AnomalyKind::Scratch);
  }
}

// 300 draws: each frequency within +-0.08 of its weight (~3 binomial standard deviations).
TEST(AnomalyMix, FrequenciesFollowWeights) {
  const cv::Mat n = texture(64, 13);
  const std::map<AnomalyKind, double> mix = {
      {AnomalyKind::Scratch, 0.5}, {AnomalyKind::Stain, 0.3}, {AnomalyKind::Hole, 0.2}, {AnomalyKind::Crack, 0.0}};
  std::map<AnomalyKind, int> count;
  for (uint64_t seed = 0; seed < 300; ++seed) ++count[make_random_anomaly(n, {}, mix, seed).kind];
  for (const auto& [k, w] : mix) EXPECT_NEAR(count[k] / 300.0, w, 0.08) << to_string(k);
  // The anomaly equals make_anomaly with the picked kind and the same seed.
  const Anomaly r = make_random_anomaly(n, {}, mix, 7);
  EXPECT_EQ(cv::norm(r.image, make_anomaly(n, {}, r.kind, 7).image, cv::NORM_INF), 0.0);
}

TEST(AnomalyInputs, BadInputsThrowWithReasons) {
  const cv::Mat n = texture(64, 14);
  cv::Mat u8;
  n.convertTo(u8, CV_8UC3, 255);
  EXPECT_THROW(make_anomaly(u8, {}, AnomalyKind::Hole, 0), lriad::Error);
  EXPECT_THROW(make_anomaly(cv::Mat(), {}, AnomalyKind::Hole, 0), lriad::Error);
  EXPECT_THROW(make_anomaly(n, texture(32, 1), AnomalyKind::CutPaste, 0), lriad::Error);  // donor size
  EXPECT_THROW(make_random_anomaly(n, {}, {}, 0), lriad::Error);
  EXPECT_THROW(make_random_anomaly(n, {}, {{AnomalyKind::Hole, -1.0}}, 0), lriad::Error);
  AnomalyParams p;
  p.scale_min = 0.3f;
  p.scale_max = 0.1f;  // min > max
  EXPECT_THROW(p.validate(), lriad::Error);
  AnomalyParams q;
  q.blend_max = 1.5f;
  EXPECT_THROW(make_anomaly(n, {}, AnomalyKind::TextureBlend, 0, q), lriad::Error);
  EXPECT_NO_THROW(AnomalyParams{}.validate());
}

TEST(AnomalyKinds, GreyImagesStayGrey) {
  cv::Mat g;
  cv::cvtColor(texture(64, 15), g, cv::COLOR_RGB2GRAY);
  cv::cvtColor(g, g, cv::COLOR_GRAY2RGB);
  const cv::Mat donor = texture(64, 16);  // a colour donor must not colour a grey image
  for (AnomalyKind k : all_anomaly_kinds())
    for (uint64_t seed = 0; seed < 4; ++seed) {
      const Anomaly a = make_anomaly(g, donor, k, seed);
      std::vector<cv::Mat> ch;
      cv::split(a.image, ch);
      EXPECT_LT(cv::norm(ch[0], ch[1], cv::NORM_INF), 1e-5) << to_string(k);
      EXPECT_LT(cv::norm(ch[1], ch[2], cv::NORM_INF), 1e-5) << to_string(k);
    }
}

// A look at every kind on demo-dataset images (run with --gtest_also_run_disabled_tests after
// `lriad synth --out /tmp/anom_demo`): rows = images, columns = normal then the 8 kinds.
TEST(AnomalyKinds, DISABLED_Montage) {
  const std::string root = "/tmp/anom_demo";
  ASSERT_TRUE(std::filesystem::exists(root)) << "run lriad synth --out " << root << " first";
  std::vector<std::string> cats;
  for (const auto& e : std::filesystem::directory_iterator(root))
    if (e.is_directory()) cats.push_back(e.path().filename().string());
  std::sort(cats.begin(), cats.end());
  const int s = 128;
  std::vector<cv::Mat> rows;
  for (size_t ci = 0; ci < cats.size(); ++ci)
    for (int v = 0; v < 2; ++v) {
      const std::string dir = root + "/" + cats[ci] + "/train/good/";
      const cv::Mat img = resize_square(read_image(dir + (v ? "001.png" : "000.png")), s);
      const cv::Mat donor =
          resize_square(read_image(root + "/" + cats[(ci + 3) % cats.size()] + "/train/good/002.png"), s);
      std::vector<cv::Mat> row{img};
      for (AnomalyKind k : all_anomaly_kinds()) row.push_back(make_anomaly(img, donor, k, ci * 10 + v).image);
      cv::Mat r;
      cv::hconcat(row, r);
      rows.push_back(r);
    }
  cv::Mat all, out;
  cv::vconcat(rows, all);
  all.convertTo(out, CV_8UC3, 255);
  cv::cvtColor(out, out, cv::COLOR_RGB2BGR);
  cv::imwrite("/tmp/anomaly_montage.png", out);
  // Zoomed views small enough to look at: 4 rows x (normal + 4 kinds), 2x nearest.
  for (int r0 = 0, part = 0; r0 < out.rows; r0 += 4 * s)
    for (int half = 0; half < 2; ++half, ++part) {
      const cv::Rect rows4(0, r0, s, std::min(4 * s, out.rows - r0));
      cv::Mat view;
      cv::hconcat(out(rows4), out(cv::Rect(s * (1 + 4 * half), r0, 4 * s, rows4.height)), view);
      cv::resize(view, view, {}, 2, 2, cv::INTER_NEAREST);
      cv::imwrite("/tmp/anomaly_view_" + std::to_string(part) + ".png", view);
    }
}
