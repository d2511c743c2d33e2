// Options and helpers shared by the subcommand files (thin CLI: no logic beyond option plumbing).
#pragma once
#include <string>
#include <vector>

#include <CLI/CLI.hpp>

namespace lriad::eval {
struct InspectOptions;
}

namespace lriad::cli {

struct GlobalOptions {
  int threads = 0;  // 0 = every core
  bool verbose = false;
};

// --category brick,tile  ==  --category brick --category tile; none = every category found.
CLI::Option* add_category_option(CLI::App& cmd, std::vector<std::string>& categories);

// --samples, --temperature, --seed of `eval` and `predict`.
void add_sampling_options(CLI::App& cmd, eval::InspectOptions& inspect);

// Sets up LibTorch (threads) and logs the runtime line and any BLAS warning.
void start_torch_runtime(const GlobalOptions& global);

void add_synth_command(CLI::App& app, const GlobalOptions& global);
void add_data_command(CLI::App& app, const GlobalOptions& global);
void add_info_command(CLI::App& app, const GlobalOptions& global);
void add_tokenizer_command(CLI::App& app, const GlobalOptions& global);
void add_model_command(CLI::App& app, const GlobalOptions& global);
void add_bench_command(CLI::App& app, const GlobalOptions& global);
void add_train_command(CLI::App& app, const GlobalOptions& global);
void add_eval_command(CLI::App& app, const GlobalOptions& global);
void add_predict_command(CLI::App& app, const GlobalOptions& global);

}  // namespace lriad::cli
