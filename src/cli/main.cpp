// lriad: the command-line entry point. Registers the subcommands and catches every error once.
#include <spdlog/sinks/stdout_color_sinks.h>
#include <spdlog/spdlog.h>

#include "common.h"
#include "lriad/io/interrupt.h"

int main(int argc, char** argv) {
  // Logs go to stderr so that --json output on stdout stays machine-readable.
  spdlog::set_default_logger(spdlog::stderr_color_mt("lriad"));
  spdlog::set_pattern("[%H:%M:%S] %^%l%$ %v");

  CLI::App app{"lriad: teach a vision-language policy to inspect industrial parts and explain itself"};
  app.set_version_flag("-V,--version", std::string("lriad ") + LRIAD_VERSION);
  app.fallthrough();
  lriad::cli::GlobalOptions global;
  app.add_option("--threads", global.threads, "LibTorch threads (default: every core)")->check(CLI::NonNegativeNumber);
  app.add_flag("-v,--verbose", global.verbose, "Debug logging");
  app.parse_complete_callback([&] {
    if (global.verbose) spdlog::set_level(spdlog::level::debug);
  });

  lriad::cli::add_synth_command(app, global);
  lriad::cli::add_data_command(app, global);
  lriad::cli::add_info_command(app, global);
  lriad::cli::add_tokenizer_command(app, global);
  lriad::cli::add_model_command(app, global);
  lriad::cli::add_bench_command(app, global);
  lriad::cli::add_train_command(app, global);
  lriad::cli::add_eval_command(app, global);
  lriad::cli::add_predict_command(app, global);
  app.require_subcommand(1);

  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    return app.exit(e);
  } catch (const lriad::io::Interrupted& e) {
    spdlog::warn("{}", e.what());
    return e.exit_code();
  } catch (const std::exception& e) {
    spdlog::error("{}", e.what());
    return 1;
  }
  return 0;
}
