// Validation results and how to read them: which answers the policy gives per category, whether
// it is at chance (one answer to everything), and which checkpoint counts as the best.
#pragma once
#include <map>
#include <string>

#include <nlohmann/json_fwd.hpp>

namespace lriad::train {

// Which answers the policy gives to one category's validation items.
struct CategoryAnswers {
  int normal_items = 0, anomalous_items = 0;
  int normal_said_anomalous = 0, anomalous_said_anomalous = 0;  // answered "anomalous" (unparsed: neither)
  int normal_said_normal = 0, anomalous_said_normal = 0;        // answered "normal"
};

struct ValidationResult {
  double balanced_accuracy = 0, accuracy = 0, format_rate = 0;
  double recall_anomalous = 0, recall_normal = 0;
  std::map<std::string, double> class_accuracy;    // per "good" / defect type
  std::map<std::string, CategoryAnswers> answers;  // per category
  int items = 0, normal_items = 0, anomalous_items = 0;
};

// Validation at chance: balanced accuracy <= 0.55 (a coin does 0.5; 0.55 is within a few items of
// it on a validation set of ~100), or a class with items has recall 0 (one answer to everything,
// or no readable answer). A result without items is not judged (false).
bool at_chance(const ValidationResult& v);
// Whether a checkpoint validated at `candidate` becomes the best over `best` (-1: none yet): ties go
// to the later checkpoint, which has trained longer on the same evidence.
bool replaces_best(double candidate, double best);
// "answers 'normal' to 100% of bottle images, 'anomalous' to 100% of cable images" (one clause per
// category; unparsed answers are counted apart: "answers nothing readable to screw images").
std::string describe_answers(const ValidationResult& v);
// validation.jsonl's fields of `v` (without stage and step).
nlohmann::json to_json(const ValidationResult& v);

}  // namespace lriad::train
