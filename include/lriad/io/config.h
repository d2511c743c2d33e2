// The run configuration: plain structs with defaults, loaded from configs/*.json, overridden by
// --set flags (defaults < file < flags), validated with reasons, written into every run directory.
#pragma once
#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include <nlohmann/json_fwd.hpp>

namespace lriad {

struct ModelConfig {
  // Vision encoder (ViT).
  int image_size = 64;  // input side in pixels
  int patch_size = 8;   // image tokens = (image_size / patch_size)^2
  int vision_dim = 128;
  int vision_layers = 3;
  int vision_heads = 4;
  int vision_mlp_ratio = 4;
  std::string vision_positions = "sincos";  // sincos (fixed 2-D) | learned
  // patch: one patch_size x patch_size conv (plain ViT); conv: log2(patch_size) stride-2 3x3
  // convs then a 1x1 (an "early convolutions" stem: learns local defects from little data).
  std::string vision_stem = "patch";
  // Normal-reference evidence: "knn" compares every 5x5 patch of the image with a bank of patches
  // from the category's normal training images (reference/reference.h) and gives the vision encoder the
  // deviation map (added to each patch token, and summarised in one extra image token); "none" off.
  std::string reference = "none";
  int reference_patch = 5;      // patch side compared, pixels at image_size
  int reference_bank = 8000;    // patches kept per bank (two banks per category)
  int reference_rotations = 0;  // rotated copies of each normal image in the banks (parts that turn)
  // Categories whose normal images show one part on a plain background (reference/pose.h) are moved to a
  // canonical pose and compared position by position with the normal images, within
  // +-reference_shift pixels, instead of with the patch bank. false: every category uses the bank.
  bool reference_align = true;
  int reference_shift = 3;
  // Fine comparison of those parts (reference/reference.h): also at reference_fine_size pixels (0: off),
  // high-passed (Gaussian sigma reference_fine_sigma px), with the reference_neighbours most alike
  // normal images (0: all), +-reference_fine_shift px. Lines 1-2 px wide in the photograph (scratches,
  // damaged threads) vanish at a 64-px image_size. Images are then kept at this side for training
  // (synthetic anomalies are drawn at it) and evaluation, and resized to image_size for the model.
  int reference_fine_size = 0;
  double reference_fine_sigma = 3.0;
  int reference_fine_shift = 3;
  int reference_neighbours = 8;
  // Fine comparison of textures (reference/reference.h): also at reference_fine_size pixels, the
  // high-passed luminance's 5x5 patches against a bank of the normal images' (a scratch a pixel wide
  // that the 64-px map averages away). Texture categories are then kept at that side too. false (and
  // runs made before the key): textures are compared at image_size only.
  bool reference_fine_textures = false;
  // Each of the reference's maps (patches, fine, regions) is divided by this quantile of its peak over
  // normal images its bank has not seen, before the maps are combined by their maximum. 0.5 (the
  // median, and runs made before the key).
  double reference_scale_quantile = 0.5;
  // Textures' patches are compared after each image's luminance is brought to a fixed mean and
  // spread (reference/reference.h, "Photometric normalisation"): exposure and brightness that differ
  // from photograph to photograph no longer read as deviation. false (and runs made before the key):
  // compared as given.
  bool reference_photometric = false;
  // Parts (compared by place in a canonical pose) are compared after each image's smooth lighting,
  // a quadratic field across the frame relative to the mean normal image, is divided out
  // (reference/reference.h, "Lighting of parts"): a gradient of light or a brighter background no
  // longer reads as deviation. false (and runs made before the key): compared as given.
  bool reference_part_lighting = false;
  // Fixed scenes (reference.h, scene.h): a category whose normal images all show one scene at one
  // place (a board, a tray of parts) on a background that is not plain is also compared by place, so
  // a component that is missing or misplaced stands out.
  bool reference_fixed_scenes = false;
  // Colour novelty (reference/palette.h): a pixel's colour that no normal image of the category shows
  // counts as deviation too (specks of a foreign colour on a part with its own random marks).
  bool reference_colour = true;
  // Colour of regions (reference/reference.h): textures' images averaged down to this side and compared
  // by their brightness-free colour, so a tinted stain stands out (0: off).
  int reference_region_size = 16;
  // The reference's measurements written into the chain of thought by lriad (model::chain_opening):
  // the prompt ends with the chain's opening, where the deviation map peaks, what the area above the
  // category's normal level (baseline.json) looks like and how strong the peak is against it, and the
  // policy goes on from the decision point: the finding (the defect family) and the verdict. false (and runs made before the key), or without a
  // reference (model.reference=none): the policy writes the whole chain.
  bool prompt_evidence = false;
  // The family an anomalous chain names is the one its look suggests (text::look_family: "a thin, long
  // mark darker than around it" is a crack), in the SFT targets and GRPO's defect-type reward, and none
  // below the normal level; false (and runs made before the key): the label's (the synthetic kind's).
  // With a reference (model.reference=knn) only.
  bool family_from_look = false;
  // With family_from_look, lriad writes that family into the chains `eval` and `predict` generate
  // (text::FamilySlot): after "There is what looks like" and after the answer's "anomalous", in place
  // of the words the policy would draw; the policy still decides whether the chain is anomalous.
  // Validation (its type_agreement measures what the policy learnt) and GRPO's rollouts are left as
  // drawn. false (and runs made before the key): the policy's words stand.
  bool fill_family = false;
  // Language decoder.
  int dim = 192;
  int layers = 4;
  int heads = 6;
  int kv_heads = 2;       // < heads: grouped-query attention; == heads: multi-head
  int mlp_hidden = 512;   // SwiGLU hidden width; 0 = round(8/3 * dim) to a multiple of 32
  int vocab_size = 0;     // 0 = the tokenizer's size
  int max_seq_len = 256;  // image tokens + prompt + completion
  double rope_theta = 10000.0;
  double norm_eps = 1e-5;
  double init_std = 0.02;

  int image_tokens() const {
    return (image_size / patch_size) * (image_size / patch_size) + (reference == "knn" ? 1 : 0);
  }
  int image_channels() const { return reference == "knn" ? 4 : 3; }  // RGB (+ deviation)
  // lriad writes the chain's opening (prompt_evidence, with a reference to measure it; ignored without one).
  bool opens_chains() const { return prompt_evidence && reference == "knn"; }
  // Chains name the family of the look (family_from_look, with a reference to measure it).
  bool names_look_family() const { return family_from_look && reference == "knn"; }
  // lriad writes the look's family into generated chains (fill_family, with names_look_family()).
  bool fills_look_family() const { return fill_family && names_look_family(); }
  // Side at which images are loaded, synthesised and compared: image_size, or the fine comparison's.
  int work_size() const {
    return reference == "knn" && reference_fine_size > image_size ? reference_fine_size : image_size;
  }
  int head_dim() const { return dim / heads; }
  int mlp_width() const;

  template <class V>
  void visit(V& v) {
    v("image_size", image_size, "input image side in pixels");
    v("patch_size", patch_size, "ViT patch side in pixels");
    v("vision_dim", vision_dim, "ViT width");
    v("vision_layers", vision_layers, "ViT blocks");
    v("vision_heads", vision_heads, "ViT attention heads");
    v("vision_mlp_ratio", vision_mlp_ratio, "ViT MLP width / vision_dim");
    v("vision_positions", vision_positions, "sincos | learned");
    v("vision_stem", vision_stem, "patch | conv");
    v("reference", reference, "none | knn (normal-patch deviation evidence)");
    v("reference_patch", reference_patch, "reference patch side in pixels");
    v("reference_bank", reference_bank, "reference patches per bank");
    v("reference_rotations", reference_rotations, "rotated copies of each normal image in the banks");
    v("reference_align", reference_align, "compare parts on a plain background in a canonical pose");
    v("reference_shift", reference_shift, "pixels a pose-aligned comparison may shift");
    v("reference_fine_size", reference_fine_size, "side of the fine comparison of parts (0 = off)");
    v("reference_fine_sigma", reference_fine_sigma, "high-pass Gaussian sigma of the fine comparison, pixels");
    v("reference_fine_shift", reference_fine_shift, "pixels the fine comparison may shift");
    v("reference_neighbours", reference_neighbours, "normal images the fine comparison uses (0 = all)");
    v("reference_fine_textures", reference_fine_textures,
      "textures: also compared at reference_fine_size (high-passed patches)");
    v("reference_scale_quantile", reference_scale_quantile,
      "quantile of unseen normal images' peaks each reference map is divided by (0.5 = median)");
    v("reference_photometric", reference_photometric,
      "textures' patches compared after each image's brightness and contrast are normalised");
    v("reference_part_lighting", reference_part_lighting,
      "parts compared by place after each image's smooth lighting across the frame is divided out");
    v("reference_fixed_scenes", reference_fixed_scenes,
      "categories whose normal images show one scene at one place also compared by place");
    v("reference_colour", reference_colour, "colours no normal image shows count as deviation");
    v("reference_region_size", reference_region_size, "side at which regions' colour is compared (0 = off)");
    v("prompt_evidence", prompt_evidence,
      "lriad writes the chain's opening from the reference's measurements (with reference knn)");
    v("family_from_look", family_from_look,
      "an anomalous chain names the family its look suggests, not the label's (with reference knn)");
    v("fill_family", fill_family,
      "lriad writes the look's family into the chains eval and predict generate (with family_from_look)");
    v("dim", dim, "decoder width");
    v("layers", layers, "decoder blocks");
    v("heads", heads, "decoder query heads");
    v("kv_heads", kv_heads, "decoder key/value heads (GQA)");
    v("mlp_hidden", mlp_hidden, "SwiGLU hidden width (0 = 8/3*dim)");
    v("vocab_size", vocab_size, "0 = from the tokenizer");
    v("max_seq_len", max_seq_len, "longest sequence (image tokens + text)");
    v("rope_theta", rope_theta, "rotary embedding base");
    v("norm_eps", norm_eps, "RMSNorm/LayerNorm epsilon");
    v("init_std", init_std, "weight init standard deviation");
  }
};

struct TokenizerConfig {
  int vocab_size = 512;  // for a tokenizer lriad trains itself
  std::string model;     // path to an existing sentencepiece .model (empty = train one)
  template <class V>
  void visit(V& v) {
    v("vocab_size", vocab_size, "vocabulary of a tokenizer trained by lriad");
    v("model", model, "existing sentencepiece .model to use instead");
  }
};

struct SamplingConfig {  // GRPO's sampling (its temperature is grpo.temperature); evaluation is greedy
  int top_k = 0;         // 0 = disabled
  double top_p = 1.0;    // 1.0 = disabled; in (0, 1]
  int max_new_tokens = 48;
  template <class V>
  void visit(V& v) {
    v.removed("temperature", 1.0,
              "remove it: GRPO samples at grpo.temperature, evaluation is greedy "
              "(`lriad eval --temperature` for --samples > 1)");
    v("top_k", top_k, "keep the k most likely tokens (0 = off)");
    v("top_p", top_p, "nucleus sampling mass (1 = off)");
    v("max_new_tokens", max_new_tokens, "completion length limit");
  }
};

struct DataConfig {
  std::string format = "synth";  // mvtec | visa | folder | synth
  std::string root = "data/demo";
  std::vector<std::string> categories;  // empty = all
  // Training data is mask-free: normal training images, plus anomalies lriad synthesises.
  double anomaly_ratio = 0.5;  // share of training samples made anomalous on the fly
  // Relative weights of the synthetic anomaly kinds (see lriad/anomaly/anomaly.h); unequal on
  // purpose, so that rare kinds exist and the imbalance reward has work to do.
  std::map<std::string, double> anomaly_mix = {{"cut_paste", 0.22},    {"texture_blend", 0.22}, {"scratch", 0.16},
                                               {"stain", 0.14},        {"hole", 0.1},           {"crack", 0.08},
                                               {"missing_part", 0.05}, {"misplaced_part", 0.03}};
  double donor_other_category = 0.3;  // chance that foreign texture comes from another category
  // Size (fraction of the image side) and contrast ranges of synthetic anomalies.
  double anomaly_scale_min = 0.03, anomaly_scale_max = 0.25;
  double anomaly_contrast_min = 0.15, anomaly_contrast_max = 0.7;
  double anomaly_min_visible = 0.02;  // redraw anomalies whose mean |change| in the footprint is lower
  // Evidence gate (with model.reference knn): a synthetic anomaly is labelled anomalous only when the
  // normal reference's deviation map, inside its footprint, peaks above the category's normal level
  // (this quantile of the normal training draws' peaks); otherwise it is redrawn, stronger, up to
  // evidence_gate_attempts times, then the draw is the normal image. 0 = off.
  double evidence_gate_quantile = 0.95;
  int evidence_gate_attempts = 4;
  double train_from_test = 0.0;       // share of the labelled test split that joins training (0 = none)
  double val_fraction = 0.1;          // normal training images held out for validation
  bool skip_bad_images = false;       // unreadable images become counted warnings
  uint64_t folder_seed = 0;           // folder format: split seed
  double folder_test_fraction = 0.3;  // folder format: test share per class
  template <class V>
  void visit(V& v) {
    v("format", format, "dataset format");
    v("root", root, "dataset root directory");
    v("categories", categories, "categories to use (empty = all)");
    v("anomaly_ratio", anomaly_ratio, "share of synthetic anomalies in training batches");
    v("anomaly_mix", anomaly_mix, "relative weights of synthetic anomaly kinds");
    v("donor_other_category", donor_other_category, "chance of foreign texture from another category");
    v("anomaly_scale_min", anomaly_scale_min, "smallest synthetic anomaly (fraction of the side)");
    v("anomaly_scale_max", anomaly_scale_max, "largest synthetic anomaly (fraction of the side)");
    v("anomaly_contrast_min", anomaly_contrast_min, "weakest synthetic anomaly contrast (0-1)");
    v("anomaly_contrast_max", anomaly_contrast_max, "strongest synthetic anomaly contrast (0-1)");
    v("anomaly_min_visible", anomaly_min_visible, "least mean change inside a synthetic anomaly (0-1)");
    v("evidence_gate_quantile", evidence_gate_quantile,
      "normal level a synthetic anomaly's evidence must exceed (quantile; 0 = off)");
    v("evidence_gate_attempts", evidence_gate_attempts, "redraws of a synthetic anomaly the evidence does not show");
    v("train_from_test", train_from_test, "share of the test split used for training");
    v("val_fraction", val_fraction, "share of normal training images held out for validation");
    v("skip_bad_images", skip_bad_images, "skip unreadable images with a warning");
    v("folder_seed", folder_seed, "folder format split seed");
    v("folder_test_fraction", folder_test_fraction, "folder format test share per class");
  }
};

// Stage 0, vision warm-up: the ViT and a linear probe alone on image-level labels of the same
// training draws (a from-scratch stand-in for a pretrained vision tower; cheap per step). Its
// AdamW takes sft.weight_decay and sft.max_grad_norm and warms up over min(sft.warmup_steps,
// steps / 10) steps. The keys were sft.vision_steps, sft.vision_batch_size and sft.vision_lr
// (still read under those names: kMovedKeys).
struct VisionWarmupConfig {
  int steps = 0;  // 0 skips the stage
  int batch_size = 48;
  double lr = 1e-3;
  template <class V>
  void visit(V& v) {
    v("steps", steps, "vision warm-up steps before SFT (0 = skip)");
    v("batch_size", batch_size, "images per vision warm-up step");
    v("lr", lr, "vision warm-up peak learning rate");
  }
};

// Stage 1: supervised warm start on templated chains of thought.
struct SftConfig {
  int steps = 300;  // 0 skips the stage
  int batch_size = 16;
  double lr = 1e-3;
  int warmup_steps = 20;
  double weight_decay = 0.01;
  double max_grad_norm = 1.0;
  // Weight of an auxiliary image-level loss on the vision tokens (a linear probe, max-pooled over
  // patches, trained with the normal/anomalous label; mask-free). A from-scratch ViT learns local
  // defects much faster with it; the probe is not part of the policy. 0 = off.
  double vision_aux = 0.0;
  template <class V>
  void visit(V& v) {
    v("steps", steps, "SFT steps (0 = skip)");
    v("vision_aux", vision_aux, "weight of the auxiliary image-level vision loss (0 = off)");
    v("batch_size", batch_size, "samples per step");
    v("lr", lr, "peak learning rate");
    v("warmup_steps", warmup_steps, "linear warmup steps");
    v("weight_decay", weight_decay, "AdamW weight decay");
    v("max_grad_norm", max_grad_norm, "gradient clipping norm (0 = off)");
  }
};

// Stage 2: GRPO (names follow TRL's GRPOConfig).
struct GrpoConfig {
  int steps = 150;          // 0 skips the stage
  int batch_size = 4;       // prompts per step
  int num_generations = 6;  // G completions per prompt
  // 1e-4 on the demo (tiny, 2 CPU cores): 2e-4 drifted off format and collapsed to "normal" in one
  // run (test balanced accuracy 0.50), 5e-5 stayed at the SFT level, 1e-4 gained +0.02 over SFT.
  double lr = 1e-4;
  int warmup_steps = 10;
  double weight_decay = 0.0;
  double max_grad_norm = 1.0;
  double beta = 0.04;              // KL weight; 0 keeps no reference copy
  double epsilon = 0.2;            // clip range (low)
  double epsilon_high = 0.0;       // clip range (high); 0 = epsilon
  int num_iterations = 1;          // updates per generation batch (mu)
  std::string loss_type = "dapo";  // grpo | dr_grpo | dapo
  // "batch": advantages are divided by the batch's reward std, not each group's. Dividing by the
  // group's std would cancel LR-IAD's focal term: it adds the same bonus to every right answer in a
  // group (one image, one belief), and a group whose rewards are all scaled alike gets the same
  // advantages. Across the batch, groups of rare or uncertain classes keep their larger rewards.
  std::string scale_rewards = "batch";  // group | batch | none
  bool mask_truncated_completions = true;
  bool drop_zero_std_groups = false;
  double temperature = 1.0;  // sampling temperature during GRPO
  // Completions per forward/backward pass, 0 = all batch_size * num_generations at once. Below
  // that the gradients are accumulated over passes (the same update up to float rounding): memory
  // for the activations of micro_batch rows, one more forward pass per step. 32 is more than the
  // shipped configs' 4 x 6, so their steps are one pass; `lriad bench`'s 8 x 8 are two (fp32 peak
  // 1.96 -> 1.09 GiB, the step no slower on 2 cores: measured 2026-12-03).
  int micro_batch = 32;
  template <class V>
  void visit(V& v) {
    v("steps", steps, "GRPO steps (0 = skip)");
    v("batch_size", batch_size, "prompts per step");
    v("num_generations", num_generations, "completions per prompt (G)");
    v("lr", lr, "peak learning rate");
    v("warmup_steps", warmup_steps, "linear warmup steps");
    v("weight_decay", weight_decay, "AdamW weight decay");
    v("max_grad_norm", max_grad_norm, "gradient clipping norm (0 = off)");
    v("beta", beta, "KL weight (0 = no reference model)");
    v("epsilon", epsilon, "lower clip range");
    v("epsilon_high", epsilon_high, "upper clip range (0 = epsilon)");
    v("num_iterations", num_iterations, "updates per generation batch");
    v("loss_type", loss_type, "grpo | dr_grpo | dapo");
    v("scale_rewards", scale_rewards, "group | batch | none");
    v("mask_truncated_completions", mask_truncated_completions, "exclude completions without eos");
    v("drop_zero_std_groups", drop_zero_std_groups, "drop groups whose rewards all tie");
    v("temperature", temperature, "sampling temperature");
    v("micro_batch", micro_batch, "completions per forward/backward pass (0 = all at once; less saves memory)");
  }
};

// Reward weights; the focal term is LR-IAD's class-imbalance reward alpha*(1-p)^gamma*f_c, with
// alpha = `focal` (the term's weight), p the policy's belief in the right verdict (read once per
// group, rl::group_beliefs) and f_c the class weight (rl/class_weights.h).
struct RewardConfig {
  double format = 0.5;
  double accuracy = 1.0;
  double defect_type = 0.5;
  double consistency = 0.25;
  double object = 0.25;  // the reasoning names the sample's category
  double region = 0.25;  // the reasoning's region is where the evidence peaks (mask-free)
  double focal = 1.0;    // alpha: weight of the focal/imbalance term (0 = plain accuracy reward)
  double focal_gamma = 2.0;
  std::string class_weights = "dynamic";  // dynamic | static | none
  double weight_power = 1.0;              // softens (< 1) or sharpens inverse-frequency weights
  // Share of defective parts on the real line, which weighs normal against anomalous (the draws are
  // balanced by data.anomaly_ratio, the line is not): 0 = what the dataset shows (defective test
  // images over all its images: MVTec-AD 23.5%, VisA 11.1%), else this value in (0, 1).
  double anomaly_share = 0.0;
  int dynamic_every = 10;           // steps between dynamic weight updates
  double dynamic_momentum = 0.9;    // EMA of each class's accuracy (for dynamic_difficulty)
  double dynamic_difficulty = 0.0;  // dynamic: also multiply by (1 - class accuracy)^this (0 = rarity only)
  template <class V>
  void visit(V& v) {
    v("format", format, "weight of the format reward");
    v("accuracy", accuracy, "weight of the verdict accuracy reward");
    v("defect_type", defect_type, "weight of the defect type reward");
    v("consistency", consistency, "weight of the reasoning/answer consistency reward");
    v("object", object, "weight of the object reward (the reasoning names the sample's category)");
    v("region", region, "weight of the region reward (the stated region is where the evidence peaks)");
    v("focal", focal, "alpha: weight of the class-imbalance focal reward (0 = plain accuracy reward)");
    v("focal_gamma", focal_gamma, "focal gamma");
    v("class_weights", class_weights, "dynamic | static | none");
    v("weight_power", weight_power, "exponent on class weights");
    v("anomaly_share", anomaly_share, "defective share of the real line (0 = as the dataset shows)");
    v("dynamic_every", dynamic_every, "steps between dynamic weight updates");
    v("dynamic_momentum", dynamic_momentum, "EMA momentum of class accuracy (dynamic_difficulty)");
    v("dynamic_difficulty", dynamic_difficulty, "dynamic: power of (1 - class accuracy), 0 = off");
  }
};

// Logging, validation and checkpoint cadence.
struct TrainConfig {
  int log_every = 10;              // console lines (metrics.jsonl gets every step)
  int log_completions_every = 25;  // completions/step_NNNNN.jsonl
  int eval_every = 50;             // validation on held-out training data
  int save_every = 50;             // checkpoint cadence
  int val_size = 96;               // validation samples (half synthetic anomalies)
  int max_consecutive_skips = 5;   // non-finite steps in a row before stopping
  // Batches prepared ahead by a background thread: -1 = auto (2 on CUDA, where the CPU is free
  // while the GPU trains; 0 on CPU, where the thread would take cores from the step: measured
  // 2.4x slower SFT steps on 2 cores), 0 = in the step, N = up to N batches ahead.
  int prefetch = -1;
  template <class V>
  void visit(V& v) {
    v("log_every", log_every, "steps between console lines");
    v("log_completions_every", log_completions_every, "steps between completion logs");
    v("eval_every", eval_every, "steps between validations");
    v("save_every", save_every, "steps between checkpoints");
    v("val_size", val_size, "validation samples");
    v("max_consecutive_skips", max_consecutive_skips, "non-finite steps tolerated in a row");
    v("prefetch", prefetch, "batches prepared ahead on a background thread (-1 auto: 2 on CUDA, 0 on CPU)");
  }
};

// A pretrained PaliGemma as the policy (`lriad train --init RUN` of a `lriad model import` run):
// the base weights stay frozen, LoRA adapters train, and the run's weight files hold the adapters.
// The model.* settings still size the normal reference's evidence, which reaches the PaliGemma as
// words in its prompt. "" base = lriad's own policy (model.*).
struct PretrainedConfig {
  std::string base;            // an imported PaliGemma run directory (absolute once a run starts)
  std::string dtype = "fp32";  // fp32 | bf16: the frozen base weights in memory (bf16 on CUDA)
  int lora_rank = 8;
  double lora_alpha = 16;
  std::vector<std::string> lora_targets = {"q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"};
  bool lora_vision = false;  // adapt the vision tower's projections too (else it stays frozen as loaded)
  bool recompute = false;    // each block's activations recomputed in the backward pass (less memory)
  template <class V>
  void visit(V& v) {
    v("base", base, "imported PaliGemma run (lriad model import) to fine-tune; empty = lriad's own policy");
    v("dtype", dtype, "fp32 | bf16: the frozen base weights in memory");
    v("lora_rank", lora_rank, "LoRA rank");
    v("lora_alpha", lora_alpha, "LoRA alpha (scale alpha / rank)");
    v("lora_targets", lora_targets, "projections adapted, by name (q_proj, k_proj, ..., down_proj)");
    v("lora_vision", lora_vision, "adapt the vision tower's projections too");
    v("recompute", recompute, "recompute each block's activations in the backward pass (less memory)");
  }
};

struct RunConfig {
  std::string name = "tiny";
  uint64_t seed = 0;
  std::string device = "cpu";      // cpu | cuda
  std::string precision = "auto";  // auto (bf16 on CUDA; on CPU measured: model::choose_precision) | fp32 | bf16
  DataConfig data;
  ModelConfig model;
  TokenizerConfig tokenizer;
  SamplingConfig sampling;
  VisionWarmupConfig vision_warmup;
  SftConfig sft;
  GrpoConfig grpo;
  RewardConfig reward;
  TrainConfig train;
  PretrainedConfig pretrained;

  template <class V>
  void visit(V& v) {
    v("name", name, "config name");
    v("seed", seed, "random seed");
    v("device", device, "cpu | cuda");
    v("precision", precision,
      "auto (bf16 on CUDA; on CPU bf16 autocast where a start-up GEMM probe finds it >= 1.5x faster) | fp32 | bf16");
    v.section("data", data);
    v.section("model", model);
    v.section("tokenizer", tokenizer);
    v.section("sampling", sampling);
    v.section("vision_warmup", vision_warmup);
    v.section("sft", sft);
    v.section("grpo", grpo);
    v.section("reward", reward);
    v.section("train", train);
    v.section("pretrained", pretrained);
  }

  // Throws lriad::Error naming the key and why the value is invalid.
  void validate() const;
};

// Defaults < the config file (if not empty: a path or a shipped config's name, io::find_config) <
// `overrides` ("model.dim=256"); validated. Logs which file it read.
RunConfig load_config(const std::string& name_or_path, const std::vector<std::string>& overrides = {});
// The same from JSON text already in memory ("{}" = defaults); `source` names it in errors.
RunConfig parse_config(const std::string& json_text, const std::string& source,
                       const std::vector<std::string>& overrides = {});
RunConfig config_from_json(const nlohmann::json& j, const std::string& source);

// Keys that moved to another section keep being read under their old name (older runs'
// config.json, users' files, --set): the value goes to its new place. Both names at once are
// refused. Applied by config_from_json.
struct MovedKey {
  const char* from_section;
  const char* from_key;
  const char* to_section;
  const char* to_key;
};
inline constexpr MovedKey kMovedKeys[] = {
    {"sft", "vision_steps", "vision_warmup", "steps"},
    {"sft", "vision_batch_size", "vision_warmup", "batch_size"},
    {"sft", "vision_lr", "vision_warmup", "lr"},
};
nlohmann::json with_moved_keys(nlohmann::json j, const std::string& source);
nlohmann::json to_json(const RunConfig& config);
void save_config(const RunConfig& config, const std::string& path);  // atomic

}  // namespace lriad
