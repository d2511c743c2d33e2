// `lriad train`: supervised warm start, then GRPO, into a run directory.
#include <spdlog/spdlog.h>

#include <netinet/in.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <string>
#include <thread>
#include <vector>

#include <ATen/Parallel.h>

#include "common.h"
#include "lriad/io/error.h"
#include "lriad/io/interrupt.h"
#include "lriad/train/checkpoint.h"
#include "lriad/train/progress.h"
#include "lriad/train/distributed.h"
#include "lriad/train/trainer.h"

extern char** environ;

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
// (the same arguments without --nproc, `threads` threads each unless --threads was given) with
// torchrun's variables; they meet on loopback. A copy dies with this process (PR_SET_PDEATHSIG);
// when this one leaves early the copies get SIGTERM, then SIGKILL after 5 s.
class LocalRanks {
 public:
  LocalRanks(int n, int threads) {
    std::ifstream in("/proc/self/cmdline", std::ios::binary);
    const std::string all((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    std::vector<std::string> args;
    for (size_t at = 0; at < all.size();) {
      const size_t end = all.find('\0', at);
      args.push_back(all.substr(at, end - at));
      at = end == std::string::npos ? all.size() : end + 1;
    }
    std::vector<std::string> kept;  // without --nproc N / --nproc=N
    bool threads_given = false;
    for (size_t i = 0; i < args.size(); ++i) {
      if (args[i] == "--nproc") {
        ++i;
        continue;
      }
      if (args[i].rfind("--nproc=", 0) == 0) continue;
      threads_given = threads_given || args[i] == "--threads" || args[i].rfind("--threads=", 0) == 0;
      kept.push_back(args[i]);
    }
    if (!threads_given) kept.insert(kept.begin() + 1, {"--threads", std::to_string(threads)});
    const std::string port = std::to_string(free_port());
    const std::string exe = std::filesystem::read_symlink("/proc/self/exe").string();
    // Everything the children need is made before fork: between fork and exec only async-signal-safe calls.
    std::vector<std::vector<std::string>> envs;
    for (int r = 1; r < n; ++r) {
      std::vector<std::string> env;
      auto launcher_variable = [](const std::string& v) {
        for (const char* k : {"RANK=", "LOCAL_RANK=", "WORLD_SIZE=", "MASTER_ADDR=", "MASTER_PORT="})
          if (v.rfind(k, 0) == 0) return true;
        return false;
      };
      for (char** e = environ; *e; ++e)
        if (!launcher_variable(*e)) env.push_back(*e);
      for (const auto& v :
           {"RANK=" + std::to_string(r), "LOCAL_RANK=" + std::to_string(r), "WORLD_SIZE=" + std::to_string(n),
            std::string("MASTER_ADDR=127.0.0.1"), "MASTER_PORT=" + port})
        env.push_back(v);
      envs.push_back(std::move(env));
    }
    std::vector<char*> argv;
    for (auto& a : kept) argv.push_back(const_cast<char*>(a.c_str()));
    argv.push_back(nullptr);
    const pid_t parent = getpid();
    for (int r = 1; r < n; ++r) {
      std::vector<char*> envp;
      for (auto& v : envs[size_t(r - 1)]) envp.push_back(const_cast<char*>(v.c_str()));
      envp.push_back(nullptr);
      const pid_t pid = fork();
      if (pid == 0) {
        prctl(PR_SET_PDEATHSIG, SIGKILL);  // rank 0 gone: so is this copy
        if (getppid() != parent) _exit(1);
        execve(exe.c_str(), argv.data(), envp.data());
        _exit(127);
      }
      if (pid < 0) {
        stop();
        throw Error("--nproc: could not start rank " + std::to_string(r), "lower --nproc");
      }
      pids_.push_back(pid);
    }
    setenv("WORLD_SIZE", std::to_string(n).c_str(), 1);
    setenv("MASTER_ADDR", "127.0.0.1", 1);
    setenv("MASTER_PORT", port.c_str(), 1);
    setenv("RANK", "0", 1);
    setenv("LOCAL_RANK", "0", 1);
    spdlog::info("--nproc {}: ranks 1..{} started (processes {}..{}), {} thread{} each, meeting on 127.0.0.1:{}", n,
                 n - 1, pids_.front(), pids_.back(), threads, threads > 1 ? "s" : "", port);
  }
  // The ranks' exit statuses once this one is done: the first that failed is named.
  void wait() {
    std::string failed;
    for (size_t i = 0; i < pids_.size(); ++i) {
      const int code = exit_code(pids_[i], 0);
      if (code != 0 && failed.empty())
        failed = "rank " + std::to_string(i + 1) + " exited with status " + std::to_string(code);
    }
    pids_.clear();
    if (!failed.empty()) throw Error(failed, "its messages are above");
  }
  // After Ctrl-C: the copies stop at the same step (exit status 130); waited for, not signalled.
  void interrupted() { stop(0, 130); }
  ~LocalRanks() { stop(); }

 private:
  static int exit_code(pid_t pid, int options) {
    int status = 0;
    if (waitpid(pid, &status, options) != pid) return -1;  // still running (WNOHANG)
    return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
  }
  // This rank is leaving early. `signal` (SIGTERM: each copy stops at its next step; 0 when they stop
  // by themselves, as on Ctrl-C, which every rank sees at the same step), then SIGKILL after 5 s.
  // Statuses other than 0 and `expected` are logged.
  void stop(int signal = SIGTERM, int expected = 0) {
    if (signal)
      for (const pid_t pid : pids_) kill(pid, signal);
    std::vector<int> codes(pids_.size(), -1);
    for (int wait = 0; wait < 50; ++wait) {
      bool all = true;
      for (size_t i = 0; i < pids_.size(); ++i) {
        if (codes[i] < 0) codes[i] = exit_code(pids_[i], WNOHANG);
        all = all && codes[i] >= 0;
      }
      if (all) break;
      usleep(100000);
    }
    for (size_t i = 0; i < pids_.size(); ++i) {
      if (codes[i] < 0) {
        kill(pids_[i], SIGKILL);
        codes[i] = exit_code(pids_[i], 0);
      }
      if (codes[i] != 0 && codes[i] != expected) spdlog::warn("rank {} exited with status {}", i + 1, codes[i]);
    }
    pids_.clear();
  }

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
      // The cores shared among the ranks (--threads, when given, is each rank's).
      const int cores = global.threads > 0 ? global.threads : int(std::max(1u, std::thread::hardware_concurrency()));
      const int each = global.threads > 0 ? global.threads : std::max(1, cores / o->nproc);
      ranks = std::make_unique<LocalRanks>(o->nproc, each);
      if (global.threads <= 0) at::set_num_threads(each);
    }
    train::TrainSummary s;
    try {
      s = train::run_training(config, o->train);
    } catch (const io::Interrupted&) {
      if (ranks) ranks->interrupted();
      throw;
    }
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
