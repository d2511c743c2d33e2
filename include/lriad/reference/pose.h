// Pose of a part on a plain background, for comparing parts that lie at different places and angles
// (screws, pills, nuts) with the normal images of their category.
//
// The background is a plane a + b·x + c·y fitted to the border pixels' grey values (so a lighting
// gradient is not mistaken for the part); the part is what differs from it by more than Otsu's
// threshold, minus specks (3x3 opening). Its pose is the centroid and, for an elongated part
// (principal axis variance >= 2x the other), the principal axis' angle, with the sign of the third
// moment along it choosing which end points right. Round or square-ish parts keep angle 0.
//
// Whether a category is made of such parts at all is decided once from its normal images
// (`is_part_category`): the part must be found, touch the border on < 5% of its pixels and cover
// 3-70% of the image in at least 90% of them. Textures and parts that fill the frame fail that.
// (The training anomalies decide the same question per image, by the border's colour, to keep a
// defect on the part: anomaly/internal.h, Context::part. A posed category is "aligned" in
// NormalReference: compared in the canonical pose.)
//
// Stretched frames: lriad brings every image to a square by stretching it (data::resize_square), so
// a part photographed in a 4:3 frame is narrower by 3/4 along x than along y, and turning it changes
// its shape: a screw lying along x is shorter than one standing along y, and no rotation brings the
// two onto each other. Given the frame's `aspect` (the original width over height), the pose is
// measured in the undistorted geometry (x scaled by sx, y by sy, the larger of the two 1) and the
// canonical frame is undistorted too: the part at its true proportions, turned to its axis.
// Images are CV_32FC3 RGB [0,1] or CV_32FC1; no torch here.
#pragma once
#include <vector>

#include <opencv2/core.hpp>

namespace lriad::reference {

struct Pose {
  bool found = false;       // a part was separated from the background
  double cx = 0, cy = 0;    // centroid, pixels
  double degrees = 0;       // rotation that brings the principal axis to horizontal (OpenCV's sense)
  double area = 0;          // part pixels / image pixels
  double border_touch = 0;  // share of the border pixels that belong to the part
  bool elongated = false;   // principal axis variance >= 2x the other: `degrees` follows that axis
  double sx = 1, sy = 1;    // undistorted coordinates are (x * sx, y * sy) (see "Stretched frames")
};

// `aspect`: the width over the height of the photograph the image was stretched from (1: not
// stretched). The centroid is in the image's pixels, the axis and `degrees` in the undistorted frame.
Pose estimate_pose(const cv::Mat& image, double aspect = 1.0);

// The pixels estimate_pose takes for the part: those differing from the border's plane by more
// than Otsu's threshold, minus specks. -> CV_8UC1 of the image's size, 255 on the part, 0 on the
// background; all 0 for an image under 3 pixels a side.
cv::Mat part_mask(const cv::Mat& image);

// The pixels whose colour is the background's: in every channel within `tolerance` of that
// channel's plane through the border pixels, the tolerance being the larger of `floor` and 4x the
// border pixels' own RMS difference from their planes (a textured or noisy background widens it).
// -> CV_8UC1 of the image's size, 255 there; all 0 for an image under 3 pixels a side.
cv::Mat background_mask(const cv::Mat& image, double floor = 0.04);

// 2x3 affine map from the image to the canonical frame: the undistorting scale (Pose::sx, sy), then
// the centroid to the centre and the axis horizontal.
cv::Mat canonical_transform(const Pose& pose, cv::Size size);
// `image` moved to the canonical frame (edges replicated).
cv::Mat to_canonical(const cv::Mat& image, const Pose& pose);
// A map in the canonical frame (e.g. deviation, CV_32FC1) brought back onto the original image.
cv::Mat from_canonical(const cv::Mat& map, const Pose& pose);

// True when the images show one separable part each (see above); false for an empty list.
bool is_part_category(const std::vector<cv::Mat>& normal_images);
// The same from the images' poses (estimate_pose), for a caller that needs the poses anyway.
bool is_part_category_from(const std::vector<Pose>& poses);
// True when the category's parts are round rather than elongated (nuts, washers, caps): at least
// 90% of the poses found a part and not an elongated one. False for an empty list.
bool is_round_category_from(const std::vector<Pose>& poses);

// What a round, turned part's surface does not explain: `grey` (CV_32FC1, square, the part centred
// at (side/2, side/2) as to_canonical puts it) minus, ring by ring (1-px rings about the centre),
// its least-squares fit by a mean plus `harmonics` cosine/sine pairs of the angle. Turning marks
// (any profile along the radius) and lighting that turns with the angle (a bow-tie highlight) fit;
// a scratch, a stain or a chip covers a short arc of few rings and stays. -> CV_32FC1, same size.
cv::Mat polar_residual(const cv::Mat& grey, int harmonics);

}  // namespace lriad::reference
