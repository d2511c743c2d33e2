// Private parts of the training-anomaly synthesiser (src/anomaly/*.cpp): the per-image analysis
// (foreground, background, noise level), placement draws, gradient noise and the painters.
#pragma once
#include <vector>

#include <opencv2/core.hpp>

#include "lriad/anomaly/anomaly.h"
#include "lriad/util/image_ops.h"
#include "lriad/util/rng.h"

namespace lriad::anomaly::detail {

using util::Rng;

// Weights below this are dropped from the footprint (and reset to the input there): a 2%
// blend is invisible, and keeping it would dilute the footprint with untouched pixels.
constexpr float kFootprintAlpha = 0.02f;

// --- what one normal image looks like (computed once per make_anomaly call) ----------
struct Context {
  cv::Mat image;  // the normal image, CV_32FC3 in [0,1]
  cv::Mat donor;  // the donor (== image when none was given)
  const AnomalyParams* p = nullptr;
  int side = 0;       // shorter side in px
  double unit = 1.0;  // px per "1 px at 128": strokes and rims scale with the image
  bool grey = false;  // all channels equal: results are kept grey
  // A part on a plain background, found in this image by its border colour (the normal reference
  // decides per category from the part's outline: reference::is_part_category): anomalies stay on it.
  bool part = false;
  cv::Mat fg;                        // CV_8U 0/1 foreground (all ones for textures)
  cv::Mat fg_soft;                   // CV_32F, fg dilated by ~1 px and feathered: multiplies a part's alphas
  cv::Mat fg_dist;                   // CV_32F distance to the nearest background pixel (parts only)
  std::vector<cv::Point> fg_points;  // centre candidates (parts only)
  cv::Vec3f border_median;           // background colour estimate
  double noise_sigma = 0.0;          // sensor noise estimate, re-added into smooth fills
};
Context analyse(const cv::Mat& image, const cv::Mat& donor, const AnomalyParams& p);

// --- draws ---------------------------------------------------------------------------
double draw_size(Rng& rng, const Context& c);      // px, log-uniform in the scale range
double draw_contrast(Rng& rng, const Context& c);  // in [contrast_min, contrast_max]
// On the part (with foreground_prob) or uniform, keeping `margin` px from the border.
cv::Point2f draw_center(Rng& rng, const Context& c, double margin);
// fg_dist at the pixel `p` falls on (parts only; util::pixel_of keeps it inside the image).
float depth_at(const Context& c, const cv::Point2f& p);
// A point on the part within `band` px of its outline (parts; else draw_center).
cv::Point2f draw_edge_point(Rng& rng, const Context& c, double band);
// A point at least `depth` px inside the part if there is one (else the deepest tried).
cv::Point2f draw_inner_point(Rng& rng, const Context& c, double depth);

// --- fields (fields.cpp) -----------------------------------------------------
// Classic 2-D gradient noise (Perlin 1985/2002: hashed unit gradients, quintic fade),
// summed over octaves; ~[-1,1]. `cell` is the period of the first octave in px.
cv::Mat perlin_fbm(Rng& rng, cv::Size size, double cell, int octaves, double gain = 0.5);
// An irregular blob: 1 - d^2 + amp * noise thresholded at 0.5 with a soft ramp of
// +-`soft`, where d is the elliptical distance from `center` (1 at radius r).
cv::Mat noisy_blob(Rng& rng, cv::Size size, cv::Point2f center, double r, double aspect, double angle, double amp,
                   double cell, double soft);
// Anti-aliased polygon / polyline with per-vertex width (4x supersampled) as CV_32F in [0,1].
cv::Mat polygon_alpha(cv::Size size, const std::vector<cv::Point2f>& poly);
cv::Mat tapered_stroke(cv::Size size, const std::vector<cv::Point2f>& path, const std::vector<float>& width,
                       const std::vector<float>& strength);
cv::Mat box_smooth(const cv::Mat& m, int radius);              // two box passes, ~Gaussian
cv::Mat background_fill(const Context& c, double worn_sigma);  // what shows under a part
void add_noise(cv::Mat& image, const cv::Mat& alpha, Rng& rng, double sigma, bool grey);
float luma(const cv::Vec3f& v);
// Parts: a weight limited to the part's body (textures: unchanged).
inline cv::Mat on_part(const Context& c, const cv::Mat& w) { return c.part ? w.mul(c.fg_soft) : w; }

// --- painters (patches.cpp, surface.cpp) ------------------------------
// Each paints onto `out` (a copy of the normal image) and returns a CV_32F weight in [0,1]:
// the footprint is weight > kFootprintAlpha, and pixels outside it are reset afterwards.
cv::Mat paint_cut_paste(const Context& c, Rng& rng, cv::Mat& out);
cv::Mat paint_texture_blend(const Context& c, Rng& rng, cv::Mat& out);
cv::Mat paint_missing_part(const Context& c, Rng& rng, cv::Mat& out);
cv::Mat paint_misplaced_part(const Context& c, Rng& rng, cv::Mat& out);
cv::Mat paint_scratch(const Context& c, Rng& rng, cv::Mat& out);
cv::Mat paint_crack(const Context& c, Rng& rng, cv::Mat& out);
cv::Mat paint_hole(const Context& c, Rng& rng, cv::Mat& out);
cv::Mat paint_stain(const Context& c, Rng& rng, cv::Mat& out);

}  // namespace lriad::anomaly::detail
