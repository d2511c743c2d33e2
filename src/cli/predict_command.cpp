// `lriad predict`: the chain of thought and verdict for one or more images.
#include <cstdio>
#include <filesystem>

#include "common.h"
#include "lriad/data/dataset.h"
#include "lriad/data/image_io.h"
#include "lriad/reference/reference.h"
#include "lriad/eval/evaluator.h"
#include "lriad/io/error.h"
#include "lriad/io/fs.h"

namespace lriad::cli {
namespace {

struct PredictCli {
  std::string run, weights, device, category;
  std::vector<std::string> images;
  bool json = false;
  eval::InspectOptions inspect;
};

// The category for the prompt: --category, the run's only category, or the image's path
// (data::category_of_path: the nearest folder named as a trained category, or the MVTec layout).
std::string category_for(const std::string& image, const PredictCli& o, const std::vector<std::string>& trained) {
  if (!o.category.empty()) return o.category;
  if (trained.size() == 1) return trained[0];
  const auto category = data::category_of_path(image, trained);
  if (!category.empty()) return category;
  throw Error("cannot tell the category of " + image + " (no folder above it is named as one of the run's categories)",
              "pass --category NAME (the object or texture, e.g. bottle)");
}

}  // namespace

void add_predict_command(CLI::App& app, const GlobalOptions& global) {
  auto o = std::make_shared<PredictCli>();
  auto* cmd = app.add_subcommand("predict", "Inspect images: chain of thought and verdict");
  cmd->add_option("--run", o->run, "Run directory (the --out of lriad train)")->required();
  cmd->add_option("images", o->images, "Image files")->required();
  cmd->add_option("--weights", o->weights,
                  "Weights in the run (default: best.safetensors when present, else model.safetensors)");
  cmd->add_option("--category", o->category, "Object/texture name for the prompt (default: from the run or the path)");
  cmd->add_flag("--json", o->json, "One JSON object per image (the fields of predictions.jsonl)");
  add_sampling_options(*cmd, o->inspect);
  cmd->add_option("--device", o->device, "cpu or cuda (default: the run's)");
  cmd->callback([o, &global] {
    for (const auto& path : o->images) {
      if (io::is_dir(path)) throw Error(path + " is a directory, not an image", "pass image files (e.g. dir/*.png)");
      if (!io::is_file(path)) throw Error("image " + path + " does not exist");
    }
    start_torch_runtime(global);
    eval::Inspector inspector(o->run, o->device, o->weights);
    // The categories the run trained on: its normal reference's (the config lists none when it
    // took every category of the dataset).
    auto trained = inspector.config().data.categories;
    if (inspector.reference()) trained = inspector.reference()->categories();
    for (const auto& path : o->images) {
      eval::Inspector::Input in{data::read_image(path), category_for(path, *o, trained), path};
      const auto p = inspector.inspect({in}, o->inspect).at(0);
      if (o->json) {
        auto j = eval::to_json(p);
        j.erase("label");
        j.erase("defect_type");
        j.erase("mask");
        j.erase("localized");
        std::printf("%s\n", j.dump().c_str());
        continue;
      }
      const char* verdict = !p.parsed ? "unreadable" : p.pred ? "anomalous" : "normal";
      std::printf("%s (%s)\n  %s\n  verdict: %s%s%s  score %.3f\n", path.c_str(), p.category.c_str(),
                  p.completion.c_str(), verdict, p.pred == 1 && !p.pred_defect_type.empty() ? ", type " : "",
                  p.pred == 1 ? p.pred_defect_type.c_str() : "", p.score);
      if (!p.votes.empty()) {
        std::printf("  votes:");
        for (int v : p.votes) std::printf(" %s", v < 0 ? "?" : v ? "anomalous" : "normal");
        std::printf("\n");
      }
    }
  });
}

}  // namespace lriad::cli
