// The policy's input for training items, with what recurs kept (see input_maker.h).
#include "lriad/train/input_maker.h"

#include <torch/torch.h>

#include "lriad/reference/reference.h"
#include "lriad/model/policy_input.h"
#include "lriad/train/source.h"

namespace lriad::train {

InputMaker::InputMaker(const ModelConfig& model, const reference::NormalReference* reference)
    : model_(model), reference_(reference) {}

InputMaker::Counts InputMaker::counts() const {
  std::lock_guard<std::mutex> lock(mutex_);
  return counts_;
}

torch::Tensor InputMaker::distances(const std::string& path, const TrainItem& item, int bank) {
  const std::string key = path + "|" + std::to_string(bank);
  {
    std::lock_guard<std::mutex> lock(mutex_);
    auto it = distances_.find(key);
    if (it != distances_.end()) return it->second;
  }
  auto d = reference_->patch_distances(item.base, item.category, bank);  // flat (NormalReference), outside the lock
  std::lock_guard<std::mutex> lock(mutex_);
  return distances_[key] = d;
}

torch::Tensor InputMaker::operator()(const TrainItem& item, reference::MapPart* at_peak) {
  // A normal image unchanged (synthesised items are always anomalous): made once per bank.
  const bool plain = reference_ && !item.anomalous && !item.source.empty();
  const std::string key = item.source + "|" + std::to_string(item.reference_bank);
  if (plain) {
    std::lock_guard<std::mutex> lock(mutex_);
    auto it = normal_inputs_.find(key);
    if (it != normal_inputs_.end()) {
      ++counts_.cached;
      if (at_peak) *at_peak = it->second.second;
      return it->second.first;
    }
  }
  const bool update = model::updates_map(item.image, item.base, item.category, model_, reference_);
  torch::Tensor t;
  reference::MapPart part = reference::MapPart::Patches;
  if (update) {
    const std::string path = item.source.substr(0, item.source.find('#'));  // the normal image's path
    t = model::changed_policy_input(
        item.image, item.base, [&](int h) { return distances(path, item, h); }, item.category, item.reference_bank,
        model_, reference_, &part);  // (4,S,S)
  } else {
    t = model::policy_input(item.image, item.category, item.reference_bank, model_, reference_, &part);  // (C,S,S)
  }
  std::lock_guard<std::mutex> lock(mutex_);
  ++(update ? counts_.updated : counts_.whole);
  if (plain) normal_inputs_[key] = {t, part};
  if (at_peak) *at_peak = part;
  return t;
}

}  // namespace lriad::train
