// `lriad eval` / `lriad predict`: generation, parsing, scoring and the split summary (see evaluator.h).
#include <spdlog/spdlog.h>

#include <algorithm>
#include <chrono>
#include <ctime>
#include <optional>
#include <set>

#include "lriad/data/dataset.h"
#include "lriad/data/image_io.h"
#include "lriad/data/image_tensor.h"
#include "lriad/reference/reference.h"
#include "lriad/eval/baseline.h"
#include "lriad/eval/evaluator.h"
#include "lriad/io/csv.h"
#include "lriad/io/error.h"
#include "lriad/io/fs.h"
#include "lriad/model/generate.h"
#include "lriad/model/policy_input.h"
#include "lriad/model/precision.h"
#include "lriad/model/verdict.h"
#include "lriad/text/answer.h"
#include "lriad/text/defect_family.h"
#include "lriad/text/evidence.h"
#include "lriad/text/family_slot.h"
#include "lriad/text/prompt.h"
#include "lriad/train/baseline.h"
#include "lriad/train/checkpoint.h"
#include "lriad/train/paligemma_grpo.h"
#include "lriad/train/progress.h"

namespace lriad::eval {

struct Inspector::State {
  train::LoadedPolicy loaded;
  torch::Device device{torch::kCPU};
  model::VerdictIds ids;
  model::DecisionPoints decisions;  // filled per category on first use
  const model::DecisionPoints& decisions_for(const std::vector<Input>& inputs) {
    for (const auto& in : inputs)
      if (!decisions.count(in.category))  // none found: an empty list, not looked up again
        decisions[in.category] =
            model::decision_points(*loaded.tokenizer, {in.category}, loaded.config.model.opens_chains())[in.category];
    return decisions;
  }
  std::unique_ptr<reference::NormalReference> reference;  // model.reference "knn"
  std::optional<model::InputRecord> record;               // the run's policy_input.json (absent in older runs)
  std::optional<train::BaselineThresholds> levels;        // baseline.json: each category's normal level (the facts)
  std::optional<double> level(const std::string& category) const {  // the facts' normal level
    return levels ? levels->level(category) : std::nullopt;
  }
  std::set<std::string> unopened;                       // categories warned about: no level for the opening
  std::map<std::string, std::vector<int64_t>> prompts;  // by text
  // The chains of a batch and their anomaly scores: lriad's own policy's from its inputs (C,S,S), or
  // a PaliGemma's from the images at their model side (evaluator.cpp). `families`: each input's look's
  // family, written into its chains with model.fill_family (text::FamilySlot).
  std::pair<model::Generation, std::vector<double>> own_chains(const std::vector<torch::Tensor>& images,
                                                               const model::TokenRows& prompts,
                                                               const std::vector<Input>& inputs,
                                                               const std::vector<std::string>& families,
                                                               const InspectOptions& options);
  std::pair<model::Generation, std::vector<double>> pretrained_chains(model::PaliGemmaImpl& pali,
                                                                      const std::vector<cv::Mat>& images,
                                                                      const model::TokenRows& prompts,
                                                                      const std::vector<std::string>& categories,
                                                                      const InspectOptions& options);
  // The prompt's token ids, kept by text when `keep` (not for prompts that hold an image's own opening).
  std::vector<int64_t> prompt(const std::string& text, bool keep) {
    auto it = prompts.find(text);
    if (it != prompts.end()) return it->second;
    std::vector<int64_t> ids;
    for (int id : loaded.tokenizer->encode(text)) ids.push_back(id);
    if (keep) prompts[text] = ids;
    return ids;
  }
};

std::string default_weights(const std::string& run_dir) {
  // a name in the run (metrics.json's "weights")
  return io::is_file(train::RunFiles{run_dir}.best()) ? train::RunFiles::kBest : train::RunFiles::kWeights;
}

Inspector::Inspector(const std::string& run_dir, const std::string& device, const std::string& weights_in)
    : s_(std::make_unique<State>()) {
  const std::string weights = weights_in.empty() ? default_weights(run_dir) : weights_in;
  const std::string path = weights.find('/') != std::string::npos ? weights : run_dir + "/" + weights;
  spdlog::info("policy: {}", path);
  s_->loaded = train::load_policy(run_dir, device, path);
  s_->device = torch::Device(s_->loaded.config.device);
  s_->ids = model::verdict_ids(*s_->loaded.tokenizer);
  if (s_->loaded.config.model.reference == "knn") {
    const std::string path = train::RunFiles{run_dir}.reference();
    if (!io::is_file(path))
      throw Error("run " + run_dir + " uses model.reference=knn but has no reference.safetensors",
                  "the run is incomplete: train it again (or copy the file along with the weights)");
    s_->reference = std::make_unique<reference::NormalReference>(reference::NormalReference::load(path));
    if (s_->device.is_cuda()) s_->reference->to(s_->device);  // its products on the GPU
  }
  const std::string levels = train::RunFiles{run_dir}.baseline();
  if (s_->reference && io::is_file(levels))
    s_->levels = train::load_baseline(levels);
  else if (s_->reference && s_->loaded.config.model.opens_chains())  // a run without one (model init): rebuilt
    s_->levels = train::run_baseline(run_dir, s_->loaded.config, *s_->reference);
  const std::string record = train::RunFiles{run_dir}.policy_input();
  if (io::is_file(record)) s_->record = model::InputRecord::load(record);
  if (s_->loaded.pali)
    s_->loaded.pali->eval();
  else
    s_->loaded.policy->eval();
}

Inspector::~Inspector() = default;

static_assert(reference::NormalReference::kBothBanks == -1, "Inspector::Input::reference_bank's default");

int Inspector::training_bank(const std::string& path) const {
  return s_->record ? s_->record->bank_of(path, reference::NormalReference::kBothBanks)
                    : reference::NormalReference::kBothBanks;
}

const RunConfig& Inspector::config() const { return s_->loaded.config; }

const reference::NormalReference* Inspector::reference() const { return s_->reference.get(); }

// lriad's own policy: its chains (greedy, or G sampled) and their anomaly scores.
std::pair<model::Generation, std::vector<double>> Inspector::State::own_chains(const std::vector<torch::Tensor>& images,
                                                                               const model::TokenRows& prompts,
                                                                               const std::vector<Input>& inputs,
                                                                               const std::vector<std::string>& families,
                                                                               const InspectOptions& options) {
  const auto& config = loaded.config;
  const int G = std::max(1, options.samples);
  model::GenerateOptions go;
  go.group = G;
  go.max_new_tokens = config.sampling.max_new_tokens;
  go.sampling.greedy = G == 1;
  go.sampling.temperature = options.temperature;
  go.sampling.top_k = config.sampling.top_k;
  go.sampling.top_p = config.sampling.top_p;
  go.seed = options.seed;
  go.eos_id = loaded.tokenizer->eos_id();
  go.pad_id = loaded.tokenizer->pad_id();
  if (config.model.fills_look_family()) go.fill = text::FamilySlot(*loaded.tokenizer, families, G);
  auto& policy = loaded.policy;
  model::Generation gen;
  std::vector<double> scores;
  const auto batch = torch::stack(images).to(device);  // (B,C,S,S)
  {
    model::AutocastGuard autocast(device, model::use_bf16(config));
    gen = model::generate(policy, batch, prompts, go);
    // The anomaly score: 1 - p(normal) where the chain of thought commits to a verdict (or, for a
    // chain the templates do not describe, p(anomalous) at the answer position).
    model::TokenRows rows;
    std::vector<std::string> row_categories;
    for (size_t i = 0; i < prompts.size(); ++i)
      for (int g = 0; g < G; ++g) {
        rows.push_back(prompts[i]);
        row_categories.push_back(inputs[i].category);
      }
    const auto expanded = G == 1 ? batch : batch.repeat_interleave(G, 0);                 // (B*G,C,S,S)
    const auto logits = policy->completion_logits(expanded, rows, gen.tokens, gen.mask);  // (N,C,V)
    const auto at_answer = model::verdict_probs(logits, gen.tokens, gen.mask, ids);       // (N,2)
    scores = model::anomaly_scores(
        model::decision_probs(logits, gen.tokens, gen.mask, row_categories, decisions_for(inputs), at_answer));
  }
  return {gen, scores};
}

// A PaliGemma's chains: greedy (or G sampled at options.temperature) with the KV cache, one image at a
// time; the anomaly score as lriad's own policy's (the verdict's probability where the chain commits
// to one), else -1: inspect then takes the verdict the chain states (0.5 without one), since a
// pretrained tokenizer may hold no <answer> piece to read the probability after.
std::pair<model::Generation, std::vector<double>> Inspector::State::pretrained_chains(
    model::PaliGemmaImpl& pali, const std::vector<cv::Mat>& images, const model::TokenRows& prompts,
    const std::vector<std::string>& categories, const InspectOptions& options) {
  const int G = std::max(1, options.samples);
  const int max_new = loaded.config.sampling.max_new_tokens;
  const auto& tok = *loaded.tokenizer;
  const auto dtype = pali.embed->weight.scalar_type();
  auto generator = at::detail::createCPUGenerator(options.seed);
  train::IdRows rows;
  std::vector<torch::Tensor> pixels;  // (3,S',S') per row
  std::vector<std::string> row_categories;
  for (size_t b = 0; b < images.size(); ++b) {
    // As training makes them (train/context.cpp): from the image at its model side.
    const auto one = model::siglip_pixels(images[b], pali.config.image_size).to(device, dtype);  // (1,3,S',S')
    const auto px = one.squeeze(0);
    train::IdRows group =
        G == 1 ? train::IdRows{model::greedy_generate(pali, one, prompts[b], max_new)}
               : train::paligemma_sample_group(pali, one, prompts[b], G, max_new, options.temperature, generator);
    for (auto& c : group) {
      rows.push_back(std::move(c));
      pixels.push_back(px);
      row_categories.push_back(categories[b]);
    }
  }
  const int64_t N = int64_t(rows.size());
  int64_t C = 1;
  for (const auto& r : rows) C = std::max(C, int64_t(r.size()));
  model::Generation gen;
  gen.tokens = train::padded_ids(rows, C, tok.pad_id());  // (N,C)
  gen.lengths = torch::zeros({N}, torch::kInt64);
  gen.truncated = torch::zeros({N}, torch::kBool);
  for (int64_t n = 0; n < N; ++n) {
    gen.lengths[n] = int64_t(rows[size_t(n)].size());
    gen.truncated[n] = rows[size_t(n)].empty() || rows[size_t(n)].back() != tok.eos_id();
  }
  gen.mask = torch::arange(C).unsqueeze(0) < gen.lengths.unsqueeze(1);  // (N,C)
  std::vector<double> scores;
  for (int64_t n = 0; n < N; ++n) {
    const auto& r = rows[size_t(n)];
    double score = -1;
    if (!r.empty()) {  // one row at a time: (1,C,V) logits of a 257k vocabulary
      const auto [logits, mask] =
          train::paligemma_completion_logits(pali, pixels[size_t(n)].unsqueeze(0), {prompts[size_t(n / G)]}, {r});
      const auto tokens = gen.tokens.narrow(0, n, 1).narrow(1, 0, int64_t(r.size()));
      const auto at_answer = model::verdict_probs(logits, tokens, mask, ids);  // (1,2)
      const auto probs = model::decision_probs(logits, tokens, mask, {row_categories[size_t(n)]}, decisions, at_answer);
      score = model::anomaly_scores(probs, -1.0)[0];
    }
    scores.push_back(score);  // -1: unread (inspect falls back on the verdict the chain states)
  }
  return {gen, scores};
}

std::vector<Prediction> Inspector::inspect(const std::vector<Input>& inputs, const InspectOptions& options,
                                           const std::vector<std::string>& known_defect_types) {
  if (inputs.empty()) return {};
  torch::NoGradGuard no_grad;
  const auto& config = s_->loaded.config;
  const int G = std::max(1, options.samples);
  s_->decisions_for(inputs);
  std::vector<torch::Tensor> images;
  model::TokenRows prompts;
  std::vector<std::string> openings;                        // the chains' openings lriad wrote (model::chain_opening)
  std::vector<std::optional<double>> peaks(inputs.size());  // the evidence-only baseline's score (eval/baseline.h)
  std::vector<std::vector<text::Region>> where(inputs.size());  // where the evidence peaks (text/evidence.h)
  std::vector<std::string> look_families(inputs.size());        // the family its look suggests, "" below the level
  std::vector<cv::Mat> heat(inputs.size());                     // the map over the normal level, for the report
  std::vector<cv::Mat> sides;  // a PaliGemma's images at their model side, its pixels' source
  for (size_t i = 0; i < inputs.size(); ++i) {
    const auto& in = inputs[i];
    // The image at the side training kept it at, then the policy's input (model::decoded_policy_input).
    const cv::Mat side = model::decoded_model_side(in.image, in.category, config.model, s_->reference.get(),
                                                   s_->record ? &*s_->record : nullptr);
    reference::MapPart part = reference::MapPart::Patches;  // the map's part largest at its peak
    images.push_back(model::policy_input(side, in.category, in.reference_bank, config.model, s_->reference.get(),
                                         &part));  // (C,S,S)
    if (s_->loaded.pali) sides.push_back(side);
    // The reference's measurements of the input, once: the chain's opening, the evidence's cells, the heat map.
    std::optional<text::EvidenceFacts> facts;
    const auto level = s_->level(in.category);
    if (s_->reference) {
      peaks[i] = train::evidence_peak(images[i]);
      if (level) {
        // A run trained before the chains stated the map's part, read lines at the side it kept the
        // image at, absent areas or new colours, is given the facts it learnt from.
        const auto& reading = s_->record ? *s_->record : model::InputRecord::unrecorded();
        facts = reading.facts(images[i], *level, part, side, s_->reference.get(), in.category, in.reference_bank);
        const auto map = (images[i][3] / *level).to(torch::kFloat32).contiguous();  // (S,S)
        heat[i] = cv::Mat(int(map.size(0)), int(map.size(1)), CV_32FC1, map.data_ptr<float>()).clone();
        where[i].push_back(facts->where);
        if (facts->also) where[i].push_back(*facts->also);
        if (const auto family = text::look_family(*facts)) look_families[i] = text::family_word(*family);
      }
    }
    // "" without prompt_evidence and, with a warning, for a category without a normal level (a run
    // that never had held-out normals): the policy then writes the whole chain.
    if (config.model.opens_chains() && !level && s_->unopened.insert(in.category).second)
      spdlog::warn(
          "{}: no normal level in the run's baseline.json, so its chains are not opened with the reference's "
          "measurements (the policy writes them whole, as it was not trained to)",
          in.category);
    openings.push_back(model::chain_opening(in.category, config.model, facts ? &*facts : nullptr));
    const auto* f = facts ? &*facts : nullptr;
    if (!s_->loaded.pali) {
      prompts.push_back(s_->prompt(model::policy_prompt(in.category, config.model, f), openings.back().empty()));
    } else {  // PaliGemma's layout, as training builds it (train/context.cpp)
      const auto ids = s_->prompt(model::pretrained_prompt(in.category, config.model, f), openings.back().empty());
      prompts.push_back(model::paligemma_prompt(s_->loaded.pali->config, std::vector<int>(ids.begin(), ids.end())));
    }
  }
  model::Generation gen;
  std::vector<double> scores;
  if (s_->loaded.pali) {
    std::vector<std::string> categories;
    for (const auto& in : inputs) categories.push_back(in.category);
    std::tie(gen, scores) = s_->pretrained_chains(*s_->loaded.pali, sides, prompts, categories, options);
  } else {
    std::tie(gen, scores) = s_->own_chains(images, prompts, inputs, look_families, options);
  }
  const auto lengths = gen.lengths.to(torch::kCPU), truncated = gen.truncated.to(torch::kCPU);
  const auto tokens = gen.tokens.to(torch::kCPU).contiguous();  // (N,C)
  const int64_t C = tokens.size(1);
  std::vector<Prediction> out;
  for (size_t b = 0; b < inputs.size(); ++b) {
    std::vector<Prediction> chains;
    for (int g = 0; g < G; ++g) {
      const int64_t n = int64_t(b) * G + g;
      Prediction p;
      p.image = inputs[b].path;
      p.category = inputs[b].category;
      p.completion = openings[b] + s_->loaded.tokenizer->decode_completion(tokens.data_ptr<int64_t>() + n * C,
                                                                           std::min(lengths[n].item<int64_t>(), C));
      const auto parsed = text::parse_completion(p.completion, known_defect_types);
      p.parsed = parsed.verdict.has_value();
      p.pred = parsed.verdict.value_or(-1);
      p.well_formed = parsed.well_formed;
      p.consistent = parsed.consistent;
      p.pred_defect_type = parsed.defect_type;
      p.region = parsed.region ? text::region_word(*parsed.region) : "";
      p.truncated = truncated[n].item<bool>();
      p.length = int(lengths[n].item<int64_t>());
      p.score = scores[size_t(n)] >= 0 ? scores[size_t(n)] : p.parsed ? double(p.pred) : 0.5;
      p.evidence_peak = peaks[b];
      p.evidence_regions = where[b];
      p.evidence_family = look_families[b];
      p.evidence_map = heat[b];
      chains.push_back(std::move(p));
    }
    if (G == 1) {
      out.push_back(std::move(chains[0]));
      continue;
    }
    // Majority vote over the parsed chains; a tie goes to the mean score.
    int votes[2] = {0, 0};
    double mean_score = 0;
    std::vector<int> all;
    for (const auto& c : chains) {
      if (c.parsed) ++votes[c.pred];
      mean_score += c.score / G;
      all.push_back(c.parsed ? c.pred : -1);
    }
    const bool any = votes[0] + votes[1] > 0;
    const int verdict = votes[1] > votes[0] ? 1 : votes[0] > votes[1] ? 0 : mean_score >= 0.5 ? 1 : 0;
    size_t pick = 0;
    for (size_t g = 0; g < chains.size(); ++g)
      if (chains[g].parsed && chains[g].pred == verdict) {
        pick = g;
        break;
      }
    Prediction p = std::move(chains[pick]);
    p.parsed = any;
    p.pred = any ? verdict : -1;
    p.score = mean_score;
    p.votes = all;
    out.push_back(std::move(p));
  }
  return out;
}

namespace {

std::string timestamp() {
  const std::time_t now = std::time(nullptr);
  char buf[32];
  std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%SZ", std::gmtime(&now));
  return buf;
}

std::set<std::string> used_in_training(const std::string& run_dir) {
  std::set<std::string> out;
  const std::string path = train::RunFiles{run_dir}.train_from_test();
  if (!io::is_file(path)) return out;
  const io::CsvTable t = io::read_csv(path);
  const size_t col = t.column("image");
  for (const auto& row : t.rows) out.insert(row[col]);
  return out;
}

}  // namespace

EvalResult evaluate(const EvalOptions& o) {
  if (o.split != "test" && o.split != "train")
    throw Error("--split " + o.split + " is not a split", "use test or train");
  if (o.batch_size < 1) throw Error("--batch-size must be at least 1");
  Inspector inspector(o.run_dir, o.device, o.weights);
  const RunConfig& config = inspector.config();
  const std::string format = o.format.empty() ? config.data.format : o.format;
  const std::string root = o.root.empty() ? config.data.root : o.root;
  data::LoadOptions lo;
  lo.categories = o.categories;
  lo.folder_seed = config.data.folder_seed;
  lo.folder_test_fraction = config.data.folder_test_fraction;
  const data::Dataset dataset = data::load_dataset(data::parse_format(format), root, lo);
  const data::Split split = o.split == "test" ? data::Split::Test : data::Split::Train;
  const auto exclude = used_in_training(o.run_dir);

  std::vector<data::Sample> samples;
  std::set<std::string> types;
  EvalResult result;
  for (const auto& cat : dataset.categories)
    for (const auto& s : dataset.select(cat, split)) {
      if (exclude.count(s.image_path)) {
        ++result.excluded;
        continue;
      }
      samples.push_back(s);
      if (s.label == data::Label::Anomalous) types.insert(s.defect_type);
    }
  if (samples.empty())
    throw Error("no " + o.split + " images to evaluate in " + root, "check --root, --format and --category");
  if (result.excluded)
    spdlog::info("{} test images are left out: training used them (data.train_from_test)", result.excluded);
  const std::vector<std::string> known(types.begin(), types.end());
  if (split == data::Split::Train && inspector.config().model.reference == "knn") {
    size_t own = 0;
    for (const auto& s : samples)
      own += inspector.training_bank(s.image_path) != reference::NormalReference::kBothBanks;
    spdlog::info(
        "{} of {} train images are compared with the reference bank training compared them with, the rest "
        "(validation, unknown paths) with both",
        own, samples.size());
  }
  spdlog::info("evaluating {} {} images of {} categories from {}", samples.size(), o.split, dataset.categories.size(),
               root);

  train::Progress progress("eval", int(samples.size()), std::max(1, o.batch_size));
  int64_t right = 0;
  for (size_t start = 0; start < samples.size(); start += size_t(o.batch_size)) {
    const size_t end = std::min(samples.size(), start + size_t(o.batch_size));
    std::vector<Inspector::Input> inputs;
    std::vector<size_t> read;  // indices into samples of the images in `inputs`
    for (size_t i = start; i < end; ++i) {
      const cv::Mat image = data::read_image_or_skip(samples[i].image_path, o.skip_bad_images,
                                                     "fix or remove the file, or pass --skip-bad-images");
      if (image.empty()) {
        result.skipped.push_back(samples[i].image_path);
        continue;
      }
      inputs.push_back(
          {image, samples[i].category, samples[i].image_path, inspector.training_bank(samples[i].image_path)});
      read.push_back(i);
    }
    InspectOptions chunk = o.inspect;  // this chunk's seed
    chunk.seed = o.inspect.seed + start;
    auto preds = inputs.empty() ? std::vector<Prediction>{} : inspector.inspect(inputs, chunk, known);
    for (size_t k = 0; k < read.size(); ++k) {
      Prediction& p = preds[k];
      const data::Sample& s = samples[read[k]];
      p.label = s.label == data::Label::Anomalous ? 1 : 0;
      p.defect_type = s.defect_type;
      if (!p.parsed) p.pred = 1 - p.label;  // an unparseable answer counts as wrong
      if (s.mask_path) {
        p.mask = *s.mask_path;
        if (p.label == 1 && p.pred == 1) {
          const auto region = text::parse_region(p.region);
          const cv::Mat mask = data::read_mask(*s.mask_path);
          p.localized = region.has_value() && region_overlaps_mask(*region, mask);
          p.centre_localized = region_overlaps_mask(text::Region::Center, mask);  // the explanation baselines
          if (!p.evidence_regions.empty()) p.peak_localized = region_overlaps_mask(p.evidence_regions.front(), mask);
        }
      }
      right += p.pred == p.label;
      result.predictions.push_back(std::move(p));
    }
    progress.update(int(end), {{"acc", double(right) / double(std::max<size_t>(1, result.predictions.size()))}});
  }
  progress.finish();
  if (result.predictions.empty())
    throw Error("none of the " + std::to_string(samples.size()) + " " + o.split + " images in " + root +
                " could be read");
  if (!result.skipped.empty())
    spdlog::warn("{} unreadable images skipped (listed in metrics.json as skipped_images)", result.skipped.size());

  std::optional<text::DefectMap> user_map;
  if (!o.defect_map.empty()) user_map = text::load_defect_map(o.defect_map);
  result.metrics = summarize(result.predictions, user_map ? &*user_map : nullptr);
  result.metrics["run"] = o.run_dir;
  result.metrics["weights"] = o.weights.empty() ? default_weights(o.run_dir) : o.weights;
  result.metrics["dataset"] = root;
  result.metrics["format"] = format;
  result.metrics["split"] = o.split;
  result.metrics["timestamp"] = timestamp();
  result.metrics["samples"] = o.inspect.samples;
  // The chains' family words are the look's, written by lriad (text::FamilySlot), not the policy's.
  result.metrics["family_from_look_written"] = config.pretrained.base.empty() && config.model.fills_look_family();
  if (!config.pretrained.base.empty()) {  // a PaliGemma computes in its weights' dtype
    result.metrics["compute_precision"] = config.pretrained.dtype + " (pretrained.dtype)";
  } else {
    const auto precision = model::choose_precision(config);
    result.metrics["compute_precision"] =
        std::string(precision.bf16 ? "bf16 autocast" : "fp32") + " (" + precision.reason + ")";
  }
  result.metrics["excluded_train_from_test"] = result.excluded;
  result.metrics["skipped_images"] = result.skipped;
  add_baseline(result.metrics, o.run_dir, config, inspector.reference(), result.predictions);
  return result;
}

}  // namespace lriad::eval
