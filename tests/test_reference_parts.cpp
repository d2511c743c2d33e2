// The normal reference of parts on a plain background: the comparison in a canonical pose, the fine
// comparison of lines half a pixel wide at the model's side, and round parts' ring-by-ring fit.
#include <gtest/gtest.h>

#include <algorithm>
#include <cstdio>
#include <numeric>

#include <opencv2/core.hpp>
#include <opencv2/imgproc.hpp>
#include <torch/cuda.h>
#include <torch/torch.h>

#include "fixtures.h"
#include "reference_fixtures.h"
#include "lriad/anomaly/anomaly.h"
#include "lriad/data/image_io.h"
#include "lriad/io/error.h"
#include "lriad/model/policy_input.h"
#include "lriad/reference/patch_distance.h"
#include "lriad/reference/reference.h"

using namespace lriad;
using namespace lriad::model;
using namespace lriad::test;

TEST(NormalReference, PartsAtOtherPosesAreComparedInACanonicalPose) {
  // Eight normal parts at random places and angles; a texture-like category beside them.
  std::map<std::string, std::array<std::vector<cv::Mat>, 2>> halves;
  cv::RNG rng(11);
  for (int i = 0; i < 8; ++i) {
    halves["screw"][size_t(i % 2)].push_back(
        test::draw_part(48, rng.uniform(20.0, 28.0), rng.uniform(20.0, 28.0), rng.uniform(0.0, 360.0), uint64_t(i)));
    halves["plate"][size_t(i % 2)].push_back(grey(48, 50 + uint64_t(i)));
  }
  reference::NormalReference::Options o;
  o.patch = 3;
  o.bank_size = 2000;
  o.shift = 2;
  const auto ref = reference::NormalReference::build(halves, o);
  EXPECT_TRUE(ref.aligned("screw"));
  EXPECT_FALSE(ref.aligned("plate"));
  o.align = false;
  const auto unaligned = reference::NormalReference::build(halves, o);
  EXPECT_FALSE(unaligned.aligned("screw"));

  // A normal part at a pose none of the normals has: near the typical peak when aligned.
  const auto normal = test::draw_part(48, 25, 22, 137, 99);
  const double peak = ref.deviation(normal, "screw").max().item<double>();
  EXPECT_LT(peak, 2.0);
  // A bright spot on the shaft stands out, and the map's peak is on the spot in the image's own frame.
  const auto bad = test::draw_part(48, 25, 22, 137, 99, 8);
  const auto map = ref.deviation(bad, "screw");  // (S,S)
  ASSERT_EQ(map.sizes(), torch::IntArrayRef({48, 48}));
  EXPECT_GT(map.max().item<double>(), 3 * peak);
  const int64_t at = map.argmax().item<int64_t>(), y = at / 48, x = at % 48;
  const double t = 137 * M_PI / 180.0;
  const double sx = 25 + 5 * std::cos(t), sy = 22 - 5 * std::sin(t);  // the spot: 5 px along the axis
  EXPECT_LE(std::hypot(double(x) - sx, double(y) - sy), 3.0) << x << "," << y;

  // Save/load keeps the aligned comparison.
  const auto back = saved_and_loaded(ref, "lriad_reference_pose_test");
  EXPECT_TRUE(back.aligned("screw"));
  EXPECT_FALSE(back.aligned("plate"));
  EXPECT_TRUE(torch::allclose(back.deviation(bad, "screw", 1), ref.deviation(bad, "screw", 1)));
}

// A part drawn at 48 px and enlarged to 96 (the "photograph"), optionally with a 1-px bright line
// across its shaft: at the model's 48 px the line is half a pixel wide.
cv::Mat part96(double cx, double cy, double degrees, uint64_t seed, bool line) {
  cv::Mat big;
  cv::resize(test::draw_part(48, cx, cy, degrees, seed), big, cv::Size(96, 96), 0, 0, cv::INTER_LINEAR);
  if (line) {
    const double t = degrees * M_PI / 180.0, ux = std::cos(t), uy = -std::sin(t);
    const cv::Point2d mid(2 * (cx - 3 * ux), 2 * (cy - 3 * uy)), across(-uy * 5, ux * 5);
    cv::line(big, cv::Point(mid - across), cv::Point(mid + across), cv::Scalar(0.5, 0.5, 0.5), 1, cv::LINE_8);
  }
  return big;
}

TEST(NormalReference, FineComparisonSeesALineThatIsHalfAPixelAtTheModelsSide) {
  std::map<std::string, std::array<std::vector<cv::Mat>, 2>> halves;
  cv::RNG rng(5);
  for (int i = 0; i < 10; ++i) {
    halves["screw"][size_t(i % 2)].push_back(
        part96(rng.uniform(21.0, 27.0), rng.uniform(21.0, 27.0), rng.uniform(0.0, 360.0), uint64_t(i), false));
    cv::Mat plate;
    cv::resize(grey(48, 70 + uint64_t(i)), plate, cv::Size(96, 96));
    halves["plate"][size_t(i % 2)].push_back(plate);
  }
  reference::NormalReference::Options o;
  o.patch = 3;
  o.bank_size = 2000;
  o.shift = 2;
  o.side = 48;
  const auto coarse = reference::NormalReference::build(halves, o);
  o.fine_side = 96;
  o.fine_sigma = 2.0;
  o.fine_shift = 2;
  o.neighbours = 3;
  const auto ref = reference::NormalReference::build(halves, o);
  EXPECT_TRUE(ref.fine("screw"));
  EXPECT_FALSE(ref.polar("screw"));  // elongated: the high-passed luminance
  EXPECT_FALSE(ref.fine("plate"));   // textures keep the patch bank at the model's side
  EXPECT_FALSE(coarse.fine("screw"));
  // Images smaller than fine_side get none: its normals would be enlarged, blurrier than its inputs.
  std::map<std::string, std::array<std::vector<cv::Mat>, 2>> small;
  for (int h = 0; h < 2; ++h)
    for (const auto& img : halves["screw"][size_t(h)])
      small["screw"][size_t(h)].push_back(data::resize_square(img, 48));
  const auto from_small = reference::NormalReference::build(small, o);
  EXPECT_TRUE(from_small.aligned("screw"));
  EXPECT_FALSE(from_small.fine("screw"));

  const cv::Mat normal = part96(24, 23, 61, 77, false), bad = part96(24, 23, 61, 77, true);
  const auto map = ref.deviation(bad, "screw");  // maps come back at the model's side
  ASSERT_EQ(map.sizes(), torch::IntArrayRef({48, 48}));
  EXPECT_EQ(ref.with_deviation(bad, "screw").sizes(), torch::IntArrayRef({4, 48, 48}));
  const double normal_peak = ref.deviation(normal, "screw").max().item<double>();
  const double fine_peak = map.max().item<double>(), coarse_peak = coarse.deviation(bad, "screw").max().item<double>();
  EXPECT_LT(normal_peak, 2.0);              // both maps are normalised to their normal peaks
  EXPECT_GT(fine_peak, 2 * normal_peak);    // the line stands out...
  EXPECT_GT(fine_peak, 1.5 * coarse_peak);  // ...more than at 48 px alone
  // On the line (the shaft 3 px from the centre, at the model's side), in the image's own frame.
  const int64_t at = map.argmax().item<int64_t>(), y = at / 48, x = at % 48;
  const double t = 61 * M_PI / 180.0;
  EXPECT_LE(std::hypot(double(x) - (24 - 3 * std::cos(t)), double(y) - (23 + 3 * std::sin(t))), 3.5) << x << "," << y;
  // The texture's map is the same as without the fine comparison.
  EXPECT_TRUE(torch::allclose(ref.deviation(halves["plate"][1][0], "plate", 0),
                              coarse.deviation(halves["plate"][1][0], "plate", 0)));

  const auto back = saved_and_loaded(ref, "lriad_reference_fine_test");
  EXPECT_TRUE(back.fine("screw"));
  EXPECT_EQ(back.options().side, 48);
  EXPECT_EQ(back.options().fine_side, 96);
  EXPECT_TRUE(torch::allclose(back.deviation(bad, "screw", 1), ref.deviation(bad, "screw", 1)));

  // The comparison by place and the fine one run where the reference was moved (a GPU's, with
  // --device cuda), and give the host's maps.
  std::vector<torch::Device> devices = {torch::kCPU};
  if (torch::cuda::is_available()) devices.emplace_back(torch::kCUDA);
  for (const auto& device : devices) {
    auto moved = ref;
    moved.to(device);
    const auto got = moved.deviation(bad, "screw");
    EXPECT_TRUE(got.device().is_cpu());
    EXPECT_LT((got - map).abs().max().item<float>(), device.is_cpu() ? 1e-6f : 2e-3f) << device;
  }
}

// A turned round part at 96 px: turning marks of its own along the radius (two waves of random
// phase), a bow-tie highlight at its own angle, a bore; optionally a bright 1-px scratch on the face.
cv::Mat turned96(cv::RNG& rng, bool scratch) {
  const int S = 96;
  const double cx = 48 + rng.uniform(-3.0, 3.0), cy = 48 + rng.uniform(-3.0, 3.0);
  const double light = rng.uniform(0.0, M_PI), p1 = rng.uniform(0.0, 2 * M_PI), p2 = rng.uniform(0.0, 2 * M_PI);
  cv::Mat img(S, S, CV_32FC3);
  for (int y = 0; y < S; ++y)
    for (int x = 0; x < S; ++x) {
      const double r = std::hypot(x - cx, y - cy), t = std::atan2(y - cy, x - cx);
      const double cover = std::clamp(30.5 - r, 0.0, 1.0) * std::clamp(r - 10.5, 0.0, 1.0);
      const double face = 0.45 + 0.2 * (0.5 + 0.5 * std::cos(2 * (t - light))) + 0.05 * std::sin(r / 0.9 + p1) +
                          0.04 * std::sin(r / 1.7 + p2);
      const float v = float(0.12 + cover * (face - 0.12));
      img.at<cv::Vec3f>(y, x) = cv::Vec3f(v, v, v);
    }
  if (scratch)
    cv::line(img, cv::Point(int(cx) + 6, int(cy) - 20), cv::Point(int(cx) + 18, int(cy) - 8), cv::Scalar::all(0.85), 1,
             cv::LINE_8);
  return img;
}

TEST(NormalReference, RoundPartsAreComparedAfterARingByRingFit) {
  std::map<std::string, std::array<std::vector<cv::Mat>, 2>> halves;
  cv::RNG rng(11);
  for (int i = 0; i < 16; ++i) halves["nut"][size_t(i % 2)].push_back(turned96(rng, false));
  reference::NormalReference::Options o;
  o.patch = 3;
  o.shift = 2;
  o.side = 48;
  o.fine_side = 96;
  o.fine_shift = 2;
  o.neighbours = 4;
  const auto ref = reference::NormalReference::build(halves, o);
  o.polar = false;
  const auto highpass = reference::NormalReference::build(halves, o);
  ASSERT_TRUE(ref.fine("nut"));
  EXPECT_TRUE(ref.polar("nut"));
  EXPECT_FALSE(highpass.polar("nut"));

  std::vector<double> normal, scratched, normal_hp, scratched_hp;
  for (int i = 0; i < 6; ++i) {
    cv::RNG a(100 + uint64_t(i)), b(100 + uint64_t(i));
    const cv::Mat good = turned96(a, false), bad = turned96(b, true);  // the same part, with and without
    normal.push_back(ref.deviation(good, "nut").max().item<double>());
    scratched.push_back(ref.deviation(bad, "nut").max().item<double>());
    normal_hp.push_back(highpass.deviation(good, "nut").max().item<double>());
    scratched_hp.push_back(highpass.deviation(bad, "nut").max().item<double>());
  }
  // Each part's own rings are noise to a comparison with other parts; the fit removes them first.
  const double worst_normal = *std::max_element(normal.begin(), normal.end());
  const double least_scratch = *std::min_element(scratched.begin(), scratched.end());
  EXPECT_LT(worst_normal, 3.0);  // normalised: a normal part peaks near 1 (0.8-2.2 here, 8 normals a half)
  EXPECT_GT(least_scratch, 1.5 * worst_normal);  // every scratch above every normal part
  const double margin = least_scratch / worst_normal;
  const double margin_hp = *std::min_element(scratched_hp.begin(), scratched_hp.end()) /
                           *std::max_element(normal_hp.begin(), normal_hp.end());
  EXPECT_GT(margin, 1.3 * margin_hp) << margin << " vs high-pass " << margin_hp;

  const auto back = saved_and_loaded(ref, "lriad_reference_polar_test");
  EXPECT_TRUE(back.polar("nut"));
  cv::RNG c(100);
  const cv::Mat bad = turned96(c, true);
  EXPECT_TRUE(torch::allclose(back.deviation(bad, "nut", 1), ref.deviation(bad, "nut", 1)));
}
