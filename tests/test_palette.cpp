// Colour novelty against a category's normal colours (reference/palette.h).
#include <gtest/gtest.h>

#include "lriad/reference/palette.h"
#include "lriad/io/error.h"

using namespace lriad;
using reference::ColourPalette;

namespace {

// Bin b of 32 per channel covers [b/32, (b+1)/32): its centre is (b + 0.5)/32.
float centre(int bin) { return (float(bin) + 0.5f) / 32.f; }
cv::Vec3f colour(int r, int g, int b) { return {centre(r), centre(g), centre(b)}; }

}  // namespace

TEST(ColourPalette, DistancesAreCityBlockBinsToTheNearestNormalColour) {
  // Normal colours: bins (16,16,16) and (16,16,20).
  cv::Mat normal(4, 8, CV_32FC3, cv::Scalar::all(0));
  normal(cv::Rect(0, 0, 4, 4)).setTo(colour(16, 16, 16));
  normal(cv::Rect(4, 0, 4, 4)).setTo(colour(16, 16, 20));
  const auto p = ColourPalette::build({normal});
  auto d = [&](int r, int g, int b) { return p.distances()[size_t((r * 32 + g) * 32 + b)]; };
  EXPECT_EQ(d(16, 16, 16), 0.f);
  EXPECT_EQ(d(16, 16, 20), 0.f);
  EXPECT_EQ(d(16, 16, 18), 2.f);  // 2 from either
  EXPECT_EQ(d(19, 16, 16), 3.f);  // |19-16|
  EXPECT_EQ(d(18, 14, 21), 5.f);  // 2 + 2 + 1 from (16,16,20)
  EXPECT_EQ(d(0, 0, 0), 48.f);    // 16 + 16 + 16
}

TEST(ColourPalette, NoveltyIsBinsBeyondOneOfToleranceAveragedOverThreeByThree) {
  cv::Mat normal(16, 16, CV_32FC3, cv::Scalar::all(0));
  normal.setTo(colour(16, 16, 16));
  const auto p = ColourPalette::build({normal});
  cv::Mat image = normal.clone();
  image(cv::Rect(2, 2, 5, 5)).setTo(colour(16, 16, 20));  // 4 bins off: novelty 3 inside
  image.at<cv::Vec3f>(12, 12) = colour(17, 16, 16);       // 1 bin off: within the tolerance
  const cv::Mat n = p.novelty(image);
  ASSERT_EQ(n.size(), image.size());
  ASSERT_EQ(n.type(), CV_32FC1);
  EXPECT_FLOAT_EQ(n.at<float>(4, 4), 3.f);          // the block's centre: all 9 neighbours at 3
  EXPECT_FLOAT_EQ(n.at<float>(4, 7), 3.f * 3 / 9);  // next to its right edge: 3 of 9 at 3
  EXPECT_FLOAT_EQ(n.at<float>(12, 12), 0.f);
  EXPECT_FLOAT_EQ(n.at<float>(14, 2), 0.f);
  // A default-constructed palette flags nothing.
  EXPECT_EQ(cv::countNonZero(ColourPalette().novelty(image)), 0);
}

TEST(ColourPalette, RejectsWhatItCannotUse) {
  EXPECT_THROW(ColourPalette::build({}), Error);
  EXPECT_THROW(ColourPalette::build({cv::Mat(4, 4, CV_8UC3, cv::Scalar::all(0))}), Error);
  EXPECT_THROW(ColourPalette::from_distances(std::vector<float>(10, 0.f)), Error);
  std::vector<float> bad(size_t(ColourPalette::kCells), 1.f);
  bad[7] = -1.f;
  EXPECT_THROW(ColourPalette::from_distances(bad), Error);
  const auto ok = ColourPalette::from_distances(std::vector<float>(size_t(ColourPalette::kCells), 2.f));
  cv::Mat any(3, 3, CV_32FC3, cv::Scalar::all(0.5));
  EXPECT_FLOAT_EQ(ok.novelty(any).at<float>(1, 1), 1.f);  // 2 bins, less 1 of tolerance
}
