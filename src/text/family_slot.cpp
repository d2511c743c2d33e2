// The family word written into generated chains (see family_slot.h).
#include "lriad/text/family_slot.h"

#include <utility>

#include "lriad/io/error.h"
#include "lriad/text/prompt.h"

namespace lriad::text {
namespace {

bool ends_with(const std::string& text, const std::string& tail) {
  return text.size() >= tail.size() && text.compare(text.size() - tail.size(), tail.size(), tail) == 0;
}

std::vector<int64_t> ids_of(const Tokenizer& tokenizer, const std::string& text) {
  const auto ids = tokenizer.encode(text);
  return {ids.begin(), ids.end()};
}

}  // namespace

FamilySlot::FamilySlot(const Tokenizer& tokenizer, std::vector<std::string> words, int group)
    : tokenizer_(tokenizer), words_(std::move(words)), group_(group) {
  if (group_ < 1)
    throw Error("FamilySlot: group must be >= 1, got " + std::to_string(group_), "pass GenerateOptions::group");
}

std::vector<int64_t> FamilySlot::operator()(int64_t row, const std::vector<int64_t>& so_far) const {
  const size_t prompt = size_t(row / group_);
  if (row < 0 || prompt >= words_.size())
    throw Error("FamilySlot: row " + std::to_string(row) + " is outside the " + std::to_string(words_.size()) +
                    " prompts of " + std::to_string(group_) + " completions each",
                "give one word per prompt of the generate call");
  const std::string& word = words_[prompt];
  if (word.empty() || so_far.empty()) return {};
  const std::string text = tokenizer_.decode_completion(so_far.data(), int64_t(so_far.size()));
  if (ends_with(text, kLikeLead)) return ids_of(tokenizer_, " " + like_phrase(word));
  // The answer's type only after a finding the slot wrote ("There is only a faint change, like a
  // scratch" keeps its own answer, so that its think and answer agree).
  if (ends_with(text, kAnomalousAnswerLead) && text.find(kLikeLead) != std::string::npos)
    return ids_of(tokenizer_, ": " + word);
  return {};
}

}  // namespace lriad::text
