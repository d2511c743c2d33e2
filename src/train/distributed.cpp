// c10d process groups over Gloo (see distributed.h).
#include "lriad/train/distributed.h"

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdlib>
#include <map>
#include <mutex>
#include <thread>
#include <utility>

#include <torch/torch.h>

#include "lriad/io/error.h"

#if defined(LRIAD_HAS_GLOO)
#include <torch/csrc/autograd/function_hook.h>
#include <torch/csrc/autograd/variable.h>
#include <torch/csrc/distributed/c10d/PrefixStore.hpp>
#include <torch/csrc/distributed/c10d/ProcessGroupGloo.hpp>
#include <torch/csrc/distributed/c10d/TCPStore.hpp>
#endif

namespace lriad::train {
namespace {

int env_int(const char* name, int fallback, int lo, int hi) {
  const char* v = std::getenv(name);
  if (!v || !*v) return fallback;
  char* end = nullptr;
  const long x = std::strtol(v, &end, 10);
  if (*end || x < lo || x > hi)
    throw Error(std::string("environment variable ") + name + "=" + v + " is not a whole number in [" +
                    std::to_string(lo) + ", " + std::to_string(hi) + "]",
                "torchrun's variables: RANK, WORLD_SIZE, MASTER_ADDR, MASTER_PORT");
  return int(x);
}

}  // namespace

DistConfig dist_from_env() {
  DistConfig c;
  c.world = env_int("WORLD_SIZE", 1, 1, 1 << 16);
  if (c.world == 1) return c;  // one process: the other variables (a stray RANK, a service's MASTER_PORT) do not matter
  c.rank = env_int("RANK", 0, 0, c.world - 1);
  if (const char* a = std::getenv("MASTER_ADDR"); a && *a) c.master_addr = a;
  c.master_port = env_int("MASTER_PORT", c.master_port, 1, 65535);
  if (const char* t = std::getenv("LRIAD_DIST_TIMEOUT"); t && *t) {
    char* end = nullptr;
    c.timeout_s = std::strtod(t, &end);
    if (*end || !(c.timeout_s > 0))
      throw Error(std::string("LRIAD_DIST_TIMEOUT=") + t + " is not a positive number of seconds");
  }
  return c;
}

#if defined(LRIAD_HAS_GLOO)

bool distributed_available() { return true; }

struct Distributed::Group {
  c10::intrusive_ptr<c10d::Store> store;
  c10::intrusive_ptr<c10d::ProcessGroupGloo> pg;
  c10::intrusive_ptr<c10d::ProcessGroupGloo> gradients;  // GradientSync's buckets only, in their own order
  std::thread heartbeat;
  std::atomic<bool> stop{false};
  std::atomic<int64_t> collectives{0};  // started by this rank; the heartbeat publishes the count
};

namespace {

int64_t now_ms() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::system_clock::now().time_since_epoch())
      .count();
}

std::string beat_key(int rank) { return "lriad/heartbeat/" + std::to_string(rank); }

// A heartbeat's value: "<milliseconds> <collectives started>".
std::string beat_value(int64_t collectives) { return std::to_string(now_ms()) + " " + std::to_string(collectives); }

// Which peers a failed collective waited for. Every peer's heartbeat is read twice, a beat and a half
// apart: a rank whose beat did not move is gone ("rank 1 stopped responding"); a rank that beats but
// has started fewer collectives than this one is alive and behind, hung or stuck elsewhere ("rank 1
// is alive but stuck before collective 12"). "rank 0 (...)" when the store itself is gone.
std::string silent_ranks(c10d::Store& store, int self, int world, int64_t mine) {
  auto read = [&](int r) {
    const auto v = store.get(beat_key(r));
    return std::string(v.begin(), v.end());
  };
  std::string gone, behind;
  try {
    store.setTimeout(std::chrono::milliseconds(2000));
    std::map<int, std::string> first;
    for (int r = 0; r < world; ++r)
      if (r != self) first[r] = read(r);
    std::this_thread::sleep_for(std::chrono::milliseconds(1500));
    for (const auto& [r, beat] : first) {
      const std::string now = read(r);
      if (now == beat) {
        gone += (gone.empty() ? "rank " : ", rank ") + std::to_string(r);
        continue;
      }
      const auto space = now.find(' ');
      const int64_t started = space == std::string::npos ? mine : std::stoll(now.substr(space + 1));
      if (started < mine)
        behind += (behind.empty() ? "" : "; ") +
                  ("rank " + std::to_string(r) + " is alive but stuck before collective " +
                   std::to_string(started + 1) + " (this rank is in " + std::to_string(mine) + ")");
    }
  } catch (const std::exception&) {
    return self == 0 ? "" : "rank 0 (it serves the store, which is gone) stopped responding";
  }
  std::string out = gone.empty() ? "" : gone + " stopped responding";
  if (!behind.empty()) out += (out.empty() ? "" : "; ") + behind;
  return out;
}

}  // namespace

Distributed::Distributed(const DistConfig& config) : config_(config) {
  if (config.world <= 1) return;
  if (config.rank < 0 || config.rank >= config.world)
    throw Error("rank " + std::to_string(config.rank) + " is outside a world of " + std::to_string(config.world));
  group_ = std::make_unique<Group>();
  const auto timeout = std::chrono::milliseconds(int64_t(config.timeout_s * 1000));
  const std::string where = "rank " + std::to_string(config.rank) + " of " + std::to_string(config.world);
  try {
    c10d::TCPStoreOptions opts;
    opts.port = uint16_t(config.master_port);
    opts.isServer = config.rank == 0;
    opts.numWorkers = size_t(config.world);
    opts.waitWorkers = false;
    opts.timeout = timeout;
    group_->store = c10::make_intrusive<c10d::TCPStore>(config.master_addr, opts);
    auto options = c10d::ProcessGroupGloo::Options::create();
    // On one machine (a loopback master) Gloo binds to loopback; across machines, to this host's own
    // interface (GLOO_SOCKET_IFNAME picks one), not to the master's address.
    const bool loopback = config.master_addr == "localhost" || config.master_addr.rfind("127.", 0) == 0;
    options->devices.push_back(loopback ? c10d::ProcessGroupGloo::createDeviceForHostname("127.0.0.1")
                                        : c10d::ProcessGroupGloo::createDefaultDevice());
    options->timeout = timeout;
    group_->pg = c10::make_intrusive<c10d::ProcessGroupGloo>(group_->store, config.rank, config.world, options);
    group_->gradients = c10::make_intrusive<c10d::ProcessGroupGloo>(
        c10::make_intrusive<c10d::PrefixStore>("lriad/gradients", group_->store), config.rank, config.world, options);
  } catch (const std::exception& e) {
    throw Error(where + ": could not join the process group at " + config.master_addr + ":" +
                    std::to_string(config.master_port) + " within " + std::to_string(int(config.timeout_s)) +
                    " s: " + e.what(),
                "every rank needs the same MASTER_ADDR, MASTER_PORT and WORLD_SIZE, and rank 0 must be running");
  }
  // Heartbeat on its own connection to the store, so that a rank blocked in a collective still beats.
  auto beat_store = c10::make_intrusive<c10d::TCPStore>(config.master_addr, [&] {
    c10d::TCPStoreOptions o;
    o.port = uint16_t(config.master_port);
    o.isServer = false;
    o.waitWorkers = false;
    o.timeout = timeout;
    return o;
  }());
  Group* g = group_.get();
  const int rank = config.rank;
  g->heartbeat = std::thread([g, beat_store, rank] {
    while (!g->stop.load()) {
      try {
        const auto s = beat_value(g->collectives.load());
        beat_store->set(beat_key(rank), std::vector<uint8_t>(s.begin(), s.end()));
      } catch (const std::exception&) {
        return;  // the store is gone; collectives will say so
      }
      for (int i = 0; i < 10 && !g->stop.load(); ++i) std::this_thread::sleep_for(std::chrono::milliseconds(100));
    }
  });
}

Distributed::~Distributed() {
  if (!group_) return;
  group_->stop = true;
  if (group_->heartbeat.joinable()) group_->heartbeat.join();
}

namespace {

// Runs `run` (which starts or waits for collective number `mine` of this rank), turning a failure
// into an lriad::Error that names the ranks that stopped answering.
template <class F>
void checked(Distributed::Group& g, const DistConfig& c, const std::string& what, int64_t mine, F&& run) {
  try {
    run();
  } catch (const std::exception& e) {
    const std::string silent = silent_ranks(*g.store, c.rank, c.world, mine);
    throw Error("rank " + std::to_string(c.rank) + " of " + std::to_string(c.world) + ": " + what + " failed" +
                    (silent.empty() ? "" : " (" + silent + ")") + ": " + e.what(),
                "a peer rank died or hangs (the timeout, LRIAD_DIST_TIMEOUT, is " + std::to_string(int(c.timeout_s)) +
                    " s); the last checkpoint is whole: `lriad train --resume --out RUN` (with --nproc, or every rank "
                    "started again) continues from it");
  }
}

template <class F>
void collective(Distributed::Group& g, const DistConfig& c, const std::string& what, F&& run) {
  checked(g, c, what, ++g.collectives, std::forward<F>(run));
}

}  // namespace

std::vector<double> Distributed::sum(const std::vector<double>& mine) {
  if (!group_ || mine.empty()) return mine;
  auto t = torch::tensor(mine, torch::kFloat64);
  all_reduce_sum(t);
  return std::vector<double>(t.data_ptr<double>(), t.data_ptr<double>() + t.numel());
}

void Distributed::all_reduce_sum(torch::Tensor& tensor) {
  if (!group_) return;
  std::vector<torch::Tensor> t = {tensor};
  collective(*group_, config_, "a sum over ranks", [&] { group_->pg->allreduce(t)->wait(); });
}

void Distributed::broadcast(torch::Tensor& tensor, int root) {
  if (!group_) return;
  std::vector<torch::Tensor> t = {tensor};
  c10d::BroadcastOptions o;
  o.rootRank = root;
  collective(*group_, config_, "a broadcast from rank " + std::to_string(root),
             [&] { group_->pg->broadcast(t, o)->wait(); });
}

std::vector<double> Distributed::all_gather(const std::vector<double>& mine) {
  if (!group_) return mine;
  const auto local = torch::tensor(mine, torch::kFloat64);
  std::vector<std::vector<torch::Tensor>> out(1);
  for (int r = 0; r < config_.world; ++r) out[0].push_back(torch::empty_like(local));
  std::vector<torch::Tensor> in = {local};
  collective(*group_, config_, "a gather over ranks", [&] { group_->pg->allgather(out, in)->wait(); });
  const auto all = torch::cat(out[0]).contiguous();
  return {all.data_ptr<double>(), all.data_ptr<double>() + all.numel()};
}

void Distributed::barrier(double timeout_s) {
  if (!group_) return;
  c10d::BarrierOptions o;
  o.timeout = std::chrono::milliseconds(int64_t((timeout_s > 0 ? timeout_s : config_.timeout_s) * 1000));
  collective(*group_, config_, "a barrier", [&] { group_->pg->barrier(o)->wait(); });
}

using Work = decltype(std::declval<c10d::ProcessGroupGloo&>().allreduce(std::declval<std::vector<at::Tensor>&>()));

struct GradientSync::State {
  struct Bucket {
    std::vector<size_t> slots;        // its parameters (indices into State::slots)
    std::vector<torch::Tensor> flat;  // one CPU float32 buffer while it travels
    Work work;
    int64_t number = 0;  // the collective's number on this rank (the heartbeat's count when it was sent)
    size_t waiting = 0;  // parameters of this bucket not yet ready in the armed backward
    bool sent = false;
  };
  Distributed::Group* g = nullptr;
  DistConfig config;
  bool mean = false;
  int64_t cap = 1;                   // a bucket's float32 elements
  std::vector<torch::Tensor> slots;  // the parameters that train, the list reversed (the first order)
  std::vector<Bucket> buckets;
  std::vector<size_t> where;  // per slot: its bucket
  std::vector<bool> ready;
  std::vector<size_t> seen;  // slots in the order the armed backward made them ready (until learned)
  bool learned = false;
  std::vector<std::pair<std::shared_ptr<torch::autograd::Node>, uintptr_t>> hooks;
  std::mutex mu;  // a CUDA backward runs the hooks on its device threads
  bool armed = false;
  size_t next = 0;           // the next bucket to send: every rank sends them in this order
  int sent_in_backward = 0;  // buckets the armed backward's hooks sent
  int sent_last = 0;         // of those, the ones the latest hook sent: they overlap nothing after them

  // Buckets of at most `cap` elements (a larger parameter alone) in `order` (every slot once).
  void cut(const std::vector<size_t>& order) {
    buckets.clear();
    where.assign(slots.size(), 0);
    int64_t filled = 0;
    for (size_t k : order) {
      const int64_t n = slots[k].numel();
      if (buckets.empty() || filled + n > cap) {
        buckets.emplace_back();
        filled = 0;
      }
      buckets.back().slots.push_back(k);
      where[k] = buckets.size() - 1;
      filled += n;
    }
  }
  void send(Bucket& b) {
    std::vector<torch::Tensor> parts;
    for (size_t k : b.slots) {
      auto& p = slots[k];
      if (!p.grad().defined()) p.mutable_grad() = torch::zeros_like(p);  // unused this step: zeros, as on a peer
      parts.push_back(p.grad().reshape({-1}).to(torch::kCPU, torch::kFloat32));
    }
    b.flat = {torch::cat(parts)};
    b.number = ++g->collectives;
    checked(*g, config, "summing gradients", b.number, [&] { b.work = g->gradients->allreduce(b.flat); });
    b.sent = true;
  }
  void send_ready() {  // in order: a bucket waits for the ones before it
    while (next < buckets.size() && buckets[next].waiting == 0) send(buckets[next++]);
  }
  void on_ready(size_t k) {  // slot k's gradient is accumulated for this backward
    std::lock_guard<std::mutex> lock(mu);
    if (!armed || ready[k]) return;
    ready[k] = true;
    if (!learned) seen.push_back(k);
    --buckets[where[k]].waiting;
    const size_t before = next;
    send_ready();
    sent_last = int(next - before);
    sent_in_backward += sent_last;
  }
  // Every rank takes rank 0's recorded order (one broadcast); slots it did not reach follow in the
  // first order. Nothing recorded on rank 0 (its backward was skipped): the next step tries again.
  void learn() {
    const int64_t n = int64_t(slots.size());
    auto order = torch::full({n + 1}, int64_t(-1), torch::kInt64);  // (n+1): count, then the slots
    if (g->pg->getRank() == 0) {
      order[0] = int64_t(seen.size());
      for (size_t i = 0; i < seen.size(); ++i) order[int64_t(i) + 1] = int64_t(seen[i]);
    }
    std::vector<torch::Tensor> v = {order};
    const int64_t number = ++g->collectives;
    checked(*g, config, "agreeing on the gradients' order", number, [&] { g->gradients->broadcast(v)->wait(); });
    seen.clear();
    const int64_t count = order[0].item<int64_t>();
    if (count <= 0) return;
    std::vector<size_t> agreed;
    std::vector<bool> placed(slots.size(), false);
    const auto* o = order.data_ptr<int64_t>();
    for (int64_t i = 1; i <= count; ++i)
      if (o[i] >= 0 && o[i] < n && !placed[size_t(o[i])]) {
        agreed.push_back(size_t(o[i]));
        placed[size_t(o[i])] = true;
      }
    for (size_t k = 0; k < slots.size(); ++k)
      if (!placed[k]) agreed.push_back(k);
    cut(agreed);
    learned = true;
  }
  void unhook() {
    for (auto& [node, key] : hooks) node->del_post_hook(key);
    hooks.clear();
  }
};

namespace {

struct ReadyHook : torch::autograd::FunctionPostHook {
  ReadyHook(GradientSync::State* s, size_t k) : state(s), slot(k) {}
  torch::autograd::variable_list operator()(const torch::autograd::variable_list& outputs,
                                            const torch::autograd::variable_list& /*inputs*/) override {
    state->on_ready(slot);
    return outputs;
  }
  GradientSync::State* state;
  size_t slot;
};

}  // namespace

GradientSync::GradientSync(Distributed& dist, const std::vector<torch::Tensor>& parameters, bool mean,
                           double bucket_mb) {
  if (!dist.group()) return;
  s_ = std::make_unique<State>();
  s_->g = dist.group();
  s_->config = dist.config();
  s_->mean = mean;
  s_->cap = std::max<int64_t>(1, int64_t(bucket_mb * (1 << 20)) / 4);  // float32 elements
  for (auto it = parameters.rbegin(); it != parameters.rend(); ++it)
    if (it->requires_grad()) s_->slots.push_back(*it);  // frozen: nothing to sum
  std::vector<size_t> first(s_->slots.size());
  for (size_t k = 0; k < first.size(); ++k) first[k] = k;
  s_->cut(first);
  s_->ready.assign(s_->slots.size(), false);
}

GradientSync::~GradientSync() {
  if (s_) s_->unhook();
}

void GradientSync::arm() {
  if (!s_) return;
  std::lock_guard<std::mutex> lock(s_->mu);
  s_->unhook();
  for (auto& b : s_->buckets) {
    b.waiting = b.slots.size();
    b.sent = false;
  }
  for (size_t k = 0; k < s_->slots.size(); ++k) {
    auto node = torch::autograd::impl::grad_accumulator(s_->slots[k]);
    if (node) s_->hooks.emplace_back(node, node->add_post_hook(std::make_unique<ReadyHook>(s_.get(), k)));
  }
  s_->ready.assign(s_->slots.size(), false);
  s_->seen.clear();
  s_->next = 0;
  s_->sent_in_backward = 0;
  s_->sent_last = 0;
  s_->armed = true;
}

void GradientSync::finish() {
  if (!s_) return;
  std::lock_guard<std::mutex> lock(s_->mu);
  s_->armed = false;
  s_->unhook();
  for (auto& b : s_->buckets)
    if (!b.sent) b.waiting = 0;
  s_->send_ready();  // what the backward did not reach, in order
  for (auto& b : s_->buckets) {
    checked(*s_->g, s_->config, "summing gradients", b.number, [&] { b.work->wait(); });
    if (s_->mean) b.flat[0].div_(double(s_->config.world));
    int64_t at = 0;
    for (size_t k : b.slots) {
      auto gr = s_->slots[k].mutable_grad();
      gr.copy_(b.flat[0].narrow(0, at, gr.numel()).view(gr.sizes()));
      at += gr.numel();
    }
    b.flat.clear();
    b.work.reset();
    b.sent = false;  // a finish() without arm() next time (a rank that skipped its backward) sends them all again
  }
  s_->next = 0;
  if (!s_->learned) s_->learn();  // every rank finishes every step: the broadcast meets on all
}

int GradientSync::buckets() const { return s_ ? int(s_->buckets.size()) : 0; }
int GradientSync::sent_in_backward() const { return s_ ? s_->sent_in_backward - s_->sent_last : 0; }
bool GradientSync::learned_order() const { return s_ && s_->learned; }

#else  // without Gloo's headers

bool distributed_available() { return false; }

struct Distributed::Group {};

Distributed::Distributed(const DistConfig& config) : config_(config) {
  if (config.world > 1)
    throw Error(
        "this lriad was built without Gloo: training on " + std::to_string(config.world) + " processes needs it",
        "install Gloo's headers (Debian: libgloo-dev; scripts/setup.sh does) and build again");
}
Distributed::~Distributed() = default;
struct GradientSync::State {};
GradientSync::GradientSync(Distributed&, const std::vector<torch::Tensor>&, bool, double) {}
GradientSync::~GradientSync() = default;
void GradientSync::arm() {}
void GradientSync::finish() {}
int GradientSync::buckets() const { return 0; }
int GradientSync::sent_in_backward() const { return 0; }
bool GradientSync::learned_order() const { return false; }
std::vector<double> Distributed::sum(const std::vector<double>& mine) { return mine; }
void Distributed::all_reduce_sum(torch::Tensor&) {}
void Distributed::broadcast(torch::Tensor&, int) {}
std::vector<double> Distributed::all_gather(const std::vector<double>& mine) { return mine; }
void Distributed::barrier(double) {}

#endif

struct Distributed::KeptSync {
  std::vector<torch::Tensor> params;  // the list given (held: a kept tensor's address is never reused)
  std::vector<bool> trains;           // which of them required a gradient then
  bool mean = false;
  double bucket_mb = 0;
  std::unique_ptr<GradientSync> sync;
};

GradientSync& Distributed::gradient_sync(const std::vector<torch::Tensor>& parameters, bool mean, double bucket_mb) {
  std::vector<bool> trains;
  for (const auto& p : parameters) trains.push_back(p.requires_grad());
  auto same = [&](const KeptSync& k) {
    if (k.mean != mean || k.bucket_mb != bucket_mb || k.trains != trains || k.params.size() != parameters.size())
      return false;
    for (size_t j = 0; j < parameters.size(); ++j)
      if (!k.params[j].is_same(parameters[j])) return false;
    return true;
  };
  for (size_t i = 0; i < syncs_.size(); ++i)
    if (same(*syncs_[i])) {
      std::rotate(syncs_.begin() + int64_t(i), syncs_.begin() + int64_t(i) + 1, syncs_.end());  // the newest last
      return *syncs_.back()->sync;
    }
  constexpr size_t kKept = 4;
  if (syncs_.size() >= kKept) syncs_.erase(syncs_.begin());
  auto kept = std::make_unique<KeptSync>();
  kept->params = parameters;
  kept->trains = std::move(trains);
  kept->mean = mean;
  kept->bucket_mb = bucket_mb;
  kept->sync = std::make_unique<GradientSync>(*this, parameters, mean, bucket_mb);
  syncs_.push_back(std::move(kept));
  return *syncs_.back()->sync;
}

}  // namespace lriad::train
