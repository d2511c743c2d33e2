// The policy's probability of each verdict, read from the logits of its own completion: at the
// answer position (the token right after `<answer>`), or where the chain of thought commits to a
// verdict (decision_points / decision_probs below).
// Shapes: N = rows, C = completion tokens, V = vocabulary.
#pragma once
#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include <torch/types.h>

#include "lriad/text/tokenizer.h"

namespace lriad::model {

struct VerdictIds {
  int64_t answer_open = -1;  // the <answer> piece
  int64_t normal = -1;       // first piece of "normal"
  int64_t anomalous = -1;    // first piece of "anomalous"
  bool ok() const { return answer_open >= 0 && normal >= 0 && anomalous >= 0 && normal != anomalous; }
};

// Ids from the tokenizer; fields stay -1 when the tokenizer cannot tell the verdicts apart.
VerdictIds verdict_ids(const text::Tokenizer& tokenizer);

// logits (N,C,V) of tokens (N,C) with mask (N,C) -> (N,2) [p(normal), p(anomalous)] (full
// softmax) at the position after the first <answer>; -1 where a row has no <answer> followed
// by a real token (or the ids are not ok).
torch::Tensor verdict_probs(const torch::Tensor& logits, const torch::Tensor& tokens, const torch::Tensor& mask,
                            const VerdictIds& ids);

// Where a chain of thought commits to its verdict. The templates (text/prompt.h) write the same
// words for a normal and an anomalous sample up to a point and then go on differently ("I find"
// + " no defect" / " a scratch defect"); by the <answer> the verdict is already written, so the
// probability there is ~1 whatever the policy believed. The decision is the first token of the
// normal completion that the anomalous one does not share: one per category and phrasing.
// 1 - p(that token) is read as p(anomalous); a policy that spelt the normal phrasing with other
// pieces (not the tokenizer's own split) would be counted as leaving it, which the templates' SFT
// makes rare.
// Grounded chains (text/prompt.h with evidence) state the image's own region and ratio before the
// decision, so no fixed prefix leads to it: their decision follows a marker (the last tokens of
// text::kDecisionMarker, " times the normal level.") found anywhere in the completion.
struct DecisionPoint {
  std::vector<int64_t> prefix;  // completion tokens before the decision (from <think>), or the marker
  int64_t normal = -1;          // the token that continues the normal phrasing
  bool anywhere = false;        // prefix is a marker, matched at its first place in the completion
};
using DecisionPoints = std::map<std::string, std::vector<DecisionPoint>>;  // category -> phrasings
// With `opened` (model.prompt_evidence: the prompt ends with the chain's opening, model::chain_opening)
// the completion starts at the decision: one point per category, the normal finding's first token
// (" Nothing ...") after what both findings share at the start (nothing, or a lone space piece).
DecisionPoints decision_points(const text::Tokenizer& tokenizer, const std::vector<std::string>& categories,
                               bool opened = false);

// The policy's belief at the decision point: [p(normal), 1 - p(normal)] (full softmax of the
// logits that predict the token after the prefix) for each row whose completion starts with one of
// its category's prefixes and goes on; the other rows keep their `fallback` row (e.g. the output
// of verdict_probs). logits (N,C,V), tokens (N,C), mask (N,C), categories (N), fallback (N,2) -> (N,2).
torch::Tensor decision_probs(const torch::Tensor& logits, const torch::Tensor& tokens, const torch::Tensor& mask,
                             const std::vector<std::string>& categories, const DecisionPoints& points,
                             const torch::Tensor& fallback);

// p(anomalous) / (p(normal) + p(anomalous)) per row of verdict_probs' output; `fallback`
// where the row has none. -> (N) double on the CPU.
std::vector<double> anomaly_scores(const torch::Tensor& probs, double fallback = 0.5);

}  // namespace lriad::model
