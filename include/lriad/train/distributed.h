// Data-parallel training over LibTorch's c10d (issue 25): a process group of `world` ranks over
// Gloo (CPU tensors), met through a TCPStore that rank 0 serves, the way torchrun's variables
// describe it (RANK, WORLD_SIZE, MASTER_ADDR, MASTER_PORT). What the trainer needs of it: gradients
// summed over the ranks in buckets while backward runs (GradientSync), sums and gathers of
// statistics (global reward scaling), broadcasts (rank 0 builds, the others receive), a barrier.
// Faults: every rank writes a heartbeat to the store each second (its own thread and connection);
// a collective that fails or times out (timeout_s) throws lriad::Error naming this rank and the
// ranks whose heartbeat did not move in 1.5 s (a dead process; a hung one still beats and is not
// named), or rank 0 when the store it serves is gone, so a run whose peer died or hangs ends with a
// message instead of waiting for ever.
// Built only where Gloo's headers are (Debian: libgloo-dev, which scripts/setup.sh installs;
// LRIAD_HAS_GLOO); elsewhere a world above 1 is refused with that said.
#pragma once
#include <memory>
#include <string>
#include <vector>

#include <torch/types.h>

namespace lriad::train {

struct DistConfig {
  int rank = 0;
  int world = 1;
  std::string master_addr = "127.0.0.1";
  int master_port = 29500;
  double timeout_s = 300;  // a collective or the rendezvous waits this long at most
};

// torchrun's variables: RANK, WORLD_SIZE, MASTER_ADDR, MASTER_PORT, and LRIAD_DIST_TIMEOUT (seconds).
// WORLD_SIZE unset or 1: a single process (the others are not read). Throws lriad::Error naming a variable that does not parse
// or is out of range (a rank outside [0, WORLD_SIZE)).
DistConfig dist_from_env();

// True when lriad was built with Gloo's headers (multi-process training possible).
bool distributed_available();

class GradientSync;

class Distributed {
 public:
  // world 1: no process group (every call is a no-op or the identity). Else joins the group:
  // rank 0 serves the store at master_addr:master_port; the call returns when every rank has
  // joined, or throws after timeout_s.
  explicit Distributed(const DistConfig& config);
  ~Distributed();
  Distributed(const Distributed&) = delete;
  Distributed& operator=(const Distributed&) = delete;

  int rank() const { return config_.rank; }
  int world() const { return config_.world; }
  bool main() const { return config_.rank == 0; }

  // The sum over ranks of each value (one collective).
  std::vector<double> sum(const std::vector<double>& mine);
  double sum(double mine) { return sum(std::vector<double>{mine})[0]; }
  // In place: the sum over ranks (CPU tensor).
  void all_reduce_sum(torch::Tensor& tensor);
  // In place: rank `root`'s values on every rank (CPU tensor of one shape on every rank).
  void broadcast(torch::Tensor& tensor, int root = 0);
  // Every rank's `mine` (same length on every rank), concatenated in rank order.
  std::vector<double> all_gather(const std::vector<double>& mine);
  // timeout_s 0: the config's. Longer for a wait on work one rank does alone (rank 0 building the
  // normal reference can take longer than a collective should); a dead peer still ends it at once.
  void barrier(double timeout_s = 0);

  // The GradientSync of this list of parameters (the same tensors in the same order), `mean` and
  // `bucket_mb`, made at the first call and kept, so the order it learns on its first step serves
  // every step after it (SFT, the vision warm-up and GRPO ask for theirs at every step; SFT and GRPO
  // share one when they sum the same list). A parameter that starts or stops training makes another
  // sync. The four most recently asked for are kept: a reference returned here lasts until four
  // other lists have been asked for.
  GradientSync& gradient_sync(const std::vector<torch::Tensor>& parameters, bool mean, double bucket_mb = 25);

  struct Group;  // the process groups, the store and the heartbeat (distributed.cpp)
  Group* group() const { return group_.get(); }
  const DistConfig& config() const { return config_; }

 private:
  DistConfig config_;
  std::unique_ptr<Group> group_;
  struct KeptSync;
  std::vector<std::unique_ptr<KeptSync>> syncs_;  // after group_: destroyed before it
};

// Gradients summed over the ranks while backward runs (DDP's way): the trainable parameters are cut
// into buckets of about bucket_mb, and a post-hook on each parameter's gradient accumulator marks it
// ready. A bucket whose parameters are all ready is sent at once, asynchronously, while backward goes
// on with the layers below; buckets go in their order on every rank, on a process group of their
// own, so the statistics' collectives never interleave with them. The first buckets follow the list
// reversed (a model's layers in the order backward usually reaches them); the first armed backward
// records the order in which the parameters actually became ready, and its finish() rebuilds the
// buckets in rank 0's recorded order (broadcast, so every rank cuts the same buckets; parameters
// it did not reach go last, in the first order), as DDP does after its first iteration. A parameter
// registered last but used first (the vision encoder's evidence embedding) then no longer holds
// back the first bucket. If rank 0 had not armed before a finish() (it skipped its backward), the
// next finish() at which it had armed learns instead. Only the backward after arm() sends (with
// micro-batches, arm before the last); finish() sends what that backward did not reach (a
// parameter without a gradient counts as zeros), waits, and writes the sums, or the means with
// `mean`, into .grad. One process: nothing is registered and every call returns at once.
// Gloo reduces CPU float32 (half-width and device gradients travel as CPU float32 copies).
class GradientSync {
 public:
  GradientSync(Distributed& dist, const std::vector<torch::Tensor>& parameters, bool mean, double bucket_mb = 25);
  ~GradientSync();  // removes the hooks
  GradientSync(const GradientSync&) = delete;
  GradientSync& operator=(const GradientSync&) = delete;
  void arm();     // the next backward completes the gradients: send buckets as they fill
  void finish();  // send the rest, wait, write the results into .grad; disarms
  int buckets() const;
  // Buckets the last armed backward sent before it ended: the overlap. Those sent by its last
  // gradient's hook do not count (nothing of the backward is left to overlap them).
  int sent_in_backward() const;
  bool learned_order() const;  // the buckets follow the order backward made the parameters ready

  struct State;

 private:
  std::unique_ptr<State> s_;
};

}  // namespace lriad::train
