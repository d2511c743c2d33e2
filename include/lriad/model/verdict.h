// The policy's probability of each verdict at the answer position: the token right after
// `<answer>` in a completion, scored from the logits of that completion.
// Shapes: N = rows, C = completion tokens, V = vocabulary.
#pragma once
#include <cstdint>

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

// p(anomalous) / (p(normal) + p(anomalous)) per row of verdict_probs' output; `fallback`
// where the row has none. -> (N) double on the CPU.
std::vector<double> anomaly_scores(const torch::Tensor& probs, double fallback = 0.5);

}  // namespace lriad::model
