// Pose of a part on a plain background (reference/pose.h).
#include <gtest/gtest.h>

#include <algorithm>

#include <opencv2/imgproc.hpp>

#include "fixtures.h"
#include "lriad/io/error.h"
#include "lriad/reference/pose.h"

using namespace lriad;
using lriad::test::draw_part;

namespace {

// Intersection over union of the dark part's pixels (grey < 0.45) in two images.
double part_iou(const cv::Mat& a, const cv::Mat& b) {
  cv::Mat ga, gb;
  cv::cvtColor(a, ga, cv::COLOR_RGB2GRAY);
  cv::cvtColor(b, gb, cv::COLOR_RGB2GRAY);
  const cv::Mat ma = ga < 0.45, mb = gb < 0.45;
  return double(cv::countNonZero(ma & mb)) / double(std::max(1, cv::countNonZero(ma | mb)));
}

}  // namespace

TEST(Pose, CentroidAndAxisOfAnElongatedPart) {
  const auto img = draw_part(64, 30, 36, 0, 1);
  const auto p = reference::estimate_pose(img);
  ASSERT_TRUE(p.found);
  // Centroid of the union of shaft (30x6 at along -3) and head (7x14 at along -18), which overlap
  // on 3.5x6 pixels centred at along -16.25.
  EXPECT_NEAR(p.cx, 30 + (180.0 * -3 + 98.0 * -18 - 21.0 * -16.25) / 257.0, 0.6);
  EXPECT_NEAR(p.cy, 36, 1.0);
  EXPECT_NEAR(std::fmod(p.degrees + 360.0, 180.0), 0.0, 3.0);  // axis horizontal already
  EXPECT_NEAR(p.area, 257.0 / (64 * 64), 0.015);
  EXPECT_EQ(p.border_touch, 0.0);
  EXPECT_TRUE(p.elongated);
}

TEST(Pose, TheSamePartAtAnyPlaceAndAngleLooksTheSameInTheCanonicalFrame) {
  const auto ref = draw_part(64, 32, 32, 0, 1);
  const auto ref_c = reference::to_canonical(ref, reference::estimate_pose(ref));
  for (const auto& [cx, cy, deg] :
       std::vector<std::array<double, 3>>{{26, 38, 35}, {38, 28, 120}, {33, 33, 200}, {30, 36, 290}}) {
    const auto img = draw_part(64, cx, cy, deg, 2 + uint64_t(deg));
    const auto pose = reference::estimate_pose(img);
    ASSERT_TRUE(pose.found) << deg;
    EXPECT_LT(part_iou(img, ref), 0.4) << deg;
    EXPECT_GT(part_iou(reference::to_canonical(img, pose), ref_c), 0.8) << deg;  // head at the same end too
  }
}

// A 96x64 photograph (3:2) of the screw, stretched to 64x64 as lriad brings every image to a
// square: at 0 degrees the screw is squeezed to 2/3 of its length, standing at 90 degrees not at all.
static cv::Mat stretched_photo(double degrees, uint64_t seed) {
  const cv::Mat square = draw_part(96, 48, 48, degrees, seed);
  cv::Mat out;
  cv::resize(square(cv::Rect(0, 16, 96, 64)), out, cv::Size(64, 64), 0, 0, cv::INTER_AREA);
  return out;
}

TEST(Pose, APartInAStretchedFrameIsPosedAtItsTrueProportions) {
  const double aspect = 96.0 / 64.0;
  const auto ref = stretched_photo(0, 1);
  const auto ref_pose = reference::estimate_pose(ref, aspect);
  EXPECT_DOUBLE_EQ(ref_pose.sx, 1.0);  // wide: x kept, y shrunk by 2/3
  EXPECT_DOUBLE_EQ(ref_pose.sy, 64.0 / 96.0);
  const auto ref_c = reference::to_canonical(ref, ref_pose);
  const auto ref_plain = reference::to_canonical(ref, reference::estimate_pose(ref));
  double worst_plain = 1.0;
  for (const double deg : {60.0, 90.0, 150.0, 250.0}) {
    const auto img = stretched_photo(deg, 2 + uint64_t(deg));
    const auto pose = reference::estimate_pose(img, aspect);
    ASSERT_TRUE(pose.found) << deg;
    EXPECT_GT(part_iou(reference::to_canonical(img, pose), ref_c), 0.8) << deg;
    worst_plain =
        std::min(worst_plain, part_iou(reference::to_canonical(img, reference::estimate_pose(img)), ref_plain));
  }
  // Posed as if the frame were square, the standing screw stays longer than the lying one.
  EXPECT_LT(worst_plain, 0.7);
  // The round trip still lands a marker where it was.
  cv::Mat spot = cv::Mat::zeros(64, 64, CV_32FC1);
  spot.at<float>(40, 26) = 1.f;
  const auto pose = reference::estimate_pose(stretched_photo(150, 7), aspect);
  cv::Point at;
  cv::minMaxLoc(reference::from_canonical(reference::to_canonical(spot, pose), pose), nullptr, nullptr, nullptr, &at);
  EXPECT_LE(std::abs(at.x - 26) + std::abs(at.y - 40), 2);
  EXPECT_THROW(reference::estimate_pose(ref, 0.0), lriad::Error);
}

TEST(Pose, FromCanonicalUndoesToCanonical) {
  const auto img = draw_part(64, 28, 35, 57, 3);
  const auto pose = reference::estimate_pose(img);
  cv::Mat grey;
  cv::cvtColor(img, grey, cv::COLOR_RGB2GRAY);
  const cv::Mat back = reference::from_canonical(reference::to_canonical(grey, pose), pose);
  ASSERT_EQ(back.type(), CV_32FC1);
  ASSERT_EQ(back.size(), grey.size());
  const cv::Rect centre(16, 16, 32, 32);  // away from the replicated edges
  EXPECT_LT(cv::mean(cv::abs(back(centre) - grey(centre)))[0], 0.02);
  // A marker on the part stays on the part: the brightest pixel of the round trip is the spot's.
  cv::Mat spot = cv::Mat::zeros(64, 64, CV_32FC1);
  spot.at<float>(40, 20) = 1.f;
  cv::Point at;
  cv::minMaxLoc(reference::from_canonical(reference::to_canonical(spot, pose), pose), nullptr, nullptr, nullptr, &at);
  EXPECT_LE(std::abs(at.x - 20) + std::abs(at.y - 40), 2);
}

TEST(Pose, RoundPartsKeepTheirAngleAndTexturesAreNotParts) {
  cv::Mat disc(64, 64, CV_32FC3, cv::Scalar(0.2, 0.2, 0.2));
  cv::circle(disc, {34, 30}, 14, cv::Scalar(0.8, 0.8, 0.8), cv::FILLED);
  const auto p = reference::estimate_pose(disc);
  ASSERT_TRUE(p.found);
  EXPECT_EQ(p.degrees, 0.0);
  EXPECT_NEAR(p.cx, 34, 0.5);
  EXPECT_NEAR(p.cy, 30, 0.5);
  EXPECT_FALSE(p.elongated);
  // Round categories: nine round parts in ten are enough, an elongated one in five is not.
  reference::Pose screw = reference::estimate_pose(draw_part(64, 30, 36, 0, 1)), lost;
  std::vector<reference::Pose> nuts(9, p);
  nuts.push_back(screw);
  EXPECT_TRUE(reference::is_round_category_from(nuts));
  nuts.resize(4);
  nuts.push_back(screw);
  EXPECT_FALSE(reference::is_round_category_from(nuts));
  nuts.back() = lost;  // no part found
  EXPECT_FALSE(reference::is_round_category_from(nuts));
  EXPECT_FALSE(reference::is_round_category_from({}));

  std::vector<cv::Mat> parts, textures;
  cv::RNG rng(5);
  for (int i = 0; i < 6; ++i) {
    parts.push_back(draw_part(64, 28 + 2 * i, 30 + i, 40.0 * i, uint64_t(i)));
    cv::Mat t(64, 64, CV_32FC3);
    rng.fill(t, cv::RNG::UNIFORM, 0.0, 1.0);
    cv::GaussianBlur(t, t, {0, 0}, 1.5);
    textures.push_back(t);
  }
  EXPECT_TRUE(reference::is_part_category(parts));
  EXPECT_FALSE(reference::is_part_category(textures));
  EXPECT_FALSE(reference::is_part_category({}));
  // A part that runs off the frame is not a part on a plain background.
  std::vector<cv::Mat> cut;
  for (int i = 0; i < 6; ++i) cut.push_back(draw_part(64, 4, 32, 0, uint64_t(i)));
  EXPECT_FALSE(reference::is_part_category(cut));
}

TEST(Pose, PolarResidualRemovesTurningMarksAndTheHighlightButKeepsAScratch) {
  const int S = 64;
  cv::Mat turned(S, S, CV_32FC1), wavy(S, S, CV_32FC1);
  for (int y = 0; y < S; ++y)
    for (int x = 0; x < S; ++x) {
      const double r = std::hypot(x - S / 2.0, y - S / 2.0), t = std::atan2(y - S / 2.0, x - S / 2.0);
      // rings along the radius and a bow-tie highlight (second harmonic of the angle)
      turned.at<float>(y, x) = float(0.5 + 0.08 * std::sin(r / 1.5) + 0.2 * std::cos(2 * (t - 0.7)));
      wavy.at<float>(y, x) = float(0.5 + 0.2 * std::cos(6 * t));  // sixth harmonic: beyond 2
    }
  const cv::Mat res = reference::polar_residual(turned, 2);
  ASSERT_EQ(res.type(), CV_32FC1);
  ASSERT_EQ(res.size(), turned.size());
  const cv::Rect face(S / 2 - 24, S / 2 - 24, 48, 48);
  double lo, hi;
  cv::minMaxLoc(cv::abs(res(face)), &lo, &hi);
  EXPECT_LT(hi, 0.03);  // 0.16 of rings and 0.4 of highlight, left to within the rings' own slope

  cv::Mat scratched = turned.clone();
  cv::line(scratched, {38, 20}, {50, 30}, cv::Scalar(0.95), 1, cv::LINE_8);
  const cv::Mat res2 = reference::polar_residual(scratched, 2);
  EXPECT_GT(res2.at<float>(25, 44), 0.15);            // on the line: most of its ~0.3-0.6 contrast stays
  EXPECT_LT(std::abs(res2.at<float>(44, 20)), 0.03);  // far from it, the fit is as before

  cv::minMaxLoc(cv::abs(reference::polar_residual(wavy, 2)(face)), &lo, &hi);
  EXPECT_GT(hi, 0.15);  // more angle terms than asked for are not fitted
  cv::minMaxLoc(cv::abs(reference::polar_residual(wavy, 6)(face)), &lo, &hi);
  EXPECT_LT(hi, 0.01);

  EXPECT_THROW(reference::polar_residual(cv::Mat(8, 9, CV_32FC1, cv::Scalar(0)), 2), std::exception);
  EXPECT_THROW(reference::polar_residual(cv::Mat(8, 8, CV_32FC3), 2), std::exception);
  EXPECT_THROW(reference::polar_residual(turned, -1), std::exception);
}
