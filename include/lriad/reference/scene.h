// Fixed scenes: categories whose normal images all show one scene at one place, as a camera fixed
// over a board, a tray of parts or a mounted object sees them (MVTec-AD's transistor, VisA's PCBs),
// and whose background is not plain (reference/pose.h takes a part on a plain background). A bank of
// patches that forgets where each patch came from sees nothing wrong when a component is missing or
// sits at another component's place: every patch there is normal somewhere. Such a category is then
// also compared by place (reference/reference.h, "Fixed scenes").
//
// Decided from the normal images alone: each image's luminance, brought to kSceneSide pixels and
// blurred (kSceneBlur px), is correlated with the mean of the other images'; a scene is fixed when
// the median correlation is at least kSceneAgreement. A texture's crops average out to a flat mean
// (the photo sets' 13 materials, scripts/photo_sets.py: -0.03 to 0.09; the demo's textures 0.11-0.40,
// its woven fabric the highest), and a part that turns does too (the demo's screws 0.39-0.40); four
// coins at fixed places on cork or brick, moved by a few pixels, reach 0.97-1.00. Images: CV_32FC3
// RGB [0,1], any size (each is resized); no torch here.
#pragma once
#include <vector>

#include <opencv2/core.hpp>

namespace lriad::reference {

inline constexpr int kSceneSide = 64;           // the side the images are compared at
inline constexpr double kSceneBlur = 1.0;       // Gaussian sigma, pixels at kSceneSide
inline constexpr double kSceneAgreement = 0.7;  // the median correlation a fixed scene reaches
inline constexpr int kSceneMinImages = 4;       // fewer images decide nothing (not fixed)

// The median over the images of the correlation of each one's blurred luminance with the mean of
// the others' (see above); 0 for fewer than kSceneMinImages images. Throws lriad::Error on an image
// that is not CV_32FC3.
double scene_agreement(const std::vector<cv::Mat>& images);
// scene_agreement(images) >= kSceneAgreement.
bool is_fixed_scene(const std::vector<cv::Mat>& images);

}  // namespace lriad::reference
