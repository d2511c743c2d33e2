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
#include "lriad/io/safetensors.h"
#include "lriad/model/policy_input.h"
#include "lriad/reference/patch_distance.h"
#include "lriad/reference/reference.h"
#include "../src/reference/internal.h"

using namespace lriad;
using namespace lriad::model;
using namespace lriad::test;

namespace {

// Eight normal screws (draw_part, 48 px) at random places and angles in two halves, and eight grey
// plates beside them (a texture-like category).
std::map<std::string, std::array<std::vector<cv::Mat>, 2>> screws_and_plates() {
  std::map<std::string, std::array<std::vector<cv::Mat>, 2>> halves;
  cv::RNG rng(11);
  for (int i = 0; i < 8; ++i) {
    halves["screw"][size_t(i % 2)].push_back(
        test::draw_part(48, rng.uniform(20.0, 28.0), rng.uniform(20.0, 28.0), rng.uniform(0.0, 360.0), uint64_t(i)));
    halves["plate"][size_t(i % 2)].push_back(grey(48, 50 + uint64_t(i)));
  }
  return halves;
}

// Their reference: 3x3 patches, +-2 px of slack.
reference::NormalReference::Options screw_options() {
  reference::NormalReference::Options o;
  o.patch = 3;
  o.bank_size = 2000;
  o.shift = 2;
  return o;
}

}  // namespace

TEST(NormalReference, PartsAtOtherPosesAreComparedInACanonicalPose) {
  // Eight normal parts at random places and angles; a texture-like category beside them.
  const auto halves = screws_and_plates();
  auto o = screw_options();
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

// Absence: a screw with a piece of its head broken off shows the background where most normal screws
// show their head; a normal screw at a pose no normal has shows next to none, and a texture has no such map.
TEST(NormalReference, AbsentPixelsAreBackgroundWhereMostNormalPartsAre) {
  const auto ref = reference::NormalReference::build(screws_and_plates(), screw_options());
  ASSERT_TRUE(ref.aligned("screw"));
  const double cx = 25, cy = 22, degrees = 137, t = degrees * M_PI / 180.0;
  const cv::Mat normal = test::draw_part(48, cx, cy, degrees, 99);
  // A piece broken off the head's end: the part's pixels within 6 px of its point farthest back
  // along the axis (draw_part's head lies 18 px back), painted over with the background.
  cv::Mat broken = normal.clone(), head = cv::Mat::zeros(48, 48, CV_8UC1);
  cv::Point far(-1, -1);
  double farthest = -1e9;
  for (int y = 0; y < 48; ++y)
    for (int x = 0; x < 48; ++x) {
      const double along = -(x - cx) * std::cos(t) + (y - cy) * std::sin(t);  // backwards along the axis
      if (normal.at<cv::Vec3f>(y, x)[0] < 0.45f && along > farthest) {
        farthest = along;
        far = {x, y};
      }
    }
  for (int y = 0; y < 48; ++y)
    for (int x = 0; x < 48; ++x)
      if (std::hypot(x - far.x, y - far.y) <= 6 && normal.at<cv::Vec3f>(y, x)[0] < 0.45f) {
        head.at<uchar>(y, x) = 255;
        const float v = 0.75f - 0.15f * float(x) / 48.f;  // draw_part's background
        broken.at<cv::Vec3f>(y, x) = {v, v, v};
      }
  ASSERT_GE(cv::countNonZero(head), 25);
  for (int bank : {0, 1, reference::NormalReference::kBothBanks}) {
    const cv::Mat none = ref.absent(normal, "screw", bank), gone = ref.absent(broken, "screw", bank);
    ASSERT_EQ(gone.type(), CV_8UC1);
    ASSERT_EQ(gone.size(), cv::Size(48, 48));
    EXPECT_LE(cv::countNonZero(none), 4) << "bank " << bank;
    // A good share of the piece is absent (not its outline, where the normals' parts differ by a
    // pixel or two), and most absent pixels lie in it: the piece moves the part's centroid, so the
    // head's other corner shows a few too (5 px here).
    const int inside = cv::countNonZero(gone & head), outside = cv::countNonZero(gone) - inside;
    EXPECT_GE(inside, cv::countNonZero(head) / 4) << "bank " << bank;
    EXPECT_GE(inside, 2 * outside) << "bank " << bank;
  }
  EXPECT_TRUE(ref.absent(grey(48, 7), "plate").empty());  // a texture: no part to be absent
  EXPECT_THROW(ref.absent(normal, "nut"), lriad::Error);
  // Made again on loading, from the normals the file keeps.
  const auto back = saved_and_loaded(ref, "lriad_reference_absent_test");
  EXPECT_EQ(cv::countNonZero(back.absent(broken, "screw", 1) != ref.absent(broken, "screw", 1)), 0);
}

// colour_novelty is the colour part of deviation()'s map, a part relit to its normals' lighting
// (part_lighting) included: a blue speck on a screw under another light is the map's peak, shown by
// the colour, and colour_novelty's maximum is that peak, per bank and for both banks' mean.
TEST(NormalReference, ColourNoveltyIsTheMapsColourPartOfAPartAsRelit) {
  auto o = screw_options();
  o.part_lighting = true;
  const auto ref = reference::NormalReference::build(screws_and_plates(), o);
  ASSERT_TRUE(ref.aligned("screw"));
  ASSERT_TRUE(ref.colour("screw"));
  cv::Mat bad = test::draw_part(48, 24, 23, 61, 98) * 0.8;  // dimmer than its normals
  bad(cv::Rect(22, 21, 3, 3)).setTo(cv::Scalar(0.1, 0.2, 0.9));
  for (int bank : {0, 1, reference::NormalReference::kBothBanks}) {
    reference::MapPart part = reference::MapPart::Patches;
    const double peak = ref.deviation(bad, "screw", bank, &part).max().item<double>();
    EXPECT_EQ(part, reference::MapPart::Colour) << "bank " << bank;
    const cv::Mat novel = ref.colour_novelty(bad, "screw", bank);  // (48,48)
    ASSERT_EQ(novel.size(), cv::Size(48, 48));
    double top = 0;
    cv::minMaxLoc(novel, nullptr, &top);
    EXPECT_NEAR(top, peak, 1e-4 * peak) << "bank " << bank;
    EXPECT_GT(top, 5.0) << "bank " << bank;
  }
}

// Parts photographed in a 3:2 frame (96x64) and stretched to 48x48: turned, the stretched screw
// changes its shape (2/3 of its length lying, all of it standing), so no canonical pose matches a
// normal screw at an angle the normals lack. Given the photographs' aspect, the reference poses and
// compares them undistorted; the file keeps the aspect.
TEST(NormalReference, PartsFromNonSquarePhotographsAreComparedAtTheirTrueProportions) {
  auto photo = [](double cx, double cy, double deg, uint64_t seed, int spot = -1) {
    const cv::Mat square = test::draw_part(96, cx, cy + 16, deg, seed, spot);
    cv::Mat out;
    cv::resize(square(cv::Rect(0, 16, 96, 64)), out, cv::Size(48, 48), 0, 0, cv::INTER_AREA);
    return out;
  };
  std::map<std::string, std::array<std::vector<cv::Mat>, 2>> halves;
  cv::RNG rng(11);
  for (int i = 0; i < 12; ++i)  // lying within 10 degrees of horizontal, either way round
    halves["screw"][size_t(i % 2)].push_back(photo(rng.uniform(44.0, 52.0), rng.uniform(28.0, 36.0),
                                                   rng.uniform(-10.0, 10.0) + 180.0 * (i % 3 == 0), uint64_t(i)));
  reference::NormalReference::Options o;
  o.patch = 3;
  o.bank_size = 2000;
  o.shift = 2;
  const auto plain = reference::NormalReference::build(halves, o);
  const auto ref = reference::NormalReference::build(halves, o, {{"screw", 1.5}});
  ASSERT_TRUE(ref.aligned("screw"));
  EXPECT_EQ(ref.aspect("screw"), 1.5);
  EXPECT_EQ(plain.aspect("screw"), 1.0);
  // A normal screw standing upright, an angle no normal image has.
  const auto upright = photo(48, 32, 95, 99);
  const double peak = ref.deviation(upright, "screw").max().item<double>();
  const double plain_peak = plain.deviation(upright, "screw").max().item<double>();
  EXPECT_LT(peak, 2.0);
  EXPECT_GT(plain_peak, 1.5 * peak) << peak << " " << plain_peak;
  // A bright spot on its shaft still stands out.
  EXPECT_GT(ref.deviation(photo(48, 32, 95, 99, 8), "screw").max().item<double>(), 2 * peak);
  // Save/load keeps the aspect and the maps.
  const auto back = saved_and_loaded(ref, "lriad_reference_aspect_test");
  EXPECT_EQ(back.aspect("screw"), 1.5);
  EXPECT_TRUE(torch::equal(back.deviation(upright, "screw", 1), ref.deviation(upright, "screw", 1)));
  // An aspect a float cannot hold (4/3) is kept as the file keeps it, so that the loaded reference
  // poses every image as the one training built (eval must make training's input, bit for bit).
  const auto third = reference::NormalReference::build(halves, o, {{"screw", 4.0 / 3.0}});
  const auto third_back = saved_and_loaded(third, "lriad_reference_aspect_third_test");
  EXPECT_EQ(third.aspect("screw"), double(float(4.0 / 3.0)));
  EXPECT_EQ(third_back.aspect("screw"), third.aspect("screw"));
  EXPECT_TRUE(torch::equal(third_back.deviation(upright, "screw", 1), third.deviation(upright, "screw", 1)));
  EXPECT_THROW(reference::NormalReference::build(halves, o, {{"screw", -1.0}}), lriad::Error);
}

// A stain on a part: the shaft tinted (red up 15%, blue down 15%) where normal parts differ in
// brightness from image to image (gains 0.7-1.3). Compared by place, the tint is smaller than the
// gap between neighbouring gains on the bright background, so the map barely sees it; the colour of
// regions (brightness-free, 64 px averaged down to 16) puts the shaft's r/(r+g+b+0.05) at 0.36 where
// every normal region is 0.30-0.33 (a grey part on a grey background). The file keeps it; a file
// from before (version 2) loads without it.
TEST(NormalReference, AStainOnAPartStandsOutByTheColourOfRegions) {
  constexpr int S = 64;
  auto part = [](cv::RNG& rng, uint64_t seed, double gain) {
    cv::Mat img = test::draw_part(S, rng.uniform(28.0, 36.0), rng.uniform(28.0, 36.0), rng.uniform(0.0, 360.0), seed);
    img *= gain;
    return img;
  };
  std::map<std::string, std::array<std::vector<cv::Mat>, 2>> halves;
  cv::RNG rng(5);
  for (int i = 0; i < 12; ++i)
    halves["screw"][size_t(i % 2)].push_back(part(rng, 300 + uint64_t(i), 0.7 + 0.6 * i / 11.0));
  reference::NormalReference::Options o;
  o.patch = 3;
  o.bank_size = 2000;
  o.side = S;
  o.region_side = 0;
  const auto without = reference::NormalReference::build(halves, o);
  o.region_side = 16;
  const auto with = reference::NormalReference::build(halves, o);
  ASSERT_TRUE(with.aligned("screw"));
  EXPECT_TRUE(with.region("screw"));
  EXPECT_FALSE(without.region("screw"));
  constexpr int kBoth = reference::NormalReference::kBothBanks;
  cv::RNG at(77);
  const cv::Mat plain = part(at, 400, 1.0);
  cv::Mat stained = plain.clone();
  for (int y = 0; y < S; ++y)  // the part's (dark) pixels within 8 px of the image's centre
    for (int x = 0; x < S; ++x) {
      auto& p = stained.at<cv::Vec3f>(y, x);
      const cv::Vec3f q = plain.at<cv::Vec3f>(y, x);
      if (q[1] < 0.4f && std::hypot(x - 32.0, y - 32.0) < 8.0) p = cv::Vec3f(q[0] * 1.15f, q[1], q[2] * 0.85f);
    }
  ASSERT_GT(cv::norm(stained, plain, cv::NORM_L1), 1.0) << "the stain missed the part";
  const auto map = with.deviation(stained, "screw", kBoth);  // (S,S)
  const double peak = map.max().item<double>(),
               before = without.deviation(stained, "screw", kBoth).max().item<double>();
  EXPECT_GT(peak, 1.7);  // 2.0 when written; 0.8 without the colour of regions, unseen normal parts 0.88-1.13
  EXPECT_GT(peak, 1.5 * before) << "without the colour of regions the stain peaks at " << before;
  const int64_t i = map.argmax().item<int64_t>(), y = i / S, x = i % S;
  EXPECT_LE(std::hypot(double(x) - 32.0, double(y) - 32.0), 14.0) << "peak at x " << x << ", y " << y;
  for (int k = 0; k < 4; ++k) {  // unseen normal parts at other gains and poses stay well below the stain
    const double normal =
        with.deviation(part(at, 500 + uint64_t(k), 0.75 + 0.15 * k), "screw", kBoth).max().item<double>();
    EXPECT_LT(1.5 * normal, peak) << "normal part " << k;
  }
  const auto back = saved_and_loaded(with, "lriad_reference_part_region");
  EXPECT_TRUE(back.region("screw"));
  EXPECT_TRUE(torch::allclose(back.deviation(stained, "screw", 1), with.deviation(stained, "screw", 1)));
  // A version-2 file (parts had no region comparison then) still loads, as it was; a version-3 file
  // without a part's region bank is refused, naming the key.
  const std::string path = ::testing::TempDir() + "/lriad_reference_part_region_v.safetensors";
  with.save(path);
  const io::StFile saved = io::read_safetensors(path);
  io::StFile v2 = saved;
  v2.metadata["format_version"] = "2";
  for (const char* k : {"screw/region0", "screw/region1", "screw/region_scale"}) v2.tensors.erase(k);
  io::write_safetensors(path, v2);
  const auto old = reference::NormalReference::load(path);
  EXPECT_FALSE(old.region("screw"));
  EXPECT_TRUE(torch::allclose(old.deviation(stained, "screw", 1), without.deviation(stained, "screw", 1)));
  v2.metadata["format_version"] = std::to_string(reference::NormalReference::kFormatVersion);
  io::write_safetensors(path, v2);
  try {
    reference::NormalReference::load(path);
    ADD_FAILURE() << "a version-3 file without the part's region bank loaded";
  } catch (const lriad::Error& e) {
    EXPECT_NE(std::string(e.what()).find("screw/region"), std::string::npos) << e.what();
  }
  std::remove(path.c_str());
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

// The lighting of parts (options.part_lighting), golden: an image that is a reference's luminance
// times a quadratic field across the frame comes back as the reference, a dark spot the fit leaves
// out stays dark, and a reference that cannot carry a fit (all black) changes nothing.
TEST(PartLighting, DividesOutAQuadraticFieldAndKeepsADefect) {
  constexpr int S = 40;
  cv::Mat ref(S, S, CV_32FC1), lit(S, S, CV_32FC3);
  auto field = [&](int y, int x) {
    const double u = (x + 0.5) / S * 2 - 1, v = (y + 0.5) / S * 2 - 1;
    return 1.1 + 0.2 * u - 0.15 * v + 0.1 * u * v - 0.08 * u * u;
  };
  for (int y = 0; y < S; ++y)
    for (int x = 0; x < S; ++x) {
      const bool part = std::abs(x - 20) < 12 && std::abs(y - 20) < 4;  // a dark bar on a light ground
      const float r = part ? 0.25f : 0.7f + 0.002f * float(x % 5);
      ref.at<float>(y, x) = r;
      const float g = float(r * field(y, x));
      lit.at<cv::Vec3f>(y, x) = {g * 1.05f, g, g * 0.95f};  // a colour tint, the same luminance
    }
  const cv::Mat back = reference::detail::part_relit(lit, ref);
  ASSERT_EQ(back.type(), CV_32FC3);
  for (int y = 0; y < S; ++y)
    for (int x = 0; x < S; ++x) {
      const cv::Vec3f p = back.at<cv::Vec3f>(y, x);
      ASSERT_NEAR((p[0] + p[1] + p[2]) / 3, ref.at<float>(y, x), 1e-4) << y << "," << x;
      ASSERT_NEAR(p[0] / p[1], 1.05, 1e-4);  // the tint is kept
    }
  // A dark 4x4 spot: the second fit leaves it out, so the rest comes back within 1e-3 and the spot
  // keeps its contrast (0.1 of the ground, times the field).
  cv::Mat spotted = lit.clone();
  for (int y = 4; y < 8; ++y)
    for (int x = 28; x < 32; ++x) spotted.at<cv::Vec3f>(y, x) *= 0.1f;
  const cv::Mat back2 = reference::detail::part_relit(spotted, ref);
  double off = 0;
  for (int y = 0; y < S; ++y)
    for (int x = 0; x < S; ++x) {
      const cv::Vec3f p = back2.at<cv::Vec3f>(y, x);
      const double l = (p[0] + p[1] + p[2]) / 3;
      if (y >= 4 && y < 8 && x >= 28 && x < 32)
        EXPECT_NEAR(l, 0.1 * ref.at<float>(y, x), 2e-3);
      else
        off = std::max(off, std::abs(l - ref.at<float>(y, x)));
    }
  EXPECT_LT(off, 1e-3);
  // No fit to be had: the image as it is.
  const cv::Mat same = reference::detail::part_relit(lit, cv::Mat::zeros(S, S, CV_32FC1));
  EXPECT_EQ(cv::norm(same, lit, cv::NORM_INF), 0);
  EXPECT_THROW(reference::detail::part_relit(lit, cv::Mat::zeros(S, S + 1, CV_32FC1)), Error);
}

// Parts photographed under another light: a normal part whose frame is lit by a gradient the
// normals do not share (dark at the top, 0.6, to 1.1 at the bottom) deviates along the
// brighter side when compared as given; with options.part_lighting it matches its normals, a spot
// on the shaft still stands out, and a reference loaded from its file gives the same maps bit for bit.
TEST(NormalReference, PartsUnderAnotherLightAreComparedAfterTheirLightingIsDividedOut) {
  constexpr int S = 48;
  std::map<std::string, std::array<std::vector<cv::Mat>, 2>> halves;
  cv::RNG rng(11);
  for (int i = 0; i < 10; ++i)
    halves["screw"][size_t(i % 2)].push_back(
        test::draw_part(S, rng.uniform(20.0, 28.0), rng.uniform(20.0, 28.0), rng.uniform(0.0, 360.0), uint64_t(i)));
  reference::NormalReference::Options o;
  o.patch = 3;
  o.bank_size = 2000;
  o.shift = 2;
  o.colour = false;  // the comparison by place alone
  const auto as_given = reference::NormalReference::build(halves, o);
  o.part_lighting = true;
  const auto lit = reference::NormalReference::build(halves, o);
  ASSERT_TRUE(lit.aligned("screw"));
  auto light = [&](cv::Mat img) {
    for (int y = 0; y < S; ++y) img.row(y) *= 0.6 + 0.5 * y / (S - 1.0);
    return img;
  };
  constexpr int kBoth = reference::NormalReference::kBothBanks;
  const cv::Mat normal = light(test::draw_part(S, 25, 22, 137, 99)),
                spot = light(test::draw_part(S, 25, 22, 137, 99, 8));
  const double given = as_given.deviation(normal, "screw", kBoth).max().item<double>(),
               relit = lit.deviation(normal, "screw", kBoth).max().item<double>(),
               plain = lit.deviation(test::draw_part(S, 25, 22, 137, 99), "screw", kBoth).max().item<double>(),
               spotted = lit.deviation(spot, "screw", kBoth).max().item<double>();
  std::printf("peaks: as given %.3f, relit %.3f, the same part under the normals light %.3f, with a spot %.3f\n", given,
              relit, plain, spotted);
  EXPECT_GT(given, 2.0) << "compared as given, the other light should read as deviation";
  EXPECT_LT(relit, 0.6 * given) << relit << " vs " << given;
  EXPECT_LT(relit, 1.5 * plain) << "the lit part should peak near the same part under the normals' light";
  EXPECT_GT(spotted, 2.5 * relit);
  // Under the normals' own light, relighting changes little.
  const double plain_given =
      as_given.deviation(test::draw_part(S, 25, 22, 137, 99), "screw", kBoth).max().item<double>();
  EXPECT_LT(plain, 1.2 * plain_given) << plain << " vs " << plain_given;
  // The colour palette and the colour of regions see the relit image too: with them on, the other
  // light reads as deviation as given (a background brighter than any normal's: 13.5 when written),
  // and far less relit. Not down to the normals' light (2.59 against 0.97 when written): the field
  // is moved back onto the image by warping, edges replicated, so the image's corners that the
  // canonical frame does not cover keep a field from its edge, and the palette sees the rest of
  // the light there (the peak is in the bottom corner, in the colour part).
  o.colour = true;
  o.region_side = 12;
  o.part_lighting = false;
  const auto all_given = reference::NormalReference::build(halves, o);
  o.part_lighting = true;
  const auto all_lit = reference::NormalReference::build(halves, o);
  ASSERT_TRUE(all_lit.colour("screw"));
  ASSERT_TRUE(all_lit.region("screw"));
  const double all_given_peak = all_given.deviation(normal, "screw", kBoth).max().item<double>(),
               all_lit_peak = all_lit.deviation(normal, "screw", kBoth).max().item<double>(),
               all_lit_plain =
                   all_lit.deviation(test::draw_part(S, 25, 22, 137, 99), "screw", kBoth).max().item<double>();
  std::printf("with the palette and regions: as given %.3f, relit %.3f, under the normals' light %.3f\n",
              all_given_peak, all_lit_peak, all_lit_plain);
  EXPECT_GT(all_given_peak, 2.0);
  EXPECT_LT(all_lit_peak, 0.3 * all_given_peak);
  EXPECT_LT(all_lit_plain, 1.5);
  const auto back = saved_and_loaded(lit, "lriad_reference_part_lighting");
  EXPECT_TRUE(back.options().part_lighting);
  EXPECT_FALSE(saved_and_loaded(as_given, "lriad_reference_part_lighting_off").options().part_lighting);
  for (int bank : {0, 1, kBoth})
    EXPECT_TRUE(torch::equal(back.deviation(spot, "screw", bank), lit.deviation(spot, "screw", bank)));
  const auto all_back = saved_and_loaded(all_lit, "lriad_reference_part_lighting_all");
  EXPECT_TRUE(torch::equal(all_back.deviation(normal, "screw", kBoth), all_lit.deviation(normal, "screw", kBoth)));
}
