// Activation recomputation: same outputs and gradients as the plain block, a graph that keeps only
// the input, and the block run once in forward and once more in backward.
#include <gtest/gtest.h>

#include <memory>
#include <set>
#include <string>
#include <vector>

#include <torch/torch.h>

#include "lriad/model/recompute.h"

namespace {

using lriad::model::recompute;

// Linear -> GELU -> Linear -> LayerNorm, (N,8) -> (N,8).
struct BlockImpl : torch::nn::Module {
  BlockImpl()
      : fc1(register_module("fc1", torch::nn::Linear(8, 16))),
        fc2(register_module("fc2", torch::nn::Linear(16, 8))),
        norm(register_module("norm", torch::nn::LayerNorm(torch::nn::LayerNormOptions({8})))) {}
  torch::Tensor forward(const torch::Tensor& x) { return norm(fc2(torch::gelu(fc1(x)))); }
  torch::nn::Linear fc1;
  torch::nn::Linear fc2;
  torch::nn::LayerNorm norm;
};
TORCH_MODULE(Block);

Block make_block() {
  torch::manual_seed(7);
  Block b;
  // LayerNorm starts at weight 1, bias 0: perturb them so their gradients are not trivial.
  torch::NoGradGuard no_grad;
  b->norm->weight.add_(torch::randn({8}) * 0.1);
  b->norm->bias.add_(torch::randn({8}) * 0.1);
  return b;
}

torch::Tensor make_input(bool requires_grad) {
  torch::manual_seed(11);
  return torch::randn({4, 8}).requires_grad_(requires_grad);
}

void clear_grads(Block& b) {
  for (auto& p : b->parameters()) p.mutable_grad() = torch::Tensor();
}

std::vector<torch::Tensor> grads_of(Block& b) {
  std::vector<torch::Tensor> g;
  for (auto& p : b->parameters()) g.push_back(p.grad().defined() ? p.grad().clone() : torch::Tensor());
  return g;
}

void expect_close(const torch::Tensor& a, const torch::Tensor& b, const std::string& what) {
  ASSERT_TRUE(a.defined()) << what;
  ASSERT_TRUE(b.defined()) << what;
  ASSERT_EQ(a.sizes(), b.sizes()) << what;
  const double diff = (a - b).abs().max().item<double>();
  EXPECT_LE(diff, 1e-6) << what;
}

// Names of every node reachable from `root` in the autograd graph.
std::multiset<std::string> graph_nodes(const std::shared_ptr<torch::autograd::Node>& root) {
  std::multiset<std::string> names;
  std::set<torch::autograd::Node*> seen;
  std::vector<torch::autograd::Node*> stack{root.get()};
  while (!stack.empty()) {
    auto* n = stack.back();
    stack.pop_back();
    if (n == nullptr || !seen.insert(n).second) continue;
    names.insert(n->name());
    for (const auto& e : n->next_edges()) stack.push_back(e.function.get());
  }
  return names;
}

bool any_name_contains(const std::multiset<std::string>& names, const std::string& part) {
  for (const auto& n : names)
    if (n.find(part) != std::string::npos) return true;
  return false;
}

void check_matches_plain(bool x_requires_grad) {
  Block b = make_block();
  auto run = [&](const torch::Tensor& t) { return b->forward(t); };

  torch::Tensor x_plain = make_input(x_requires_grad);
  torch::Tensor y_plain = run(x_plain);
  y_plain.pow(2).sum().backward();
  const auto g_plain = grads_of(b);
  clear_grads(b);

  torch::Tensor x_rc = make_input(x_requires_grad);
  torch::Tensor y_rc = recompute(run, x_rc);
  ASSERT_TRUE(y_rc.requires_grad());
  y_rc.pow(2).sum().backward();
  const auto g_rc = grads_of(b);

  expect_close(y_rc.detach(), y_plain.detach(), "output");
  ASSERT_EQ(g_plain.size(), g_rc.size());
  ASSERT_EQ(g_plain.size(), 6u);  // two Linear weights and biases, LayerNorm weight and bias
  for (size_t i = 0; i < g_plain.size(); ++i) {
    expect_close(g_rc[i], g_plain[i], "parameter " + std::to_string(i));
    EXPECT_GT(g_rc[i].abs().sum().item<double>(), 0.0) << "parameter " << i;
  }
  if (x_requires_grad) {
    expect_close(x_rc.grad(), x_plain.grad(), "input");
    EXPECT_GT(x_rc.grad().abs().sum().item<double>(), 0.0);
  } else {
    EXPECT_FALSE(x_rc.grad().defined());
  }
}

TEST(Recompute, GradientsMatchPlainRunWhenInputRequiresGrad) { check_matches_plain(true); }

TEST(Recompute, ParametersGetGradientsWhenInputDoesNotRequireGrad) { check_matches_plain(false); }

// Two recomputed blocks in a row: the second one's input is a non-leaf, so its gradient must flow
// back through the first node to the leaf input.
TEST(Recompute, ChainedBlocksMatchPlainRun) {
  Block b = make_block();
  torch::manual_seed(3);
  Block b2;
  auto run1 = [&](const torch::Tensor& t) { return b->forward(t); };
  auto run2 = [&](const torch::Tensor& t) { return b2->forward(t); };

  torch::Tensor x_plain = make_input(true);
  (run2(run1(x_plain)) * torch::arange(8.0)).sum().backward();
  auto g_plain = grads_of(b);
  for (auto& g : grads_of(b2)) g_plain.push_back(g);
  clear_grads(b);
  clear_grads(b2);

  torch::Tensor x_rc = make_input(true);
  (recompute(run2, recompute(run1, x_rc)) * torch::arange(8.0)).sum().backward();
  auto g_rc = grads_of(b);
  for (auto& g : grads_of(b2)) g_rc.push_back(g);

  ASSERT_EQ(g_rc.size(), 12u);
  for (size_t i = 0; i < g_rc.size(); ++i) expect_close(g_rc[i], g_plain[i], "parameter " + std::to_string(i));
  expect_close(x_rc.grad(), x_plain.grad(), "input");
}

// The graph of the recomputed output is one node whose only edges lead to the input (and the
// dummy), while the plain graph holds the block's operations; the block runs once in forward and
// once more in backward.
TEST(Recompute, GraphKeepsOnlyTheInputAndBlockRunsTwice) {
  Block b = make_block();
  int calls = 0;
  std::vector<bool> grad_mode;  // grad mode seen by each run of the block
  auto run = [&](const torch::Tensor& t) {
    ++calls;
    grad_mode.push_back(torch::GradMode::is_enabled());
    return b->forward(t);
  };

  torch::Tensor x = make_input(true);
  const auto plain_nodes = graph_nodes(run(x).grad_fn());
  EXPECT_TRUE(any_name_contains(plain_nodes, "Addmm")) << "the plain graph should hold the Linear layers";
  EXPECT_TRUE(any_name_contains(plain_nodes, "LayerNorm"));
  calls = 0;
  grad_mode.clear();

  torch::Tensor y = recompute(run, x);
  EXPECT_EQ(calls, 1);
  ASSERT_TRUE(y.grad_fn());
  EXPECT_NE(y.grad_fn()->name().find("RecomputeFunction"), std::string::npos) << y.grad_fn()->name();
  const auto nodes = graph_nodes(y.grad_fn());
  EXPECT_FALSE(any_name_contains(nodes, "Addmm"));
  EXPECT_FALSE(any_name_contains(nodes, "Gelu"));
  EXPECT_FALSE(any_name_contains(nodes, "LayerNorm"));
  // The node itself and the input's AccumulateGrad (the dummy does not require grad here).
  EXPECT_EQ(nodes.size(), 2u);
  EXPECT_EQ(nodes.count("torch::autograd::AccumulateGrad"), 1u);
  ASSERT_EQ(y.grad_fn()->next_edges().size(), 2u);
  const auto x_acc = torch::autograd::impl::try_get_grad_accumulator(x);
  ASSERT_TRUE(x_acc);
  EXPECT_EQ(y.grad_fn()->next_edges()[0].function.get(), x_acc.get());

  y.sum().backward();
  EXPECT_EQ(calls, 2);
  // The forward run builds no graph; the backward run does.
  EXPECT_EQ(grad_mode, (std::vector<bool>{false, true}));
}

TEST(Recompute, NoGradModeCallsBlockOnceAndRecordsNothing) {
  Block b = make_block();
  int calls = 0;
  auto run = [&](const torch::Tensor& t) {
    ++calls;
    return b->forward(t);
  };
  torch::Tensor x = make_input(true);
  torch::Tensor y;
  {
    torch::NoGradGuard no_grad;
    y = recompute(run, x);
  }
  EXPECT_EQ(calls, 1);
  EXPECT_FALSE(y.grad_fn());
  EXPECT_FALSE(y.requires_grad());
  torch::Tensor expected;
  {
    torch::NoGradGuard no_grad;
    expected = b->forward(x);
  }
  EXPECT_TRUE(torch::equal(y, expected));
}

// The block (with its captured module) lives in the node: dropping the output without a backward
// frees it, and the captured state is not kept alive.
TEST(Recompute, BlockIsReleasedWithTheGraphWithoutBackward) {
  auto token = std::make_shared<int>(0);
  std::weak_ptr<int> watch = token;
  Block b = make_block();
  {
    auto run = [&b, token](const torch::Tensor& t) { return b->forward(t); };
    torch::Tensor y = recompute(run, make_input(true));
    token.reset();
    EXPECT_FALSE(watch.expired()) << "the node should hold the block until the graph goes away";
  }
  EXPECT_TRUE(watch.expired());
}

}  // namespace
