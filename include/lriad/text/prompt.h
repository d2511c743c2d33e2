// The text format the policy learns: the instruction given with the image, coarse 3x3 regions,
// and the short templated chain of thought built from image-level labels (the SFT targets and
// the tokenizer's training corpus).
#pragma once
#include <optional>
#include <string>
#include <vector>

namespace lriad::text {

// The format tags; each is one user-defined piece of the tokenizer.
inline constexpr const char* kThinkOpen = "<think>";
inline constexpr const char* kThinkClose = "</think>";
inline constexpr const char* kAnswerOpen = "<answer>";
inline constexpr const char* kAnswerClose = "</answer>";
inline constexpr const char* kImageTag = "<image>";

struct EvidenceFacts;  // text/evidence.h

// The instruction given with the image; underscores in `category` render as spaces.
// "Inspect the metal nut. Is it normal or anomalous? Reason in <think></think>, then answer in
// <answer></answer>."
std::string build_prompt(const std::string& category);

// Coarse 3x3 position of a defect, row-major (index = row * 3 + column).
enum class Region { UpperLeft, Top, UpperRight, Left, Center, Right, LowerLeft, Bottom, LowerRight };
inline constexpr int kRegionCount = 9;

const char* region_word(Region r);  // "upper left", "top", ..., "lower right"
// The first region phrase in free text (case-insensitive, whole words; hyphens count as
// spaces). At one position the longest phrase wins, so "upper left" is never read as "left".
// Also understood: "top left/right", "bottom left/right", "centre", "middle".
std::optional<Region> parse_region(const std::string& text);
// True when the first sentence of `think` (up to its first '.') names `category`: underscores read
// as spaces, case-insensitive, whole words ("This is a hex nut sample." names hex_nut).
bool names_category(const std::string& think, const std::string& category);
// x, y in [0, 1) (x to the right, y down); values outside are clamped, NaN counts as 0.
Region region_of_point(double x, double y);

// The image-level facts a chain of thought is written from.
struct CotSpec {
  std::string category;  // "metal_nut" (rendered "metal nut")
  bool anomalous = false;
  std::string defect_type;       // "broken_large"; "" or "anomaly" = an unnamed defect
  std::optional<Region> region;  // coarse position, when known (e.g. from a synthetic mask)
  int variant = 0;               // picks a phrasing, modulo kCotVariants (deterministic)
  // The normal reference's evidence about the image (text/evidence.h; not owned): with it the chain
  // states what was compared and found, with the values (build_completion); without it (a policy
  // without a reference) the short template.
  const EvidenceFacts* evidence = nullptr;
};
inline constexpr int kCotVariants = 3;

// `<think>…</think><answer>…</answer>`. With evidence, a chain grounded in it: where, what the area
// above the normal level looks like and how strong are computed from the image and stated in the
// comparison sentence; the finding's wording follows the facts (below the level a normal chain says
// nothing stands out and an anomalous one "only a faint change"; above it a normal chain says
// "Nothing there seems defective" and an anomalous one what the area looks like to an inspector, its
// family); the family is spec.defect_type's (training passes text::chain_defect_type: with
// model.family_from_look the look's family) and the verdict the label's:
//   "The image shows a carpet sample. I compare it with normal carpet images: the largest deviation
//   is a thin, long mark darker than around it, at the upper left and top, 3.4 times the normal
//   level. There is what looks like a crack, so it is anomalous." -> "anomalous: crack" (the defect
//   family, text/defect_family.h, when the type maps onto one)
//   "... the largest deviation is at the center, 0.8 times the normal level. Nothing there stands
//   out from normal carpet images, so it is normal." -> "normal"
// The finding starts with "There is" or "Nothing" right after kDecisionMarker: the decision point
// (the same first words for every finding, so that it is the same token whatever the facts).
// Without evidence, the short template: what the sample is, what was looked at, what was found.
// Every chain ends with ", so it is normal." / ", so it is anomalous.". The answer's type is
// lowercase with spaces: the same words, and so the same tokens, as in the think.
inline constexpr const char* kDecisionMarker = " times the normal level.";
// The words of an anomalous finding above the normal level before its family ("There is what looks
// like a crack"), and of the answer before its type ("<answer>anomalous: crack"): where
// text::FamilySlot writes the family.
inline constexpr const char* kLikeLead = "There is what looks like";
inline constexpr const char* kAnomalousAnswerLead = "<answer>anomalous";
// What the finding says the area looks like: "a crack", "an …", "contamination" (a mass noun takes
// no article), "a defect" for "" (an unnamed defect).
std::string like_phrase(const std::string& type);
std::string build_completion(const CotSpec& spec);

// A grounded chain's opening, from <think> to kDecisionMarker, in the first phrasing: "<think>The
// image shows a carpet sample. I compare it with normal carpet images: the largest deviation is a
// thin, long mark darker than around it, at the upper left and top, 3.4 times the normal level." With model.prompt_evidence lriad writes it
// from the reference's measurements at the end of the prompt, and the policy goes on from the
// decision point (build_completion of variant 0 starts with it; the rest is the policy's).
std::string grounded_opening(const std::string& category, const EvidenceFacts& facts);

// Canonical form of a defect type, for matching: lowercase, runs of spaces/underscores/hyphens
// become one '_', surrounding punctuation trimmed ("Broken Large" -> "broken_large").
std::string canonical_defect_type(const std::string& name);
// True for "" and data::kUnknownAnomalyType ("anomaly"): defects without a name.
bool is_unnamed_defect(const std::string& defect_type);

// Every prompt and completion the templates can emit for these names (all variants, regions,
// verdicts), de-duplicated in a fixed order: the tokenizer's training corpus (callers add the demo's
// names: demo::category_names()). "good" is not a defect type and is skipped.
// With `grounded`, also the chains grounded in evidence: every region and region pair, description
// and family, and every ratio a chain states (as chain fragments "<think>The largest deviation is
// 3.4 times the normal level.").
std::vector<std::string> corpus_sentences(const std::vector<std::string>& categories,
                                          const std::vector<std::string>& defect_types, bool grounded = true);

}  // namespace lriad::text
