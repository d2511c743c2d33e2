// Normal-reference evidence (model.reference = "knn"): for each category, banks of K x K colour
// patches from its normal training images; an image's deviation map is, at every pixel, the
// distance from the patch there to its nearest bank patch, divided by the category's typical
// peak on normal images (the median over unseen normals, so normal images peak near 1 and a defect
// stands out). It is made from normal images only (mask-free) and does not depend on how anomalies
// are synthesised.
//
// The bank keeps a greedy coreset of the patches (each next patch the farthest from those kept,
// measured in a seeded 24-d random projection), so rare normal patches such as an object's edges
// at some angle are covered, which a random subset of mostly background patches misses.
//
// Parts on a plain background (options.align and reference::is_part_category: screws, pills, nuts)
// lie at other places and angles in every image, which a bank of raw patches cannot tell from a
// defect. Their images are moved to a canonical pose (reference/pose.h) and compared position by
// position with the category's normal images in that pose: at every pixel, the distance from the
// patch there to the nearest patch of any normal image within +-shift pixels of the same place
// (per-pixel squared differences, box-filtered; the idea of SPADE/template matching with a little
// slack). The map is then moved back onto the image, so it lines up with the pixels the model sees.
//
// Fine comparison of parts (options.fine_side > 0): scratches and damaged threads are lines 1-2 px
// wide in a 128-px photograph, half a pixel at the model's 64 px, where the map above cannot see
// them. An aligned category is then also compared at fine_side pixels: the luminance in the
// canonical pose, minus its Gaussian blur (fine_sigma px: lighting and stains go, lines stay) or,
// for round parts (reference::is_round_category_from: nuts, washers, caps), minus its ring-by-ring fit
// (reference::polar_residual: each part's own turning marks and turning highlight go, scratches and
// stains stay), position by position with the `neighbours` normal images most like the image
// (16 x 16 thumbnails), +-fine_shift pixels. Each position's distance is divided by how far unseen
// normal images typically are there (their per-position median, relative to the frame's median,
// at least 1: a rim whose place varies from part to part weighs less than a plain face). The map,
// normalised by its own median normal peak and brought to the model's side, joins the first one
// by a per-pixel maximum, so a defect either map sees stands out, and a normal image still peaks
// near 1.
//
// Fine comparison of textures (options.fine_textures, with fine_side): a scratch a pixel wide in a
// 128-px photograph of a busy texture is averaged away at 64 px, and its 5x5 colour patches still
// find a close normal match. The texture is then also compared at fine_side: the luminance minus its
// Gaussian blur (fine_sigma px), its K x K patches against a coreset bank of the normal images'
// (per half, like the colour patches); the map, normalised by its own median normal peak at
// fine_side and averaged down to the model's side, joins by the per-pixel maximum. Its patches are
// taken at a step of 2 pixels (kFineTextureStride), so the map costs about what the first one does
// (the bank keeps bank_size rows: a smaller bank raised the normal images' own peaks and lost the
// scratches). Chosen on photographs of granite (scripts/photo_sets.py; README, "Normal reference"):
// AUROC of the peak against normal images, granite scratches 0.47 -> 0.77, the other kinds within
// 0.04; over 3 seeds the evidence's AUROC on four photo sets rose or stayed within its std.
//
// Colour novelty (options.colour): each half's normal images also give a colour palette
// (reference/palette.h), and the map is at least, per pixel, how many bins the pixel's colour lies
// beyond every normal colour (one bin beyond counts like a normal image's peak). Specks of a
// foreign colour that the comparisons above lose among a part's own marks stand out there.
//
// Colour of regions (options.region_side > 0): a stain tints an area by a shade
// whose every pixel some normal image shows somewhere, and whose 5x5 patches find a close match
// in a darker or lighter normal image, so both maps above miss it. The image, averaged down to
// region_side pixels, is described per pixel by its brightness-free colour (r and g over r+g+b)
// and a faint brightness, and compared 3x3 patch by 3x3 patch with a bank of the normal images'
// (kRegionPatch); the map, normalised by its own median normal peak and brought back to S, joins
// by the per-pixel maximum. Chosen on photographs of gravel, grass, brick and burlap (stains drawn by
// scripts/photo_sets.py; README, "Normal reference"): the stains' AUROC against normal images
// 0.34 / 0.33 / 0.70 / 0.66 -> 1.00 / 0.99 / 1.00 / 0.93 on gravel / grass / brick / burlap at
// region_side 16, at some cost to faint lines (the README gives the figures). Parts have it too
// (the images as given, not in a canonical pose: a bank of patches needs no place): a stain on a
// part whose normal images differ in brightness is lost in the comparison by place. On photographs
// of a coin (photo set C, the development set) its stains' AUROC went 0.72 -> 1.00.
//
// Photometric normalisation of textures (options.photometric): before a texture's colour patches
// and fine patches are compared (banks and images alike), the image gets one gain and offset on all
// channels that bring its luminance to a fixed mean and spread (detail::photometric). Photographs of
// one material taken at another exposure or brightness then match the bank by their pattern, not
// by their level (on dark granite a small offset moves every patch; README, "Status", for what it
// changed). The colour palette and the colour of regions still see the image as given, so a
// stain's tint and a dark area still count. Parts are compared as before. The incremental maps
// below keep the normal image's lighting for its changed copy while the two lightings put no pixel
// within two standard deviations of its mean luminance more than detail::kRelightTolerance apart (a
// small synthetic anomaly barely moves an image's statistics); a larger change is compared whole.
//
// Lighting of parts (options.part_lighting): a part is compared with its normal images position by
// position, so light that differs from theirs (a gradient across the frame, a vignette, a brighter
// or darker photograph; turned with the part into the canonical pose, it lies elsewhere in every
// image) deviates like a defect. On the demo's screws the unseen normal images that peaked highest
// were those lit unlike the rest (one at 2.6 times the normal level, all of it background). Each
// bank then keeps its half's images relit to the half's mean canonical luminance, and an image is
// relit to the mean of those relit images (b.light) before it is compared (detail::relit_part): the
// smooth field, a quadratic in x and y, by which its canonical luminance is that mean times the
// field, fitted by least squares twice (the second time without the pixels the first fit leaves
// furthest off: a defect, an edge that lies elsewhere), is moved back onto the image and divided
// out. The comparison by place, the colour palette and the colour of regions see the relit image;
// the fine comparison is as before (its high-pass already drops the light). A defect keeps its
// contrast against its surroundings; only what a quadratic across the whole frame explains goes.
// Where the field would fall below 0.05 somewhere, the image is compared as given. The field comes
// back onto the image by warping with its edges replicated, so the corners of a turned image that
// the canonical frame does not cover keep the field of its nearest edge, not the quadratic's.
//
// Fixed scenes (options.fixed_scenes): a category that is not a part on a plain background but
// whose normal images all show one scene at one place (reference/scene.h: a board, a tray of parts)
// keeps its normal images as given (photometrically normalised like its patches) and is also compared
// by place, as a part is in its canonical pose: at every pixel, the distance from the patch there to
// the nearest patch of any normal image within +-shift pixels of the same place. A component that is
// missing, or lies where another belongs, shows patches that are normal somewhere, so the bank of
// patches misses it; by place it stands out. That map, divided by its own scale (the same quantile
// of unseen normal images' peaks), joins the colour patches' by the per-pixel maximum, so the part
// of the map (map_part.h) is still the colour patches. Textures and parts are compared as before.
// Needs options.side > 0 (every image brought to one square size); without it no category is a scene.
//
// Absence (absent()): where the normal images of a part show the part and this image shows its
// background. Each bank keeps, per canonical pixel, the share of its normal images whose part
// (pose.h, part_mask) covers it (derived from the normals, made again on loading; not in the file).
// An image's absent pixels are those its own part_mask leaves out and whose colour is the
// background's (pose.h, background_mask: a stain that darkens the part towards the background's
// grey keeps its tint) where that share, brought back onto the image with its pose, is at least
// kPresent (half: a bite at the rim lies where the normals' rims differ by a pixel or two), less
// slivers a pixel wide (an opening by a 3x3 cross: a pose a little off moves the outline by a pixel).
// The pose is the image's as given; with part_lighting the map poses the relit image, which may sit
// a pixel apart.
// A piece broken off or a component gone shows the background where most normal parts are. A large
// piece moves the part's centroid, and the pose with it, so a few pixels at the far side of the part
// can read absent too. The chains state it (text/evidence.h: "an area of background where normal
// images show the part"); the map itself does not change. Chosen on photographs of a coin (photo
// sets E and H): no absent pixel on any of their 60 normal test images, holes, stains or scratches,
// some on every missing bite (README, "Missing pieces of parts"; elsewhere a stain can show some).
//
// Two banks per category, from the two halves of its normal images: an image from half h is
// compared with bank 1 - h (never with itself). An image in neither bank (a held-out or test image)
// is compared with both (kBothBanks) and the two maps averaged: a defect deviates from both banks
// alike and keeps its peak, while a normal image's chance mismatches with one half's few normals
// are halved, so normal images peak lower and more tightly (measured on the demo's 960-image split:
// false alarms on hex nuts at the same threshold 27% -> 18%).
// Images may come at any side: they are resized to options.side (the model's input side) for the
// first map and to fine_side for the fine one; maps come back at options.side.
// Shapes: S = options.side, F = fine_side, N = normal images in a half.
#pragma once
#include <array>
#include <map>
#include <string>
#include <vector>

#include <opencv2/core.hpp>
#include <c10/core/Device.h>
#include <torch/types.h>

#include "lriad/reference/map_part.h"
#include "lriad/reference/palette.h"

namespace lriad::reference {

struct Pose;
namespace detail {
struct Lighting;
}

class NormalReference {
 public:
  struct Options {
    int patch = 5;         // patch side in pixels
    int bank_size = 8000;  // patches kept per bank: a greedy coreset (farthest-point) of the image patches
    int rotations = 0;     // also bank each normal image rotated by k*360/(rotations+1) degrees
    bool align = true;     // pose-aligned comparison for categories of parts on a plain background
    int shift = 3;         // +- pixels of slack in the pose-aligned comparison
    uint64_t seed = 0;
    int side = 0;                 // the model's input side: images are compared and maps returned at it (0: as given)
    int fine_side = 0;            // fine comparison of aligned categories at this side (0: off)
    double fine_sigma = 3.0;      // Gaussian high-pass of the fine comparison, pixels at fine_side
    int fine_shift = 3;           // +- pixels of slack in the fine comparison
    int neighbours = 8;           // normal images the fine comparison uses (the most alike; 0: all)
    bool polar = true;            // round parts' fine comparison after a ring-by-ring fit (false: high-pass)
    bool colour = true;           // colours no normal image of the category shows count too (reference/palette.h)
    int region_side = 0;          // colour of regions compared at this side (0: off; see above)
    bool fine_textures = false;   // textures also compared at fine_side (see above)
    double scale_quantile = 0.5;  // each map's scale: this quantile of unseen normal images' peaks (0.5: median)
    bool photometric = false;     // textures' patches compared after photometric normalisation (see above)
    bool part_lighting = false;   // parts compared by place after their smooth lighting is divided out (see above)
    bool fixed_scenes = false;    // fixed scenes also compared by place (see above)
  };
  static constexpr int kRegionPatch = 3;  // patch side of the region comparison, pixels at region_side
  // The fine comparison of textures compares every other patch (step 2 at fine_side): a line a pixel
  // wide still lies whole inside some K x K patch (K > 2), at a quarter of the cost.
  static constexpr int kFineTextureStride = 2;
  static constexpr int kBothBanks = -1;  // the mean of the maps against bank 0 and bank 1
  static constexpr int kThumb = 16;      // side of the thumbnails that pick the fine comparison's neighbours
  // reference.safetensors' "format_version" (see save); a file without one is version 1.
  static constexpr int kFormatVersion = 7;
  NormalReference() = default;

  // halves[category] = {images of half 0, images of half 1}, CV_32FC3 RGB [0,1], all of one side
  // (at least fine_side when the fine comparison is on). A category needs an image in each half.
  // aspects[category]: the width over the height of the category's photographs before they were
  // stretched square (absent: 1). An aligned category is posed and compared in the undistorted
  // frame (reference/pose.h, "Stretched frames"), and every image given to deviation() later is
  // taken to come from a photograph of that aspect.
  static NormalReference build(const std::map<std::string, std::array<std::vector<cv::Mat>, 2>>& halves,
                               const Options& options, const std::map<std::string, double>& aspects = {});

  // Deviation map (S,S) float >= 0 of `image` (any side) against `bank` (0, 1 or kBothBanks) of
  // `category`. With `at_peak`, also the part of the map (map_part.h) that is largest at the map's
  // maximum (each part averaged over the banks compared; a tie goes to the earlier part).
  torch::Tensor deviation(const cv::Mat& image, const std::string& category, int bank = 0,
                          MapPart* at_peak = nullptr) const;
  // RGB resized to (3,S,S) with the deviation map as a fourth channel -> (4,S,S).
  torch::Tensor with_deviation(const cv::Mat& image, const std::string& category, int bank = 0,
                               MapPart* at_peak = nullptr) const;
  // Pixels of `image` (any side; brought to S) that show the background where at least kPresent of
  // `bank`'s normal images (0, 1, or kBothBanks: the two shares' mean) show the part, in the image's
  // frame: CV_8UC1 (S,S), 255 there. Empty for a category not compared in a canonical pose.
  static constexpr double kPresent = 0.5;
  cv::Mat absent(const cv::Mat& image, const std::string& category, int bank = 0) const;
  // The colour part of deviation()'s map of `image` (any side; brought to S, and a part relit to the
  // bank's lighting as deviation() relights it) against `bank` (0, 1 or kBothBanks: the mean of the
  // two): ColourPalette::novelty, per pixel the bins beyond the tolerance from every colour the bank's
  // normal images show, 3x3-averaged; CV_32FC1 (S,S). Empty for a category without a palette
  // (options.colour off).
  cv::Mat colour_novelty(const cv::Mat& image, const std::string& category, int bank = 0) const;

  // Incremental maps, for training's synthetic anomalies: an anomaly changes a small part of a
  // normal image, and only the patches that overlap the change have new nearest distances. For a
  // category compared by patch banks (not aligned) and an image at S (at fine_side for a texture
  // compared finely): patch_distances gives the normal image's per-patch distances against `bank`
  // (0 or 1) once, flattened, (g*g) with g = S-K+1, followed for a fine texture by the fine
  // comparison's (f*f), f = (fine_side-K)/2 + 1, and with options.photometric by the image's two
  // lightings (gain and offset at S, then at fine_side, or 1 and 0 without a fine comparison); changed_deviation the deviation map of a copy that
  // differs from it only inside `changed` (pixels of the image given), recomputing the patches
  // there (the fine ones within the high-pass's reach) and taking the rest from `base_distances`
  // (indexed by bank). Equal to deviation() up to float rounding (the GEMM of a few rows against
  // the whole image's); with options.photometric, up to the normal image's lighting kept for the
  // copy (see above). tests/test_reference.cpp checks both on random draws.
  bool updatable(const std::string& category, int image_side) const;
  torch::Tensor patch_distances(const cv::Mat& image, const std::string& category, int bank) const;
  torch::Tensor changed_deviation(const cv::Mat& image, const std::string& category, int bank,
                                  const std::array<torch::Tensor, 2>& base_distances, const cv::Rect& changed,
                                  MapPart* at_peak = nullptr) const;

  // Moves the banks the nearest-patch products read (colour patches, region patches, a fine
  // texture's patches) onto `device`: with --device cuda those products, most of a texture's map,
  // run on the GPU. Images, poses, the comparisons by place and the maps stay on the CPU (maps
  // come back there); saving copies the banks back.
  void to(const torch::Device& device);
  torch::Device device() const { return device_; }

  bool has(const std::string& category) const { return banks_.count(category) > 0; }
  bool aligned(const std::string& category) const;  // compared in a canonical pose
  bool fine(const std::string& category) const;     // also compared at fine_side (a part, or a texture)
  bool polar(const std::string& category) const;    // fine, and round: after a ring-by-ring fit
  bool colour(const std::string& category) const;   // colour novelty counts (a palette per bank)
  bool region(const std::string& category) const;   // the colour of regions counts
  bool scene(const std::string& category) const;    // a fixed scene, also compared by place
  const Options& options() const { return options_; }
  std::vector<std::string> categories() const;
  double aspect(const std::string& category) const;  // the photographs' width / height given to build (1: square)
  double scale(const std::string& category, int bank) const;  // the normalising (median) peak

  // reference.safetensors: "<category>/bank0", "<category>/bank1" (M, 3K^2), or for an aligned
  // category "<category>/normals0", "<category>/normals1" (N,3,S,S); "<category>/scale" (2); with
  // the fine comparison "<category>/fine0", "/fine1" (N,1,F,F), "/thumbs0", "/thumbs1" (N,3,16,16),
  // "/fine_scale" (2), "/fine_spread0", "/fine_spread1" (F,F) and "/polar" (1: 1 for round parts);
  // with the colour palette "<category>/palette0", "/palette1" (ColourPalette::kCells distances);
  // with the region comparison "<category>/region0", "/region1" (M, 3 kRegionPatch^2) and
  // "/region_scale" (2); a texture's fine comparison "<category>/fine_bank0", "/fine_bank1" (M, K^2)
  // and "/fine_scale" (2). The metadata holds the options and "format_version" (kFormatVersion).
  // Version 1 (files written before the version was): keys added since then may be absent and mean
  // what they meant then (no fine comparison, no spread, no region comparison); from version 2 on,
  // every key the options call for must be there. Version 2: parts have no region comparison (from
  // version 3 on, every category has it when region_side > 0). Version 4 adds the metadata key
  // "photometric" (earlier files: off). Version 5 adds "<category>/aspect" (1) for an aligned
  // category whose photographs were not square (absent: 1, as every earlier file). Version 6 adds
  // the metadata key "part_lighting" (earlier files: off); with it on, an aligned category's normals
  // are kept relit, and the luminance images are relit to is their mean, made again on loading.
  // Version 7 adds the metadata key "fixed_scenes" (earlier files: off) and, for a fixed scene,
  // "<category>/scene0", "/scene1" (N,3,S,S) and "/scene_scale" (2). A file of a later version is
  // refused.
  void save(const std::string& path) const;
  static NormalReference load(const std::string& path);

 private:
  struct Banks {
    bool aligned = false;                  // compared in the canonical pose: options.align and is_part_category
    double aspect = 1.0;                   // aligned only: the photographs' width / height (pose.h, "Stretched frames")
    std::array<torch::Tensor, 2> patches;  // (M, 3K^2); unused when aligned
    std::array<torch::Tensor, 2> norms;    // (M) squared norms
    std::array<torch::Tensor, 2> normals;  // aligned only: (N,3,S,S) normal images in the canonical pose
    std::array<cv::Mat, 2> light;     // aligned with options.part_lighting: (S,S) CV_32FC1, normals' mean luminance
    std::array<cv::Mat, 2> presence;  // aligned: (S,S) CV_32FC1, the share of normals whose part covers each pixel
    std::array<double, 2> scale = {1.0, 1.0};
    std::array<torch::Tensor, 2> fine;    // fine only: (N,1,F,F) high-passed luminance, canonical pose
    std::array<torch::Tensor, 2> thumbs;  // fine only: (N,3,16,16) canonical thumbnails, to pick neighbours
    std::array<double, 2> fine_scale = {1.0, 1.0};
    std::array<torch::Tensor, 2> fine_spread;   // fine only: (F,F) >= 1, the fine map is divided by it
    bool polar = false;                         // fine only: round parts, compared after a ring-by-ring fit
    std::array<ColourPalette, 2> palette;       // empty without options.colour (or from an older file)
    std::array<torch::Tensor, 2> region;        // textures with region_side: (M, 3 kRegionPatch^2) colour patches
    std::array<torch::Tensor, 2> region_norms;  // (M) squared norms
    std::array<double, 2> region_scale = {1.0, 1.0};
    std::array<torch::Tensor, 2> fine_bank;        // fine textures: (M, K^2) high-passed luminance patches at F
    std::array<torch::Tensor, 2> fine_bank_norms;  // (M) squared norms
    std::array<torch::Tensor, 2> scene;            // fixed scenes: (N,3,S,S) normal images as compared (lit)
    std::array<double, 2> scene_scale = {1.0, 1.0};
  };
  const Banks& banks_of(const std::string& category) const;  // throws lriad::Error for an unknown category
  torch::Tensor raw_deviation(const cv::Mat& image, const Banks& b, int bank) const;  // (S,S), image at S
  // `image` (at S) relit to bank h's lighting (b.light, options.part_lighting: detail::relit_part);
  // as it is for a category without one.
  cv::Mat lit_part(const cv::Mat& image, const Banks& b, size_t h) const;
  // A fixed scene's comparison by place of `lit` (an image at S, as its patches are compared) against
  // bank h's normal images, not normalised: (S,S).
  torch::Tensor raw_scene(const cv::Mat& lit, const Banks& b, size_t h) const;
  // The region map of `coarse` (an image at S) against bank h, not normalised: (R,R), R = region_side.
  torch::Tensor raw_region(const cv::Mat& coarse, const Banks& b, size_t h) const;
  // One bank's parts of a map, indexed by MapPart, each (S,S) or undefined where the category has none.
  using Parts = std::array<torch::Tensor, kMapParts>;
  // The colour novelty and the region map of `coarse` (at S) against bank h, into `parts`.
  void colour_parts(Parts& parts, const cv::Mat& coarse, const Banks& b, size_t h) const;
  // The map of one bank's parts (their per-pixel maximum), or of two banks' (the mean of theirs):
  // (S,S); with `at_peak`, the part largest at its maximum (see deviation).
  static torch::Tensor joined(const std::vector<Parts>& banks, MapPart* at_peak);
  // The fine comparison's map of `canon` (an image of side fine_side in its canonical pose) against
  // `bank`, in the canonical frame, neither weighed nor normalised: (F,F).
  torch::Tensor fine_canonical(const cv::Mat& canon, const Banks& b, int bank) const;
  // A canonical-frame map (F,F) moved back onto the image with `pose` and resized: (out,out).
  static torch::Tensor in_image_frame(const torch::Tensor& map, const Pose& pose, int64_t out);
  // The fine comparison's map of `image` (side fine_side), weighed by the spread but not
  // normalised, brought to `out` x `out`.
  torch::Tensor raw_fine(const cv::Mat& image, const Banks& b, int bank, int64_t out) const;
  // A fine texture's per-patch distances of `image` (at fine_side) against bank h, patches at a step
  // of kFineTextureStride: (f,f), f = (F-K)/2 + 1.
  torch::Tensor texture_fine_distances(const cv::Mat& image, const Banks& b, size_t h) const;
  // Those distances (f,f) made a map at F, normalised by the bank's fine_scale and averaged down to
  // `out` (0: kept at F): (out,out).
  torch::Tensor texture_fine_map(const torch::Tensor& distances, const Banks& b, size_t h, int64_t out) const;
  cv::Mat sized(const cv::Mat& image, int side) const;  // resized to `side` (0: as given)
  // With options.photometric, `image` normalised by its own lighting or by `given`; else as it is.
  cv::Mat lit(const cv::Mat& image, const detail::Lighting* given = nullptr) const;
  struct FileReader;  // reads one category's banks from a file (reference_file.cpp)
  Options options_;
  std::map<std::string, Banks> banks_;
  torch::Device device_ = torch::kCPU;
};

}  // namespace lriad::reference
