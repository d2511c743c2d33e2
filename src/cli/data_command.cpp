// `lriad data stats`: describe a dataset (counts per split, class, defect type; sizes; masks).
#include <iostream>
#include <nlohmann/json.hpp>
#include <spdlog/spdlog.h>

#include "common.h"
#include "lriad/data/dataset.h"
#include "lriad/data/stats.h"

namespace lriad::cli {
namespace {

struct StatsOptions {
  std::string format;
  std::string root;
  std::vector<std::string> categories;
  bool json = false;
  bool no_sizes = false;
  bool verify = false;
  double test_fraction = 0.3;
  uint64_t seed = 0;
  std::string split_file;
  std::string save_split;
};

void run_stats(const StatsOptions& o) {
  data::LoadOptions load;
  load.categories = o.categories;
  load.folder_test_fraction = o.test_fraction;
  load.folder_seed = o.seed;
  load.folder_split_file = o.split_file;
  const data::Dataset ds = data::load_dataset(data::parse_format(o.format), o.root, load);
  for (const auto& w : ds.warnings) spdlog::warn("{}", w);
  const data::DatasetStats st = data::compute_stats(ds, !o.no_sizes, o.verify);
  if (!o.save_split.empty()) {
    data::save_split(ds, o.save_split);
    spdlog::info("split written to {}", o.save_split);
  }
  if (o.json)
    std::cout << data::stats_to_json(ds, st).dump(2) << "\n";
  else
    std::cout << data::stats_to_table(ds, st);
}

}  // namespace

void add_data_command(CLI::App& app, const GlobalOptions&) {
  auto* data_cmd = app.add_subcommand("data", "Inspect datasets");
  data_cmd->require_subcommand(1);
  auto o = std::make_shared<StatsOptions>();
  auto* cmd = data_cmd->add_subcommand("stats", "Counts per category, split, class and defect type; sizes; masks");
  cmd->add_option("-f,--format", o->format, "Dataset format: mvtec, visa, folder, synth")->required();
  cmd->add_option("-r,--root", o->root, "Dataset root directory")->required();
  add_category_option(*cmd, o->categories);
  cmd->add_flag("--json", o->json, "Print one JSON object instead of a table");
  cmd->add_flag("--no-sizes", o->no_sizes, "Skip reading image headers (faster on slow disks)");
  cmd->add_flag("--verify", o->verify, "Decode every image and mask to find corrupt files");
  cmd->add_option("--test-fraction", o->test_fraction, "folder format: share of each class put in test")
      ->check(CLI::Range(0.0, 1.0));
  cmd->add_option("--seed", o->seed, "folder format: seed of the train/test split");
  cmd->add_option("--split-file", o->split_file, "folder format: reuse a split written by --save-split");
  cmd->add_option("--save-split", o->save_split, "Write the split (one row per image) to this CSV");
  cmd->callback([o] { run_stats(*o); });
}

}  // namespace lriad::cli
