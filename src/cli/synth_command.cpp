// `lriad synth`: write the procedural demo dataset (MVTec-AD or VisA layout, with masks).
#include <spdlog/spdlog.h>

#include "common.h"
#include "lriad/demo/synth.h"

namespace lriad::cli {

void add_synth_command(CLI::App& app, const GlobalOptions&) {
  auto o = std::make_shared<demo::SynthOptions>();
  auto* cmd = app.add_subcommand("synth", "Generate the synthetic demo dataset (textures and parts with defects)");
  cmd->add_option("-o,--out", o->out, "Output directory")->required();
  cmd->add_option("--categories", o->categories, "How many categories to write")->capture_default_str();
  cmd->add_option("--only", o->only, "Write these categories (comma-separated names)")->delimiter(',');
  cmd->add_option("--per-category", o->per_category, "Images per category (train + test)")->capture_default_str();
  cmd->add_option("--size", o->size, "Image side in pixels")->capture_default_str();
  cmd->add_option("--seed", o->seed, "Random seed (same seed, same bytes)")->capture_default_str();
  cmd->add_flag("--overwrite", o->overwrite, "Write into a non-empty directory");
  cmd->add_option("--layout", o->layout, "mvtec (square PNG tree) or visa (split_csv/1cls.csv, 4:3 JPG)")
      ->capture_default_str();
  cmd->callback([o] {
    const auto summary = demo::generate_synthetic(*o);
    spdlog::info("wrote {} images ({} anomalous) in {} categories to {}", summary.total_images(),
                 summary.total_anomalous(), summary.train_good.size(), summary.root);
    spdlog::info("describe it with: lriad data stats --format {} --root {}", o->layout, summary.root);
  });
}

}  // namespace lriad::cli
