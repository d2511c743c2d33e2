// Imported PaliGemma run directories (see paligemma_run.h).
#include "lriad/train/paligemma_run.h"

#include <filesystem>
#include <fstream>

#include <nlohmann/json.hpp>

#include "lriad/io/config.h"
#include "lriad/io/error.h"
#include "lriad/io/fs.h"
#include "lriad/io/safetensors.h"
#include "lriad/model/hf_checkpoint.h"
#include "lriad/model/weights.h"
#include "lriad/text/tokenizer.h"
#include "lriad/train/checkpoint.h"

namespace lriad::train {
bool is_paligemma_run(const std::string& dir) { return io::is_file(RunFiles{dir}.path(kPaliGemmaConfig)); }

void import_paligemma(const ImportOptions& o) {
  const auto type = model::paligemma_dtype(o.dtype, "--dtype");
  const auto ckpt = model::open_hf_checkpoint(o.hf);
  if (ckpt.tokenizer.empty())
    throw Error(o.hf + " has no tokenizer.model", "PaliGemma checkpoints come with their sentencepiece tokenizer");
  prepare_run_dir(o.out, o.overwrite, false);
  model::PaliGemma m(ckpt.config);
  m->to(type);
  model::load_hf_weights(*m, ckpt);
  const RunFiles run{o.out};
  io::write_file_atomic(run.tokenizer(), io::read_file(ckpt.tokenizer));
  model::save_weights(*m, run.weights(),
                      {{"format", kPaliGemmaFormat},
                       {"format_version", kPaliGemmaFormatVersion},
                       {"imported_from", std::filesystem::weakly_canonical(std::filesystem::absolute(o.hf)).string()},
                       {"dtype", o.dtype}});
  // Last: its presence marks a complete import.
  io::write_file_atomic(run.path(kPaliGemmaConfig), io::read_file(o.hf + "/config.json"));
}

model::PaliGemma load_paligemma_run(const std::string& dir) {
  const RunFiles run{dir};
  if (!is_paligemma_run(dir))
    throw Error(dir + " is not an imported PaliGemma run (no " + kPaliGemmaConfig + ")",
                "make one with `lriad model import --hf DIR --out RUN`");
  const auto config = model::PaliGemmaConfig::from_file(run.path(kPaliGemmaConfig));
  const auto header = io::read_safetensors_header(run.weights());
  const auto meta = header.metadata.find("format");
  if (meta == header.metadata.end() || meta->second != kPaliGemmaFormat)
    throw Error(run.weights() + " is not an imported PaliGemma's weights", "import the checkpoint again");
  auto dtype = header.metadata.count("dtype") ? header.metadata.at("dtype") : std::string("fp32");
  model::PaliGemma m(config);
  m->to(model::paligemma_dtype(dtype, run.weights() + ": dtype"));
  // Tensor by tensor with a seek (as a downloaded folder loads), not the whole file in memory beside
  // the model: every name, shape and tensor checked, the file naming itself in errors.
  model::load_hf_weights(*m, model::HfCheckpoint{dir, config, {run.weights()}, run.tokenizer()});
  m->eval();
  return m;
}

model::PaliGemma load_pretrained(const PretrainedConfig& p, const std::string& device, uint64_t seed,
                                 const std::string& adapters) {
  model::PaliGemma m = load_paligemma_run(p.base);
  const text::Tokenizer tok(RunFiles{p.base}.tokenizer());
  if (tok.eos_id() != m->config.eos_id)
    throw Error(RunFiles{p.base}.tokenizer() + " ends text with id " + std::to_string(tok.eos_id()) + ", " +
                    RunFiles{p.base}.path(kPaliGemmaConfig) + " with " + std::to_string(m->config.eos_id),
                "import the checkpoint folder again: its tokenizer.model and config.json belong together");
  m->to(model::paligemma_device(device, "device"), model::paligemma_dtype(p.dtype, "pretrained.dtype"));
  model::LoraOptions lora;
  lora.rank = p.lora_rank;
  lora.alpha = p.lora_alpha;
  lora.targets = p.lora_targets;
  lora.vision = p.lora_vision;
  lora.seed = seed;
  m->add_lora(lora);
  m->recompute_blocks = p.recompute;
  if (!adapters.empty()) model::load_lora(*m, adapters);
  return m;
}

std::string export_paligemma(const ExportOptions& o) {
  const RunFiles run{o.run};
  if (!io::is_file(run.config()))
    throw Error("run directory " + o.run + " has no config.json", "pass the --out of `lriad train --init RUN`");
  const RunConfig config = load_config(run.config());
  if (config.pretrained.base.empty())
    throw Error(o.run + " was not trained on a PaliGemma (its config.json has no pretrained.base)",
                "export is for runs of `lriad train --init` an imported PaliGemma; lriad's own policy is its run");
  std::string weights = o.weights.empty() ? (io::is_file(run.best()) ? run.best() : run.weights()) : o.weights;
  if (weights.find('/') == std::string::npos) weights = run.path(weights);
  const RunFiles base{config.pretrained.base};
  const auto stored = io::read_safetensors_header(base.weights()).metadata;
  const std::string dtype = stored.count("dtype") ? stored.at("dtype") : "fp32";
  PretrainedConfig p = config.pretrained;
  p.dtype = "fp32";  // merged in float32, then stored as the base was
  model::PaliGemma m = load_pretrained(p, "cpu", config.seed, weights);
  m->merge_lora();
  m->to(model::paligemma_dtype(dtype, base.weights() + ": dtype"));
  prepare_run_dir(o.out, o.overwrite, false);
  const RunFiles out{o.out};
  for (const auto& e : std::filesystem::directory_iterator(o.out)) {  // an earlier folder's shards would be read first
    const std::string name = e.path().filename().string();
    if (name == "model.safetensors.index.json" ||
        (name.rfind("model-", 0) == 0 && e.path().extension() == ".safetensors"))
      std::filesystem::remove(e.path());
  }
  io::write_file_atomic(out.tokenizer(), io::read_file(base.tokenizer()));
  model::save_weights(*m, out.weights(), {{"format", "pt"}});  // transformers reads "pt" only
  std::string from;
  if (stored.count("imported_from") && io::is_dir(stored.at("imported_from"))) {
    from = stored.at("imported_from");
    for (const auto& e : std::filesystem::directory_iterator(from)) {
      const std::string name = e.path().filename().string();
      if (e.is_regular_file() && e.path().extension() == ".json" && name != "config.json" &&
          name != "model.safetensors.index.json")
        io::write_file_atomic(out.path(name), io::read_file(e.path().string()));
    }
  }
  io::write_file_atomic(out.config(), io::read_file(base.path(kPaliGemmaConfig)));  // last: a complete folder
  return from;
}

nlohmann::json paligemma_run_info(const std::string& dir) {
  const RunFiles run{dir};
  const auto config = model::PaliGemmaConfig::from_file(run.path(kPaliGemmaConfig));
  nlohmann::json j = weights_info(run.weights(), {});  // every tensor of a checkpoint is a weight
  j["run"] = dir;
  j["vocab_size"] = config.vocab_size;
  j["image_tokens"] = config.image_tokens();
  std::ifstream in(run.path(kPaliGemmaConfig));
  j["config"] = nlohmann::json::parse(in);
  return j;
}

}  // namespace lriad::train
