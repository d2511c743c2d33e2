// Fixed scenes (reference/scene.h, reference.h "Fixed scenes"): which categories show one scene at
// one place, and a component missing from such a scene, or lying where it does not belong, standing
// out in the comparison by place where the bank of patches sees only normal patches.
#include <gtest/gtest.h>

#include <cstdint>
#include <vector>

#include <opencv2/core.hpp>
#include <opencv2/imgproc.hpp>
#include <torch/torch.h>

#include "reference_fixtures.h"
#include "lriad/io/error.h"
#include "lriad/io/safetensors.h"
#include "lriad/io/st_tensor.h"
#include "lriad/reference/reference.h"
#include "lriad/reference/scene.h"

using namespace lriad;
using namespace lriad::test;

namespace {

// A grainy material (noise blurred by 1.5 px), another crop of it for every seed: (side, side) RGB.
cv::Mat material(int side, uint64_t seed) {
  cv::Mat noise(side, side, CV_32FC3);
  cv::RNG rng(seed);
  rng.fill(noise, cv::RNG::NORMAL, 0.0, 0.12);
  cv::GaussianBlur(noise, noise, cv::Size(), 1.5);
  return cv::Mat(side, side, CV_32FC3, cv::Scalar(0.45, 0.35, 0.25)) + noise;
}

// Three bright traces across the frame (so that it is not a part on a plain background: they touch
// its edges) and four bright discs at fixed places on the material, each moved by up to 1 px; disc
// `drop` left out, disc `move` put between the upper two instead of at its place.
cv::Mat scene(int side, uint64_t seed, int drop = -1, int move = -1) {
  cv::Mat img = material(side, seed);
  for (double row : {0.06, 0.5, 0.94}) img(cv::Rect(0, int(row * side) - 1, side, 3)).setTo(cv::Scalar(0.8, 0.75, 0.6));
  cv::RNG rng(seed + 7);
  const double at[4][2] = {{0.25, 0.25}, {0.75, 0.25}, {0.25, 0.75}, {0.75, 0.75}};
  for (int i = 0; i < 4; ++i) {
    if (i == drop) continue;
    const double fx = i == move ? 0.5 : at[i][0], fy = i == move ? 0.25 : at[i][1];
    const cv::Point c(int(fx * side + rng.uniform(-1, 2)), int(fy * side + rng.uniform(-1, 2)));
    cv::circle(img, c, side / 9, cv::Scalar(0.85, 0.8, 0.7), cv::FILLED, cv::LINE_AA);
  }
  return img;
}

std::map<std::string, std::array<std::vector<cv::Mat>, 2>> halves_of(int side, bool discs) {
  std::map<std::string, std::array<std::vector<cv::Mat>, 2>> halves;
  for (int i = 0; i < 10; ++i)
    halves["tray"][size_t(i % 2)].push_back(discs ? scene(side, 10 + uint64_t(i)) : material(side, 10 + uint64_t(i)));
  return halves;
}

// Every patch kept; photometric normalisation on, as in every shipped config (the scene's images
// are kept as normalised as its patches).
reference::NormalReference::Options scene_options(int side, bool fixed_scenes) {
  auto o = texture_options(side, 0, 100000);
  o.photometric = true;
  o.fixed_scenes = fixed_scenes;
  return o;
}

}  // namespace

TEST(SceneAgreement, OneSceneAtOnePlaceAgreesCropsOfAMaterialDoNot) {
  std::vector<cv::Mat> scenes, crops;
  for (uint64_t i = 0; i < 12; ++i) {
    scenes.push_back(scene(48, i));
    crops.push_back(material(48, i));
  }
  EXPECT_GT(reference::scene_agreement(scenes), 0.9);
  EXPECT_TRUE(reference::is_fixed_scene(scenes));
  EXPECT_LT(reference::scene_agreement(crops), 0.3);  // independent crops: the others' mean is flat
  EXPECT_FALSE(reference::is_fixed_scene(crops));
  // The images may come at any side; fewer than kSceneMinImages decide nothing.
  EXPECT_TRUE(reference::is_fixed_scene({scene(96, 1), scene(96, 2), scene(96, 3), scene(96, 4)}));
  EXPECT_EQ(reference::scene_agreement({scene(48, 1), scene(48, 2), scene(48, 3)}), 0.0);
  EXPECT_THROW(reference::scene_agreement({cv::Mat(8, 8, CV_8UC3), scene(48, 1), scene(48, 2), scene(48, 3)}),
               lriad::Error);
}

TEST(NormalReference, AMissingOrMisplacedComponentOfAFixedSceneStandsOutByPlace) {
  constexpr int S = 48;
  constexpr int kBoth = reference::NormalReference::kBothBanks;
  const auto by_place = reference::NormalReference::build(halves_of(S, true), scene_options(S, true));
  const auto by_bank = reference::NormalReference::build(halves_of(S, true), scene_options(S, false));
  ASSERT_TRUE(by_place.scene("tray"));
  ASSERT_FALSE(by_bank.scene("tray"));
  ASSERT_FALSE(by_place.aligned("tray"));  // not a part on a plain background
  auto peak = [](const reference::NormalReference& r, const cv::Mat& img, reference::MapPart* part = nullptr) {
    return r.deviation(img, "tray", kBoth, part).max().item<double>();
  };
  const cv::Mat normal = scene(S, 99), missing = scene(S, 99, 1), misplaced = scene(S, 99, -1, 2);
  // A normal scene peaks near the normal level either way.
  EXPECT_LT(peak(by_place, normal), 1.6);
  EXPECT_LT(peak(by_bank, normal), 1.6);
  // Every patch of the missing disc's place is normal somewhere: the bank sees nothing, the
  // comparison by place does.
  EXPECT_LT(peak(by_bank, missing), 1.6);
  reference::MapPart part = reference::MapPart::Region;
  EXPECT_GT(peak(by_place, missing, &part), 3.0);
  EXPECT_EQ(part, reference::MapPart::Patches);  // it joins the colour patches' map
  // A disc between two others stands out too (2 px from each: the bank sees their edges meet as well).
  EXPECT_GT(peak(by_place, misplaced), 3.0);
  // The peak lies at the missing disc's place (upper right).
  const auto map = by_place.deviation(missing, "tray", kBoth);
  const int64_t at = map.argmax().item<int64_t>(), y = at / S, x = at % S;
  EXPECT_GT(x, S / 2);
  EXPECT_LT(y, S / 2);
  // Saved and loaded: the same maps, bit for bit.
  const auto back = saved_and_loaded(by_place, "lriad_reference_scene");
  EXPECT_TRUE(back.scene("tray"));
  EXPECT_TRUE(back.options().fixed_scenes);
  for (int bank : {0, 1, kBoth})
    EXPECT_TRUE(torch::equal(back.deviation(missing, "tray", bank), by_place.deviation(missing, "tray", bank)));
  // A file whose scene scale is not positive, or whose scene's metadata says fixed_scenes 0: refused.
  const std::string path = ::testing::TempDir() + "/lriad_reference_scene_bad.safetensors";
  by_place.save(path);
  const io::StFile saved = io::read_safetensors(path);
  auto refused = [&](io::StFile f, const std::string& says) {
    io::write_safetensors(path, f);
    try {
      reference::NormalReference::load(path);
      ADD_FAILURE() << "loaded a file that should say: " << says;
    } catch (const lriad::Error& e) {
      EXPECT_NE(std::string(e.what()).find(says), std::string::npos) << e.what();
    }
  };
  io::StFile bad_scale = saved;
  bad_scale.tensors["tray/scene_scale"] = io::to_st_tensor(torch::tensor({-1.f, 1.f}));
  refused(bad_scale, "scene_scale must hold 2 positive values");
  io::StFile off = saved;
  off.metadata["fixed_scenes"] = "0";
  refused(off, "fixed_scenes 0");
  std::remove(path.c_str());
  // Crops of a material are not a scene: with fixed_scenes on they are compared as before.
  const auto crops_on = reference::NormalReference::build(halves_of(S, false), scene_options(S, true));
  const auto crops_off = reference::NormalReference::build(halves_of(S, false), scene_options(S, false));
  EXPECT_FALSE(crops_on.scene("tray"));
  EXPECT_TRUE(torch::equal(crops_on.deviation(material(S, 5), "tray", kBoth),
                           crops_off.deviation(material(S, 5), "tray", kBoth)));
}
