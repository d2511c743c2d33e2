// What the normal reference's evidence shows about one image, in the terms a chain of thought
// states and a test can check: where the deviation map peaks (its 3x3 cell, and a second cell an
// elongated area spans), how strong the peak is against the category's normal level, and what the
// area above that level looks like (thin and long, small and compact or large; darker, brighter or
// of another colour than around it), and which part of the map shows it most (the colour patches,
// the fine comparison, a colour no normal image shows, the colour of a region). Training writes its chains from these facts and GRPO's region
// reward checks the stated region against them; eval compares them with the ground truth.
// Shapes: S = the model's image side.
#pragma once
#include <optional>
#include <string>

#include <opencv2/core.hpp>

#include "lriad/reference/map_part.h"
#include "lriad/text/defect_family.h"
#include "lriad/text/prompt.h"

namespace lriad::text {

struct EvidenceFacts {
  double peak = 0;                // the map's maximum
  double level = 1;               // the category's normal level (the evidence baseline's threshold)
  double ratio = 0;               // peak / level as stated (ratio_text): one decimal below 10, whole above
  Region where = Region::Center;  // the 3x3 cell of the peak
  std::optional<Region> also;     // a neighbouring cell holding >= 25% of the area above the level
  bool above = false;             // peak > level: an area stands out
  // What the area above the level (the connected part holding the peak) looks like; when above only.
  enum class Extent { Compact, Thin, Large } extent = Extent::Compact;
  enum class Tone { Same, Darker, Brighter, Colour } tone = Tone::Same;
  double area = 0;  // its share of the image
  // Thin and Darker were read at full resolution (dark_line_at_full): the area is a compact piece of
  // the map at the model's side, and its darker pixels in the image at a larger side form a line.
  bool line_at_full = false;
  // The part of the map largest at the peak (reference/map_part.h), when above and the reference said.
  std::optional<reference::MapPart> part;
  // The area holds background where the normal images show the part (NormalReference::absent, a
  // part compared in its canonical pose; kAbsentShare of its pixels and kAbsentMin of the image's at
  // least): "a small, compact area of background where normal images show the part" (looks_text).
  bool absent = false;
  // The area holds colours no normal image shows (NormalReference::colour_novelty: its mean over the
  // area is at least kNewColour of the normal level). It tells a tint no normal region shows (part
  // Region) apart: with such colours something lies on the surface (contamination), without them the
  // surface is discoloured (a stain): ", of a tint no normal region shows, holding colours no normal
  // image shows" (looks_text). Unset below the level, and where the colour novelty was not read (a
  // run trained before it was, or a category without a palette): a tint then names a stain, or
  // contamination when the area is large, as runs before it learnt.
  std::optional<bool> new_colour;
};

// Thresholds of the descriptions, public for the tests.
inline constexpr double kThinElongation = 3.0;  // major / minor axis of the area
inline constexpr double kLargeArea = 0.12;      // share of the image
inline constexpr double kToneStep = 0.06;       // mean RGB difference to the ring around the area
inline constexpr double kSecondCellShare = 0.25;
// An area is absent when this share of its pixels, and at least kAbsentMin of the image's, are absent ones.
inline constexpr double kAbsentShare = 0.05;
inline constexpr double kAbsentMin = 6.0 / (64 * 64);  // 6 pixels at 64 px
// An area holds new colours when its mean colour novelty (bins) is at least this share of the level.
inline constexpr double kNewColour = 0.2;
// The line at full resolution (dark_line_at_full), in pixels of a 256-px image, scaled with its side.
inline constexpr double kLineSide = 256;        // the side the pixel figures below are for
inline constexpr double kLineSigma = 6;         // the luminance minus its Gaussian blur of this sigma
inline constexpr double kLineDarker = 0.4;      // darker by this many of the image's luminance spreads
inline constexpr double kLineMargin = 4;        // pixels around the area (brought to the side) looked at
inline constexpr double kLineWidth = 7;         // a disc this wide erases a line (a crack 2-3 px wide)
inline constexpr double kLineSurvivors = 0.02;  // at most this share of the darker pixels survives it
inline constexpr double kLineLength = 12;       // and the largest piece spans at least this many pixels

// map: CV_32FC1 (S,S) deviation map; rgb: CV_32FC3 (S,S) in [0,1] (the same image); level > 0.
// Throws lriad::Error on empty or mismatched inputs.
// `part`: the map's part largest at its peak (NormalReference::deviation's at_peak), kept when above.
// `full`: the same image at a larger side (CV_32FC3, square; the side training kept it at), or empty.
// With it, an area that is a small, compact piece of the map, shown by the colour patches (or no part
// said) and not brighter or of another colour, is "a thin, long mark darker than around it" when its
// darker pixels at that side form a line (dark_line_at_full): a crack 2-3 px wide in a 256-px
// photograph is a compact piece of the map at 64 px, and looked a hole.
// `absent`: NormalReference::absent of the same image (CV_8UC1 (S,S), non-zero where it shows the
// background where its normal images show the part), or empty. The area is `absent` when at least
// kAbsentShare of its pixels, and kAbsentMin of the image's, are such pixels, whatever its tone and
// part of the map.
// `colour`: NormalReference::colour_novelty of the same image (CV_32FC1 (S,S), bins), or empty. The
// area holds `new_colour` when its mean there is at least kNewColour x level (unset without it).
EvidenceFacts evidence_facts(const cv::Mat& map, const cv::Mat& rgb, double level,
                             std::optional<reference::MapPart> part = std::nullopt, const cv::Mat& full = cv::Mat(),
                             const cv::Mat& absent = cv::Mat(), const cv::Mat& colour = cv::Mat());

// Whether the darker pixels of `full` (CV_32FC3 RGB in [0,1], square, side F > 2 x area's side) in
// and around `area` (CV_8UC1 at the model's side S, non-zero inside) form a thin line: luminance
// normalised to zero mean and unit spread, minus its blur (kLineSigma), below -kLineDarker, within
// kLineMargin px of the area brought to F; at least 8 of them, no more than kLineSurvivors left after an erosion
// by a disc kLineWidth px wide, and the largest piece kLineLength px long or more (figures at 256 px, scaled by
// F / 256). A dark blob (a hole) survives the disc; a line a few pixels wide does not, and neither
// does the dark side of a strong edge (a part's rim), which therefore reads as a line too.
bool dark_line_at_full(const cv::Mat& full, const cv::Mat& area);

// "3.4", "0.8", "12": the ratio as a chain states it.
std::string ratio_text(double ratio);
// "upper left" or "upper left and top".
std::string where_text(const EvidenceFacts& f);
// "a thin, long mark darker than around it", "a large area of another colour", "a small, compact mark",
// then what the part shows when it is not the colour patches: ", in the fine detail", ", of a colour
// no normal image shows", ", of a tint no normal region shows" (and ", holding colours no normal image
// shows" when it has new_colour). An absent area is "a small, compact
// area of background where normal images show the part" (thin and long, or large, by its extent).
std::string looks_text(const EvidenceFacts& f);

// The defect family the look suggests (model.family_from_look), by a fixed table; nullopt below the
// level (no area to look at). An absent area is a missing part. Then by the part of the map that shows it: a tint no normal region
// shows is a stain, or contamination where the area holds colours no normal image shows (new_colour
// unread: where it is large); a colour no normal image shows is a hole (a large
// area of it contamination); the fine comparison, lines and small marks at full resolution, a
// scratch. Shown by the colour patches (or with no part known): another colour is a stain; else a
// large area contamination; else the tone says how deep: darker is depth (a crack if thin and long,
// a hole if small and compact), brighter a scratch (bare surface catching the light); of the same
// tone, thin and long is a scratch and small and compact a hole. The table by tone was set on photo
// set C; the parts' rows on photo sets E and F and confirmed on H; the tint's on E, H and a synthetic
// set of the demo's kinds (README, "Status").
std::optional<DefectFamily> look_family(const EvidenceFacts& f);

// The defect type a training chain names (the SFT target's, and what GRPO's defect-type reward
// expects): "" for a normal item; with `from_look` and the input's facts, the family word of its look
// ("" below the level: a faint change names none); else the label.
std::string chain_defect_type(bool anomalous, const std::string& label, const EvidenceFacts* facts, bool from_look);

}  // namespace lriad::text
