// `lriad info`: what LibTorch, BLAS, threads and devices this process runs with.
#include <iostream>
#include <nlohmann/json.hpp>

#include "common.h"
#include "lriad/io/runtime.h"
#include "lriad/model/precision.h"

namespace lriad::cli {

void add_info_command(CLI::App& app, const GlobalOptions& global) {
  auto* cmd = app.add_subcommand(
      "info",
      "Show the runtime: LibTorch version, threads, BLAS library, native bf16 and what precision auto picks, CUDA");
  auto json = std::make_shared<bool>(false);
  cmd->add_flag("--json", *json, "Print one JSON object");
  cmd->callback([&global, json] {
    const auto info = io::init_runtime(global.threads);
    RunConfig cpu;  // what precision "auto" picks on this CPU (the probe every run makes)
    const auto choice = model::choose_precision(cpu);
    if (*json) {
      nlohmann::json j = {{"version", LRIAD_VERSION},
                          {"torch_version", info.torch_version},
                          {"threads", info.threads},
                          {"cores", info.cores},
                          {"blas", info.blas_library},
                          {"blas_is_reference", info.blas_is_reference},
                          {"cpu_bf16", info.cpu_bf16},
                          {"precision_auto_cpu", choice.bf16 ? "bf16" : "fp32"},
                          {"precision_auto_reason", choice.reason},
                          {"cuda_available", info.cuda_available},
                          {"cuda_devices", info.cuda_devices}};
      std::cout << j.dump(2) << "\n";
    } else {
      std::cout << "lriad " << LRIAD_VERSION << "\n" << io::describe(info) << "\n";
      std::cout << "precision " << choice.reason << "\n";
      if (auto w = io::runtime_warnings(info); !w.empty()) std::cout << "warning: " << w << "\n";
    }
  });
}

}  // namespace lriad::cli
