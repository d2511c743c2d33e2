// Shared CLI helpers.
#include "common.h"

#include <spdlog/spdlog.h>

#include "lriad/eval/evaluator.h"
#include "lriad/io/runtime.h"

namespace lriad::cli {

CLI::Option* add_category_option(CLI::App& cmd, std::vector<std::string>& categories) {
  return cmd
      .add_option("-c,--category", categories,
                  "Categories to use: comma-separated and/or repeated (default: all found)")
      ->delimiter(',')
      ->type_name("NAME[,NAME...]");
}

void add_sampling_options(CLI::App& cmd, eval::InspectOptions& inspect) {
  cmd.add_option("--samples", inspect.samples, "Sampled chains per image, majority vote (1 = greedy)")
      ->capture_default_str()
      ->check(CLI::PositiveNumber);
  cmd.add_option("--temperature", inspect.temperature, "Sampling temperature for --samples > 1")
      ->capture_default_str()
      ->check(CLI::PositiveNumber);
  cmd.add_option("--seed", inspect.seed, "Sampling seed")->capture_default_str();
}

void start_torch_runtime(const GlobalOptions& global) {
  const auto info = io::init_runtime(global.threads);
  spdlog::info("{}", io::describe(info));
  if (auto warning = io::runtime_warnings(info); !warning.empty()) spdlog::warn("{}", warning);
}

}  // namespace lriad::cli
