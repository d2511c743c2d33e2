// PaliGemma's forward pass (see paligemma.h).
#include "lriad/model/paligemma.h"

#include <algorithm>
#include <cmath>
#include <limits>

#include <ATen/CPUGeneratorImpl.h>
#include <opencv2/imgproc.hpp>

#include "lriad/io/safetensors.h"
#include "lriad/io/st_tensor.h"
#include "lriad/model/recompute.h"

#include "lriad/io/error.h"

namespace lriad::model {

using torch::nn::Linear;
using torch::nn::LinearOptions;

namespace {

// A container module: its children's names become the checkpoint's dotted names.
std::shared_ptr<torch::nn::Module> node(torch::nn::Module& parent, const std::string& name) {
  return parent.register_module(name, std::make_shared<torch::nn::Module>());
}

Linear linear(torch::nn::Module& parent, const std::string& name, int64_t in, int64_t out, bool bias) {
  return parent.register_module(name, Linear(LinearOptions(in, out).bias(bias)));
}

torch::nn::LayerNorm layer_norm(torch::nn::Module& parent, const std::string& name, int64_t dim, double eps) {
  return parent.register_module(
      name, torch::nn::LayerNorm(torch::nn::LayerNormOptions({dim}).eps(eps).elementwise_affine(true)));
}

torch::Tensor gelu_tanh(const torch::Tensor& x) { return torch::gelu(x, "tanh"); }

}  // namespace

torch::Tensor gemma_rms_norm(const torch::Tensor& x, const torch::Tensor& w, double eps) {
  const auto xf = x.to(torch::kFloat32);
  const auto n = xf * torch::rsqrt(xf.pow(2).mean(-1, true) + eps);
  return (n * (1.0 + w.to(torch::kFloat32))).to(x.scalar_type());
}

torch::Tensor paligemma_positions(const torch::Tensor& valid) { return valid.to(torch::kInt64).cumsum(1); }

Linear PaliGemmaImpl::projection(torch::nn::Module& parent, const std::string& at, const std::string& name, int64_t in,
                                 int64_t out, bool bias) {
  auto l = linear(parent, name, in, out, bias);
  projections.emplace_back(at + "." + name, l);
  return l;
}

PaliGemmaImpl::PaliGemmaImpl(const PaliGemmaConfig& c) : config(c) {
  // vision_tower.vision_model.{embeddings, encoder.layers.i, post_layernorm}
  auto vision_model = node(*node(*this, "vision_tower"), "vision_model");
  auto embeddings = node(*vision_model, "embeddings");
  patch = embeddings->register_module(
      "patch_embedding",
      torch::nn::Conv2d(torch::nn::Conv2dOptions(3, c.vision_hidden, c.patch_size).stride(c.patch_size).bias(true)));
  vision_positions =
      embeddings->register_module("position_embedding", torch::nn::Embedding(c.image_tokens(), c.vision_hidden));
  auto vision_list = node(*node(*vision_model, "encoder"), "layers");
  for (int64_t i = 0; i < c.vision_layers; ++i) {
    auto l = node(*vision_list, std::to_string(i));
    auto attn = node(*l, "self_attn");
    auto mlp = node(*l, "mlp");
    const int64_t E = c.vision_hidden, I = c.vision_intermediate;
    const std::string at = "vision_tower.vision_model.encoder.layers." + std::to_string(i);
    const std::string a = at + ".self_attn", m = at + ".mlp";
    vision_layers.push_back({layer_norm(*l, "layer_norm1", E, c.vision_eps),
                             layer_norm(*l, "layer_norm2", E, c.vision_eps), projection(*attn, a, "q_proj", E, E, true),
                             projection(*attn, a, "k_proj", E, E, true), projection(*attn, a, "v_proj", E, E, true),
                             projection(*attn, a, "out_proj", E, E, true), projection(*mlp, m, "fc1", E, I, true),
                             projection(*mlp, m, "fc2", I, E, true)});
  }
  vision_norm = layer_norm(*vision_model, "post_layernorm", c.vision_hidden, c.vision_eps);
  projector = linear(*node(*this, "multi_modal_projector"), "linear", c.vision_hidden, c.projection_dim, true);
  // language_model.model.{embed_tokens, layers.i, norm}; the output head is the embedding's
  auto text = node(*node(*this, "language_model"), "model");
  embed = text->register_module("embed_tokens", torch::nn::Embedding(c.vocab_size, c.hidden));
  auto text_list = node(*text, "layers");
  const int64_t D = c.hidden, hd = c.head_dim;
  for (int64_t i = 0; i < c.layers; ++i) {
    auto l = node(*text_list, std::to_string(i));
    auto attn = node(*l, "self_attn");
    auto mlp = node(*l, "mlp");
    const std::string at = "language_model.model.layers." + std::to_string(i);
    const std::string a = at + ".self_attn", m = at + ".mlp";
    TextLayer t;
    auto norm = [&](const char* name) { return node(*l, name)->register_parameter("weight", torch::zeros({D})); };
    t.attn_norm = norm("input_layernorm");
    if (c.gemma2) {
      t.post_attn_norm = norm("post_attention_layernorm");
      t.mlp_norm = norm("pre_feedforward_layernorm");
      t.post_mlp_norm = norm("post_feedforward_layernorm");
      t.sliding = c.sliding_window > 0 && i % 2 == 0;
    } else {
      t.mlp_norm = norm("post_attention_layernorm");
    }
    t.q = projection(*attn, a, "q_proj", D, c.heads * hd, false);
    t.k = projection(*attn, a, "k_proj", D, c.kv_heads * hd, false);
    t.v = projection(*attn, a, "v_proj", D, c.kv_heads * hd, false);
    t.o = projection(*attn, a, "o_proj", c.heads * hd, D, false);
    t.gate = projection(*mlp, m, "gate_proj", D, c.intermediate, false);
    t.up = projection(*mlp, m, "up_proj", D, c.intermediate, false);
    t.down = projection(*mlp, m, "down_proj", c.intermediate, D, false);
    text_layers.push_back(t);
  }
  final_norm = node(*text, "norm")->register_parameter("weight", torch::zeros({D}));
  rotary = Rotary(hd, c.max_positions + 2, c.rope_theta);  // positions start at 1
}

torch::Tensor PaliGemmaImpl::image_features(const torch::Tensor& pixel_values) {
  const int64_t B = pixel_values.size(0), E = config.vision_hidden, H = config.vision_heads, hd = E / H;
  if (pixel_values.dim() != 4 || pixel_values.size(1) != 3 || pixel_values.size(2) != config.image_size ||
      pixel_values.size(3) != config.image_size)
    throw Error("PaliGemma takes images (B,3," + std::to_string(config.image_size) + "," +
                std::to_string(config.image_size) + "), got " + c10::str(pixel_values.sizes()));
  auto x = patch(pixel_values.to(patch->weight.scalar_type())).flatten(2).transpose(1, 2);  // (B,N,E)
  x = x + vision_positions->weight.unsqueeze(0);
  const int64_t N = x.size(1);
  const auto all = torch::ones({B, 1, 1, N}, torch::TensorOptions().dtype(torch::kBool).device(x.device()));
  // A frozen tower keeps no graph; recomputing its blocks would only run them again for nothing.
  bool vision_trains = false;
  for (const auto& p : named_parameters())
    if (p.key().rfind("vision_tower.", 0) == 0 || p.key().rfind("lora.vision_tower", 0) == 0)
      vision_trains = vision_trains || p.value().requires_grad();
  const bool recompute_vision = recompute_blocks && vision_trains && torch::GradMode::is_enabled();
  for (auto& l : vision_layers) {
    // Everything captured by value: with recompute_blocks the block runs again in the backward pass.
    VisionLayer* lp = &l;
    auto block = [this, lp, all, B, N, H, hd, E](const torch::Tensor& in) {
      VisionLayer& l = *lp;
      const auto h = l.norm1(in);
      auto heads = [&](Linear& p) { return project(p, h).view({B, N, H, hd}).transpose(1, 2); };  // (B,H,N,hd)
      const auto a = attention(heads(l.q), heads(l.k), heads(l.v), all);                          // (B,H,N,hd)
      const auto y = in + project(l.out, a.transpose(1, 2).reshape({B, N, E}));
      return y + project(l.fc2, gelu_tanh(project(l.fc1, l.norm2(y))));
    };
    x = recompute_vision ? recompute(block, x) : block(x);
  }
  x = projector(vision_norm(x));  // (B,N,D)
  return x / std::sqrt(double(config.feature_scale_dim));
}

torch::Tensor PaliGemmaImpl::embed_prompt(const torch::Tensor& pixel_values, const torch::Tensor& input_ids) {
  const auto dev = embed->weight.device();
  const auto ids = input_ids.to(dev);
  const auto image_at = ids.eq(config.image_token_index);   // (B,L)
  const auto feats = image_features(pixel_values.to(dev));  // (B,N,D)
  if (!image_at.sum(1).eq(feats.size(1)).all().item<bool>())
    throw Error("PaliGemma: each row needs " + std::to_string(feats.size(1)) + " <image> tokens (id " +
                    std::to_string(config.image_token_index) + ")",
                "the prompt is <image> x N, BOS, the prefix, \"\\n\"");
  return embed(ids).masked_scatter(image_at.unsqueeze(-1), feats.to(embed->weight.scalar_type()));  // (B,L,D)
}

torch::Tensor PaliGemmaImpl::decode(torch::Tensor h, const torch::Tensor& mask, const torch::Tensor& positions,
                                    KVCache* cache, const torch::Tensor& project_at) {
  const int64_t B = h.size(0), T = h.size(1), hd = config.head_dim, H = config.heads, Hk = config.kv_heads;
  if (positions.numel() > 0 && positions.max().item<int64_t>() >= rotary.cos.size(0))
    throw Error("PaliGemma: position " + std::to_string(positions.max().item<int64_t>()) + " is past the " +
                    std::to_string(config.max_positions) + " the checkpoint was made for (max_position_embeddings)",
                "use a shorter prompt or fewer new tokens");
  h = h * torch::tensor(std::sqrt(double(config.hidden)), h.options());  // the normaliser, in the activations' dtype
  const auto angles = rotary.at(positions.to(h.device()), h);
  const auto block_mask = mask.to(h.device()).unsqueeze(1);  // (B,1,T,Tk)
  for (size_t i = 0; i < text_layers.size(); ++i) {
    TextLayer* lp = &text_layers[i];  // everything captured by value: a recomputed block runs again in backward
    const int64_t layer = int64_t(i);
    const int64_t first = cache ? cache->length : 0;  // the sequence index of the first query
    auto block = [this, lp, angles, block_mask, B, T, H, Hk, hd, cache, layer, first](const torch::Tensor& in) {
      TextLayer& l = *lp;
      const auto x = gemma_rms_norm(in, l.attn_norm, config.rms_eps);
      const auto q = Rotary::apply(project(l.q, x).view({B, T, H, hd}).transpose(1, 2), angles);  // (B,H,T,hd)
      auto k = Rotary::apply(project(l.k, x).view({B, T, Hk, hd}).transpose(1, 2), angles);       // (B,Hk,T,hd)
      auto v = project(l.v, x).view({B, T, Hk, hd}).transpose(1, 2);
      if (cache) {  // written at [length, length+T); the queries read the first Tk columns
        const int64_t Tk = block_mask.size(3);
        if (Tk != cache->length + T || Tk > cache->capacity())
          throw Error("PaliGemma: a mask of " + std::to_string(Tk) + " key columns for a cache holding " +
                      std::to_string(cache->length + T) + " of " + std::to_string(cache->capacity()));
        cache->k[size_t(layer)].narrow(2, cache->length, T).copy_(k);
        cache->v[size_t(layer)].narrow(2, cache->length, T).copy_(v);
        k = cache->k[size_t(layer)].narrow(2, 0, Tk);  // (B,Hk,Tk,hd)
        v = cache->v[size_t(layer)].narrow(2, 0, Tk);
      }
      const auto a =
          config.gemma2 ? gemma2_attention(q, k, v, block_mask, l.sliding, first) : attention(q, k, v, block_mask);
      auto att = project(l.o, a.transpose(1, 2).reshape({B, T, H * hd}));  // (B,T,D)
      if (config.gemma2) att = gemma_rms_norm(att, l.post_attn_norm, config.rms_eps);
      const auto r = in + att;
      const auto y = gemma_rms_norm(r, l.mlp_norm, config.rms_eps);
      auto mlp = project(l.down, gelu_tanh(project(l.gate, y)) * project(l.up, y));
      if (config.gemma2) mlp = gemma_rms_norm(mlp, l.post_mlp_norm, config.rms_eps);
      return r + mlp;
    };
    h = recompute_blocks && !cache ? recompute(block, h) : block(h);
  }
  if (cache) cache->length += T;
  if (project_at.defined())  // (B,K,D): the positions asked for only
    h = h.gather(1, project_at.to(h.device()).unsqueeze(-1).expand({B, project_at.size(1), h.size(2)}));
  h = gemma_rms_norm(h, final_norm, config.rms_eps);
  auto logits = torch::matmul(h, embed->weight.t()).to(torch::kFloat32);  // (B,T,V)
  if (config.final_softcap > 0) logits = torch::tanh(logits / config.final_softcap) * config.final_softcap;
  return logits;
}

torch::Tensor PaliGemmaImpl::forward(const torch::Tensor& pixel_values, const torch::Tensor& input_ids,
                                     const torch::Tensor& valid, const torch::Tensor& prefix,
                                     const torch::Tensor& positions, const torch::Tensor& project_at) {
  const int64_t L = input_ids.size(1);
  const auto h = embed_prompt(pixel_values, input_ids);  // (B,L,D)
  const auto dev = h.device();
  // Prefix-LM mask (B,L,L): key j is seen from query i if valid[j] and (prefix[j] or j <= i).
  const auto v = valid.to(dev).to(torch::kBool), p = prefix.to(dev).to(torch::kBool);
  const auto causal = torch::ones({L, L}, torch::TensorOptions().dtype(torch::kBool).device(dev)).tril();
  return decode(h, (causal.unsqueeze(0) | p.unsqueeze(1)) & v.unsqueeze(1), positions, nullptr, project_at);
}

KVCache PaliGemmaImpl::prefill(const torch::Tensor& pixel_values, const std::vector<int64_t>& prompt, int64_t rows,
                               int64_t max_new, torch::Tensor* last_logits) {
  torch::NoGradGuard no_grad;
  const int64_t P = int64_t(prompt.size());
  const auto h = embed_prompt(pixel_values, torch::tensor(prompt, torch::kInt64).view({1, P}));  // (1,P,D)
  KVCache cache(int64_t(text_layers.size()), 1, config.kv_heads, P + max_new, config.head_dim, h.options());
  const auto all = torch::ones({1, P, P}, torch::TensorOptions().dtype(torch::kBool).device(h.device()));
  const auto logits = decode(h, all, torch::arange(1, P + 1, torch::kInt64).view({1, P}), &cache);  // (1,P,V)
  cache.valid.narrow(1, 0, P).fill_(true);
  cache.next_pos.fill_(P + 1);
  cache.repeat_rows(rows);
  if (last_logits) *last_logits = logits.select(1, P - 1).expand({rows, logits.size(2)}).contiguous();  // (rows,V)
  return cache;
}

torch::Tensor PaliGemmaImpl::step(const torch::Tensor& tokens, KVCache& cache) {
  torch::NoGradGuard no_grad;
  const int64_t B = tokens.size(0), Tk = cache.length + 1;
  const auto dev = embed->weight.device();
  const auto h = embed(tokens.to(dev).view({B, 1}));  // (B,1,D)
  const auto mask = torch::ones({B, 1, Tk}, torch::TensorOptions().dtype(torch::kBool).device(dev));
  const auto logits = decode(h, mask, cache.next_pos.view({B, 1}), &cache);  // (B,1,V)
  cache.next_pos.add_(1);
  return logits.select(1, 0);  // (B,V)
}

torch::Tensor PaliGemmaImpl::gemma2_attention(const torch::Tensor& q, const torch::Tensor& k, const torch::Tensor& v,
                                              const torch::Tensor& mask, bool sliding, int64_t first) const {
  const int64_t H = q.size(1), Hk = k.size(1), T = q.size(2), Tk = k.size(2);
  const auto kk = k.repeat_interleave(H / Hk, 1), vv = v.repeat_interleave(H / Hk, 1);  // (B,H,Tk,hd)
  auto scores = torch::matmul(q, kk.transpose(-2, -1)).to(torch::kFloat32) /
                std::sqrt(config.query_pre_attn_scalar);  // (B,H,T,Tk)
  if (config.attn_softcap > 0) scores = torch::tanh(scores / config.attn_softcap) * config.attn_softcap;
  auto visible = mask;  // (B,1,T,Tk)
  if (sliding) {        // key j is seen from query i (sequence index first + t) only if j > i - window
    const auto i = torch::arange(first, first + T, mask.options().dtype(torch::kInt64)).view({T, 1});
    const auto j = torch::arange(Tk, mask.options().dtype(torch::kInt64)).view({1, Tk});
    visible = visible & (j > i - config.sliding_window);
  }
  scores = scores.masked_fill(visible.logical_not(), -std::numeric_limits<float>::infinity());
  return torch::matmul(torch::softmax(scores, -1).to(v.scalar_type()), vv);  // (B,H,T,hd)
}

torch::Tensor PaliGemmaImpl::project(torch::nn::Linear& layer, const torch::Tensor& x) const {
  auto y = layer(x);
  if (!adapters_enabled || adapters.empty()) return y;
  auto it = adapters.find(layer.get());
  if (it == adapters.end()) return y;
  const Adapter& a = it->second;
  return y + a.scale * torch::linear(torch::linear(x, a.a.to(x.scalar_type())), a.b.to(x.scalar_type()));
}

namespace {

std::string last_part(const std::string& name) { return name.substr(name.rfind('.') + 1); }

std::string peft_name(const std::string& projection, char which) {
  return "base_model.model." + projection + ".lora_" + which + ".weight";
}

}  // namespace

void PaliGemmaImpl::add_lora(const LoraOptions& options) {
  if (has_lora()) throw Error("PaliGemma: the adapters are already there", "add_lora once per model");
  if (options.rank <= 0) throw Error("LoRA rank must be > 0, got " + std::to_string(options.rank));
  auto targeted = [&](const std::string& name) {
    const bool vision_part = name.rfind("vision_tower.", 0) == 0;
    const auto& t = options.targets;
    return !(vision_part && !options.vision) && std::find(t.begin(), t.end(), last_part(name)) != t.end();
  };
  if (std::none_of(projections.begin(), projections.end(), [&](const auto& p) { return targeted(p.first); }))
    throw Error("LoRA: no projection is named like the targets", "targets are e.g. q_proj, up_proj");
  torch::NoGradGuard no_grad;
  for (auto& p : parameters()) p.set_requires_grad(false);
  auto holder = register_module("lora", std::make_shared<torch::nn::Module>());
  auto gen = at::detail::createCPUGenerator(options.seed);
  for (auto& [name, lin] : projections) {
    if (!targeted(name)) continue;
    const int64_t in = lin->weight.size(1), out = lin->weight.size(0);
    const double bound = 1.0 / std::sqrt(double(in));
    const auto opts = torch::TensorOptions().dtype(torch::kFloat32);
    Adapter a;
    a.a = torch::empty({options.rank, in}, opts).uniform_(-bound, bound, gen).to(lin->weight.device());
    a.b = torch::zeros({out, options.rank}, opts).to(lin->weight.device());
    a.scale = options.alpha / double(options.rank);
    std::string key = name;
    std::replace(key.begin(), key.end(), '.', '_');
    a.a = holder->register_parameter(key + "_A", a.a);
    a.b = holder->register_parameter(key + "_B", a.b);
    adapters[lin.get()] = a;
  }
  lora = options;
}

std::vector<std::pair<std::string, torch::Tensor>> PaliGemmaImpl::lora_tensors() const {
  std::vector<std::pair<std::string, torch::Tensor>> out;
  for (const auto& [name, lin] : projections) {
    auto it = adapters.find(lin.get());
    if (it == adapters.end()) continue;
    out.emplace_back(peft_name(name, 'A'), it->second.a);
    out.emplace_back(peft_name(name, 'B'), it->second.b);
  }
  return out;
}

void PaliGemmaImpl::merge_lora() {
  torch::NoGradGuard no_grad;
  for (auto& [name, lin] : projections) {
    auto it = adapters.find(lin.get());
    if (it == adapters.end()) continue;
    const Adapter& a = it->second;
    lin->weight.add_((a.scale * torch::matmul(a.b, a.a)).to(lin->weight.scalar_type()));
  }
  adapters.clear();
  unregister_module("lora");
}

void save_lora(const PaliGemmaImpl& model, const std::string& path, const std::map<std::string, std::string>& extra) {
  if (!model.has_lora()) throw Error("no adapters to save", "add_lora first");
  io::StFile file;
  std::string targets;
  for (const auto& t : model.lora.targets) targets += (targets.empty() ? "" : ",") + t;
  file.metadata = {{"format", "lriad-lora"},
                   {"format_version", "1"},
                   {"rank", std::to_string(model.lora.rank)},
                   {"alpha", std::to_string(model.lora.alpha)},
                   {"targets", targets},
                   {"vision", model.lora.vision ? "true" : "false"}};
  for (const auto& [k, v] : extra) file.metadata[k] = v;
  for (const auto& [name, t] : model.lora_tensors())
    file.tensors[name] = io::to_st_tensor(t.detach().to(torch::kFloat32));
  io::write_safetensors(path, file);
}

void load_lora(PaliGemmaImpl& model, const std::string& path) {
  if (!model.has_lora())
    throw Error("loading " + path + ": the model has no adapters", "add_lora with the file's rank and targets first");
  const io::StFile file = io::read_safetensors(path);
  // The scale alpha / rank is not in the tensors: a file saved with another alpha would load and compute
  // something else.
  auto number = [&](const std::string& text) {
    try {
      return std::stod(text);
    } catch (const std::exception&) {
      throw Error(path + ": metadata alpha '" + text + "' is not a number", "save the adapters again");
    }
  };
  if (const auto it = file.metadata.find("alpha");
      it != file.metadata.end() && std::abs(number(it->second) - model.lora.alpha) > 1e-9 * std::abs(model.lora.alpha))
    throw Error(
        path + " holds adapters of alpha " + it->second + ", the model's have " + std::to_string(model.lora.alpha),
        "add_lora with the alpha the file was saved with (pretrained.lora_alpha)");
  const auto mine = model.lora_tensors();
  if (file.tensors.size() != mine.size())
    throw Error(path + " holds " + std::to_string(file.tensors.size()) + " adapter tensors, the model has " +
                    std::to_string(mine.size()),
                "add_lora with the rank, targets and vision setting the file was saved with (its metadata)");
  torch::NoGradGuard no_grad;
  for (const auto& [name, t] : mine) {
    auto it = file.tensors.find(name);
    if (it == file.tensors.end())
      throw Error(path + ": adapter '" + name + "' is missing", "the adapters were saved for other targets");
    const auto v = io::from_st_tensor(it->second);
    if (v.sizes() != t.sizes())
      throw Error(path + ": adapter '" + name + "' has shape " + io::shape_str(v.sizes().vec()) + ", the model's is " +
                      io::shape_str(t.sizes().vec()),
                  "add_lora with the rank the file was saved with");
    t.copy_(v);
  }
}

torch::Tensor siglip_pixels(const cv::Mat& rgb, int64_t side) {
  if (rgb.empty() || rgb.type() != CV_32FC3) throw Error("siglip_pixels: need a CV_32FC3 RGB image");
  cv::Mat sized = rgb;
  if (rgb.rows != side || rgb.cols != side)
    cv::resize(rgb, sized, cv::Size(int(side), int(side)), 0,
               0,  // shrinking averages, as PIL's antialiased bicubic does
               rgb.rows > side || rgb.cols > side ? cv::INTER_AREA : cv::INTER_CUBIC);
  const cv::Mat c = sized.isContinuous() ? sized : sized.clone();
  const auto hwc = torch::from_blob(c.data, {side, side, 3}, torch::kFloat32).clamp(0, 1);
  return ((hwc.permute({2, 0, 1}) - 0.5) / 0.5).unsqueeze(0).contiguous();  // (1,3,S,S)
}

torch::ScalarType paligemma_dtype(const std::string& name, const std::string& what) {
  if (name == "fp32") return torch::kFloat32;
  if (name == "bf16") return torch::kBFloat16;
  throw Error(what + " must be fp32 or bf16, got '" + name + "'");
}

torch::Device paligemma_device(const std::string& name, const std::string& what) {
  if (name != "cpu" && name != "cuda") throw Error(what + " must be cpu or cuda, got '" + name + "'");
  if (name == "cuda" && !torch::cuda::is_available())
    throw Error(what + " cuda: this LibTorch sees no CUDA device",
                "build against the official CUDA LibTorch (README: Building against an official (CUDA) LibTorch)");
  return torch::Device(name);
}

std::vector<int64_t> paligemma_prompt(const PaliGemmaConfig& config, const std::vector<int>& text_ids) {
  std::vector<int64_t> out(size_t(config.image_tokens()), config.image_token_index);
  out.push_back(config.bos_id);
  out.insert(out.end(), text_ids.begin(), text_ids.end());
  return out;
}

std::vector<int64_t> greedy_generate(PaliGemmaImpl& model, const torch::Tensor& pixel_values,
                                     const std::vector<int64_t>& prompt, int max_new, bool stop_at_eos) {
  torch::NoGradGuard no_grad;
  std::vector<int64_t> out;
  torch::Tensor logits;  // (1,V)
  KVCache cache = model.prefill(pixel_values, prompt, 1, max_new, &logits);
  for (int s = 0; s < max_new; ++s) {
    const int64_t next = logits[0].argmax().item<int64_t>();
    out.push_back(next);
    if ((stop_at_eos && next == model.config.eos_id) || s + 1 == max_new) break;
    logits = model.step(torch::tensor({next}, torch::kInt64), cache);
  }
  return out;
}

}  // namespace lriad::model
