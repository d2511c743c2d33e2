// train/distributed.h: two ranks over Gloo on loopback, each a process (this test binary started
// again for rank 1, running one of the DISABLED_ child cases), and a rank that dies.
#include <gtest/gtest.h>

#include <chrono>
#include <cstdlib>
#include <fstream>
#include <thread>
#include <string>
#include <unistd.h>

#include <torch/torch.h>

#include "fixtures.h"
#include "lriad/io/error.h"
#include "lriad/train/distributed.h"

using namespace lriad;

namespace {

int test_port() {
  if (const char* p = std::getenv("LRIAD_TEST_PORT")) return std::atoi(p);
  return 20000 + int(getpid() % 12000);  // below Linux's ephemeral ports (32768 and up)
}

train::DistConfig config_of(int rank, double timeout_s) {
  train::DistConfig c;
  c.rank = rank;
  c.world = 2;
  c.master_port = test_port();
  c.timeout_s = timeout_s;
  return c;
}

// Starts rank 1: this binary, running `child` (a DISABLED_ case) with the port in its environment.
// Returns a command to run in the background; its output goes to `log`.
std::string child_command(const std::string& child, const std::string& log) {
  char exe[4096];
  const ssize_t n = readlink("/proc/self/exe", exe, sizeof(exe) - 1);
  exe[n > 0 ? n : 0] = 0;
  return "LRIAD_TEST_PORT=" + std::to_string(test_port()) + " " + exe +
         " --gtest_also_run_disabled_tests --gtest_filter=DistributedChild." + child + " > " + log + " 2>&1";
}

// Both ranks run this: a 6-layer MLP whose input differs by rank, a loss over two micro-batches,
// gradients summed while the second backward runs (buckets of ~1 layer, so several go before
// backward ends); rank 1's first layer gets no gradient. The result must equal, bit for bit, the sum
// made after backward from both ranks' own gradients (gathered here), and the sync must have sent
// buckets during backward.
void overlapped(int rank) {
  train::Distributed d(config_of(rank, 30));
  torch::manual_seed(7);  // the same weights on both ranks
  std::vector<torch::nn::Linear> layers;
  std::vector<torch::Tensor> params;
  for (int i = 0; i < 6; ++i) {
    layers.emplace_back(64, 64);
    for (const auto& p : layers.back()->parameters()) params.push_back(p);
  }
  auto run = [&](const torch::Tensor& x, bool first) {
    auto h = first ? x + layers[0]->forward(x) : x;  // rank 1 leaves the first layer out: no gradient there
    for (size_t i = 1; i < layers.size(); ++i) h = torch::tanh(layers[i]->forward(h));
    return h.pow(2).mean();
  };
  const auto x1 = torch::randn({8, 64}) * (rank + 1), x2 = torch::randn({8, 64}) * (rank + 1);
  const bool first = rank == 0;
  train::GradientSync sync(d, params, /*mean=*/false, /*bucket_mb=*/64.0 * 65 * 4 / (1 << 20));
  EXPECT_GE(sync.buckets(), 6);
  run(x1, first).backward();  // micro-batch 1: accumulates, sends nothing
  sync.arm();
  run(x2, first).backward();
  const int early = sync.sent_in_backward();
  sync.finish();
  // Buckets go in order, so a bucket with a parameter backward never reaches (rank 1's first layer,
  // the last bucket) waits for finish(); the five before it went during backward, though the one
  // sent by the last gradient overlaps nothing (rank 0's is the first layer's bucket, rank 1's the
  // second layer's).
  EXPECT_GE(early, rank == 0 ? 5 : 4) << "buckets sent while backward ran, of " << sync.buckets();
  EXPECT_TRUE(sync.learned_order());
  std::vector<torch::Tensor> synced;
  for (const auto& p : params) synced.push_back(p.grad().clone());
  // The same sums made afterwards: each rank's own gradients again, gathered and added in float32.
  for (auto& p : params) p.mutable_grad() = torch::Tensor();
  run(x1, first).backward();
  run(x2, first).backward();
  std::vector<double> flat;
  for (const auto& p : params) {
    const auto g = p.grad().defined() ? p.grad() : torch::zeros_like(p);
    const auto c = g.reshape({-1}).to(torch::kDouble).contiguous();
    flat.insert(flat.end(), c.data_ptr<double>(), c.data_ptr<double>() + c.numel());
  }
  const auto all = d.all_gather(flat);
  const auto both = torch::tensor(all, torch::kDouble).view({2, -1}).to(torch::kFloat);  // exact: float32 values
  const auto want = both[0] + both[1];
  int64_t at = 0;
  for (size_t i = 0; i < params.size(); ++i) {
    const auto n = synced[i].numel();
    EXPECT_TRUE(torch::equal(synced[i].reshape({-1}), want.narrow(0, at, n))) << "parameter " << i;
    at += n;
  }
  EXPECT_GT(synced[0].abs().sum().item<double>(), 0) << "rank 0's first layer reached rank 1 as well";
  // A second step on the same sync, where rank 1 skips its backward (as a rank whose loss was not
  // finite does) and calls finish() without arm(): every bucket still goes, in order, and both ranks
  // end with rank 0's gradients (rank 1's count as zeros).
  for (auto& p : params) p.mutable_grad() = torch::Tensor();
  if (rank == 0) {
    sync.arm();
    run(x2, first).backward();
  }
  sync.finish();
  std::vector<double> second;
  for (const auto& p : params) {
    const auto c = p.grad().reshape({-1}).to(torch::kDouble).contiguous();
    second.insert(second.end(), c.data_ptr<double>(), c.data_ptr<double>() + c.numel());
  }
  const auto ranks = torch::tensor(d.all_gather(second), torch::kDouble).view({2, -1});
  EXPECT_TRUE(torch::equal(ranks[0], ranks[1])) << "both ranks hold the same sums";
  EXPECT_GT(ranks[0].abs().sum().item<double>(), 0);
}

// Both ranks run this: a 6-layer MLP whose first layer is registered last (as the vision encoder's
// evidence embedding is), so the first buckets (the list reversed) start with the layer backward
// reaches last. The first step sends nothing while backward runs; its finish() learns the order the
// gradients became ready, and from the second step on the buckets go as backward fills them. The
// sums stay equal, bit for bit, to those made after backward.
void learned(int rank) {
  train::Distributed d(config_of(rank, 30));
  torch::manual_seed(11);
  std::vector<torch::nn::Linear> layers;
  for (int i = 0; i < 6; ++i) layers.emplace_back(64, 64);
  std::vector<torch::Tensor> params;
  for (int i : {1, 2, 3, 4, 5, 0})
    for (const auto& p : layers[size_t(i)]->parameters()) params.push_back(p);
  const auto x = torch::randn({8, 64}) * (rank + 1);
  auto loss = [&] {
    auto h = x;
    for (auto& l : layers) h = torch::tanh(l->forward(h));
    return h.pow(2).mean();
  };
  const double mb = 64.0 * 65 * 4 / (1 << 20);  // a layer per bucket
  train::GradientSync& sync = d.gradient_sync(params, /*mean=*/false, mb);
  EXPECT_EQ(&d.gradient_sync(params, false, mb), &sync) << "the same list gets the same sync";
  EXPECT_NE(&d.gradient_sync(params, true, mb), &sync) << "averaging is another sync";
  EXPECT_EQ(sync.buckets(), 6);
  EXPECT_FALSE(sync.learned_order());
  auto step = [&] {
    for (auto& p : params) p.mutable_grad() = torch::Tensor();
    sync.arm();
    loss().backward();
    const int early = sync.sent_in_backward();
    sync.finish();
    return early;
  };
  EXPECT_EQ(step(), 0) << "the first bucket holds layer 0, whose gradient is ready last";
  EXPECT_TRUE(sync.learned_order());
  EXPECT_EQ(&d.gradient_sync(params, false, mb), &sync) << "kept: the learned order serves the next steps";
  const int buckets = sync.buckets();
  const int early = step();
  EXPECT_GE(early, buckets - 2) << "buckets sent while backward ran, of " << buckets;
  std::vector<double> synced, own;
  for (const auto& p : params) {
    const auto c = p.grad().reshape({-1}).to(torch::kDouble).contiguous();
    synced.insert(synced.end(), c.data_ptr<double>(), c.data_ptr<double>() + c.numel());
  }
  for (auto& p : params) p.mutable_grad() = torch::Tensor();
  loss().backward();
  for (const auto& p : params) {
    const auto c = p.grad().reshape({-1}).to(torch::kDouble).contiguous();
    own.insert(own.end(), c.data_ptr<double>(), c.data_ptr<double>() + c.numel());
  }
  const auto both = torch::tensor(d.all_gather(own), torch::kDouble).view({2, -1}).to(torch::kFloat);
  EXPECT_TRUE(torch::equal(torch::tensor(synced, torch::kDouble).to(torch::kFloat), both[0] + both[1]));
}

// Both ranks run this: gradients (rank r's weight gradient is r + 1; rank 1 has no bias gradient),
// a sum, a gather, a broadcast from rank 1 and a barrier.
void collectives(int rank) {
  ASSERT_TRUE(train::distributed_available()) << "built without Gloo's headers: scripts/setup.sh installs libgloo-dev";
  train::Distributed d(config_of(rank, 30));
  EXPECT_EQ(d.rank(), rank);
  EXPECT_EQ(d.world(), 2);
  torch::nn::Linear lin(3, 2);
  lin->weight.mutable_grad() = torch::full({2, 3}, double(rank + 1));
  if (rank == 0) lin->bias.mutable_grad() = torch::full({2}, 1.0);
  auto half = torch::zeros({2}, torch::kBFloat16).requires_grad_();  // Gloo cannot reduce bf16 itself
  half.mutable_grad() = torch::full({2}, double(rank + 1), torch::kBFloat16);
  auto frozen = torch::zeros({2});  // no gradient wanted: left alone
  train::GradientSync(d, {lin->weight, lin->bias, half, frozen}, /*mean=*/true).finish();
  EXPECT_TRUE(torch::allclose(lin->weight.grad(), torch::full({2, 3}, 1.5)));
  EXPECT_TRUE(torch::equal(half.grad(), torch::full({2}, 1.5, torch::kBFloat16)));
  EXPECT_FALSE(frozen.grad().defined());
  ASSERT_TRUE(lin->bias.grad().defined());
  EXPECT_TRUE(torch::allclose(lin->bias.grad(), torch::full({2}, 0.5))) << "a missing gradient counts as zeros";
  auto t = torch::tensor({double(rank + 1), 10.0});
  d.all_reduce_sum(t);
  EXPECT_TRUE(torch::equal(t, torch::tensor({3.0, 20.0})));
  EXPECT_EQ(d.all_gather({double(rank), 10.0 + rank}), (std::vector<double>{0, 10, 1, 11}));
  auto b = torch::tensor({double(rank), -1.0 * rank});
  d.broadcast(b, 1);
  EXPECT_TRUE(torch::equal(b, torch::tensor({1.0, -1.0})));
  d.barrier();
}

}  // namespace

TEST(DistributedChild, DISABLED_Collectives) { collectives(1); }
TEST(DistributedChild, DISABLED_Overlapped) { overlapped(1); }
TEST(DistributedChild, DISABLED_Learned) { learned(1); }

TEST(DistributedChild, DISABLED_JoinsThenDies) {
  train::Distributed d(config_of(1, 30));
  std::this_thread::sleep_for(std::chrono::milliseconds(500));
  _exit(3);  // no goodbye: the process is gone, as a crashed rank's would be
}

TEST(DistributedChild, DISABLED_JoinsThenHangs) {
  train::Distributed d(config_of(1, 10));
  std::this_thread::sleep_for(std::chrono::seconds(14));  // alive (its heartbeat beats) but in no collective
}

// Runs `rank0` here while rank 1 runs the DISABLED_ case `child` in a copy of this binary; rank 1
// must pass its case.
void with_rank1(const std::string& child, void (*rank0)(int)) {
  const std::string log = "/tmp/lriad_dist_child_" + std::to_string(getpid()) + ".log";
  // The exit status lands whole: written beside, then renamed.
  const std::string cmd =
      "(" + child_command(child, log) + "; echo $? > " + log + ".rc.tmp; mv " + log + ".rc.tmp " + log + ".rc) &";
  ASSERT_EQ(std::system(cmd.c_str()), 0);
  rank0(0);
  for (int i = 0; i < 300 && !std::ifstream(log + ".rc"); ++i)
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  const std::string out = test::read_text(log);
  EXPECT_EQ(test::read_text(log + ".rc"), "0\n") << out;
  EXPECT_NE(out.find("[  PASSED  ] 1 test"), std::string::npos) << "rank 1 ran its case: " << out;
  std::remove(log.c_str());
  std::remove((log + ".rc").c_str());
}

TEST(Distributed, TwoRanksAverageGradientsSumGatherAndBroadcast) { with_rank1("DISABLED_Collectives", collectives); }

TEST(Distributed, GradientsAreSummedWhileBackwardRunsAndEqualTheSumAfterIt) {
  with_rank1("DISABLED_Overlapped", overlapped);
}

TEST(Distributed, BucketsFollowTheOrderTheFirstBackwardMadeTheGradientsReady) {
  with_rank1("DISABLED_Learned", learned);
}

TEST(Distributed, ARankThatDiesEndsTheOtherWithinTheTimeoutNamingIt) {
  const std::string log = "/tmp/lriad_dist_dies_" + std::to_string(getpid()) + ".log";
  ASSERT_EQ(std::system((child_command("DISABLED_JoinsThenDies", log) + " &").c_str()), 0);
  train::Distributed d(config_of(0, 20));  // rank 1 starts and joins first: seconds on a loaded machine
  const auto start = std::chrono::steady_clock::now();
  std::string message;
  try {
    torch::Tensor t = torch::ones({4});
    for (int i = 0; i < 100; ++i) {  // the peer dies within half a second: one of these fails
      d.all_reduce_sum(t);
      std::this_thread::sleep_for(std::chrono::milliseconds(50));
    }
  } catch (const Error& e) {
    message = e.what();
  }
  const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  EXPECT_NE(message.find("rank 0 of 2"), std::string::npos) << message;
  EXPECT_NE(message.find("rank 1 stopped responding"), std::string::npos) << message;
  EXPECT_LT(seconds, 20) << "a dead peer is noticed before the timeout (20 s)";
  std::remove(log.c_str());
}

TEST(Distributed, TheEnvironmentAsTorchrunSetsIt) {
  for (const char* v : {"RANK", "WORLD_SIZE", "MASTER_ADDR", "MASTER_PORT", "LRIAD_DIST_TIMEOUT"}) unsetenv(v);
  auto c = train::dist_from_env();
  EXPECT_EQ(c.world, 1);
  EXPECT_EQ(c.rank, 0);
  setenv("RANK", "5", 1);  // without WORLD_SIZE a stray RANK or a service's MASTER_PORT means nothing
  setenv("MASTER_PORT", "tcp://10.0.0.1:29500", 1);
  EXPECT_EQ(train::dist_from_env().world, 1);
  setenv("RANK", "1", 1);
  setenv("WORLD_SIZE", "4", 1);
  setenv("MASTER_ADDR", "10.0.0.7", 1);
  setenv("MASTER_PORT", "29611", 1);
  setenv("LRIAD_DIST_TIMEOUT", "12.5", 1);
  c = train::dist_from_env();
  EXPECT_EQ(c.rank, 1);
  EXPECT_EQ(c.world, 4);
  EXPECT_EQ(c.master_addr, "10.0.0.7");
  EXPECT_EQ(c.master_port, 29611);
  EXPECT_DOUBLE_EQ(c.timeout_s, 12.5);
  setenv("RANK", "4", 1);
  try {
    train::dist_from_env();
    ADD_FAILURE() << "a rank outside the world is refused";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("RANK=4"), std::string::npos) << e.what();
  }
  for (const char* v : {"RANK", "WORLD_SIZE", "MASTER_ADDR", "MASTER_PORT", "LRIAD_DIST_TIMEOUT"}) unsetenv(v);
}

TEST(Distributed, OneProcessIsTheIdentity) {
  train::Distributed d(train::DistConfig{});
  EXPECT_TRUE(d.main());
  torch::nn::Linear lin(2, 2);
  lin->weight.mutable_grad() = torch::full({2, 2}, 3.0);
  train::GradientSync sync(d, {lin->weight}, /*mean=*/true);
  EXPECT_EQ(sync.buckets(), 0);
  sync.arm();
  sync.finish();
  EXPECT_TRUE(torch::equal(lin->weight.grad(), torch::full({2, 2}, 3.0)));
  EXPECT_EQ(d.all_gather({1.5}), std::vector<double>{1.5});
}

// A rank that hangs (alive, its heartbeat beating, but never reaching the collective) is named too:
// the heartbeat carries how many collectives each rank has started.
TEST(Distributed, AHungRankIsNamedWhenTheTimeoutEndsTheCollective) {
  const std::string log = "/tmp/lriad_dist_hangs_" + std::to_string(getpid()) + ".log";
  ASSERT_EQ(std::system((child_command("DISABLED_JoinsThenHangs", log) + " &").c_str()), 0);
  train::Distributed d(config_of(0, 10));
  std::string message;
  try {
    torch::Tensor t = torch::ones({4});
    d.all_reduce_sum(t);
  } catch (const Error& e) {
    message = e.what();
  }
  EXPECT_NE(message.find("rank 1 is alive but stuck before collective 1 (this rank is in 1)"), std::string::npos)
      << message;
  EXPECT_EQ(message.find("stopped responding"), std::string::npos) << message;
  std::remove(log.c_str());
}
