// The policy's image input (see policy_input.h): one function for training, validation, eval,
// predict and bench.
#include "lriad/model/policy_input.h"

#include <nlohmann/json.hpp>
#include <opencv2/core.hpp>
#include <opencv2/imgproc.hpp>
#include <torch/torch.h>

#include <algorithm>
#include <array>
#include <fstream>

#include "lriad/data/image_io.h"
#include "lriad/data/image_tensor.h"
#include "lriad/reference/pose.h"
#include "lriad/reference/reference.h"
#include "lriad/io/error.h"
#include "lriad/io/fs.h"

namespace lriad::model {

bool keeps_work_side(const std::vector<cv::Mat>& normal_images_at_work_side, const ModelConfig& model) {
  if (model.work_size() == model.image_size) return false;
  return model.reference_fine_textures ||
         (model.reference_align && reference::is_part_category(normal_images_at_work_side));
}

int fitted_fine_size(const ModelConfig& model, int largest) {
  const int fine = model.reference_fine_size;
  if (model.reference != "knn" || fine <= model.image_size || largest <= 0 || largest >= fine) return fine;
  return std::max(model.image_size, largest);
}

cv::Mat model_side_image(const cv::Mat& image, bool keep_work_side, const ModelConfig& model) {
  // Two steps even when the second undoes most of the first: TrainingSource preloads every image
  // at W before it knows which categories keep W, and the pixels must not depend on when the
  // decision is made.
  const cv::Mat work = data::resize_square(image, model.work_size());
  return keep_work_side ? work : data::resize_square(work, model.image_size);
}

torch::Tensor policy_input(const cv::Mat& image, const std::string& category, int bank, const ModelConfig& model,
                           const reference::NormalReference* reference, reference::MapPart* at_peak) {
  const int S = model.image_size, W = model.work_size();
  if (image.rows != image.cols || (image.rows != S && image.rows != W))
    throw Error("policy input for category " + category + ": the image is " + std::to_string(image.cols) + "x" +
                    std::to_string(image.rows) + ", not at a model side (" + std::to_string(S) + " or " +
                    std::to_string(W) + ")",
                "pass it through model::model_side_image first");
  // The reference resizes to S itself (and compares a part at W when it keeps one there).
  torch::Tensor t = reference ? reference->with_deviation(image, category, bank, at_peak)  // (4,S,S)
                              : data::image_to_tensor(data::resize_square(image, S));      // (3,S,S)
  if (t.size(1) != S || t.size(2) != S || t.size(0) != model.image_channels())
    throw Error(
        "policy input for category " + category + " has shape (" + std::to_string(t.size(0)) + "," +
            std::to_string(t.size(1)) + "," + std::to_string(t.size(2)) + "), the model expects (" +
            std::to_string(model.image_channels()) + "," + std::to_string(S) + "," + std::to_string(S) + ")",
        "the normal reference and model.reference / model.image_size of the run disagree: rebuild the reference");
  return t;
}

cv::Rect changed_rect(const cv::Mat& a, const cv::Mat& b) {
  if (a.size() != b.size() || a.type() != b.type())
    throw Error("changed_rect: the images differ in size or type (" + std::to_string(a.cols) + "x" +
                    std::to_string(a.rows) + " and " + std::to_string(b.cols) + "x" + std::to_string(b.rows) + ")",
                "compare a synthetic anomaly with the normal image it was made from");
  cv::Mat diff, nonzero;
  cv::absdiff(a, b, diff);
  cv::findNonZero(diff.reshape(1) > 0, nonzero);  // (x = column * channels + channel, y = row)
  if (nonzero.empty()) return {};
  const cv::Rect flat = cv::boundingRect(nonzero);
  const int ch = a.channels(), x0 = flat.x / ch, x1 = (flat.x + flat.width - 1) / ch;
  return {x0, flat.y, x1 - x0 + 1, flat.height};
}

bool updates_map(const cv::Mat& image, const cv::Mat& base, const std::string& category, const ModelConfig& model,
                 const reference::NormalReference* reference) {
  return reference && !base.empty() && reference->updatable(category, image.rows) && image.rows == image.cols &&
         (image.rows == model.image_size || image.rows == model.work_size());
}

torch::Tensor changed_policy_input(const cv::Mat& image, const cv::Mat& base,
                                   const std::function<torch::Tensor(int)>& base_distances, const std::string& category,
                                   int bank, const ModelConfig& model, const reference::NormalReference* reference,
                                   reference::MapPart* at_peak) {
  if (!updates_map(image, base, category, model, reference))
    return policy_input(image, category, bank, model, reference, at_peak);
  const cv::Rect r = changed_rect(image, base);
  std::array<torch::Tensor, 2> distances;
  for (int h = 0; h < 2; ++h)
    if (bank == reference::NormalReference::kBothBanks || (bank == 1) == (h == 1))
      distances[size_t(h)] = base_distances(h);
  const auto map = reference->changed_deviation(image, category, bank, distances, r, at_peak).unsqueeze(0);  // (1,S,S)
  return torch::cat({data::image_to_tensor(data::resize_square(image, model.image_size)), map}, 0);          // (4,S,S)
}

text::EvidenceFacts input_facts(const torch::Tensor& input, double level, std::optional<reference::MapPart> part,
                                const cv::Mat& side, const cv::Mat& absent, const cv::Mat& colour) {
  if (input.dim() != 3 || input.size(0) < 4 || input.size(1) != input.size(2))
    throw Error("evidence facts need a policy input (4,S,S) with the deviation channel, got " + c10::str(input.sizes()),
                "the run has no normal reference (model.reference)");
  const auto t = input.detach().to(torch::kCPU, torch::kFloat32);
  const int S = int(t.size(1));
  const auto map = t[3].contiguous();                                  // (S,S)
  const auto rgb = t.narrow(0, 0, 3).permute({1, 2, 0}).contiguous();  // (S,S,3)
  const cv::Mat m(S, S, CV_32FC1, const_cast<float*>(map.data_ptr<float>()));
  const cv::Mat c(S, S, CV_32FC3, const_cast<float*>(rgb.data_ptr<float>()));
  return text::evidence_facts(m, c, level, part, side, absent, colour);
}

std::string chain_opening(const std::string& category, const ModelConfig& model, const text::EvidenceFacts* facts) {
  return model.opens_chains() && facts ? text::grounded_opening(category, *facts) : "";
}

std::string policy_prompt(const std::string& category, const ModelConfig& model, const text::EvidenceFacts* facts) {
  return text::build_prompt(category) + chain_opening(category, model, facts);
}

std::string pretrained_prompt(const std::string& category, const ModelConfig& model, const text::EvidenceFacts* facts) {
  return text::build_prompt(category) + "\n" + chain_opening(category, model, facts);
}

std::string chain_opening(const torch::Tensor& input, const std::string& category, const ModelConfig& model,
                          double level, std::optional<reference::MapPart> part, const cv::Mat& side) {
  if (!model.opens_chains()) return "";
  if (!(level > 0))
    throw Error(
        "model.prompt_evidence states the evidence against the normal level, and category '" + category + "' has none",
        "the run's baseline.json holds a level per category; a run without normal images of it cannot state it "
        "(--set model.prompt_evidence=false)");
  const auto facts = input_facts(input, level, part, side);
  return chain_opening(category, model, &facts);
}

std::string policy_prompt(const torch::Tensor& input, const std::string& category, const ModelConfig& model,
                          double level, std::optional<reference::MapPart> part, const cv::Mat& side) {
  return text::build_prompt(category) + chain_opening(input, category, model, level, part, side);
}

bool InputRecord::keeps_work_side(const std::string& category) const {
  return std::find(work_side_categories.begin(), work_side_categories.end(), category) != work_side_categories.end();
}

text::EvidenceFacts InputRecord::facts(const torch::Tensor& input, double level, reference::MapPart part,
                                       const cv::Mat& side, const cv::Mat& absent, const cv::Mat& colour) const {
  return input_facts(input, level, states_parts ? std::optional<reference::MapPart>(part) : std::nullopt,
                     reads_lines ? side : cv::Mat(), reads_absence ? absent : cv::Mat(),
                     reads_colour ? colour : cv::Mat());
}

cv::Mat InputRecord::absent(const reference::NormalReference* reference, const cv::Mat& side,
                            const std::string& category, int bank) const {
  return reads_absence && reference ? reference->absent(side, category, bank) : cv::Mat();
}

cv::Mat InputRecord::colour(const reference::NormalReference* reference, const cv::Mat& side,
                            const std::string& category, int bank) const {
  return reads_colour && reference ? reference->colour_novelty(side, category, bank) : cv::Mat();
}

std::array<cv::Mat, 2> InputRecord::masks(const reference::NormalReference* reference, const cv::Mat& side,
                                          const std::string& category, int bank) const {
  return {absent(reference, side, category, bank), colour(reference, side, category, bank)};
}

text::EvidenceFacts InputRecord::facts(const torch::Tensor& input, double level, reference::MapPart part,
                                       const cv::Mat& side, const reference::NormalReference* reference,
                                       const std::string& category, int bank) const {
  const auto [gone, novel] = masks(reference, side, category, bank);
  return facts(input, level, part, side, gone, novel);
}

const InputRecord& InputRecord::unrecorded() {
  static const InputRecord none = [] {
    InputRecord r;
    r.states_parts = r.reads_lines = r.reads_absence = r.reads_colour = false;
    return r;
  }();
  return none;
}

int InputRecord::bank_of(const std::string& path, int otherwise) const {
  auto it = reference_banks.find(path);
  return it == reference_banks.end() ? otherwise : it->second;
}

void InputRecord::save(const std::string& path) const {
  const nlohmann::json j = {{"format", "lriad-policy-input"},
                            {"format_version", kFormatVersion},
                            {"work_side_categories", work_side_categories},
                            {"reference_banks", reference_banks},
                            {"states_parts", states_parts},
                            {"reads_lines", reads_lines},
                            {"reads_absence", reads_absence},
                            {"reads_colour", reads_colour}};
  io::write_file_atomic(path, j.dump(1) + "\n");
}

InputRecord InputRecord::load(const std::string& path) {
  std::ifstream in(path);
  if (!in) throw Error("cannot read " + path, "check permissions");
  InputRecord r;
  try {
    const auto j = nlohmann::json::parse(in);
    if (j.at("format") != "lriad-policy-input" || j.at("format_version").get<int>() > kFormatVersion)
      throw Error(path + ": not a policy input record of format version <= " + std::to_string(kFormatVersion),
                  "it was written by a newer lriad, or is not lriad's: train the run again");
    r.work_side_categories = j.at("work_side_categories").get<std::vector<std::string>>();
    r.reference_banks = j.at("reference_banks").get<std::map<std::string, int>>();
    r.states_parts = j.value("states_parts", false);    // version 1: before the parts were stated
    r.reads_lines = j.value("reads_lines", false);      // versions 1-2: before lines were read at full side
    r.reads_absence = j.value("reads_absence", false);  // versions 1-3: before absent areas were read
    r.reads_colour = j.value("reads_colour", false);    // versions 1-4: before new colours were read
  } catch (const nlohmann::json::exception& e) {
    throw Error(path + " is damaged: " + e.what(),
                "train the run again, or delete the file (eval then compares with both banks)");
  }
  return r;
}

cv::Mat decoded_model_side(const cv::Mat& decoded, const std::string& category, const ModelConfig& model,
                           const reference::NormalReference* reference, const InputRecord* record) {
  // Without a record (a run older than policy_input.json) the reference's own test stands in: a
  // category it compares finely was kept at W by training (its normals had to be), and any other
  // the reference brings to S itself, by the same two resizes.
  const bool keep = record ? record->keeps_work_side(category) : reference && reference->fine(category);
  return model_side_image(decoded, keep, model);
}

torch::Tensor decoded_policy_input(const cv::Mat& decoded, const std::string& category, int bank,
                                   const ModelConfig& model, const reference::NormalReference* reference,
                                   const InputRecord* record, reference::MapPart* at_peak) {
  return policy_input(decoded_model_side(decoded, category, model, reference, record), category, bank, model, reference,
                      at_peak);
}

}  // namespace lriad::model
