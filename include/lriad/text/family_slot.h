// The family word lriad writes into a chain as `eval` and `predict` generate it (model.fill_family).
// Pure text: a tokenizer and the words; model::GenerateOptions::fill calls it.
//
// Why: with model.family_from_look the policy is taught to name the family a fixed table reads from
// the look lriad stated in the chain's opening (text::look_family), and learns it as a copy that errs
// on looks its training drew seldom (a thin mark in the fine detail named a crack, where the table
// says scratch). Once the chain's tokens so far decode to text ending with kLikeLead ("There is what
// looks like"), the slot writes " a crack" (like_phrase); once they end with kAnomalousAnswerLead
// ("<answer>anomalous") after such a finding, ": crack". The policy draws everything else, its
// verdict first ("There is" or "Nothing"). A prompt without a family (below the level) gets nothing.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include "lriad/text/tokenizer.h"

namespace lriad::text {

class FamilySlot {
 public:
  // words: per prompt, the family word its look suggests (text::family_word), "" for none; group: G
  // completions per prompt (row n of a generate call belongs to prompt n / G).
  FamilySlot(const Tokenizer& tokenizer, std::vector<std::string> words, int group);
  // The tokens to write next into row `row` whose tokens so far are `so_far`; empty for none.
  std::vector<int64_t> operator()(int64_t row, const std::vector<int64_t>& so_far) const;

 private:
  Tokenizer tokenizer_;  // cheap to copy (a shared model)
  std::vector<std::string> words_;
  int group_;
};

}  // namespace lriad::text
