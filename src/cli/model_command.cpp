// `lriad model init` (a run directory with a tokenizer and fresh weights) and `lriad model info`.
#include <spdlog/spdlog.h>

#include <iostream>
#include <nlohmann/json.hpp>

#include "common.h"
#include "lriad/data/image_io.h"
#include "lriad/io/error.h"
#include "lriad/model/hf_checkpoint.h"
#include "lriad/model/paligemma.h"
#include "lriad/text/tokenizer.h"
#include "lriad/train/checkpoint.h"
#include "lriad/train/paligemma_run.h"

namespace lriad::cli {
namespace {

struct InitCli {
  std::string config = "tiny";  // a shipped config's name (io::find_config) or a file
  std::vector<std::string> set;
  train::InitOptions init;
};

struct GenerateCli {
  std::string hf, run, image, prompt = "caption en";
  int max_new = 32;
  std::string dtype = "fp32";
  std::string device = "cpu";
};

// Greedy generation from a Hugging Face PaliGemma folder: a check that a downloaded checkpoint
// loads and answers sensibly before it is trained.
void run_generate(const GenerateCli& g) {
  if (g.hf.empty() == g.run.empty()) throw Error("model generate: give --hf DIR or --run RUN (one of them)");
  const auto type = model::paligemma_dtype(g.dtype, "--dtype");
  const auto device = model::paligemma_device(g.device, "--device");
  model::PaliGemma m{nullptr};
  std::string tokenizer;
  if (!g.run.empty()) {
    spdlog::info("loading {}", g.run);
    m = train::load_paligemma_run(g.run);
    tokenizer = train::RunFiles{g.run}.tokenizer();
  } else {
    const auto ckpt = model::open_hf_checkpoint(g.hf);
    if (ckpt.tokenizer.empty())
      throw Error(g.hf + " has no tokenizer.model", "PaliGemma checkpoints come with their sentencepiece tokenizer");
    m = model::PaliGemma(ckpt.config);
    m->to(type);
    spdlog::info("loading {} ({} image tokens, vocabulary {})", g.hf, ckpt.config.image_tokens(),
                 ckpt.config.vocab_size);
    model::load_hf_weights(*m, ckpt);
    tokenizer = ckpt.tokenizer;
  }
  m->to(device, type);
  m->eval();
  const auto& config = m->config;
  const text::Tokenizer tok(tokenizer);
  const auto prompt = model::paligemma_prompt(config, tok.encode(g.prompt + "\n"));
  const auto pixels = model::siglip_pixels(data::read_image(g.image), config.image_size);
  const auto ids = model::greedy_generate(*m, pixels, prompt, g.max_new, true);
  std::vector<int> text_ids;
  for (auto id : ids)
    if (id != config.eos_id) text_ids.push_back(int(id));
  std::cout << tok.decode(text_ids) << "\n";
}

struct ImportCli {
  train::ImportOptions import;
};

struct InfoCli {
  std::string run;
  bool json = false;
};

std::string with_commas(int64_t n) {
  std::string s = std::to_string(n);
  for (int i = int(s.size()) - 3; i > 0; i -= 3) s.insert(size_t(i), ",");
  return s;
}

void print_info(const nlohmann::json& j) {
  std::cout << "run            " << j["run"].get<std::string>() << "\n";
  std::cout << "parameters\n";
  for (const auto& [k, v] : j["parameters"].items())
    if (k != "total")
      std::cout << "  " << k << std::string(k.size() < 13 ? 13 - k.size() : 1, ' ') << with_commas(v.get<int64_t>())
                << "\n";
  std::cout << "  total        " << with_commas(j["parameters"]["total"].get<int64_t>()) << "\n";
  std::cout << "vocabulary     " << j["vocab_size"].get<int>() << "\n";
  std::cout << "image tokens   " << j["image_tokens"].get<int>() << "\n";
  std::cout << "tensors        " << j["tensors"].get<size_t>() << " (" << j["weights_bytes"].get<uint64_t>() / 1024
            << " KiB)\n";
  for (const auto& [k, v] : j["metadata"].items())
    if (k != "config")
      std::cout << "meta " << k << std::string(k.size() < 10 ? 10 - k.size() : 1, ' ') << v.get<std::string>() << "\n";
  std::cout << "config\n" << j["config"].dump(2) << "\n";
}

}  // namespace

void add_model_command(CLI::App& app, const GlobalOptions& global) {
  auto* model_cmd = app.add_subcommand("model", "Create and inspect policy checkpoints");
  model_cmd->require_subcommand(1);

  auto i = std::make_shared<InitCli>();
  auto* init =
      model_cmd->add_subcommand("init", "Create a run directory: config, tokenizer, freshly initialised weights");
  init->add_option("--config", i->config, "Config file, or a shipped config's name: tiny, small, base")
      ->capture_default_str();
  init->add_option("-o,--out", i->init.out, "Run directory to create")->required();
  init->add_option("--set", i->set, "Override a config value, e.g. --set model.dim=256 (repeatable)");
  init->add_option("--tokenizer", i->init.tokenizer, "Use this sentencepiece .model instead of training one");
  init->add_flag("--overwrite", i->init.overwrite, "Replace the files of an existing run directory");
  init->callback([i, &global] {
    start_torch_runtime(global);
    const RunConfig config = train::init_run(load_config(i->config, i->set), i->init);
    spdlog::info("initialised {} (vocabulary {})", i->init.out, config.model.vocab_size);
    print_info(train::run_info(i->init.out));
  });

  auto g = std::make_shared<GenerateCli>();
  auto* gen = model_cmd->add_subcommand(
      "generate", "Greedy answer of a Hugging Face PaliGemma checkpoint folder to an image and a prompt");
  gen->add_option("--hf", g->hf, "Checkpoint folder: config.json, *.safetensors, tokenizer.model");
  gen->add_option("--run", g->run, "A run directory made by `lriad model import` (instead of --hf)");
  gen->add_option("--image", g->image, "Image file")->required();
  gen->add_option("--prompt", g->prompt, "Prompt (PaliGemma's task prefix, e.g. \"caption en\")")
      ->capture_default_str();
  gen->add_option("--max-new", g->max_new, "Tokens to generate at most")
      ->capture_default_str()
      ->check(CLI::PositiveNumber);
  gen->add_option("--dtype", g->dtype, "Weights in fp32 or bf16")->capture_default_str();
  gen->add_option("--device", g->device, "cpu or cuda")->capture_default_str();
  gen->callback([g, &global] {
    start_torch_runtime(global);
    run_generate(*g);
  });

  auto im = std::make_shared<ImportCli>();
  auto* imp = model_cmd->add_subcommand("import", "A run directory from a Hugging Face PaliGemma checkpoint folder");
  imp->add_option("--hf", im->import.hf, "Checkpoint folder: config.json, *.safetensors, tokenizer.model")->required();
  imp->add_option("-o,--out", im->import.out, "Run directory to create")->required();
  imp->add_option("--dtype", im->import.dtype, "Store the weights in fp32 or bf16")->capture_default_str();
  imp->add_flag("--overwrite", im->import.overwrite, "Replace the files of an existing run directory");
  imp->callback([im, &global] {
    start_torch_runtime(global);
    train::import_paligemma(im->import);
    spdlog::info("imported {} into {}", im->import.hf, im->import.out);
    print_info(train::run_info(im->import.out));
  });

  auto ex = std::make_shared<train::ExportOptions>();
  auto* exp = model_cmd->add_subcommand(
      "export", "A Hugging Face PaliGemma folder from a run trained on one: its adapters merged into the base");
  exp->add_option("--run", ex->run, "Run directory (the --out of lriad train --init RUN)")->required();
  exp->add_option("--weights", ex->weights, "Adapters in the run (default: best.safetensors, else model.safetensors)");
  exp->add_option("-o,--out", ex->out, "Folder to create")->required();
  exp->add_flag("--overwrite", ex->overwrite, "Replace the files of an existing folder");
  exp->callback([ex, &global] {
    start_torch_runtime(global);
    const std::string processor = train::export_paligemma(*ex);
    spdlog::info("exported {} with its adapters merged into {}", ex->run, ex->out);
    if (processor.empty())
      spdlog::warn(
          "the folder the base was imported from is gone: transformers' processor also wants its "
          "preprocessor_config.json and tokenizer files; copy them from the checkpoint you downloaded");
    else
      spdlog::info("processor files copied from {}", processor);
  });

  auto o = std::make_shared<InfoCli>();
  auto* info = model_cmd->add_subcommand("info", "Parameter counts per component, vocabulary and config of a run");
  info->add_option("--run", o->run, "Run directory")->required();
  info->add_flag("--json", o->json, "Print one JSON object");
  info->callback([o] {
    const auto j = train::run_info(o->run);
    if (o->json)
      std::cout << j.dump(2) << "\n";
    else
      print_info(j);
  });
}

}  // namespace lriad::cli
