// A run directory made from a Hugging Face PaliGemma folder (`lriad model import`):
// paligemma.json (the checkpoint's config.json), tokenizer.model and model.safetensors (every
// tensor under the original checkpoints' names, in one dtype, with "format" lriad-paligemma).
// `model info` and `model generate --run` read it; `lriad train --init RUN` fine-tunes it with LoRA
// (pretrained.* in the run's config), and eval and predict read that run (load_pretrained).
#pragma once
#include <string>

#include <nlohmann/json_fwd.hpp>

#include "lriad/io/config.h"
#include "lriad/model/paligemma.h"

namespace lriad::train {

inline constexpr const char* kPaliGemmaFormat = "lriad-paligemma";
inline constexpr const char* kPaliGemmaFormatVersion = "1";
inline constexpr const char* kPaliGemmaConfig = "paligemma.json";

struct ImportOptions {
  std::string hf;              // the checkpoint folder
  std::string out;             // the run directory to create
  std::string dtype = "fp32";  // fp32 | bf16: the dtype the weights are stored in
  bool overwrite = false;
};

// Reads the folder (model/hf_checkpoint.h: every error names its file), writes the run directory
// (each file through a temporary name). An existing non-empty `out` is refused unless overwrite.
void import_paligemma(const ImportOptions& options);

bool is_paligemma_run(const std::string& dir);

// The model of an imported run, its weights loaded strictly (names, shapes, dtype).
model::PaliGemma load_paligemma_run(const std::string& dir);

// The policy of a run trained on a PaliGemma (`p` = its config's pretrained section): the base run's
// weights in p.dtype on `device`, LoRA adapters added (p.lora_*, seeded with `seed`) and read from
// `adapters` (a weights file of that run; "" = fresh adapters). Throws lriad::Error naming the file
// when the base's tokenizer and config.json disagree on EOS.
model::PaliGemma load_pretrained(const PretrainedConfig& p, const std::string& device, uint64_t seed,
                                 const std::string& adapters);

struct ExportOptions {
  std::string run;      // a run trained on a PaliGemma (config.json's pretrained.base)
  std::string weights;  // its adapters: a file name in the run or a path ("" = best, else model.safetensors)
  std::string out;      // the folder to create
  bool overwrite = false;
};

// `lriad model export`: the base with the run's adapters merged into its weights (in float32, then
// stored in the base's dtype), written as a Hugging Face PaliGemma folder that `lriad model import`
// and transformers read: config.json, tokenizer.model, model.safetensors ("format": "pt", the
// checkpoints' names), and the processor's small files (*.json but the index) of the folder the
// base was imported from, when it is still there. Returns that folder ("" when it was not found).
std::string export_paligemma(const ExportOptions& options);

// What `lriad model info` prints for it: the keys of run_info (parameters per component: vision_tower,
// multi_modal_projector, language_model; vocabulary, image tokens, tensors, bytes, metadata) with
// "config" the checkpoint's config.json.
nlohmann::json paligemma_run_info(const std::string& dir);

}  // namespace lriad::train
