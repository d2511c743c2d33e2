// LR-IAD's focal reward: a correct verdict earns alpha * (1 - p)^gamma * f_c, so answers the
// policy was unsure of (low p) and rare classes (large f_c) pay most; a wrong verdict earns 0.
// Shapes: N = completions.
#pragma once
#include <torch/types.h>

namespace lriad::rl {

// p_correct: the policy's probability of the correct verdict where its chain of thought commits
// to one (model::decision_probs; else at the answer position), clamped to [0,1]; a negative
// p_correct means it could not be read (no decision point, no answer) and earns 0, never the
// largest bonus. gamma = 0 gives alpha * f_c (class-weighted accuracy). Throws lriad::Error on a
// non-finite p_correct.
double focal_reward(bool correct, double p_correct, double alpha, double gamma, double class_weight);

// Tensor form: correct (N) bool, p_correct (N), class_weight (N) -> (N) in p_correct's dtype.
torch::Tensor focal_rewards(const torch::Tensor& correct, const torch::Tensor& p_correct, double alpha, double gamma,
                            const torch::Tensor& class_weight);

}  // namespace lriad::rl
