// The vision-language policy: prefix construction, prefix-LM masking, completion logits, init.
#include "lriad/model/policy.h"

#include <cmath>

#include "lriad/io/error.h"

namespace lriad::model {

PolicyImpl::PolicyImpl(const ModelConfig& c) : config(c) {
  if (c.vocab_size <= 0) throw Error("model.vocab_size is not set", "it is taken from the tokenizer");
  vision = register_module("vision", VisionEncoder(c));
  decoder = register_module("decoder", Decoder(c));
}

torch::Device PolicyImpl::device() const { return decoder->tokens->weight.device(); }

torch::Tensor positions_from_valid(const torch::Tensor& valid) {
  return (valid.to(torch::kInt64).cumsum(1) - 1).clamp_min(0);
}

torch::Tensor prefix_lm_mask(const torch::Tensor& valid, int64_t prefix_len) {
  const int64_t T = valid.size(1);
  auto idx = torch::arange(T, valid.options().dtype(torch::kInt64));
  auto visible = (idx.view({1, T}) <= idx.view({T, 1})) | (idx.view({1, T}) < prefix_len);  // (T,T) [i][j]
  return (visible.unsqueeze(0) & valid.unsqueeze(1)).unsqueeze(1);                          // (B,1,T,T)
}

PrefixBatch PolicyImpl::prefix(const torch::Tensor& images, const TokenRows& prompts) {
  const int64_t B = int64_t(prompts.size());
  if (images.size(0) != B)
    throw Error("policy: " + std::to_string(images.size(0)) + " images for " + std::to_string(B) + " prompts");
  size_t P = 1;
  for (const auto& p : prompts) P = std::max(P, p.size());
  auto ids = torch::zeros({B, int64_t(P)}, torch::kInt64);  // (B,P) left-padded
  auto pvalid = torch::zeros({B, int64_t(P)}, torch::kBool);
  for (int64_t b = 0; b < B; ++b) {
    const auto& p = prompts[size_t(b)];
    const int64_t off = int64_t(P - p.size());
    if (!p.empty()) {
      ids[b].narrow(0, off, int64_t(p.size())).copy_(torch::tensor(p, torch::kInt64));
      pvalid[b].narrow(0, off, int64_t(p.size())).fill_(true);
    }
  }
  const auto dev = device();
  auto img = vision(images.to(dev));       // (B,N,D)
  auto txt = decoder->embed(ids.to(dev));  // (B,P,D)
  PrefixBatch out;
  out.embeds = torch::cat({img, txt.to(img.scalar_type())}, 1);  // (B,Lp,D)
  out.valid = torch::cat({torch::ones({B, img.size(1)}, torch::kBool), pvalid}, 1).to(dev);
  return out;
}

torch::Tensor PolicyImpl::completion_logits(const torch::Tensor& images, const TokenRows& prompts,
                                            const torch::Tensor& completion, const torch::Tensor& completion_mask) {
  auto p = prefix(images, prompts);
  const int64_t Lp = p.embeds.size(1), C = completion.size(1);
  if (Lp + C > config.max_seq_len)
    throw Error("policy: " + std::to_string(Lp) + " prefix tokens (image + prompt) + " + std::to_string(C) +
                    " completion tokens exceed model.max_seq_len " + std::to_string(config.max_seq_len),
                "raise model.max_seq_len (e.g. --set model.max_seq_len=" + std::to_string(Lp + C + 16) +
                    ") or lower sampling.max_new_tokens");
  auto comp = completion.to(device());
  auto x = torch::cat({p.embeds, decoder->embed(comp).to(p.embeds.scalar_type())}, 1);   // (B,Lp+C,D)
  auto valid = torch::cat({p.valid, completion_mask.to(device())}, 1);                   // (B,Lp+C)
  auto h = decoder->forward(x, positions_from_valid(valid), prefix_lm_mask(valid, Lp));  // (B,Lp+C,D)
  return decoder->logits(h.narrow(1, Lp - 1, C));  // position Lp-1+t predicts token t: (B,C,V)
}

Policy make_policy(const ModelConfig& config, uint64_t seed) {
  torch::manual_seed(seed);
  Policy policy(config);
  torch::NoGradGuard no_grad;
  const double residual_std = config.init_std / std::sqrt(2.0 * config.layers);
  for (auto& item : policy->named_parameters()) {
    const std::string& name = item.key();
    auto& t = item.value();
    const bool is_norm = name.find("norm") != std::string::npos;
    if (is_norm) continue;                                   // norms keep weight 1, bias 0
    if (name.find(".stem.") != std::string::npos) continue;  // conv stem keeps LibTorch's (Kaiming) init
    // The reference-evidence MLPs read a few unit-scale numbers: LibTorch's init keeps them audible.
    if (name.find(".evidence.") != std::string::npos || name.find(".summary.") != std::string::npos) continue;
    if (name.size() > 5 && name.compare(name.size() - 5, 5, ".bias") == 0)
      t.zero_();
    else if (name.find("positions") != std::string::npos)
      continue;
    else if (name.find(".out.weight") != std::string::npos || name.find("down.weight") != std::string::npos)
      t.normal_(0.0, residual_std);
    else
      t.normal_(0.0, config.init_std);
  }
  return policy;
}

std::vector<std::pair<std::string, int64_t>> parameter_counts(PolicyImpl& policy) {
  auto count = [](torch::nn::Module& m) {
    int64_t n = 0;
    for (const auto& p : m.parameters()) n += p.numel();
    return n;
  };
  const int64_t vision = count(*policy.vision), decoder = count(*policy.decoder);
  return {{"vision", vision}, {"decoder", decoder}, {"total", vision + decoder}};
}

}  // namespace lriad::model
