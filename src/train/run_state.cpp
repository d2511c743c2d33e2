// trainer_state.json, checkpoints, the best weights and the validation log (run_state.h).
#include "run_state.h"

#include <spdlog/spdlog.h>

#include <filesystem>
#include <fstream>

#include "lriad/io/error.h"
#include "lriad/io/fs.h"
#include "lriad/model/weights.h"
#include "trainer_internal.h"

namespace fs = std::filesystem;

namespace lriad::train::detail {

// A checkpoint's files: weights, optimizer state and the SFT vision probe.
std::string checkpoint_file(const RunFiles& run, const TrainerState& s, const std::string& name) {
  if (s.checkpoint.empty()) return name == RunFiles::kWeights ? run.weights() : run.path(name);
  return run.path(s.checkpoint + "/" + name);
}

void save_state(const RunFiles& run, const TrainerState& s) {
  nlohmann::json j = {{"stage", s.stage},
                      {"step", s.step},
                      {"best_balanced_accuracy", s.best},
                      {"best_at", s.best_at},
                      {"best_score", s.best_score},
                      {"checkpoint", s.checkpoint},
                      {"at_chance", s.best_at_chance},
                      {"best_answers", s.best_answers}};
  if (!s.precision.empty()) j["precision"] = {{"used", s.precision}, {"reason", s.precision_reason}};
  if (!s.dynamic_weights.is_null()) j["dynamic_class_weights"] = s.dynamic_weights;
  io::write_file_atomic(run.trainer_state(), j.dump(2) + "\n");
}

namespace {

int stage_rank(const std::string& stage) {
  return stage == "vision" ? 0 : stage == "sft" ? 1 : stage == "grpo" ? 2 : 3;
}

}  // namespace

// Resuming replays the steps after the last checkpoint: drop their lines from the logs first.
void truncate_log(const std::string& path, const TrainerState& s) {
  if (!io::is_file(path)) return;
  std::ifstream in(path);
  std::string kept, line;
  size_t dropped = 0;
  while (std::getline(in, line)) {
    bool keep = true;
    try {
      const auto j = nlohmann::json::parse(line);
      const int rank = stage_rank(j.at("stage").get<std::string>()), step = j.at("step").get<int>();
      keep = rank < stage_rank(s.stage) || (rank == stage_rank(s.stage) && step <= s.step);
    } catch (const nlohmann::json::exception&) {
      keep = false;  // a line cut short by the interruption
    }
    if (keep)
      kept += line + "\n";
    else
      ++dropped;
  }
  in.close();
  if (dropped) {
    io::write_file_atomic(path, kept);
    spdlog::info("{}: dropped {} lines written after the last checkpoint", path, dropped);
  }
}

TrainerState load_state(const RunFiles& run) {
  TrainerState s;
  if (!io::is_file(run.trainer_state()))
    throw Error("cannot resume " + run.dir + ": no trainer_state.json",
                "it has no checkpoint yet; start it again with --overwrite");
  std::ifstream in(run.trainer_state());
  nlohmann::json j;
  try {
    in >> j;
    s.stage = j.at("stage").get<std::string>();
    s.step = j.at("step").get<int>();
    s.best = j.at("best_balanced_accuracy").get<double>();
    s.best_at = j.at("best_at").get<std::string>();
    // A run written before the score: its best was chosen by the balanced accuracy alone, and its
    // type agreement is unknown; counted as full, so that only a checkpoint at least as accurate
    // (and naming its types throughout) replaces it.
    s.best_score = j.contains("best_score") ? j["best_score"].get<double>() : s.best + kTypeWeight;
    if (j.contains("dynamic_class_weights")) s.dynamic_weights = j["dynamic_class_weights"];
    if (j.contains("checkpoint")) s.checkpoint = j["checkpoint"].get<std::string>();
    if (j.contains("at_chance")) s.best_at_chance = j["at_chance"].get<bool>();
    if (j.contains("best_answers")) s.best_answers = j["best_answers"].get<std::string>();
    if (j.contains("precision")) {
      s.precision = j["precision"].at("used").get<std::string>();
      s.precision_reason = j["precision"].at("reason").get<std::string>();
    }
  } catch (const nlohmann::json::exception& e) {
    throw Error(run.trainer_state() + " is damaged: " + e.what(), "start the run again with --overwrite");
  }
  return s;
}

// A checkpoint is a folder checkpoints/<stage>-<step> written in full, then committed by
// trainer_state.json (renamed into place) naming it; only then do older folders go. A crash at any
// moment leaves the state naming a complete checkpoint.
void save_checkpoint(Context& ctx, torch::optim::AdamW& optimizer, TrainerState& state) {
  if (ctx.dynamic_weights) state.dynamic_weights = ctx.dynamic_weights->to_json();
  char name[64];
  std::snprintf(name, sizeof(name), "%s-%05d", state.stage.c_str(), state.step);
  const std::string rel = std::string("checkpoints/") + name, dir = ctx.run.path(rel);
  if (!ctx.writer()) {  // every rank holds the same weights; rank 0 writes them
    state.checkpoint = rel;
    return;
  }
  std::error_code ec;
  fs::remove_all(dir, ec);
  fs::create_directories(dir, ec);
  if (ec) throw Error("cannot create " + dir + ": " + ec.message(), "check permissions and free space");
  const std::map<std::string, std::string> where = {{"stage", state.stage}, {"step", std::to_string(state.step)}};
  const RunFiles checkpoint{dir};
  ctx.save_weights(checkpoint.weights(), where);  // dir/model.safetensors with the run's format
  if (ctx.vision_probe && state.stage != "grpo")
    model::save_weights(*ctx.vision_probe, checkpoint.path(RunFiles::kVisionProbe));
  torch::save(optimizer, checkpoint.path(std::string(RunFiles::kOptimizer) + ".tmp"));
  fs::rename(checkpoint.path(std::string(RunFiles::kOptimizer) + ".tmp"), checkpoint.path(RunFiles::kOptimizer));
  TrainerState committed = state;
  committed.checkpoint = rel;
  save_state(ctx.run, committed);  // the commit point
  state = committed;
  ctx.save_weights(ctx.run.weights(), where);  // the run's model.safetensors, for eval
  for (const auto& e : fs::directory_iterator(ctx.run.checkpoints(), ec))
    if (e.path().filename() != name) fs::remove_all(e.path(), ec);
}

void maybe_keep_best(Context& ctx, TrainerState& state, const ValidationResult& v, const std::string& where) {
  const double score = selection_score(v);
  if (v.items == 0 || !replaces_best(score, state.best_score)) return;
  state.best = v.balanced_accuracy;
  state.best_score = score;
  state.best_at = where;
  state.best_at_chance = at_chance(v);
  state.best_answers = describe_answers(v);
  if (ctx.writer()) ctx.save_weights(ctx.run.best(), {{"stage", where}});
}

void log_validation(Context& ctx, const std::string& stage, int step, const ValidationResult& v) {
  if (!ctx.writer()) return;
  nlohmann::json line = to_json(v);
  line["stage"] = stage;
  line["step"] = step;
  std::ofstream out(ctx.run.validation(), std::ios::app);
  out << line.dump() << "\n";
  spdlog::info(
      "validation {} step {}: balanced accuracy {:.3f} (anomalous recall {:.3f}, normal {:.3f}), format {:.3f}, "
      "type named {:.3f} of {} flagged anomalies",
      stage, step, v.balanced_accuracy, v.recall_anomalous, v.recall_normal, v.format_rate, v.type_agreement,
      v.typed_items);
}

void load_optimizer(torch::optim::AdamW& opt, const std::string& path) {
  if (!io::is_file(path))
    throw Error("cannot resume: " + path + " is missing", "the checkpoint is incomplete; start again with --overwrite");
  try {
    torch::load(opt, path);
  } catch (const c10::Error& e) {
    throw Error("cannot resume: " + path + " is not a readable optimizer state", "start again with --overwrite");
  }
}

}  // namespace lriad::train::detail
