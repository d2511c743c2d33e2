#include "lriad/train/checkpoint.h"
#include "lriad/train/paligemma_run.h"
#include "lriad/train/baseline.h"
#include "lriad/train/source.h"

#include <spdlog/spdlog.h>

#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>

#include "lriad/demo/synth.h"
#include "lriad/io/error.h"
#include "lriad/io/fs.h"
#include "lriad/io/safetensors.h"
#include "lriad/model/weights.h"

namespace fs = std::filesystem;

namespace lriad::train {

namespace {

void copy_atomic(const std::string& from, const std::string& to) {
  if (!io::is_file(from))
    throw Error("tokenizer model " + from + " does not exist", "pass the path of a sentencepiece .model file");
  io::write_file_atomic(to, io::read_file(from));
}

// The component a parameter belongs to: the first part of its dotted name.
std::string component_of(const std::string& name) { return name.substr(0, name.find('.')); }

}  // namespace

std::vector<std::string> RunFiles::written_by_training() const {
  return {metrics(),  validation(),   trainer_state(),    path(kOptimizer), best(),
          sft(),      tokenizer(),    path(kVisionProbe), weights(),        train_from_test(),
          baseline(), policy_input(), completions(),      checkpoints()};
}

void prepare_run_dir(const std::string& dir, bool overwrite, bool resume) {
  if (dir.empty()) throw Error("no run directory given", "pass --out DIR");
  if (io::is_file(dir)) throw Error("run directory " + dir + " is a file", "choose another --out");
  if (io::is_nonempty_dir(dir) && !overwrite && !resume)
    throw Error("run directory " + dir + " already exists and is not empty",
                "pass --overwrite to replace its files, --resume to continue it, or choose another --out");
  std::error_code ec;
  fs::create_directories(dir, ec);
  if (ec) throw Error("cannot create run directory " + dir + ": " + ec.message(), "check permissions and free space");
}

void save_policy(const RunFiles& run, model::PolicyImpl& policy, const std::map<std::string, std::string>& extra) {
  std::map<std::string, std::string> meta = extra;
  meta["format"] = kPolicyFormat;
  meta["format_version"] = kPolicyFormatVersion;
  model::save_weights(policy, run.weights(), meta);
}

LoadedPolicy load_policy(const std::string& dir, const std::string& device, const std::string& weights) {
  const RunFiles run{dir};
  if (!io::is_dir(dir)) throw Error("run directory " + dir + " does not exist", "pass the --out of a training run");
  if (is_paligemma_run(dir)) {  // `lriad model import`'s run: the base model as it was downloaded
    LoadedPolicy out;
    if (!device.empty()) out.config.device = device;
    out.config.pretrained.base = std::filesystem::weakly_canonical(std::filesystem::absolute(dir)).string();
    out.config.validate();
    out.tokenizer = std::make_shared<text::Tokenizer>(run.tokenizer());
    out.pali = load_pretrained(out.config.pretrained, out.config.device, out.config.seed, "");
    out.config.model.image_size = int(out.pali->config.image_size);  // its images at SigLIP's side, not lriad's 64
    return out;
  }
  if (!io::is_file(run.config()))
    throw Error("run directory " + dir + " has no config.json",
                "is it a run made by `lriad train` or `lriad model init`?");
  if (!io::is_file(run.tokenizer()))
    throw Error("run directory " + dir + " has no tokenizer.model", "the run is incomplete; re-create it");
  LoadedPolicy out;
  out.config = load_config(run.config());
  out.tokenizer = std::make_shared<text::Tokenizer>(run.tokenizer());
  if (out.config.model.vocab_size != out.tokenizer->vocab_size())
    throw Error(run.config() + ": model.vocab_size is " + std::to_string(out.config.model.vocab_size) +
                    " but tokenizer.model holds " + std::to_string(out.tokenizer->vocab_size()) + " pieces",
                "the tokenizer and the weights come from different runs");
  if (!device.empty()) out.config.device = device;
  out.config.validate();
  const std::string path = weights.empty() ? run.weights() : weights;
  if (!io::is_file(path))
    throw Error("weights file " + path + " does not exist", "has the run saved a checkpoint yet?");
  if (!out.config.pretrained.base.empty()) {  // adapters of a PaliGemma (train/paligemma_run.h)
    out.pali = load_pretrained(out.config.pretrained, out.config.device, out.config.seed, path);
    out.metadata = io::read_safetensors_header(path).metadata;
    return out;
  }
  out.policy = model::make_policy(out.config.model, out.config.seed);
  out.metadata = model::load_weights(*out.policy, path);
  out.policy->to(torch::Device(out.config.device));
  return out;
}

nlohmann::json weights_info(const std::string& path, const std::function<bool(const std::string&)>& is_buffer) {
  const io::StHeader header = io::read_safetensors_header(path);
  std::map<std::string, int64_t> counts;
  std::map<std::string, int64_t> dtypes;
  int64_t total = 0;
  int64_t buffers = 0;
  for (const auto& [name, t] : header.tensors) {
    int64_t n = 1;
    for (int64_t d : t.shape) n *= d;
    dtypes[t.dtype] += n;
    if (is_buffer && is_buffer(name)) {
      buffers += n;
      continue;
    }
    counts[component_of(name)] += n;
    total += n;
  }
  nlohmann::json j;
  j["parameters"] = counts;
  j["parameters"]["total"] = total;
  j["buffer_values"] = buffers;  // stored but not trained
  j["tensors"] = header.tensors.size();
  j["dtypes"] = dtypes;
  j["weights_bytes"] = fs::file_size(path);
  j["metadata"] = header.metadata;
  return j;
}

nlohmann::json run_info(const std::string& dir) {
  const RunFiles run{dir};
  if (io::is_file(run.path(kPaliGemmaConfig))) return paligemma_run_info(dir);
  if (!io::is_file(run.weights()))
    throw Error("run directory " + dir + " has no model.safetensors",
                "pass the --out of `lriad train` or `lriad model init`");
  const RunConfig config = load_config(run.config());
  nlohmann::json j = weights_info(run.weights(), [&](const std::string& name) {  // a fixed buffer
    return name == "vision.positions" && config.model.vision_positions == "sincos";
  });
  j["run"] = dir;
  j["vocab_size"] = config.model.vocab_size;
  j["image_tokens"] = config.model.image_tokens();
  j["config"] = to_json(config);
  return j;
}

int ensure_tokenizer(const RunFiles& run, const RunConfig& config, const std::string& external) {
  const std::string source = !external.empty() ? external : config.tokenizer.model;
  if (!source.empty()) {
    copy_atomic(source, run.tokenizer());
    const text::Tokenizer tok(run.tokenizer());
    if (!tok.has_format_tokens())
      spdlog::warn("{} does not hold the format tags as single pieces; they are encoded as text", source);
    spdlog::info("tokenizer: {} ({} pieces)", source, tok.vocab_size());
    return tok.vocab_size();
  }
  if (io::is_file(run.tokenizer())) return text::Tokenizer(run.tokenizer()).vocab_size();
  text::TokenizerDatasetOptions o;
  o.out = run.dir;
  o.known_categories = demo::category_names();
  o.known_defect_types = demo::defect_type_names();
  o.train.vocab_size = config.tokenizer.vocab_size;
  o.train.grounded = config.model.reference == "knn";  // chains grounded in the evidence (text/prompt.h)
  if (io::is_dir(config.data.root)) {
    o.format = config.data.format;
    o.root = config.data.root;
    o.categories = config.data.categories;
  } else {
    spdlog::warn("dataset {} not found: the tokenizer is trained on the demo's names only", config.data.root);
  }
  const auto summary = text::train_tokenizer_for_dataset(o);
  spdlog::info("trained tokenizer: {} pieces from {} sentences -> {}", summary.vocab_size, summary.corpus_sentences,
               summary.model_path);
  return summary.vocab_size;
}

RunConfig init_run(RunConfig config, const InitOptions& options) {
  prepare_run_dir(options.out, options.overwrite, false);
  const RunFiles run{options.out};
  if (options.overwrite) {
    std::error_code ec;
    fs::remove(run.tokenizer(), ec);  // retrain: the config may ask for another vocabulary
  }
  const int vocab = ensure_tokenizer(run, config, options.tokenizer);
  if (config.model.vocab_size != 0 && config.model.vocab_size != vocab)
    spdlog::warn("model.vocab_size {} replaced by the tokenizer's {}", config.model.vocab_size, vocab);
  config.model.vocab_size = vocab;
  config.validate();
  save_config(config, run.config());
  if (config.model.reference == "knn") {
    const TrainingSource source(config);
    const auto reference = build_normal_reference(source, config);
    reference.save(run.reference());
    save_baseline(fit_baseline(source, reference), run.baseline());  // the evidence-only baseline's thresholds
  }
  auto policy = model::make_policy(config.model, config.seed);
  save_policy(run, *policy, {{"stage", "init"}, {"step", "0"}});
  return config;
}

}  // namespace lriad::train
