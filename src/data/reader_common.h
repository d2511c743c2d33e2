// Validation shared by the dataset readers (private to src/data).
#pragma once
#include <string>
#include <vector>

#include "lriad/data/sample.h"

namespace lriad::data::detail {

// Returns `requested` (validated against `found`) or all of `found` when none requested.
// Throws naming the root and listing the categories found.
std::vector<std::string> choose_categories(const std::vector<std::string>& found,
                                           const std::vector<std::string>& requested, const std::string& root,
                                           const std::string& layout_hint);

// Every mask must have the size of its image (header probes; no decoding).
void check_mask_sizes(const Dataset& dataset);

// Every loaded category needs images in both splits.
void check_nonempty_splits(const Dataset& dataset);

// Sorts samples into the canonical order (category, split, label, defect type, path).
void sort_samples(Dataset& dataset);

std::string stem_of(const std::string& path);

}  // namespace lriad::data::detail
