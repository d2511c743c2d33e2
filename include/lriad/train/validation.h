// Validation results and how to read them: which answers the policy gives per category, whether
// it is at chance (one answer to everything), and which checkpoint counts as the best.
#pragma once
#include <map>
#include <string>
#include <vector>

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
  // Of the anomalies answered "anomalous" whose chain has a type to name (the one training teaches:
  // the look's family with model.family_from_look, else the item's named defect type), how many the chain
  // names (the type or its family, text::same_defect); type_agreement = named / typed_items, 0 when none.
  int typed_items = 0;
  double type_agreement = 0;
};

// One validation item's greedy chain, and what it should have said.
struct ValidationChain {
  std::string category;
  std::string cls;  // "good" or the item's defect type (class_accuracy's key)
  bool anomalous = false;
  std::string taught_type;  // the type training teaches its chain to name (Context::chain_type; "" or
                            // an unnamed defect such as VisA's "anomaly": none)
  std::string chain;        // the whole completion, its opening included
};
// The result of a validation's chains: verdicts parsed with text::parse_completion (`defect_types`:
// the dataset's names), counted per class and category.
ValidationResult score_validation(const std::vector<ValidationChain>& chains,
                                  const std::vector<std::string>& defect_types);

// Validation at chance: balanced accuracy <= 0.55 (a coin does 0.5; 0.55 is within a few items of
// it on a validation set of ~100), or a class with items has recall 0 (one answer to everything,
// or no readable answer). A result without items is not judged (false).
bool at_chance(const ValidationResult& v);
// What the best checkpoint is chosen by: the balanced accuracy plus kTypeWeight x type_agreement,
// unless the validation is at chance (then the balanced accuracy alone). One validation item of ~36
// per class moves the balanced accuracy by ~0.014, so the chains' type decides between checkpoints
// whose balanced accuracy is within about three items, and never lifts a checkpoint at chance.
inline constexpr double kTypeWeight = 0.05;
double selection_score(const ValidationResult& v);
// Whether a checkpoint whose selection_score is `candidate` becomes the best over `best` (-1: none
// yet): ties go to the later checkpoint, which has trained longer on the same evidence.
bool replaces_best(double candidate, double best);
// "answers 'normal' to 100% of bottle images, 'anomalous' to 100% of cable images" (one clause per
// category; unparsed answers are counted apart: "answers nothing readable to screw images").
std::string describe_answers(const ValidationResult& v);
// validation.jsonl's fields of `v` (without stage and step).
nlohmann::json to_json(const ValidationResult& v);

}  // namespace lriad::train
