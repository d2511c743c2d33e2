// `lriad eval`: score a trained policy on a dataset split; writes metrics.json,
// predictions.jsonl and report.html, and prints a per-category table.
#include <spdlog/spdlog.h>

#include <cstdio>
#include <filesystem>

#include "common.h"
#include "lriad/eval/evaluator.h"
#include "lriad/eval/report.h"
#include "lriad/io/error.h"

namespace lriad::cli {

void add_eval_command(CLI::App& app, const GlobalOptions& global) {
  auto o = std::make_shared<eval::EvalOptions>();
  auto out = std::make_shared<std::string>();
  auto* cmd = app.add_subcommand("eval", "Evaluate a trained policy on a dataset split and write a report");
  cmd->add_option("--run", o->run_dir, "Run directory (the --out of lriad train)")->required();
  cmd->add_option("--weights", o->weights,
                  "Weights in the run: best.safetensors (default when present), model.safetensors (the last step), "
                  "sft.safetensors");
  cmd->add_option("-f,--format", o->format, "Dataset format: mvtec, visa, folder, synth (default: the run's)");
  cmd->add_option("-r,--root", o->root, "Dataset root (default: the run's)");
  add_category_option(*cmd, o->categories);
  cmd->add_option("--split", o->split, "test or train")->capture_default_str();
  cmd->add_option("-o,--out", *out, "Output directory (default: <run>/eval-<split>)");
  add_sampling_options(*cmd, o->inspect);
  cmd->add_option("--batch-size", o->batch_size, "Images per generation batch")
      ->capture_default_str()
      ->check(CLI::PositiveNumber);
  cmd->add_option("--device", o->device, "cpu or cuda (default: the run's)");
  cmd->add_flag("--skip-bad-images", o->skip_bad_images,
                "Leave out unreadable images with a warning each (listed in metrics.json as skipped_images)");
  cmd->add_option(
         "--defect-map", o->defect_map,
         "CSV of name,family lines mapping a folder dataset's defect names onto the families the chains name "
         "(scratch, crack, hole, stain, contamination, missing part, misplaced part, deformation, cut, misprint)")
      ->check(CLI::ExistingFile);
  cmd->callback([o, out, &global] {
    start_torch_runtime(global);
    const std::string dir = out->empty() ? o->run_dir + "/eval-" + o->split : *out;
    std::error_code ec;
    std::filesystem::create_directories(dir, ec);
    if (ec) throw Error("cannot create output directory " + dir + ": " + ec.message());
    const auto r = eval::evaluate(*o);
    eval::write_outputs(dir, r.metrics, r.predictions);
    const auto& m = r.metrics;
    auto num = [](const nlohmann::json& v) {
      return v.is_null() ? std::string("n/a") : std::to_string(v.get<double>()).substr(0, 5);
    };
    std::printf("%s", eval::format_table(m).c_str());
    std::printf("balanced accuracy %s  accuracy %s  AUROC %s  F1 %s  format %s  consistency %s  localisation %s\n",
                num(m["balanced_accuracy"]).c_str(), num(m["accuracy"]).c_str(), num(m["auroc"]).c_str(),
                num(m["f1"]).c_str(), num(m["format_rate"]).c_str(), num(m["consistency_rate"]).c_str(),
                num(m["localization_agreement"]).c_str());
    if (m["baseline"].is_object())
      std::printf("evidence-only baseline (peak of the normal reference's map): balanced accuracy %s  AUROC %s\n",
                  num(m["baseline"]["balanced_accuracy"]).c_str(), num(m["baseline"]["auroc"]).c_str());
    else
      std::printf("evidence-only baseline: none (%s)\n", m.value("baseline_reason", "").c_str());
    if (!r.skipped.empty()) std::printf("%zu unreadable images skipped\n", r.skipped.size());
    if (r.excluded) std::printf("%lld test images left out (used in training)\n", static_cast<long long>(r.excluded));
    std::printf("report: %s/report.html\n", dir.c_str());
  });
}

}  // namespace lriad::cli
