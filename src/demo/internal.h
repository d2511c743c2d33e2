// Private parts of the demo generator (`lriad synth`): noise and drawing helpers,
// the scene renderers (textures, objects) and the defect painters shared by src/demo/*.cpp.
#pragma once
#include <cstdint>
#include <random>
#include <string>
#include <vector>

#include <opencv2/core.hpp>

#include "lriad/demo/synth.h"
#include "lriad/util/image_ops.h"
#include "lriad/util/rng.h"

namespace lriad::demo {

// Randomness and the small image operations come from util/ (shared with the training-time
// synthetic anomalies, which must not depend on the demo).
using util::blend;
using util::blur;
using util::colourize;
using util::grey3;
using util::hash_combine;
using util::hash_string;
using util::hash_unit;
using util::mix64;
using util::mul3;
using util::Rng;
using util::smoothstep;

// --- fields and drawing (noise.cpp) ------------------------------------
// Fields are CV_32F; images CV_32FC3 RGB in [0,1] (greyscale categories keep 3 equal channels).
cv::Mat value_noise(Rng& rng, cv::Size size, double cell_x, double cell_y);  // ~[-1,1]
cv::Mat fbm(Rng& rng, cv::Size size, double cell, int octaves, double gain = 0.5,
            double aspect = 1.0);                                             // ~[-1,1], cell_x = cell * aspect
cv::Mat lighting(Rng& rng, cv::Size size, double gradient, double vignette);  // around 1
cv::Mat rotate_crop(const cv::Mat& image, double degrees, cv::Size out);      // about the centre
void add_sensor_noise(cv::Mat& image, Rng& rng, double sigma, bool colour);

// Anti-aliased soft shapes as CV_32F alpha in [0,1].
cv::Mat stroke_alpha(cv::Size size, const std::vector<cv::Point2f>& path, double width, double softness);
cv::Mat blob_alpha(Rng& rng, cv::Size size, cv::Point2f center, double radius, double aspect, double angle,
                   double irregularity, double softness);
std::vector<cv::Point2f> curved_path(Rng& rng, cv::Point2f start, double angle, double length, double bend);
std::vector<cv::Point2f> jagged_path(Rng& rng, cv::Point2f start, double angle, double length, double step,
                                     double jitter);

// --- scenes (textures.cpp, objects.cpp) ---------------------------
// A place where a piece may break off: the piece is cut by a jagged line `depth` deep from
// `pos` along `inward` (corners, tips), or by a round bite of that radius (pill rims).
struct Anchor {
  cv::Point2f pos;
  cv::Point2f inward;  // unit vector into the object
  float depth = 0.f;
  bool round_bite = false;
};

// Geometry-level defects change how the scene is drawn; their parameters are drawn from the
// defect stream before rendering, so the clean and the defective render share all other draws.
struct Variant {
  std::string kind;                  // "" = normal, else "print_error", "misplaced", "thread_damage"
  double a = 0.0, b = 0.0, c = 0.0;  // kind-specific, each in [0,1)
};

struct Scene {
  cv::Mat image;       // CV_32FC3, before sensor noise
  cv::Mat background;  // what shows where material is missing (holes, broken parts)
  cv::Mat coverage;    // CV_32F: the object's body (all ones for textures); defects stay on it
  std::vector<Anchor> anchors;
  double feature = 1.0;  // typical object size in px, scales the defects
};

// `canvas` is the image's width x height. The scene's scale follows the height (the `--size`);
// a wider canvas shows more of the texture, or more background beside the centred part
// (VisA's ~4:3 frames). A square canvas draws exactly what the MVTec layout always had.
using Renderer = Scene (*)(Rng& rng, cv::Size canvas, const Variant& variant);

Scene render_fabric(Rng& rng, cv::Size canvas, const Variant& v);
Scene render_brushed_metal(Rng& rng, cv::Size canvas, const Variant& v);
Scene render_wood(Rng& rng, cv::Size canvas, const Variant& v);
Scene render_tile(Rng& rng, cv::Size canvas, const Variant& v);
Scene render_granite(Rng& rng, cv::Size canvas, const Variant& v);
Scene render_hex_nut(Rng& rng, cv::Size canvas, const Variant& v);
Scene render_pill(Rng& rng, cv::Size canvas, const Variant& v);
Scene render_screw(Rng& rng, cv::Size canvas, const Variant& v);
Scene render_bottle_cap(Rng& rng, cv::Size canvas, const Variant& v);
Scene render_washer(Rng& rng, cv::Size canvas, const Variant& v);

// --- defects (defects.cpp) ------------------------------------------------
enum class DefectKind { Scratch, Crack, Hole, Stain, Contamination, Dent, LooseThread, Cut, MissingPart, Variant };

// How a material reacts: scratches on paint/wood expose lighter material, on dark metal they
// shine; stains darken/tint with the given colours (greyscale categories average them).
struct MaterialStyle {
  double scratch_sign = 1.0;  // +1 lighter, -1 darker
  std::vector<cv::Vec3f> stain_tints;
  std::vector<cv::Vec3f> dirt_colors;
};

struct DefectSpec {
  std::string name;
  DefectKind kind;
};

struct CategorySpec {
  std::string name;
  bool is_texture;
  bool colour;
  Renderer render;
  MaterialStyle style;
  std::vector<DefectSpec> defects;  // most to least frequent
  double sensor_noise;
};

const std::vector<CategorySpec>& category_specs();
const CategorySpec& find_spec(const std::string& name);  // throws lriad::Error

// Paints a surface defect onto `image` (a copy of scene.image) and returns its CV_32F alpha.
cv::Mat paint_defect(DefectKind kind, const Scene& scene, const MaterialStyle& style, Rng& rng, cv::Mat& image);
// Parameters of a geometry-level defect (Variant) for the given defect name.
Variant draw_variant(const std::string& defect_name, Rng& rng);

// --- one sample ---------------------------------------------------------------
// The written images: CV_8UC1 (greyscale) or CV_8UC3 (BGR, ready for imwrite), and the mask
// CV_8UC1 0/255 (empty for "good"). `clean` is the same sample without its defect.
struct RenderedSample {
  cv::Mat clean;
  cv::Mat image;
  cv::Mat mask;
};
RenderedSample render_sample(const std::string& category, const std::string& defect_type, cv::Size canvas,
                             uint64_t seed);
inline RenderedSample render_sample(const std::string& category, const std::string& defect_type, int size,
                                    uint64_t seed) {
  return render_sample(category, defect_type, cv::Size(size, size), seed);
}

// Seed of one image, from the master seed and its place in the tree (not generation order).
uint64_t sample_seed(uint64_t master, const std::string& category, const std::string& folder, int index);

// --- writing (synth.cpp, visa_layout.cpp) ----------------------------------------
// Encodes by the extension (.png: compression 3; .jpg/.JPG: quality 95, fixed settings, so
// the same pixels give the same bytes) and writes through a temporary name and a rename.
void write_image(const std::string& path, const cv::Mat& image);

// VisA frames are about 4:3 (real VisA ~1.5:1): width round(size * 4 / 3), height size.
cv::Size visa_canvas(int size);
// One object's VisA folders (<object>/Data/Images/{Normal,Anomaly}/NNNN.JPG and
// Data/Masks/Anomaly/NNNN.png); appends its CSV rows (object,split,label,image,mask).
void write_visa_object(const SynthOptions& o, const SynthCategoryInfo& c, const SynthSplitCounts& n,
                       std::vector<std::vector<std::string>>& csv_rows);
// Writes <root>/split_csv/1cls.csv; rows of objects not in `written` that an earlier run left
// there (--overwrite with other categories) are kept, first.
void write_visa_csv(const std::string& root, const std::vector<SynthCategoryInfo>& written,
                    const std::vector<std::vector<std::string>>& rows);

}  // namespace lriad::demo
