// Mask-free training anomalies: labelled defective samples synthesised on the fly from normal
// training images (cut-paste, Perlin-shaped texture blends, scratches, cracks, holes, stains,
// missing and misplaced parts), each returned with its footprint and a defect-type word.
#pragma once
#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include <opencv2/core.hpp>

namespace lriad::anomaly {

enum class AnomalyKind { CutPaste, TextureBlend, Scratch, Crack, Hole, Stain, MissingPart, MisplacedPart };

// "cut_paste", "texture_blend", "scratch", "crack", "hole", "stain", "missing_part",
// "misplaced_part" (config and log names).
const char* to_string(AnomalyKind kind);
std::optional<AnomalyKind> parse_anomaly_kind(const std::string& name);
std::vector<AnomalyKind> all_anomaly_kinds();  // in enum order

// Everything tunable. Sizes are fractions of the shorter image side, so one config serves
// 64 px and 512 px images alike.
struct AnomalyParams {
  float scale_min = 0.03f;     // anomaly size (blob diameter, ~1/2 stroke length) ...
  float scale_max = 0.25f;     // ... drawn log-uniformly in [min, max] of the side
  float min_size_px = 4.f;     // floor on that size, so 64 px images get visible defects
  float contrast_min = 0.15f;  // 0 = invisible, 1 = full swing towards black / white
  float contrast_max = 0.7f;
  float edge_softness = 0.12f;  // feather width as a fraction of the size (patches, blobs)
  float blend_min = 0.2f;       // TextureBlend opacity beta of the foreign texture
  float blend_max = 0.8f;
  float brightness_match = 0.7f;       // chance that a CutPaste patch takes the destination's mean
  float donor_prob = 0.5f;             // chance that CutPaste / TextureBlend take the donor image
  float foreground_threshold = 0.08f;  // |blurred pixel - border median| above this = a part
  float foreground_prob = 1.f;         // chance to centre on the part when one is found
  float renoise = 1.f;                 // x estimated sensor noise added into synthesised fills
  float min_visible = 0.02f;           // a draw whose mean |change| in the footprint is lower ...
  int max_attempts = 6;                // ... is redrawn (from the seed) up to this many times
  // Throws lriad::Error saying which value is wrong and why.
  void validate() const;
};

struct Anomaly {
  cv::Mat image;      // CV_32FC3, same size as the input
  cv::Mat footprint;  // CV_8UC1 0/1 where the image was changed (coarse region + tests only;
                      // never fed to the model). Pixels outside it equal the input exactly.
  AnomalyKind kind = AnomalyKind::CutPaste;
  float cx = 0.f, cy = 0.f;  // footprint centroid in [0,1) image coordinates
  // The inspector's word for the chain of thought:
  //   cut_paste -> "foreign patch", texture_blend -> "contamination", scratch -> "scratch",
  //   crack -> "crack", hole -> "hole", stain -> "stain", missing_part -> "missing part",
  //   misplaced_part -> "misplaced part".
  std::string type_name() const;
};

// `normal`: CV_32FC3 RGB in [0,1]. `donor`: another normal image of the same size and type
// (same or another category), the source of foreign texture; empty = use `normal`.
// Deterministic: same inputs + same seed -> the same bytes on every standard library.
// Throws lriad::Error on an empty / wrongly typed input or a donor of another size.
Anomaly make_anomaly(const cv::Mat& normal, const cv::Mat& donor, AnomalyKind kind, uint64_t seed,
                     const AnomalyParams& p = {});

// Draws a kind with probability proportional to `mix` (kinds not listed weigh 0), then calls
// make_anomaly. Throws if a weight is negative or not finite, or all weights are 0.
Anomaly make_random_anomaly(const cv::Mat& normal, const cv::Mat& donor, const std::map<AnomalyKind, double>& mix,
                            uint64_t seed, const AnomalyParams& p = {});

}  // namespace lriad::anomaly
