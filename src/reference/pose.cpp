// Pose of a part on a plain background (see pose.h).
#include "lriad/reference/pose.h"

#include <algorithm>
#include <cmath>
#include <string>

#include <opencv2/imgproc.hpp>

#include "lriad/io/error.h"

namespace lriad::reference {
namespace {

cv::Mat grey_of(const cv::Mat& image) {
  if (image.type() == CV_32FC1) return image;
  if (image.type() != CV_32FC3) throw Error("pose: expected a float RGB or grey image");
  cv::Mat g;
  cv::cvtColor(image, g, cv::COLOR_RGB2GRAY);
  return g;
}

// Least-squares plane through the border pixels' grey values: (H,W) float.
cv::Mat border_plane(const cv::Mat& g) {
  const int W = g.cols, H = g.rows;
  std::vector<cv::Point> pts;
  for (int x = 0; x < W; ++x) pts.insert(pts.end(), {{x, 0}, {x, H - 1}});
  for (int y = 1; y + 1 < H; ++y) pts.insert(pts.end(), {{0, y}, {W - 1, y}});
  cv::Mat A(int(pts.size()), 3, CV_64F), z(int(pts.size()), 1, CV_64F);
  for (int r = 0; r < int(pts.size()); ++r) {
    A.at<double>(r, 0) = 1;
    A.at<double>(r, 1) = pts[size_t(r)].x;
    A.at<double>(r, 2) = pts[size_t(r)].y;
    z.at<double>(r, 0) = g.at<float>(pts[size_t(r)]);
  }
  cv::Mat c;
  cv::solve(A, z, c, cv::DECOMP_SVD);
  cv::Mat plane(H, W, CV_32F);
  for (int y = 0; y < H; ++y)
    for (int x = 0; x < W; ++x)
      plane.at<float>(y, x) = float(c.at<double>(0) + c.at<double>(1) * x + c.at<double>(2) * y);
  return plane;
}

}  // namespace

cv::Mat part_mask(const cv::Mat& image) {
  const cv::Mat g = grey_of(image);
  if (g.cols < 3 || g.rows < 3) return cv::Mat::zeros(g.size(), CV_8UC1);
  cv::Mat diff = cv::abs(g - border_plane(g)), d8, fg;
  diff.convertTo(d8, CV_8U, 255.0);
  cv::threshold(d8, fg, 0, 255, cv::THRESH_BINARY | cv::THRESH_OTSU);
  cv::morphologyEx(fg, fg, cv::MORPH_OPEN, cv::getStructuringElement(cv::MORPH_ELLIPSE, {3, 3}));
  return fg;
}

cv::Mat background_mask(const cv::Mat& image, double floor) {
  if (image.cols < 3 || image.rows < 3) return cv::Mat::zeros(image.size(), CV_8UC1);
  std::vector<cv::Mat> channels;
  cv::split(image.type() == CV_32FC3 ? image : grey_of(image), channels);
  cv::Mat border = cv::Mat::ones(image.size(), CV_8UC1) * 255;
  border(cv::Rect(1, 1, image.cols - 2, image.rows - 2)).setTo(0);
  std::vector<cv::Mat> off;  // each channel's difference from its border plane
  double square = 0;
  for (const auto& c : channels) {
    off.push_back(cv::abs(c - border_plane(c)));
    const double rms = cv::norm(off.back(), cv::NORM_L2, border) / std::sqrt(double(cv::countNonZero(border)));
    square += rms * rms / double(channels.size());
  }
  const double tolerance = std::max(floor, 4 * std::sqrt(square));
  cv::Mat worst = off[0].clone();
  for (size_t c = 1; c < off.size(); ++c) worst = cv::max(worst, off[c]);
  return worst <= tolerance;
}

Pose estimate_pose(const cv::Mat& image, double aspect) {
  if (!(aspect > 0) || !std::isfinite(aspect))
    throw Error("pose: the frame's aspect must be a positive width / height, got " + std::to_string(aspect));
  const cv::Mat g = grey_of(image);
  const int W = g.cols, H = g.rows;
  Pose p;
  p.cx = W / 2.0;
  p.cy = H / 2.0;
  p.sx = std::min(1.0, aspect);        // a wide photograph was squeezed along x ...
  p.sy = std::min(1.0, 1.0 / aspect);  // ... a tall one along y: undo it by shrinking the other axis
  if (W < 3 || H < 3) return p;
  const cv::Mat fg = part_mask(g);
  int touch = 0;
  for (int x = 0; x < W; ++x) touch += (fg.at<uchar>(0, x) > 0) + (fg.at<uchar>(H - 1, x) > 0);
  for (int y = 1; y + 1 < H; ++y) touch += (fg.at<uchar>(y, 0) > 0) + (fg.at<uchar>(y, W - 1) > 0);
  p.border_touch = double(touch) / double(2 * W + 2 * (H - 2));
  const cv::Moments m = cv::moments(fg, true);
  p.area = m.m00 / double(W * H);
  if (m.m00 < 10) return p;
  p.found = true;
  p.cx = m.m10 / m.m00;
  p.cy = m.m01 / m.m00;
  // Second moments in the undistorted frame.
  const double a = m.mu20 / m.m00 * p.sx * p.sx, b = m.mu11 / m.m00 * p.sx * p.sy, c = m.mu02 / m.m00 * p.sy * p.sy;
  const double half_gap = std::sqrt(0.25 * (a - c) * (a - c) + b * b);
  const double major = 0.5 * (a + c) + half_gap, minor = 0.5 * (a + c) - half_gap;
  if (major < 2.0 * minor) return p;  // round or square-ish: no axis to trust
  p.elongated = true;
  const double theta = 0.5 * std::atan2(2 * b, a - c);
  const double ux = std::cos(theta), uy = std::sin(theta);
  double skew = 0;  // third moment along the axis: which end carries more of the part
  for (int y = 0; y < H; ++y)
    for (int x = 0; x < W; ++x)
      if (fg.at<uchar>(y, x)) {
        const double t = (x - p.cx) * p.sx * ux + (y - p.cy) * p.sy * uy;
        skew += t * t * t;
      }
  p.degrees = theta * 180.0 / M_PI + (skew < 0 ? 180.0 : 0.0);
  return p;
}

cv::Mat canonical_transform(const Pose& pose, cv::Size size) {
  cv::Mat M = cv::getRotationMatrix2D(cv::Point2f(float(pose.cx), float(pose.cy)), pose.degrees, 1.0);
  if (pose.sx == 1.0 && pose.sy == 1.0) {  // an unstretched frame: the map as it always was, to the bit
    M.at<double>(0, 2) += size.width / 2.0 - pose.cx;
    M.at<double>(1, 2) += size.height / 2.0 - pose.cy;
    return M;
  }
  // q = R (A (p - c)) + centre, A = diag(sx, sy): undistort about the centroid, then turn.
  for (int r = 0; r < 2; ++r) {
    const double rx = M.at<double>(r, 0), ry = M.at<double>(r, 1);
    M.at<double>(r, 0) = rx * pose.sx;
    M.at<double>(r, 1) = ry * pose.sy;
    M.at<double>(r, 2) = (r == 0 ? size.width : size.height) / 2.0 - (rx * pose.sx * pose.cx + ry * pose.sy * pose.cy);
  }
  return M;
}

cv::Mat to_canonical(const cv::Mat& image, const Pose& pose) {
  cv::Mat out;
  cv::warpAffine(image, out, canonical_transform(pose, image.size()), image.size(), cv::INTER_LINEAR,
                 cv::BORDER_REPLICATE);
  return out;
}

cv::Mat from_canonical(const cv::Mat& map, const Pose& pose) {
  cv::Mat out;
  cv::warpAffine(map, out, canonical_transform(pose, map.size()), map.size(), cv::INTER_LINEAR | cv::WARP_INVERSE_MAP,
                 cv::BORDER_REPLICATE);
  return out;
}

bool is_part_category(const std::vector<cv::Mat>& normal_images) {
  std::vector<Pose> poses;
  for (const auto& img : normal_images) poses.push_back(estimate_pose(img));
  return is_part_category_from(poses);
}

bool is_part_category_from(const std::vector<Pose>& poses) {
  if (poses.empty()) return false;
  size_t ok = 0;
  for (const auto& p : poses) ok += p.found && p.border_touch < 0.05 && p.area > 0.03 && p.area < 0.7;
  return double(ok) >= 0.9 * double(poses.size());
}

bool is_round_category_from(const std::vector<Pose>& poses) {
  if (poses.empty()) return false;
  size_t round = 0;
  for (const auto& p : poses) round += p.found && !p.elongated;
  return double(round) >= 0.9 * double(poses.size());
}

cv::Mat polar_residual(const cv::Mat& grey, int harmonics) {
  if (grey.type() != CV_32FC1 || grey.rows != grey.cols || grey.rows < 1)
    throw Error("polar_residual: expected a square CV_32FC1 image");
  if (harmonics < 0) throw Error("polar_residual: harmonics must be >= 0");
  const int S = grey.rows, nb = 2 * harmonics + 1;
  const int rings = int(std::ceil(std::hypot(S / 2.0, S / 2.0))) + 1;
  // Basis per pixel: 1, cos t, sin t, ..., cos Kt, sin Kt (angle sums from cos t, sin t).
  std::vector<int> ring(size_t(S) * S);
  std::vector<double> basis(size_t(S) * S * nb);
  for (int y = 0; y < S; ++y)
    for (int x = 0; x < S; ++x) {
      const double dx = x - S / 2.0, dy = y - S / 2.0, r = std::hypot(dx, dy);
      const double c1 = r > 0 ? dx / r : 1.0, s1 = r > 0 ? dy / r : 0.0;
      const size_t i = size_t(y) * S + x;
      ring[i] = int(r);
      double* b = &basis[i * nb];
      b[0] = 1;
      double c = 1, s = 0;
      for (int k = 1; k <= harmonics; ++k) {
        const double cn = c * c1 - s * s1, sn = s * c1 + c * s1;
        c = cn;
        s = sn;
        b[2 * k - 1] = c;
        b[2 * k] = s;
      }
    }
  // Normal equations per ring, a small ridge so rings of a few pixels (the centre) stay solvable.
  std::vector<cv::Mat> ata(static_cast<size_t>(rings)), aty(static_cast<size_t>(rings));
  for (int r = 0; r < rings; ++r) {
    ata[size_t(r)] = cv::Mat::eye(nb, nb, CV_64F) * 1e-3;
    aty[size_t(r)] = cv::Mat::zeros(nb, 1, CV_64F);
  }
  const cv::Mat g = grey.isContinuous() ? grey : grey.clone();
  const float* v = g.ptr<float>();
  for (size_t i = 0; i < ring.size(); ++i) {
    const double* b = &basis[i * nb];
    double* A = ata[size_t(ring[i])].ptr<double>();
    double* z = aty[size_t(ring[i])].ptr<double>();
    for (int p = 0; p < nb; ++p) {
      z[p] += b[p] * v[i];
      for (int q = 0; q < nb; ++q) A[p * nb + q] += b[p] * b[q];
    }
  }
  std::vector<cv::Mat> coef(static_cast<size_t>(rings));
  for (int r = 0; r < rings; ++r) cv::solve(ata[size_t(r)], aty[size_t(r)], coef[size_t(r)], cv::DECOMP_CHOLESKY);
  cv::Mat out(S, S, CV_32FC1);
  float* o = out.ptr<float>();
  for (size_t i = 0; i < ring.size(); ++i) {
    const double* b = &basis[i * nb];
    const double* c = coef[size_t(ring[i])].ptr<double>();
    double fit = 0;
    for (int p = 0; p < nb; ++p) fit += b[p] * c[p];
    o[i] = float(v[i] - fit);
  }
  return out;
}

}  // namespace lriad::reference
