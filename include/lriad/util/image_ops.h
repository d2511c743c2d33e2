// Small per-pixel operations on float images, shared by the demo generator and the training-time
// synthetic anomalies. Fields are CV_32F; images CV_32FC3 RGB in [0,1].
#pragma once
#include <opencv2/core.hpp>

namespace lriad::util {

cv::Mat colourize(const cv::Mat& t, const cv::Vec3f& dark, const cv::Vec3f& light);  // field t in [0,1] -> dark..light
cv::Mat grey3(const cv::Mat& field);                                                 // CV_32F -> CV_32FC3
cv::Mat mul3(const cv::Mat& image, const cv::Mat& field);                 // per-pixel scaling of all channels
void blend(cv::Mat& image, const cv::Mat& alpha, const cv::Mat& target);  // lerp by alpha
cv::Mat blur(const cv::Mat& m, double sigma);  // Gaussian, reflected border; a copy below 0.05
float smoothstep(float e0, float e1, float x);
// The pixel a point in pixel coordinates falls on, rounded as cv::Point(p) rounds and kept inside
// `size`: a point drawn in [0, cols) can round to cols, and reading there runs off the row (off the
// buffer on the last row, where whatever memory follows made training draws differ from run to run).
cv::Point pixel_of(const cv::Point2f& p, const cv::Size& size);

}  // namespace lriad::util
