// One evaluated image (a line of predictions.jsonl) and the metrics over many: image-level
// anomaly metrics overall, per category and macro-averaged, recall per defect type, and the
// chain-of-thought metrics (format, consistency, length, truncation, localisation agreement).
#pragma once
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>
#include <opencv2/core.hpp>

#include "lriad/text/defect_family.h"
#include "lriad/text/prompt.h"

namespace lriad::eval {

struct Prediction {
  std::string image;  // path
  std::string category;
  int label = 0;            // 0 normal, 1 anomalous
  std::string defect_type;  // ground truth ("good" for normal images)
  int pred = 0;             // parsed verdict; an unparseable answer counts as wrong (1 - label)
  bool parsed = false;      // the answer held a verdict
  double score = 0.5;       // 1 - p(normal) at the decision point (else p(anomalous) at the answer); 0.5 when neither
  std::string pred_defect_type;
  std::string region;  // region phrase stated in the reasoning, "" none
  std::string completion;
  bool well_formed = false, consistent = false, truncated = false;
  int length = 0;                   // completion tokens
  std::optional<std::string> mask;  // ground-truth mask path, when the dataset has one
  std::optional<bool> localized;    // correctly flagged anomaly with a mask: region overlaps it
  std::vector<int> votes;           // --samples N: each chain's verdict (-1 unparseable)
  std::optional<double>
      evidence_peak;  // peak of the normal reference's deviation map (eval/baseline.h); none without it
  // Where the deviation map peaks (text::EvidenceFacts: its cell, and a second cell an elongated
  // area spans); empty without a reference. And, for a correctly flagged anomaly with a mask, the
  // explanation baselines' localisation: "always the centre" and "the evidence's peak cell".
  std::vector<text::Region> evidence_regions;
  std::optional<bool> centre_localized, peak_localized;
  // The family the evidence's look suggests (text::look_family), the explanations' "the look's
  // family" baseline; "" below the level or without a reference.
  std::string evidence_family;
  // The deviation map the policy read, divided by the category's normal level (1 = the level):
  // CV_32FC1 (S,S), for report.html's heat maps; empty without a reference and level. Not written
  // to predictions.jsonl.
  cv::Mat evidence_map;
};

nlohmann::json to_json(const Prediction& p);  // the predictions.jsonl fields
Prediction prediction_from_json(const nlohmann::json& j);

// Does the 3x3 cell `region` of the mask (CV_8UC1, non-zero = defective) hold a defective pixel?
bool region_overlaps_mask(text::Region region, const cv::Mat& mask);

// metrics.json without the run/dataset/split/timestamp keys: accuracy, balanced_accuracy,
// precision, recall, specificity, f1, auroc, average_precision (null when undefined), n,
// n_normal, n_anomalous, confusion, format_rate, consistency_rate, unparseable, mean_length,
// max_length, truncation_rate, localization_agreement (null without masks), n_localized,
// defect_type_accuracy (null when no flagged anomaly has a named type), per_category,
// per_defect_type and macro (the mean over categories; AUROC/AP over the categories that have one).
// Explanations (issue-level: chains a user can trust): localization_baselines {centre,
// evidence_peak} beside localization_agreement; region_matches_evidence (the stated region is where
// the evidence peaks, over chains that state one); defect_family_accuracy over correctly flagged
// anomalies whose type maps onto a family (text/defect_family.h, `user` first) and its baseline
// family_baseline_most_frequent and family_baseline_look (the family the evidence's look suggests,
// text::look_family, over the same anomalies; null without evidence); collapse {chain, region,
// type}: the share of the most frequent anomalous chain, region and type among the anomalous
// answers (a share over kCollapseShare is flagged by the report). per_defect_type gives each type's
// family.
inline constexpr double kCollapseShare = 0.30;
nlohmann::json summarize(const std::vector<Prediction>& predictions, const text::DefectMap* user = nullptr);

// A compact fixed-width table: one row per category, then the macro average and "all"; with a
// "baseline" object (eval/baseline.h), its balanced accuracy and AUROC in two more columns.
std::string format_table(const nlohmann::json& metrics);

}  // namespace lriad::eval
