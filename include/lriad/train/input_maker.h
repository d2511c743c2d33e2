// The policy's input for training items (train/source.h), for the trainer and `lriad bench` alike:
// model::policy_input, with what recurs kept. A normal training image recurs unchanged, so its
// input is made once. A synthetic anomaly changes a small part of a normal image, so its deviation
// map is updated from that image's per-patch distances, made once per image and bank
// (model::changed_policy_input; equal to a full map up to float rounding), where the reference
// allows it (textures; parts are compared in a pose the change may move, and are made whole).
// Thread-safe: the prefetcher's thread makes inputs too.
#pragma once
#include <cstddef>
#include <map>
#include <mutex>
#include <string>

#include <torch/types.h>

#include "lriad/io/config.h"
#include "lriad/reference/map_part.h"

namespace lriad::reference {
class NormalReference;
}

namespace lriad::train {

struct TrainItem;

class InputMaker {
 public:
  // `reference` may be null (no normal reference: RGB only); it must outlive the maker.
  InputMaker(const ModelConfig& model, const reference::NormalReference* reference);

  // (C,S,S); with `at_peak`, the part of its map largest at the peak (NormalReference::deviation).
  torch::Tensor operator()(const TrainItem& item, reference::MapPart* at_peak = nullptr);

  struct Counts {
    size_t cached = 0, updated = 0, whole = 0;  // inputs taken from the cache, updated from a normal's, made whole
  };
  Counts counts() const;

 private:
  torch::Tensor distances(const std::string& path, const TrainItem& item, int bank);  // (g,g), cached
  ModelConfig model_;
  const reference::NormalReference* reference_;
  mutable std::mutex mutex_;
  std::map<std::string, std::pair<torch::Tensor, reference::MapPart>> normal_inputs_;  // by source|bank
  std::map<std::string, torch::Tensor> distances_;                                     // by path|bank
  Counts counts_;
};

}  // namespace lriad::train
