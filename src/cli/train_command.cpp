// `lriad train`: supervised warm start, then GRPO, into a run directory.
#include <spdlog/spdlog.h>

#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <iterator>
#include <string>
#include <vector>

#include "common.h"
#include "lriad/io/error.h"
#include "lriad/io/interrupt.h"
#include "lriad/train/checkpoint.h"
#include "lriad/train/progress.h"
#include "lriad/train/distributed.h"
#include "lriad/train/trainer.h"

namespace lriad::cli {
namespace {

struct TrainCli {
  std::string config = "tiny";  // a shipped config's name (io::find_config) or a file
  std::vector<std::string> set;
  std::string format, root, device;
  std::vector<std::string> categories;
  train::TrainOptions train;
  int nproc = 1;
};

// A TCP port on loopback that nothing listens on now (the kernel's pick; taken again by rank 0's store).
int free_port() {
  const int fd = socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  a.sin_port = 0;
  socklen_t len = sizeof(a);
  if (fd < 0 || bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof(a)) != 0 ||
      getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len) != 0) {
    if (fd >= 0) close(fd);
    throw Error("--nproc: no free TCP port on 127.0.0.1 for the ranks to meet", "set MASTER_PORT and use torchrun");
  }
  const int port = ntohs(a.sin_port);
  close(fd);
  return port;
}

// `lriad train --nproc N`: this process becomes rank 0 and starts ranks 1..N-1 as copies of itself
// (the same arguments without --nproc) with torchrun's variables; they meet on loopback. The copies
// are ended when this process leaves early, and waited for when it is done.
class LocalRanks {
 public:
  explicit LocalRanks(int n) {
    std::ifstream in("/proc/self/cmdline", std::ios::binary);
    const std::string all((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    std::vector<std::string> args;
    for (size_t at = 0; at < all.size();) {
      const size_t end = all.find('\0', at);
      args.push_back(all.substr(at, end - at));
      at = end == std::string::npos ? all.size() : end + 1;
    }
    std::vector<std::string> kept;  // without --nproc N / --nproc=N
    for (size_t i = 0; i < args.size(); ++i) {
      if (args[i] == "--nproc") {
        ++i;
        continue;
      }
      if (args[i].rfind("--nproc=", 0) == 0) continue;
      kept.push_back(args[i]);
    }
    const std::string port = std::to_string(free_port());
    setenv("WORLD_SIZE", std::to_string(n).c_str(), 1);
    setenv("MASTER_ADDR", "127.0.0.1", 1);
    setenv("MASTER_PORT", port.c_str(), 1);
    for (int r = 1; r < n; ++r) {
      const pid_t pid = fork();
      if (pid == 0) {
        setenv("RANK", std::to_string(r).c_str(), 1);
        std::vector<char*> argv;
        for (auto& a : kept) argv.push_back(const_cast<char*>(a.c_str()));
        argv.push_back(nullptr);
        execv("/proc/self/exe", argv.data());
        _exit(127);
      }
      if (pid < 0) throw Error("--nproc: could not start rank " + std::to_string(r), "lower --nproc");
      pids_.push_back(pid);
    }
    setenv("RANK", "0", 1);
    spdlog::info("--nproc {}: ranks 1..{} started (processes {}..{}), meeting on 127.0.0.1:{}", n, n - 1, pids_.front(),
                 pids_.back(), port);
  }
  // The ranks' exit statuses once this one is done: the first that failed is named.
  void wait() {
    std::string failed;
    for (size_t i = 0; i < pids_.size(); ++i) {
      int status = 0;
      waitpid(pids_[i], &status, 0);
      const int code = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
      if (code != 0 && failed.empty())
        failed = "rank " + std::to_string(i + 1) + " exited with status " + std::to_string(code);
    }
    pids_.clear();
    if (!failed.empty()) throw Error(failed, "its messages are above");
  }
  ~LocalRanks() {
    for (const pid_t pid : pids_) kill(pid, SIGTERM);
    for (const pid_t pid : pids_) waitpid(pid, nullptr, 0);
  }

 private:
  std::vector<pid_t> pids_;
};

}  // namespace

void add_train_command(CLI::App& app, const GlobalOptions& global) {
  auto o = std::make_shared<TrainCli>();
  auto* cmd = app.add_subcommand("train", "Train the policy: supervised warm start, then GRPO");
  cmd->add_option("--config", o->config, "Config file, or a shipped config's name: tiny, small, base")
      ->capture_default_str();
  cmd->add_option("-f,--format", o->format, "Dataset format: mvtec, visa, folder, synth (default: the config's)");
  cmd->add_option("-r,--root", o->root, "Dataset root (default: the config's)");
  add_category_option(*cmd, o->categories);
  cmd->add_option("-o,--out", o->train.out, "Run directory")->required();
  cmd->add_option("--set", o->set, "Override a config value, e.g. --set grpo.beta=0.04 (repeatable)");
  cmd->add_option("--device", o->device, "cpu or cuda (default: the config's)");
  cmd->add_option("--tokenizer", o->train.tokenizer, "Use this sentencepiece .model instead of training one");
  cmd->add_option("--init", o->train.init, "Start from the weights of this run directory");
  cmd->add_flag("--overwrite", o->train.overwrite, "Replace the files of an existing run directory");
  cmd->add_flag("--resume", o->train.resume, "Continue the run in --out from its last checkpoint");
  cmd->add_option("--nproc", o->nproc,
                  "Data-parallel ranks on this machine (each trains on 1/N of every batch; torchrun's variables "
                  "for several machines)")
      ->capture_default_str()
      ->check(CLI::PositiveNumber);
  cmd->add_flag_callback(
      "--skip-bad-images", [o] { o->set.push_back("data.skip_bad_images=true"); },
      "Skip unreadable images with a counted warning (data.skip_bad_images)");
  cmd->callback([o, cmd, &global] {
    start_torch_runtime(global);
    RunConfig config;  // with --resume the run's own config.json is used instead, --set changing it
    if (o->train.resume) {
      if (cmd->count("--config") || !o->format.empty() || !o->root.empty())
        spdlog::warn("--resume continues with {}/config.json; --config, --format and --root are ignored", o->train.out);
      o->train.resume_overrides = o->set;
      if (!o->device.empty()) o->train.resume_overrides.push_back("device=" + o->device);
    } else {
      std::vector<std::string> overrides = o->set;
      if (!o->format.empty()) overrides.push_back("data.format=" + o->format);
      if (!o->root.empty()) overrides.push_back("data.root=" + o->root);
      if (!o->device.empty()) overrides.push_back("device=" + o->device);
      config = load_config(o->config, overrides);
      if (!o->categories.empty()) config.data.categories = o->categories;
    }
    io::install_interrupt_handlers();  // Ctrl-C: checkpoint at the end of the step, then exit 130
    std::unique_ptr<LocalRanks> ranks;
    if (o->nproc > 1) {
      if (std::getenv("WORLD_SIZE") && std::string(std::getenv("WORLD_SIZE")) != "1")
        throw Error("--nproc with WORLD_SIZE set: a launcher already started the ranks", "use one or the other");
      ranks = std::make_unique<LocalRanks>(o->nproc);
    }
    const auto s = train::run_training(config, o->train);
    if (ranks) ranks->wait();
    if (const auto d = train::dist_from_env(); d.rank != 0) return;  // rank 0 reports
    for (const auto& st : s.stages)
      std::printf("%-5s %4d steps in %s; validation balanced accuracy %.3f, format %.3f\n", st.stage.c_str(), st.steps,
                  train::format_duration(st.seconds).c_str(), st.final_validation.balanced_accuracy,
                  st.final_validation.format_rate);
    std::printf("run: %s\n", s.run_dir.c_str());
    if (s.best_balanced_accuracy < 0) {
      std::printf("no validation ran (train.val_size 0 or no steps): best.safetensors was not written\n");
    } else {
      std::printf("best validation balanced accuracy %.3f at %s (best.safetensors)\n", s.best_balanced_accuracy,
                  s.best_at.c_str());
      if (s.best_at_chance)  // the run completed (exit 0), but what it made is no detector
        std::printf(
            "FAILED: AT CHANCE. The best validation (%.3f at %s) is no better than a coin: the policy %s.\n"
            "FAILED: `lriad eval` of this run will be meaningless; see the warnings above for what to check.\n",
            s.best_balanced_accuracy, s.best_at.c_str(), s.best_answers.c_str());
    }
  });
}

}  // namespace lriad::cli
