// Hugging Face checkpoint folders (see hf_checkpoint.h).
#include "lriad/model/hf_checkpoint.h"

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <set>

#include <nlohmann/json.hpp>
#include <torch/torch.h>

#include "lriad/io/error.h"
#include "lriad/io/safetensors.h"
#include "lriad/io/st_tensor.h"
#include "lriad/model/paligemma.h"

namespace lriad::model {
namespace fs = std::filesystem;

namespace {

const char* kIndex = "model.safetensors.index.json";
const char* kSingle = "model.safetensors";

bool starts_with(const std::string& s, const std::string& p) { return s.compare(0, p.size(), p) == 0; }

}  // namespace

HfCheckpoint open_hf_checkpoint(const std::string& dir) {
  if (!fs::is_directory(dir))
    throw Error("not a folder: " + dir,
                "pass the folder of a downloaded Hugging Face checkpoint (config.json, *.safetensors)");
  HfCheckpoint c;
  c.dir = dir;
  c.config = PaliGemmaConfig::from_file((fs::path(dir) / "config.json").string());
  const fs::path index = fs::path(dir) / kIndex;
  std::set<std::string> shards;
  if (fs::exists(index)) {
    std::ifstream in(index);
    nlohmann::json j;
    try {
      j = nlohmann::json::parse(in);
      for (const auto& [name, shard] : j.at("weight_map").items())
        shards.insert((fs::path(dir) / shard.get<std::string>()).string());
    } catch (const nlohmann::json::exception& e) {
      throw Error(index.string() + " is damaged: " + e.what(), "download the checkpoint again");
    }
  } else if (fs::exists(fs::path(dir) / kSingle)) {
    shards.insert((fs::path(dir) / kSingle).string());
  } else {
    throw Error(dir + " holds neither " + kIndex + " nor " + kSingle,
                "the weights of a Hugging Face checkpoint are safetensors files");
  }
  for (const auto& s : shards)
    if (!fs::exists(s))
      throw Error("missing shard " + s + " (named by " + index.string() + ")",
                  "the download is incomplete: fetch every model-*.safetensors file");
  c.shards.assign(shards.begin(), shards.end());
  const fs::path tok = fs::path(dir) / "tokenizer.model";
  if (fs::exists(tok)) c.tokenizer = tok.string();
  return c;
}

std::string paligemma_tensor_name(const std::string& stored) {
  if (starts_with(stored, "model.language_model.")) return "language_model.model." + stored.substr(21);
  if (starts_with(stored, "model.vision_tower.")) return stored.substr(6);
  if (starts_with(stored, "model.multi_modal_projector.")) return stored.substr(6);
  if (stored == "lm_head.weight") return "language_model.lm_head.weight";
  return stored;
}

void load_hf_weights(PaliGemmaImpl& model, const HfCheckpoint& checkpoint) {
  torch::NoGradGuard no_grad;
  std::map<std::string, torch::Tensor> params;
  for (const auto& p : model.named_parameters())
    if (p.key().rfind("lora.", 0) != 0) params[p.key()] = p.value();  // adapters are not in a checkpoint
  std::set<std::string> filled;
  for (const auto& shard : checkpoint.shards) {
    const io::StHeader header = io::read_safetensors_header(shard);
    std::ifstream in(shard, std::ios::binary);
    if (!in) throw Error("cannot read " + shard, "check permissions");
    for (const auto& [stored, info] : header.tensors) {
      const std::string name = paligemma_tensor_name(stored);
      auto it = params.find(name);
      if (name == "language_model.lm_head.weight") {  // tied to the embeddings
        const std::vector<int64_t> want{model.config.vocab_size, model.config.hidden};
        if (info.shape != want)
          throw Error(shard + ": tensor '" + stored + "' has shape " + io::shape_str(info.shape) +
                      ", config.json implies " + io::shape_str(want));
        continue;
      }
      if (it == params.end())
        throw Error(shard + ": tensor '" + stored + "' has no place in a PaliGemma of this config.json",
                    "the checkpoint is another architecture, or config.json does not belong to these weights");
      const auto& param = it->second;
      if (info.shape != param.sizes().vec())
        throw Error(shard + ": tensor '" + stored + "' has shape " + io::shape_str(info.shape) +
                        ", config.json implies " + io::shape_str(param.sizes().vec()),
                    "config.json does not belong to these weights");
      io::StTensor t;
      t.dtype = info.dtype;
      t.shape = info.shape;
      t.data.resize(size_t(info.end - info.begin));
      in.seekg(std::streamoff(8 + header.header_size + info.begin));
      in.read(t.data.data(), std::streamsize(t.data.size()));
      if (!in)
        throw Error("cannot read tensor '" + stored + "' of " + shard, "the file is truncated: download it again");
      const auto value = io::from_st_tensor(t);
      if (!value.is_floating_point())
        throw Error(shard + ": tensor '" + stored + "' is " + info.dtype + ", not floating point");
      param.copy_(value.to(param.scalar_type()));
      filled.insert(name);
    }
  }
  for (const auto& [name, _] : params)
    if (!filled.count(name))
      throw Error("tensor '" + name + "' is missing from " + checkpoint.dir,
                  "the checkpoint is incomplete or of another architecture");
}

}  // namespace lriad::model
