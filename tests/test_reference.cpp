// The normal reference (model.reference = "knn"): nearest-patch distances, deviation maps of
// textures and parts, the fine and colour comparisons, banks on a device, the file's round trip, and
// the incremental maps of synthetic anomalies.
#include <gtest/gtest.h>

#include <algorithm>
#include <cstdio>
#include <numeric>
#include <set>

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

TEST(PatchDistance, NearestDistancesGoldenAndInChunks) {
  // Golden: (0,0) is 1 from (0,1); (3,4) is sqrt(18) from (0,1) and 5 from (6,8).
  const auto bank = torch::tensor({0.f, 1.f, 6.f, 8.f}).view({2, 2});
  const auto q = torch::tensor({0.f, 0.f, 3.f, 4.f}).view({2, 2});
  const auto d = reference::nearest_distances(q, bank, bank.pow(2).sum(1));
  EXPECT_NEAR(d[0].item<float>(), 1.0f, 1e-6);
  EXPECT_NEAR(d[1].item<float>(), std::sqrt(18.0f), 1e-5);
  // More rows than a chunk (512): every row against the bank written out.
  torch::manual_seed(3);
  const auto qs = torch::rand({1100, 12}), bs = torch::rand({300, 12});
  const auto got = reference::nearest_distances(qs, bs, bs.pow(2).sum(1));
  const auto want = std::get<0>((qs.unsqueeze(1) - bs.unsqueeze(0)).pow(2).sum(2).min(1)).sqrt();  // (1100)
  EXPECT_LT((got - want).abs().max().item<float>(), 1e-4);
}

TEST(PatchDistance, BoxSumGoldenAndEqualToAveragePooling) {
  // 0..15 in a 4x4: the 3x3 windows sum to 45, 54 / 81, 90.
  const auto e = torch::arange(16, torch::kFloat32).view({1, 1, 4, 4});
  const auto s = reference::box_sum(e, 3);
  ASSERT_EQ(s.sizes(), (std::vector<int64_t>{1, 1, 2, 2}));
  EXPECT_FLOAT_EQ(s[0][0][0][0].item<float>(), 45);
  EXPECT_FLOAT_EQ(s[0][0][0][1].item<float>(), 54);
  EXPECT_FLOAT_EQ(s[0][0][1][0].item<float>(), 81);
  EXPECT_FLOAT_EQ(s[0][0][1][1].item<float>(), 90);
  torch::manual_seed(4);
  const auto r = torch::rand({3, 1, 9, 11});
  EXPECT_TRUE(torch::allclose(reference::box_sum(r, 5), torch::avg_pool2d(r, 5, 1) * 25, 1e-5, 1e-5));
}

TEST(PatchDistance, PositionalDistanceFindsTheShiftedPatchAndMatchesLoops) {
  // An image that is a normal image moved one pixel right: within +-1 pixel every patch away from
  // the left edge has its exact match (0); compared in place only, it does not.
  torch::manual_seed(5);
  const auto normal = torch::rand({1, 1, 8, 8});
  auto image = normal[0].clone();  // (1,8,8)
  image.narrow(2, 1, 7).copy_(normal[0].narrow(2, 0, 7));
  const auto slack = reference::positional_distance(image, normal, 3, 1);  // (6,6)
  EXPECT_LT(slack.narrow(1, 1, 5).abs().max().item<float>(), 1e-3);
  EXPECT_GT(reference::positional_distance(image, normal, 3, 0).narrow(1, 1, 5).min().item<float>(), 0.05);
  // Against the definition written out: min over normals and shifts (edges repeated) of the 3x3
  // window's summed squared difference over channels.
  const int64_t C = 3, S = 7, N = 2, k = 3, shift = 1, g = S - k + 1;
  const auto chw = torch::rand({C, S, S}), normals = torch::rand({N, C, S, S});
  const auto got = reference::positional_distance(chw, normals, k, shift);  // (g,g)
  auto a = chw.accessor<float, 3>();
  auto b = normals.accessor<float, 4>();
  auto clampi = [&](int64_t v) { return std::min<int64_t>(S - 1, std::max<int64_t>(0, v)); };
  for (int64_t y = 0; y < g; ++y)
    for (int64_t x = 0; x < g; ++x) {
      double best = 1e30;
      for (int64_t n = 0; n < N; ++n)
        for (int64_t dy = -shift; dy <= shift; ++dy)
          for (int64_t dx = -shift; dx <= shift; ++dx) {
            double sum = 0;
            for (int64_t c = 0; c < C; ++c)
              for (int64_t i = 0; i < k; ++i)
                for (int64_t j = 0; j < k; ++j) {
                  const double t = a[c][y + i][x + j] - b[n][c][clampi(y + i + dy)][clampi(x + j + dx)];
                  sum += t * t;
                }
            best = std::min(best, sum);
          }
      EXPECT_NEAR(got[y][x].item<float>(), std::sqrt(best), 1e-5) << "at " << y << "," << x;
    }
}

TEST(NormalReference, DefectsStandOutNormalImagesPeakNearOne) {
  const auto ref = grey_reference();
  const auto normal = ref.deviation(grey(24, 7), "plate");  // (S,S)
  ASSERT_EQ(normal.sizes(), torch::IntArrayRef({24, 24}));
  EXPECT_GT(normal.max().item<double>(), 0.5);  // scaled by the typical peak of unseen normals
  EXPECT_LT(normal.max().item<double>(), 2.0);
  const auto bad = ref.deviation(grey(24, 7, 16, 4), "plate");
  EXPECT_GT(bad.max().item<double>(), 5 * normal.max().item<double>());
  // The peak lies on the defect (x 16..19, y 4..7).
  const int64_t at = bad.argmax().item<int64_t>(), y = at / 24, x = at % 24;
  EXPECT_GE(x, 15);
  EXPECT_LE(x, 20);
  EXPECT_GE(y, 3);
  EXPECT_LE(y, 8);
  // Fourth channel and errors.
  const auto four = ref.with_deviation(grey(24, 7), "plate");
  EXPECT_EQ(four.sizes(), torch::IntArrayRef({4, 24, 24}));
  EXPECT_TRUE(torch::equal(four[3], normal));
  EXPECT_THROW(ref.deviation(grey(24, 7), "bottle"), lriad::Error);
}

// The scale is the median peak of the unseen half's normals: one odd normal image (here with a
// dark spot) does not move it, so it does not move where "above normal" starts either.
TEST(NormalReference, ScaleIsTheMedianPeakOfTheOtherHalfSoOneOddNormalDoesNotMoveIt) {
  std::map<std::string, std::array<std::vector<cv::Mat>, 2>> halves;
  for (int i = 0; i < 4; ++i) halves["plate"][0].push_back(grey(24, 200 + uint64_t(i)));
  for (int i = 0; i < 4; ++i) halves["plate"][1].push_back(grey(24, 300 + uint64_t(i)));
  halves["plate"][1].push_back(grey(24, 304, 10, 10));  // the odd one of five
  reference::NormalReference::Options o;
  o.patch = 3;
  o.bank_size = 100000;
  const auto ref = reference::NormalReference::build(halves, o);
  const double scale = ref.scale("plate", 0);
  std::vector<double> raw;  // the raw peaks against bank 0 = scaled peaks x scale
  for (const auto& img : halves["plate"][1]) raw.push_back(ref.deviation(img, "plate", 0).max().item<double>() * scale);
  std::vector<double> sorted = raw;
  std::sort(sorted.begin(), sorted.end());
  EXPECT_NEAR(scale, sorted[2], 1e-4 * scale);  // the middle of five
  EXPECT_GT(raw.back(), 3 * sorted[2]);         // the odd image peaks far above the rest...
  const double mean = std::accumulate(raw.begin(), raw.end(), 0.0) / double(raw.size());
  EXPECT_GT(mean, 1.3 * scale);  // ...and a mean would have moved with it
}

TEST(NormalReference, ScaleQuantileInterpolatesAndIsTheMedianAtOneHalf) {
  using reference::detail::median_of;
  using reference::detail::quantile_of;
  EXPECT_DOUBLE_EQ(quantile_of({4, 1, 3, 2}, 0.5), 2.5);  // median_of's mean of the middle two
  EXPECT_DOUBLE_EQ(quantile_of({5, 1, 4, 2, 3}, 0.5), 3);
  EXPECT_DOUBLE_EQ(quantile_of({5, 1, 4, 2, 3}, 0.9), 4.6);  // at 0.9 x 4 = 3.6: 4 + 0.6 x (5 - 4)
  EXPECT_DOUBLE_EQ(quantile_of({10, 0}, 0.25), 2.5);
  EXPECT_DOUBLE_EQ(quantile_of({7}, 0.9), 7);
  const std::vector<double> v = {0.1, 0.7, 0.30000000000000004, 0.2};
  EXPECT_EQ(quantile_of(v, 0.5), median_of(v));  // bit for bit: runs before the key keep their scale
  // A build at q = 0.9 divides by the 90% peak of the unseen half: one image of five above it.
  std::map<std::string, std::array<std::vector<cv::Mat>, 2>> halves;
  for (int i = 0; i < 5; ++i) halves["plate"][0].push_back(grey(24, 400 + uint64_t(i)));
  for (int i = 0; i < 4; ++i) halves["plate"][1].push_back(grey(24, 500 + uint64_t(i)));
  halves["plate"][1].push_back(grey(24, 504, 10, 10));
  reference::NormalReference::Options o;
  o.patch = 3;
  o.bank_size = 100000;
  o.scale_quantile = 0.9;
  o.colour = false;  // the palette's novelty is not divided by the scale
  const auto ref = reference::NormalReference::build(halves, o);
  std::vector<double> raw;  // bank 0's raw peaks over the other half
  for (const auto& img : halves["plate"][1])
    raw.push_back(ref.deviation(img, "plate", 0).max().item<double>() * ref.scale("plate", 0));
  EXPECT_NEAR(ref.scale("plate", 0), quantile_of(raw, 0.9), 1e-4 * ref.scale("plate", 0));
  EXPECT_GT(ref.scale("plate", 0), median_of(raw));
}

// An image in neither bank (held out, test) is compared with both and the maps averaged: a
// defect keeps its peak (what averaging gains on real normals is measured in the issue notes).
TEST(NormalReference, AnImageInNeitherBankIsComparedWithBothAndTheMapsAveraged) {
  const auto ref = plate_reference(400);
  constexpr int kBoth = reference::NormalReference::kBothBanks;
  const cv::Mat bad = grey(24, 9, 10, 12);
  const auto mean = (ref.deviation(bad, "plate", 0) + ref.deviation(bad, "plate", 1)) / 2;
  EXPECT_TRUE(torch::allclose(ref.deviation(bad, "plate", kBoth), mean));
  EXPECT_TRUE(torch::allclose(ref.with_deviation(bad, "plate", kBoth)[3], mean));
  // The defect keeps its peak against both banks (a defect deviates from each alike) and stands
  // far above every unseen normal image's averaged peak.
  const double defect = ref.deviation(bad, "plate", kBoth).max().item<double>();
  EXPECT_GT(defect, 0.8 * ref.deviation(bad, "plate", 0).max().item<double>());
  for (int i = 0; i < 6; ++i)
    EXPECT_LT(5 * ref.deviation(grey(24, 500 + uint64_t(i)), "plate", kBoth).max().item<double>(), defect);
}

// A speck of a colour no normal image shows: with the palette the map is at least its bins beyond
// the tolerance there; normal images gain nothing; the palette survives save and load.
TEST(NormalReference, AColourNoNormalImageShowsStandsOut) {
  const auto with = plate_reference(600), without = plate_reference(600, /*colour=*/false);
  EXPECT_TRUE(with.colour("plate"));
  EXPECT_FALSE(without.colour("plate"));
  // Blue (0.2, 0.3, 0.9): bins (6, 9, 28); the noisy greys (0.5 +- 3.5 sigma = 0.07) fill bins
  // 13-18 of each channel, so the speck lies >= 7 + 4 + 10 = 21 bins away: novelty >= 20 inside.
  cv::Mat bad = grey(24, 9);
  bad(cv::Rect(10, 12, 4, 4)).setTo(cv::Scalar(0.2, 0.3, 0.9));
  const double peak = with.deviation(bad, "plate", 0).max().item<double>();
  EXPECT_GE(peak, 15.0);
  // The colour novelty shows it most, and saying so does not change the map.
  reference::MapPart part = reference::MapPart::Patches;
  EXPECT_TRUE(torch::equal(with.deviation(bad, "plate", 0, &part), with.deviation(bad, "plate", 0)));
  EXPECT_EQ(part, reference::MapPart::Colour);
  without.deviation(bad, "plate", 0, &part);
  EXPECT_EQ(part, reference::MapPart::Patches) << "without the palette the colour patches show it";
  EXPECT_GT(peak, 1.5 * without.deviation(bad, "plate", 0).max().item<double>());
  for (int i = 0; i < 4; ++i) {
    const cv::Mat normal = grey(24, 700 + uint64_t(i));
    EXPECT_TRUE(torch::allclose(with.deviation(normal, "plate", 0), without.deviation(normal, "plate", 0)));
  }
  const auto back = saved_and_loaded(with, "lriad_reference_colour");
  EXPECT_TRUE(back.colour("plate"));
  EXPECT_TRUE(torch::allclose(back.deviation(bad, "plate", 1), with.deviation(bad, "plate", 1)));
  // colour_novelty is that part of the map alone (the facts read it): the speck's bins, where it
  // is the map's peak; nothing on normal images; both banks' mean; none without a palette.
  const cv::Mat novel = with.colour_novelty(bad, "plate", 0);  // (24,24)
  ASSERT_EQ(novel.type(), CV_32FC1);
  ASSERT_EQ(novel.size(), bad.size());
  double top = 0;
  cv::minMaxLoc(novel, nullptr, &top);
  EXPECT_NEAR(top, peak, 1e-4);
  EXPECT_GE(cv::mean(novel(cv::Rect(11, 13, 2, 2)))[0], 20.0);
  EXPECT_EQ(cv::countNonZero(novel(cv::Rect(0, 0, 24, 8))), 0);  // rows away from the speck
  constexpr int kBoth = reference::NormalReference::kBothBanks;
  for (int i = 0; i < 4; ++i) {  // a noisy grey at the palette's edge may reach a bin past it, no more
    double most = 0;
    cv::minMaxLoc(with.colour_novelty(grey(24, 700 + uint64_t(i)), "plate", kBoth), nullptr, &most);
    EXPECT_LT(most, 1.0);
  }
  const cv::Mat mean = (with.colour_novelty(bad, "plate", 0) + with.colour_novelty(bad, "plate", 1)) * 0.5;
  EXPECT_LE(cv::norm(with.colour_novelty(bad, "plate", kBoth), mean, cv::NORM_INF), 1e-6);
  EXPECT_TRUE(without.colour_novelty(bad, "plate", 0).empty());
  EXPECT_THROW(with.colour_novelty(bad, "no such category", 0), lriad::Error);
  EXPECT_EQ(cv::norm(back.colour_novelty(bad, "plate", 1), with.colour_novelty(bad, "plate", 1), cv::NORM_INF), 0.0);
}

// A stain tints a region by a shade of colour (here red up 8%, blue down 8%) on a grey texture
// whose normal images differ in brightness (gains 0.7-1.3): each stained 5x5 patch finds a close
// grey one, and the palette knows each pixel's colour, so without the region comparison the stain
// barely passes the normal level. With it (48 px averaged down to 12: 4x4 pixels, noise / 4), the
// stain's r/(r+g+b) is 0.54/1.55 = 0.348 where every normal region has 0.5/1.55 = 0.323 (to within
// 0.004 over the gains): its 3x3 patches lie ~0.075 from the bank, several times the normal level.
TEST(NormalReference, AStainThatTintsARegionStandsOutByTheColourOfRegions) {
  constexpr int S = 48;
  auto plate = [](uint64_t seed, double gain) {
    cv::Mat img = grey(S, seed);
    img *= gain;
    return img;
  };
  std::map<std::string, std::array<std::vector<cv::Mat>, 2>> halves;
  for (int i = 0; i < 12; ++i) halves["plate"][size_t(i % 2)].push_back(plate(800 + uint64_t(i), 0.7 + 0.6 * i / 11.0));
  reference::NormalReference::Options o;
  o.patch = 5;
  o.bank_size = 4000;
  o.side = S;
  const auto without = reference::NormalReference::build(halves, o);
  o.region_side = 12;
  const auto with = reference::NormalReference::build(halves, o);
  EXPECT_TRUE(with.region("plate"));
  EXPECT_FALSE(without.region("plate"));
  constexpr int kBoth = reference::NormalReference::kBothBanks;
  cv::Mat stained = plate(900, 1.0);
  cv::Mat stain = stained(cv::Rect(24, 8, 16, 16));
  cv::multiply(stain, cv::Scalar(1.08, 1.0, 0.92), stain);   // RGB, in place
  const auto map = with.deviation(stained, "plate", kBoth);  // (S,S)
  const double peak = map.max().item<double>(),
               before = without.deviation(stained, "plate", kBoth).max().item<double>();
  EXPECT_GT(peak, 3.0);  // 4.8 when written; 1.2 without the region comparison, normal images 0.91-0.96
  EXPECT_GT(peak, 1.5 * before) << "without the region comparison the stain peaks at " << before;
  const int64_t at = map.argmax().item<int64_t>(), y = at / S, x = at % S;  // on the stain (x 24..39, y 8..23)
  EXPECT_TRUE(x >= 20 && x <= 43 && y >= 4 && y <= 27) << "peak at x " << x << ", y " << y;
  reference::MapPart part = reference::MapPart::Patches;  // the colour of regions shows it most
  EXPECT_TRUE(torch::equal(with.deviation(stained, "plate", kBoth, &part), map));
  EXPECT_EQ(part, reference::MapPart::Region);
  for (int i = 0; i < 4; ++i) {  // unseen normal images at other gains stay near the normal level
    const double normal =
        with.deviation(plate(950 + uint64_t(i), 0.75 + 0.15 * i), "plate", kBoth).max().item<double>();
    EXPECT_LT(normal, 2.0) << "normal image " << i;
  }
  const auto back = saved_and_loaded(with, "lriad_reference_region");
  EXPECT_TRUE(back.region("plate"));
  EXPECT_EQ(back.options().region_side, 12);
  EXPECT_TRUE(torch::allclose(back.deviation(stained, "plate", 1), with.deviation(stained, "plate", 1)));
}

// A scratch one pixel wide on a grainy texture: at the model's side (half the photograph's) it is
// averaged with the grain around it and its 5x5 patches find a close grainy match, so the map
// barely sees it. The fine comparison of textures looks at the photograph's side, high-passed.
TEST(NormalReference, AThinScratchOnAGrainyTextureStandsOutInTheFineComparisonOfTextures) {
  constexpr int S = 48, W = 96;
  auto grain = [](uint64_t seed) {  // grey with blotchy grain a few pixels across, at W
    cv::Mat noise(W, W, CV_32FC1);
    cv::RNG rng(seed);
    rng.fill(noise, cv::RNG::NORMAL, 0.0, 0.12);
    cv::GaussianBlur(noise, noise, cv::Size(0, 0), 1.0);
    cv::Mat img(W, W, CV_32FC3, cv::Scalar(0.5, 0.5, 0.5));
    cv::Mat grey3;
    cv::merge(std::vector<cv::Mat>{noise, noise, noise}, grey3);
    return cv::Mat(img + grey3);
  };
  std::map<std::string, std::array<std::vector<cv::Mat>, 2>> halves;
  for (int i = 0; i < 12; ++i) halves["plate"][size_t(i % 2)].push_back(grain(700 + uint64_t(i)));
  auto o = texture_options(S, W, 4000);
  const auto without = reference::NormalReference::build(halves, o);
  o.fine_textures = true;
  const auto with = reference::NormalReference::build(halves, o);
  EXPECT_TRUE(with.fine("plate"));
  EXPECT_FALSE(with.aligned("plate"));
  EXPECT_FALSE(without.fine("plate"));
  constexpr int kBoth = reference::NormalReference::kBothBanks;
  cv::Mat scratched = grain(790);
  cv::line(scratched, cv::Point(30, 20), cv::Point(62, 70), cv::Scalar(0.3, 0.3, 0.3), 1, cv::LINE_8);
  const auto map = with.deviation(scratched, "plate", kBoth);  // (S,S)
  EXPECT_EQ(map.sizes(), torch::IntArrayRef({S, S}));
  const double peak = map.max().item<double>(),
               before = without.deviation(scratched, "plate", kBoth).max().item<double>();
  double worst_normal = 0;
  for (int i = 0; i < 6; ++i)  // unseen normal images stay near the normal level
    worst_normal =
        std::max(worst_normal, with.deviation(grain(750 + uint64_t(i)), "plate", kBoth).max().item<double>());
  // When written: the scratch 3.75 with, 1.35 without; unseen normals up to 1.15.
  EXPECT_LT(worst_normal, 2.0);
  EXPECT_GT(peak, 2.0 * worst_normal) << "normal images peak at up to " << worst_normal;
  EXPECT_GT(peak, 2.0 * before) << "without the fine comparison the scratch peaks at " << before;
  const int64_t at = map.argmax().item<int64_t>(), y = at / S, x = at % S;  // on the line (x 15..31, y 10..35 at S)
  EXPECT_TRUE(x >= 12 && x <= 34 && y >= 7 && y <= 38) << "peak at x " << x << ", y " << y;
  reference::MapPart part = reference::MapPart::Patches;  // the fine comparison shows it most
  EXPECT_TRUE(torch::equal(with.deviation(scratched, "plate", kBoth, &part), map));
  EXPECT_EQ(part, reference::MapPart::Fine);
  const auto back = saved_and_loaded(with, "lriad_reference_fine_textures");
  EXPECT_TRUE(back.fine("plate"));
  EXPECT_TRUE(torch::allclose(back.deviation(scratched, "plate", 1), with.deviation(scratched, "plate", 1)));
}

TEST(NormalReference, PhotometricNormalisationGivesTheLuminanceOneMeanAndSpread) {
  // Golden: grey levels 0.1, 0.3, 0.5, 0.7 (mean 0.4, population sd sqrt(0.05)) -> gain 0.15 /
  // sqrt(0.05) = 0.67082, offset 0.45 - 0.4 gain; a pixel's colour differences scale by the gain.
  cv::Mat img(2, 2, CV_32FC3);
  img.at<cv::Vec3f>(0, 0) = {0.1f, 0.1f, 0.1f};
  img.at<cv::Vec3f>(0, 1) = {0.3f, 0.3f, 0.3f};
  img.at<cv::Vec3f>(1, 0) = {0.6f, 0.5f, 0.4f};  // luminance 0.5, red above blue by 0.2
  img.at<cv::Vec3f>(1, 1) = {0.7f, 0.7f, 0.7f};
  const cv::Mat out = reference::detail::photometric(img);
  const double gain = 0.15 / std::sqrt(0.05);
  EXPECT_NEAR(out.at<cv::Vec3f>(0, 0)[1], 0.45 + gain * (0.1 - 0.4), 1e-6);
  EXPECT_NEAR(out.at<cv::Vec3f>(1, 1)[0], 0.45 + gain * (0.7 - 0.4), 1e-6);
  EXPECT_NEAR(out.at<cv::Vec3f>(1, 0)[0] - out.at<cv::Vec3f>(1, 0)[2], gain * 0.2, 1e-6);
  // Any exposure (gain) and brightness (offset) of an image give the same result.
  cv::Mat brighter;
  img.convertTo(brighter, CV_32FC3, 1.3, 0.05);
  EXPECT_LT(cv::norm(reference::detail::photometric(brighter), out, cv::NORM_INF), 1e-5);
}

// Photographs of one dark material at other exposures and brightnesses (gain 0.9-1.1, offset
// +-0.04, as scripts/photo_sets.py lights them): compared as given, an unseen normal image at a
// level the bank's images do not share deviates all over; after photometric normalisation it
// matches by its pattern, and a crack still stands out.
TEST(NormalReference, PhotometricNormalisationMatchesATextureAtAnotherExposure) {
  constexpr int S = 48;
  auto stone = [](uint64_t seed, double gain, double offset) {  // dark grain a few pixels across
    cv::Mat noise(S, S, CV_32FC1);
    cv::RNG rng(seed);
    rng.fill(noise, cv::RNG::NORMAL, 0.0, 0.05);
    cv::GaussianBlur(noise, noise, cv::Size(0, 0), 1.0);
    cv::Mat grey3, img;
    cv::merge(std::vector<cv::Mat>{noise, noise, noise}, grey3);
    cv::Mat(cv::Mat(S, S, CV_32FC3, cv::Scalar(0.18, 0.18, 0.2)) + grey3).convertTo(img, CV_32FC3, gain, offset);
    return img;
  };
  cv::RNG levels(5);
  std::map<std::string, std::array<std::vector<cv::Mat>, 2>> halves;
  for (int i = 0; i < 16; ++i)
    halves["stone"][size_t(i % 2)].push_back(
        stone(600 + uint64_t(i), levels.uniform(0.9, 1.1), levels.uniform(-0.04, 0.04)));
  auto o = texture_options(S, 0, 4000);
  o.colour = false;  // the patch comparison alone
  const auto as_given = reference::NormalReference::build(halves, o);
  o.photometric = true;
  const auto lit = reference::NormalReference::build(halves, o);
  constexpr int kBoth = reference::NormalReference::kBothBanks;
  double normal_given = 0, normal_lit = 0;
  for (int i = 0; i < 6; ++i) {  // unseen normal images at the ends of the range
    const cv::Mat n = stone(650 + uint64_t(i), i % 2 ? 1.1 : 0.9, i % 2 ? 0.04 : -0.04);
    normal_given = std::max(normal_given, as_given.deviation(n, "stone", kBoth).max().item<double>());
    normal_lit = std::max(normal_lit, lit.deviation(n, "stone", kBoth).max().item<double>());
  }
  cv::Mat cracked = stone(690, 1.0, 0.0);
  cv::line(cracked, cv::Point(10, 12), cv::Point(30, 34), cv::Scalar(0.05, 0.05, 0.05), 1, cv::LINE_8);
  const double crack_given = as_given.deviation(cracked, "stone", kBoth).max().item<double>(),
               crack_lit = lit.deviation(cracked, "stone", kBoth).max().item<double>();
  // When written: unseen normal images up to 2.91 as given, 1.11 normalised; the crack 4.32 and 3.47.
  EXPECT_LT(normal_lit, 0.8 * normal_given) << "normal images peak at " << normal_lit << " vs " << normal_given;
  EXPECT_GT(crack_lit / normal_lit, 1.3 * crack_given / normal_given)
      << "crack " << crack_lit << " / " << normal_lit << " vs " << crack_given << " / " << normal_given;
  EXPECT_GT(crack_lit, 1.5 * normal_lit);
  const auto back = saved_and_loaded(lit, "lriad_reference_photometric");
  EXPECT_TRUE(back.options().photometric);
  EXPECT_TRUE(torch::equal(back.deviation(cracked, "stone", 1), lit.deviation(cracked, "stone", 1)));
}

// The banks moved to a device (NormalReference::to): every map, whole and incremental, is the one
// computed where they were, maps come back on the CPU, and saving reads them back from the device.
// Run on the CPU everywhere, and on the GPU too where LibTorch sees one (the devices checked are
// recorded as the test's property "devices").
TEST(NormalReference, BanksMovedToADeviceGiveTheSameMaps) {
  constexpr int S = 32, W = 64;
  auto grain = [](uint64_t seed) {  // colour grain a few pixels across, at W
    cv::Mat img(W, W, CV_32FC3);
    cv::RNG rng(seed);
    rng.fill(img, cv::RNG::NORMAL, 0.5, 0.1);
    cv::GaussianBlur(img, img, cv::Size(0, 0), 1.0);
    return img;
  };
  std::map<std::string, std::array<std::vector<cv::Mat>, 2>> halves;
  for (int i = 0; i < 8; ++i) halves["cloth"][size_t(i % 2)].push_back(grain(900 + uint64_t(i)));
  auto o = texture_options(S, W, 1500);
  o.fine_textures = true;  // all three banks: colour patches, fine texture patches, region patches
  o.region_side = 16;
  const auto cpu = reference::NormalReference::build(halves, o);
  ASSERT_TRUE(cpu.fine("cloth") && cpu.region("cloth"));
  cv::Mat marked = grain(990);
  cv::line(marked, cv::Point(10, 12), cv::Point(40, 44), cv::Scalar(0.2, 0.2, 0.2), 1);
  const cv::Rect changed(9, 11, 33, 35);
  const std::array<torch::Tensor, 2> base = {cpu.patch_distances(grain(991), "cloth", 0),
                                             cpu.patch_distances(grain(991), "cloth", 1)};
  const auto want = cpu.deviation(marked, "cloth", reference::NormalReference::kBothBanks);  // (S,S)
  const auto want_changed = cpu.changed_deviation(marked, "cloth", 1, base, changed);
  std::vector<torch::Device> devices = {torch::kCPU};
  if (torch::cuda::is_available()) devices.emplace_back(torch::kCUDA);
  std::string checked;
  for (const auto& device : devices) {
    auto moved = cpu;
    moved.to(device);
    EXPECT_EQ(moved.device(), device);
    // Another device's products round differently, and the square root of a small |b|^2 - 2q.b + |q|^2
    // magnifies it: a looser bound there.
    const float tol = device.is_cpu() ? 1e-4f : 2e-3f;
    const auto got = moved.deviation(marked, "cloth", reference::NormalReference::kBothBanks);
    EXPECT_TRUE(got.device().is_cpu());
    EXPECT_LT((got - want).abs().max().item<float>(), tol) << device;
    EXPECT_LT((moved.changed_deviation(marked, "cloth", 1, base, changed) - want_changed).abs().max().item<float>(),
              tol)
        << device;
    const auto back = saved_and_loaded(moved, "lriad_reference_moved");
    EXPECT_TRUE(torch::allclose(back.deviation(marked, "cloth", 0), cpu.deviation(marked, "cloth", 0))) << device;
    checked += (checked.empty() ? "" : ",") + device.str();
  }
  RecordProperty("devices", checked);
  EXPECT_GT(want.max().item<double>(), 1.5);  // the line stands out: the maps compared are not all flat
}

TEST(NormalReference, ImagesAreNeverComparedWithThemselvesAndSaveLoadRoundTrips) {
  std::map<std::string, std::array<std::vector<cv::Mat>, 2>> halves;
  const cv::Mat a = grey(24, 1), b = grey(24, 2);
  halves["plate"] = {std::vector<cv::Mat>{a}, std::vector<cv::Mat>{b}};
  reference::NormalReference::Options o;
  o.patch = 3;
  o.bank_size = 100000;  // every patch kept
  const auto ref = reference::NormalReference::build(halves, o);
  // a is in bank 0: against bank 0 it matches itself exactly, against bank 1 it does not.
  EXPECT_LT(ref.deviation(a, "plate", 0).max().item<double>(), 0.05);  // float cancellation only
  EXPECT_GT(ref.deviation(a, "plate", 1).max().item<double>(), 0.3);
  // The scale of bank h is the median peak of the other half's raw maps (one image each here):
  // so b's own map against bank 0 peaks at exactly 1.
  EXPECT_NEAR(ref.deviation(b, "plate", 0).max().item<double>(), 1.0, 1e-4);
  const auto back = saved_and_loaded(ref, "lriad_reference_test");
  EXPECT_EQ(back.categories(), std::vector<std::string>{"plate"});
  EXPECT_TRUE(torch::allclose(back.deviation(b, "plate", 1), ref.deviation(b, "plate", 1)));
  EXPECT_DOUBLE_EQ(back.scale("plate", 0), double(float(ref.scale("plate", 0))));
}

// reference.safetensors carries its format version: a file without one (version 1, written before)
// loads as then, keys added since falling back; from version 2 on a missing key is an error naming
// it, and a later version is refused with a hint.
TEST(NormalReference, TheFileSaysItsFormatVersionAndOlderFilesStillLoad) {
  const auto ref = grey_reference();
  const std::string path = ::testing::TempDir() + "/lriad_reference_version.safetensors";
  ref.save(path);
  const io::StFile saved = io::read_safetensors(path);
  EXPECT_EQ(saved.metadata.at("format_version"), std::to_string(reference::NormalReference::kFormatVersion));
  auto load_with = [&](const std::map<std::string, std::string>& set, const std::vector<std::string>& drop) {
    io::StFile f = saved;
    for (const auto& [k, v] : set) f.metadata[k] = v;
    for (const auto& k : drop) f.metadata.erase(k);
    io::write_safetensors(path, f);
    return reference::NormalReference::load(path);
  };
  const cv::Mat img = grey(32, 99, 10, 12);
  // Version 1: no format_version, no fine_sigma (added later): loads, the same maps.
  const auto v1 = load_with({}, {"format_version", "fine_sigma"});
  EXPECT_TRUE(torch::equal(v1.deviation(img, "plate", 0), ref.deviation(img, "plate", 0)));
  EXPECT_EQ(v1.options().fine_sigma, reference::NormalReference::Options{}.fine_sigma);
  // A current file without `key`: refused, naming the key.
  auto refused_without = [&](const std::string& key) {
    try {
      load_with({}, {key});
      ADD_FAILURE() << "a version-" << reference::NormalReference::kFormatVersion << " file without " << key
                    << " loaded";
    } catch (const lriad::Error& e) {
      EXPECT_NE(std::string(e.what()).find("'" + key + "'"), std::string::npos) << e.what();
    }
  };
  refused_without("fine_sigma");
  // Version 3 (before photometric normalisation): loads with it off; version 4 needs the key.
  EXPECT_EQ(saved.metadata.at("photometric"), "0");
  EXPECT_FALSE(load_with({{"format_version", "3"}}, {"photometric"}).options().photometric);
  refused_without("photometric");
  // Version 5 (before the lighting of parts): loads with it off; version 6 needs the key.
  EXPECT_EQ(saved.metadata.at("part_lighting"), "0");
  EXPECT_FALSE(load_with({{"format_version", "5"}}, {"part_lighting"}).options().part_lighting);
  refused_without("part_lighting");
  // Version 6 (before fixed scenes): loads with them off; version 7 needs the key.
  EXPECT_EQ(saved.metadata.at("fixed_scenes"), "0");
  EXPECT_FALSE(load_with({{"format_version", "6"}}, {"fixed_scenes"}).options().fixed_scenes);
  refused_without("fixed_scenes");
  // A later version: refused, saying which versions this lriad reads.
  try {
    load_with({{"format_version", "99"}}, {});
    ADD_FAILURE() << "a version-99 file loaded";
  } catch (const lriad::Error& e) {
    EXPECT_NE(std::string(e.what()).find("format version 99"), std::string::npos) << e.what();
  }
  std::remove(path.c_str());
}

// Incremental maps (NormalReference::changed_deviation via model::changed_policy_input): a
// synthetic anomaly changes part of a normal image; recomputing only the patches the change
// touches gives the map a full recomputation gives, on random draws of every kind, either bank
// and both banks; at the model's side, and for a texture compared finely too (drawn at twice it).
// Stripes with noise at side w: patches differ from place to place.
static cv::Mat striped(int w, uint64_t seed) {
  cv::Mat img = grey(w, seed);
  for (int y = 0; y < w; ++y)
    for (int x = 0; x < w; ++x) img.at<cv::Vec3f>(y, x) += cv::Vec3f(0.1f, 0.05f, 0.f) * float(((x + 2 * y) / 5) % 2);
  return img;
}

// Modes: at the model's side; a texture compared finely; a fixed scene (the stripes lie at one
// place in every image), also compared by place.
enum class ChangedMode { ModelSide, FineTexture, FixedScene };
class ChangedMaps : public ::testing::TestWithParam<ChangedMode> {};

TEST_P(ChangedMaps, EqualAFullRecomputationOnRandomDraws) {
  constexpr int S = 48;
  const bool fine = GetParam() == ChangedMode::FineTexture, scene = GetParam() == ChangedMode::FixedScene;
  const int W = fine ? 2 * S : S;  // the side the images come at
  auto texture = [W](uint64_t seed) { return striped(W, seed); };
  std::map<std::string, std::array<std::vector<cv::Mat>, 2>> halves;
  for (int i = 0; i < 6; ++i) halves["plate"][size_t(i % 2)].push_back(texture(200 + uint64_t(i)));
  reference::NormalReference::Options o;
  o.patch = 5;
  o.bank_size = 1500;  // more than one 512-row chunk of patches per image
  o.side = S;
  o.region_side = 12;  // the region map is made anew from the changed image
  o.fine_side = fine ? W : 0;
  o.fine_textures = fine;
  o.fixed_scenes = scene;
  const auto ref = reference::NormalReference::build(halves, o);
  o.fixed_scenes = false;
  const auto plain = reference::NormalReference::build(halves, o);  // the same banks, no comparison by place
  ASSERT_EQ(ref.scene("plate"), scene);
  ASSERT_TRUE(ref.region("plate"));
  ASSERT_EQ(ref.fine("plate"), fine);
  ASSERT_TRUE(ref.updatable("plate", W));
  EXPECT_FALSE(ref.updatable("plate", W + 1));  // the map is made from W: another side is resized first
  EXPECT_FALSE(ref.updatable("bottle", W));
  ModelConfig model;
  model.image_size = S;
  model.reference = "knn";
  model.reference_fine_size = fine ? W : 0;
  model.reference_fine_textures = fine;
  std::map<anomaly::AnomalyKind, double> mix;
  for (auto k : anomaly::all_anomaly_kinds()) mix[k] = 1.0;
  const cv::Mat base = texture(300), donor = texture(301);
  int partial = 0, distance_calls = 0, same_peak = 0, by_place_shows = 0;
  std::set<int> parts_seen;
  for (uint64_t seed = 0; seed < 24; ++seed) {
    const auto a = anomaly::make_random_anomaly(base, donor, mix, seed);
    const int bank = int(seed % 3) - 1;  // kBothBanks, 0, 1
    reference::MapPart full_part = reference::MapPart::Patches, fast_part = reference::MapPart::Patches;
    const auto full = model::policy_input(a.image, "plate", bank, model, &ref, &full_part);  // (4,S,S)
    const auto fast = model::changed_policy_input(
        a.image, base,
        [&](int h) {
          ++distance_calls;
          return ref.patch_distances(base, "plate", h);
        },
        "plate", bank, model, &ref, &fast_part);
    // Where the two maps peak at one pixel, the same part shows it (both made of the same parts).
    if (fast[3].argmax().item<int64_t>() == full[3].argmax().item<int64_t>())
      EXPECT_EQ(int(fast_part), int(full_part)) << "seed " << seed << " (" << a.type_name() << ")";
    same_peak += fast[3].argmax().item<int64_t>() == full[3].argmax().item<int64_t>();
    parts_seen.insert(int(full_part));
    // A fixed scene's map is the comparison by place where that is larger: if the update left it out,
    // these draws would differ from the whole map.
    if (scene)
      by_place_shows +=
          (full[3] - model::policy_input(a.image, "plate", bank, model, &plain)[3]).abs().max().item<double>() > 1e-3;
    ASSERT_EQ(fast.sizes(), full.sizes());
    EXPECT_TRUE(torch::equal(fast.narrow(0, 0, 3), full.narrow(0, 0, 3))) << "seed " << seed;  // the RGB channels
    EXPECT_LE((fast[3] - full[3]).abs().max().item<double>(), 1e-4 * std::max(1.0, full[3].max().item<double>()))
        << "seed " << seed << " (" << a.type_name() << ", bank " << bank << ")";
    const cv::Rect r = model::changed_rect(a.image, base);
    partial += r.area() > 0 && r.area() < W * W / 2;
  }
  EXPECT_GE(partial, 12) << "most draws change a small part of the image, which the update recomputes";
  EXPECT_GE(same_peak, 20) << "the updated map peaks where the whole one does";
  EXPECT_GE(parts_seen.size(), 2u) << "the draws are shown by more than one part of the map";
  if (scene) EXPECT_GE(by_place_shows, 12) << "the comparison by place is larger somewhere in most draws";
  EXPECT_EQ(distance_calls, 8 * 2 + 16) << "both banks for kBothBanks draws, one bank otherwise";
  // An unchanged copy gives the normal image's own map.
  const auto same = model::changed_policy_input(
      base, base, [&](int h) { return ref.patch_distances(base, "plate", h); }, "plate", 0, model, &ref);
  EXPECT_LE((same[3] - ref.deviation(base, "plate", 0)).abs().max().item<double>(), 1e-6);
  EXPECT_THROW(ref.patch_distances(base, "plate", reference::NormalReference::kBothBanks), lriad::Error);
}

// With photometric normalisation a changed copy keeps the normal image's lighting where that moves
// no pixel by more than kRelightTolerance (the maps then differ by about that), and is compared
// whole otherwise (the maps equal).
TEST(NormalReference, ChangedMapsUnderPhotometricNormalisationStayCloseOrAreMadeWhole) {
  constexpr int S = 48, W = 96;
  auto texture = [](uint64_t seed) { return striped(W, seed); };
  std::map<std::string, std::array<std::vector<cv::Mat>, 2>> halves;
  for (int i = 0; i < 6; ++i) halves["plate"][size_t(i % 2)].push_back(texture(200 + uint64_t(i)));
  auto o = texture_options(S, W, 1500);
  o.region_side = 12;
  o.fine_textures = true;
  o.photometric = true;
  const auto ref = reference::NormalReference::build(halves, o);
  ASSERT_TRUE(ref.updatable("plate", W));
  ModelConfig model;
  model.image_size = S;
  model.reference = "knn";
  model.reference_fine_size = W;
  model.reference_fine_textures = true;
  std::map<anomaly::AnomalyKind, double> mix;
  for (auto k : anomaly::all_anomaly_kinds()) mix[k] = 1.0;
  const cv::Mat base = texture(300), donor = texture(301);
  const auto distances = [&](int h) { return ref.patch_distances(base, "plate", h); };
  EXPECT_EQ(distances(0).numel(), (S - 4) * (S - 4) + ((W - 5) / 2 + 1) * ((W - 5) / 2 + 1) + 4);
  int kept = 0, whole = 0, inexact = 0;
  double worst = 0;
  for (uint64_t seed = 0; seed < 24; ++seed) {
    const auto a = anomaly::make_random_anomaly(base, donor, mix, seed);
    const int bank = int(seed % 3) - 1;
    const auto full = model::policy_input(a.image, "plate", bank, model, &ref)[3];  // (S,S)
    const auto fast = model::changed_policy_input(a.image, base, distances, "plate", bank, model, &ref)[3];
    const double diff = (fast - full).abs().max().item<double>() / std::max(1.0, full.max().item<double>());
    namespace d = reference::detail;
    auto moved_at = [&](int side) {  // as changed_deviation decides: at the model's side and at the fine side
      return d::lighting_change(d::lighting_of(data::resize_square(a.image, side)),
                                d::lighting_of(data::resize_square(base, side))) > d::kRelightTolerance;
    };
    if (moved_at(S) || moved_at(W)) {
      ++whole;
      EXPECT_LE(diff, 1e-6) << "seed " << seed << ": a copy whose lighting moved is compared whole";
    } else {
      ++kept;
      worst = std::max(worst, diff);
      inexact += diff > 1e-6;
    }
  }
  // When written: 13 compared whole, 11 kept (all 11 a little off), the largest difference 3.3% of
  // the full map's peak (a striped grey texture of low contrast, whose lighting a change moves more
  // than a photograph's).
  EXPECT_GE(kept, 8) << "small changes keep the normal image's lighting";
  EXPECT_GE(inexact, 1) << "a kept lighting differs from the copy's own, so some kept maps differ a little";
  EXPECT_LE(worst, 0.05) << "kept lighting: within 5% of the full map's peak";
  // A change over half the image moves its statistics: compared whole, equal to deviation().
  cv::Mat dark = base.clone();
  dark(cv::Rect(0, 0, W, W / 2)) *= 0.5;
  const auto half = model::changed_policy_input(dark, base, distances, "plate", 0, model, &ref)[3];
  EXPECT_TRUE(torch::equal(half, ref.deviation(model::model_side_image(dark, true, model), "plate", 0)));
}

INSTANTIATE_TEST_SUITE_P(NormalReference, ChangedMaps,
                         ::testing::Values(ChangedMode::ModelSide, ChangedMode::FineTexture, ChangedMode::FixedScene),
                         [](const ::testing::TestParamInfo<ChangedMode>& i) {
                           return i.param == ChangedMode::FineTexture  ? "FineTexture"
                                  : i.param == ChangedMode::FixedScene ? "FixedScene"
                                                                       : "ModelSide";
                         });

TEST(NormalReference, ChangedRectIsTheBoundingBoxOfEveryChangedChannel) {
  const cv::Mat a = grey(20, 1);
  cv::Mat b = a.clone();
  EXPECT_TRUE(model::changed_rect(a, b).empty());
  b.at<cv::Vec3f>(3, 7)[2] += 0.5f;   // last channel of (x 7, y 3)
  b.at<cv::Vec3f>(11, 2)[0] -= 0.5f;  // first channel of (x 2, y 11)
  EXPECT_EQ(model::changed_rect(a, b), cv::Rect(2, 3, 6, 9));
  EXPECT_THROW(model::changed_rect(a, grey(21, 1)), lriad::Error);
}
