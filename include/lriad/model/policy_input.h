// The policy's image input, made in one place for training, validation, `eval`, `predict` and
// `bench`: an image is first kept at its model side (model_side_image: what TrainingSource preloads
// and what eval resizes a decoded file to), then turned into the (C,S,S) tensor the policy reads
// (policy_input: RGB at model.image_size, plus the normal reference's deviation map as a fourth
// channel). Two call sites building this input themselves could drift apart, and the policy would
// then be judged on input it never saw in training.
// Shapes: S = model.image_size, W = model.work_size(), C = model.image_channels().
#pragma once
#include <array>
#include <functional>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include <opencv2/core.hpp>
#include <torch/types.h>

#include "lriad/io/config.h"
#include "lriad/reference/map_part.h"
#include "lriad/text/evidence.h"

namespace lriad::reference {
class NormalReference;
}

namespace lriad::model {

// True when a category is kept at W rather than S: the reference's fine comparison is on
// (W > S) and either textures are compared finely too (model.reference_fine_textures: every
// category) or the category's normal images (CV_32FC3 RGB, at W) show a part on a plain background
// (model.reference_align and reference::is_part_category). Synthetic anomalies of such a category
// are drawn at W, as thin as real scratches; every other category is kept at S.
bool keeps_work_side(const std::vector<cv::Mat>& normal_images_at_work_side, const ModelConfig& model);

// The fine comparison's side for a dataset whose largest image side is `largest` pixels:
// model.reference_fine_size, lowered to `largest` (never below image_size) when the images have
// fewer pixels than that; comparing at more pixels than a photograph has only enlarges it, at up to
// four times the cost (the demo's 128-px images under tiny.json's 256). 0 (nothing known) and a
// reference without a fine comparison leave it as it is.
int fitted_fine_size(const ModelConfig& model, int largest);

// `image` (CV_32FC3 RGB [0,1], any size, square or not: it is stretched to a square) at its model
// side: resized to W, then, unless `keep_work_side`, from W to S. The first step does nothing to an
// image already at W x W, so an image preloaded at W and reduced later gets the same pixels as the
// decoded file reduced at once.
cv::Mat model_side_image(const cv::Mat& image, bool keep_work_side, const ModelConfig& model);

// The policy's input (C,S,S) float for `image` at its model side (model_side_image; throws
// otherwise): with a reference, RGB at S and the deviation map against `bank` (0, 1 or
// reference::NormalReference::kBothBanks) of `category`; without one, RGB at S. With a reference
// and `at_peak`, also the part of the map largest at its peak (NormalReference::deviation).
torch::Tensor policy_input(const cv::Mat& image, const std::string& category, int bank, const ModelConfig& model,
                           const reference::NormalReference* reference, reference::MapPart* at_peak = nullptr);

// Bounding box of the pixels where `a` and `b` (one size and type) differ in any channel; empty
// when they are equal.
cv::Rect changed_rect(const cv::Mat& a, const cv::Mat& b);

// Training's synthetic anomalies: the input of `image`, a copy of the normal image `base` (same
// side) changed inside changed_rect(image, base). Where the reference can update the map
// (NormalReference::updatable), only the patches the change touches are compared again and the rest
// come from `base_distances(h)` (NormalReference::patch_distances of `base` against bank h, which
// the caller caches); else policy_input. Equal to policy_input(image, ...) up to float rounding.
// Whether changed_policy_input updates the map of `image` (a copy of `base`) rather than making it
// whole: a reference that can update `category` at this side, the image square at S.
bool updates_map(const cv::Mat& image, const cv::Mat& base, const std::string& category, const ModelConfig& model,
                 const reference::NormalReference* reference);
torch::Tensor changed_policy_input(const cv::Mat& image, const cv::Mat& base,
                                   const std::function<torch::Tensor(int)>& base_distances, const std::string& category,
                                   int bank, const ModelConfig& model, const reference::NormalReference* reference,
                                   reference::MapPart* at_peak = nullptr);

// The evidence facts (text/evidence.h) of a policy input (4,S,S): its deviation channel and RGB,
// against the category's normal level, and the part of the map largest at its peak (policy_input's
// at_peak). Training writes its chains from them; eval checks them. `side`: the image the input was
// made from, at its model side (model_side_image; CV_32FC3): where that is over twice the input's
// (a category kept at the work side), a compact area whose darker pixels form a line there reads as
// a thin, long mark (text::evidence_facts). Training and eval pass it when the run's record says
// reads_lines.
// `absent`: NormalReference::absent of the image (CV_8UC1 (S,S)), or empty; `colour`:
// NormalReference::colour_novelty of it (CV_32FC1 (S,S)), or empty (text::evidence_facts).
text::EvidenceFacts input_facts(const torch::Tensor& input, double level,
                                std::optional<reference::MapPart> part = std::nullopt, const cv::Mat& side = cv::Mat(),
                                const cv::Mat& absent = cv::Mat(), const cv::Mat& colour = cv::Mat());

// With model.prompt_evidence, the opening of the chain of thought that lriad writes from the
// reference's measurements of an input (`facts`, input_facts of it against its category's normal
// level): where the deviation map peaks, what the area above the level looks like and how strong
// (text::grounded_opening). The policy goes on from there (its finding, the family, the verdict),
// and every completion it writes is read as this opening + its tokens. "" without prompt_evidence
// or without facts.
std::string chain_opening(const std::string& category, const ModelConfig& model, const text::EvidenceFacts* facts);
// The text the policy reads with an input whose facts are `facts`: text::build_prompt(category) +
// chain_opening. Training, validation, eval and predict all call it, so the policy reads the same
// words for the same image (tests/test_policy_input.cpp).
std::string policy_prompt(const std::string& category, const ModelConfig& model, const text::EvidenceFacts* facts);
// The same words in a pretrained PaliGemma's layout (training and eval both call it): its prefix is
// text::build_prompt(category) and "\n", and lriad's opening starts the answer after it.
std::string pretrained_prompt(const std::string& category, const ModelConfig& model, const text::EvidenceFacts* facts);
// The same, measured from `input` (C,S,S) against `level` (with `side`, as input_facts); throws when
// the chain is opened and level is not > 0 (no normal level to state a ratio to).
std::string chain_opening(const torch::Tensor& input, const std::string& category, const ModelConfig& model,
                          double level, std::optional<reference::MapPart> part = std::nullopt,
                          const cv::Mat& side = cv::Mat());
std::string policy_prompt(const torch::Tensor& input, const std::string& category, const ModelConfig& model,
                          double level, std::optional<reference::MapPart> part = std::nullopt,
                          const cv::Mat& side = cv::Mat());

// policy_input.json in a run directory: what training decided about its images, so that eval and
// predict make the input training made. Written by `lriad train`; a run without it (older) has
// eval fall back to the reference's own test (NormalReference::fine) and to both banks.
struct InputRecord {
  // Version 2 adds states_parts; a version 1 record (and a run without one) did not state them.
  // Version 3 adds reads_lines; an older record (and a run without one) did not read them.
  // Version 4 adds reads_absence; version 5 reads_colour; likewise.
  static constexpr int kFormatVersion = 5;
  std::vector<std::string> work_side_categories;  // kept at W (keeps_work_side)
  // The chains' openings state the part of the map that shows the area (EvidenceFacts::part), and
  // the family is read from it: eval and predict give the facts the part only when training did.
  bool states_parts = true;
  // The facts read a line at the side training kept the image at (input_facts' `side`): eval and
  // predict pass that image only when training did.
  bool reads_lines = true;
  // The facts read where the image shows background where its normal images show the part
  // (NormalReference::absent, a part compared in its canonical pose): eval and predict pass it only
  // when training did.
  bool reads_absence = true;
  // The facts read the colours no normal image shows inside the area (NormalReference::colour_novelty,
  // text::EvidenceFacts::new_colour): eval and predict pass them only when training did.
  bool reads_colour = true;
  // The reference bank each normal training image was compared with, by path: 0 or 1 for the
  // images training drew, reference::NormalReference::kBothBanks for the validation normals.
  std::map<std::string, int> reference_banks;

  bool keeps_work_side(const std::string& category) const;
  int bank_of(const std::string& path, int otherwise) const;
  // The evidence facts of an input as this run's chains read them (input_facts): with the map's
  // `part` only if states_parts, with the image at its model side (`side`) only if reads_lines, with
  // the absent pixels (absent(), below) only if reads_absence, with the colour novelty (colour(),
  // below) only if reads_colour.
  text::EvidenceFacts facts(const torch::Tensor& input, double level, reference::MapPart part, const cv::Mat& side,
                            const cv::Mat& absent = cv::Mat(), const cv::Mat& colour = cv::Mat()) const;
  // NormalReference::absent of `side` (the image at its model side) against `bank`, when this run
  // reads absence and has a reference; else empty.
  cv::Mat absent(const reference::NormalReference* reference, const cv::Mat& side, const std::string& category,
                 int bank) const;
  // NormalReference::colour_novelty of `side` against `bank`, when this run reads colour and has a
  // reference with a palette for the category; else empty.
  cv::Mat colour(const reference::NormalReference* reference, const cv::Mat& side, const std::string& category,
                 int bank) const;
  // {absent(), colour()} of `side` against `bank`: what the facts read besides the input.
  std::array<cv::Mat, 2> masks(const reference::NormalReference* reference, const cv::Mat& side,
                               const std::string& category, int bank) const;
  // facts() with those masks: training, validation, eval and predict all read an input's facts so.
  text::EvidenceFacts facts(const torch::Tensor& input, double level, reference::MapPart part, const cv::Mat& side,
                            const reference::NormalReference* reference, const std::string& category, int bank) const;
  // A run older than policy_input.json: its chains read neither.
  static const InputRecord& unrecorded();
  void save(const std::string& path) const;          // atomically, with "format" and "format_version"
  static InputRecord load(const std::string& path);  // throws lriad::Error naming the file
};

// Eval's and predict's path, from a decoded file (any size) to the input: the image kept at the
// side training kept `category` at (record; without one, at W where the reference compares the
// category finely), then policy_input. For a training image and its bank this is bit for bit the
// tensor training made (tests/test_policy_input.cpp).
torch::Tensor decoded_policy_input(const cv::Mat& decoded, const std::string& category, int bank,
                                   const ModelConfig& model, const reference::NormalReference* reference,
                                   const InputRecord* record, reference::MapPart* at_peak = nullptr);
// Its first step: the decoded file at the side training kept `category` at (model_side_image), what
// TrainItem::image holds for a training image. A pretrained PaliGemma's pixels are made from it
// (model::siglip_pixels), in training and in eval alike.
cv::Mat decoded_model_side(const cv::Mat& decoded, const std::string& category, const ModelConfig& model,
                           const reference::NormalReference* reference, const InputRecord* record);

}  // namespace lriad::model
