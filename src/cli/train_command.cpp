// `lriad train`: supervised warm start, then GRPO, into a run directory.
#include <spdlog/spdlog.h>

#include <cstdio>

#include "common.h"
#include "lriad/io/interrupt.h"
#include "lriad/train/checkpoint.h"
#include "lriad/train/progress.h"
#include "lriad/train/trainer.h"

namespace lriad::cli {
namespace {

struct TrainCli {
  std::string config = "tiny";  // a shipped config's name (io::find_config) or a file
  std::vector<std::string> set;
  std::string format, root, device;
  std::vector<std::string> categories;
  train::TrainOptions train;
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
    const auto s = train::run_training(config, o->train);
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
