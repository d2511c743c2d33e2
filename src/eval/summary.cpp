// Metrics over evaluated images (see summary.h).
#include "lriad/eval/summary.h"

#include <algorithm>
#include <cstdio>
#include <map>
#include <sstream>

#include "lriad/eval/metrics.h"
#include "lriad/text/answer.h"

namespace lriad::eval {
namespace {

nlohmann::json opt(const std::optional<double>& v) { return v ? nlohmann::json(*v) : nlohmann::json(nullptr); }

// The image-level block shared by the whole set and each category.
nlohmann::json binary_block(const std::vector<const Prediction*>& ps) {
  std::vector<int> labels, preds;
  std::vector<double> scores;
  for (const auto* p : ps) {
    labels.push_back(p->label);
    preds.push_back(p->pred);
    scores.push_back(p->score);
  }
  const BinaryMetrics m = binary_metrics(labels, preds, scores);
  return {{"accuracy", m.accuracy},
          {"balanced_accuracy", m.balanced_accuracy},
          {"precision", m.precision},
          {"recall", m.recall},
          {"specificity", m.specificity},
          {"f1", m.f1},
          {"auroc", opt(m.auroc)},
          {"average_precision", opt(m.average_precision)},
          {"n", m.n},
          {"n_normal", m.n_normal},
          {"n_anomalous", m.n_anomalous},
          {"confusion", {{"tp", m.cm.tp}, {"fp", m.cm.fp}, {"tn", m.cm.tn}, {"fn", m.cm.fn}}}};
}

// The per-category figures averaged into "macro".
const char* const kMacroKeys[] = {
    "accuracy", "balanced_accuracy", "precision",   "recall",          "specificity", "f1",
    "auroc",    "average_precision", "format_rate", "consistency_rate"};

double share(int64_t k, int64_t n) { return n ? double(k) / double(n) : 0.0; }

// The share of the most frequent value (0 for none).
double top_share(const std::map<std::string, int64_t>& counts) {
  int64_t top = 0, n = 0;
  for (const auto& [k, c] : counts) top = std::max(top, c), n += c;
  return share(top, n);
}

// Explanations: baselines of localisation, agreement with the evidence, family accuracy and its
// baseline, and phrase collapse.
void explanation_block(const std::vector<const Prediction*>& ps, const text::DefectMap* user, nlohmann::json& out) {
  int64_t centre_n = 0, centre_hit = 0, peak_n = 0, peak_hit = 0, stated = 0, agree = 0, fam_n = 0, fam_hit = 0;
  int64_t look_hit = 0;
  bool evidence = false;  // the run measured the evidence's facts (a reference with levels)
  std::map<std::string, int64_t> truth_families, chains, regions, types;
  for (const auto* p : ps) {
    if (p->centre_localized) {
      ++centre_n;
      centre_hit += *p->centre_localized;
    }
    if (p->peak_localized) {  // only where the run has evidence
      ++peak_n;
      peak_hit += *p->peak_localized;
    }
    evidence = evidence || !p->evidence_regions.empty();
    const auto region = text::parse_region(p->region);
    if (region && !p->evidence_regions.empty()) {
      ++stated;
      agree += std::find(p->evidence_regions.begin(), p->evidence_regions.end(), *region) != p->evidence_regions.end();
    }
    const auto truth = text::family_of(p->defect_type, user);
    if (p->label == 1 && p->pred == 1 && truth) {
      ++fam_n;
      const auto said = text::family_of(p->pred_defect_type, user);
      fam_hit += said && *said == *truth;
      const auto look = text::parse_family(p->evidence_family);  // none below the level: a miss
      look_hit += look && *look == *truth;
      ++truth_families[text::family_word(*truth)];
    }
    if (p->pred == 1 && p->parsed) {
      ++chains[text::parse_completion(p->completion).think];
      ++regions[p->region];
      ++types[text::canonical_defect_type(p->pred_defect_type)];
    }
  }
  out["localization_baselines"] =
      centre_n ? nlohmann::json{{"centre", share(centre_hit, centre_n)},
                                {"evidence_peak",
                                 peak_n ? nlohmann::json(share(peak_hit, peak_n)) : nlohmann::json(nullptr)},
                                {"n", centre_n}}
               : nlohmann::json(nullptr);
  out["region_matches_evidence"] = stated ? nlohmann::json(share(agree, stated)) : nlohmann::json(nullptr);
  out["defect_family_accuracy"] = fam_n ? nlohmann::json(share(fam_hit, fam_n)) : nlohmann::json(nullptr);
  out["family_baseline_most_frequent"] = fam_n ? nlohmann::json(top_share(truth_families)) : nlohmann::json(nullptr);
  out["family_baseline_look"] = fam_n && evidence ? nlohmann::json(share(look_hit, fam_n)) : nlohmann::json(nullptr);
  int64_t anomalous = 0;
  for (const auto& [k, c] : chains) anomalous += c;
  out["collapse"] = anomalous ? nlohmann::json{{"chain", top_share(chains)},
                                               {"region", top_share(regions)},
                                               {"type", top_share(types)},
                                               {"n", anomalous}}
                              : nlohmann::json(nullptr);
}

// Chain-of-thought and defect-type figures.
void cot_block(const std::vector<const Prediction*>& ps, const text::DefectMap* user, nlohmann::json& out) {
  int64_t formed = 0, consistent = 0, unparseable = 0, truncated = 0, length_sum = 0, max_length = 0;
  int64_t loc_n = 0, loc_hit = 0, type_n = 0, type_hit = 0;
  for (const auto* p : ps) {
    formed += p->well_formed;
    consistent += p->consistent;
    unparseable += !p->parsed;
    truncated += p->truncated;
    length_sum += p->length;
    max_length = std::max<int64_t>(max_length, p->length);
    if (p->localized) {
      ++loc_n;
      loc_hit += *p->localized;
    }
    if (p->label == 1 && p->pred == 1 && !text::is_unnamed_defect(p->defect_type)) {
      ++type_n;
      type_hit += text::same_defect(p->pred_defect_type, p->defect_type, user);  // its word or its family
    }
  }
  const int64_t n = int64_t(ps.size());
  out["format_rate"] = share(formed, n);
  out["consistency_rate"] = share(consistent, n);
  out["unparseable"] = unparseable;
  out["truncation_rate"] = share(truncated, n);
  out["mean_length"] = share(length_sum, n);
  out["max_length"] = max_length;
  out["localization_agreement"] = loc_n ? nlohmann::json(share(loc_hit, loc_n)) : nlohmann::json(nullptr);
  out["n_localized"] = loc_n;
  out["defect_type_accuracy"] = type_n ? nlohmann::json(share(type_hit, type_n)) : nlohmann::json(nullptr);
}

}  // namespace

nlohmann::json to_json(const Prediction& p) {
  nlohmann::json j = {{"image", p.image},
                      {"category", p.category},
                      {"label", p.label},
                      {"defect_type", p.defect_type},
                      {"pred", p.pred},
                      {"parsed", p.parsed},
                      {"score", p.score},
                      {"pred_defect_type", p.pred_defect_type},
                      {"region", p.region},
                      {"completion", p.completion},
                      {"well_formed", p.well_formed},
                      {"consistent", p.consistent},
                      {"truncated", p.truncated},
                      {"length", p.length},
                      {"mask", p.mask ? nlohmann::json(*p.mask) : nlohmann::json(nullptr)},
                      {"localized", p.localized ? nlohmann::json(*p.localized) : nlohmann::json(nullptr)},
                      {"evidence_peak", p.evidence_peak ? nlohmann::json(*p.evidence_peak) : nlohmann::json(nullptr)}};
  if (!p.evidence_regions.empty()) {
    std::vector<std::string> words;
    for (auto r : p.evidence_regions) words.push_back(text::region_word(r));
    j["evidence_regions"] = words;
  }
  if (!p.evidence_family.empty()) j["evidence_family"] = p.evidence_family;
  if (p.centre_localized) j["centre_localized"] = *p.centre_localized;
  if (p.peak_localized) j["peak_localized"] = *p.peak_localized;
  if (!p.votes.empty()) j["votes"] = p.votes;
  return j;
}

Prediction prediction_from_json(const nlohmann::json& j) {
  Prediction p;
  p.image = j.at("image").get<std::string>();
  p.category = j.at("category").get<std::string>();
  p.label = j.at("label").get<int>();
  p.defect_type = j.at("defect_type").get<std::string>();
  p.pred = j.at("pred").get<int>();
  p.parsed = j.value("parsed", true);
  p.score = j.at("score").get<double>();
  p.pred_defect_type = j.value("pred_defect_type", "");
  p.region = j.value("region", "");
  p.completion = j.value("completion", "");
  p.well_formed = j.value("well_formed", false);
  p.consistent = j.value("consistent", false);
  p.truncated = j.value("truncated", false);
  p.length = j.value("length", 0);
  if (j.contains("mask") && j["mask"].is_string()) p.mask = j["mask"].get<std::string>();
  if (j.contains("localized") && j["localized"].is_boolean()) p.localized = j["localized"].get<bool>();
  if (j.contains("evidence_peak") && j["evidence_peak"].is_number()) p.evidence_peak = j["evidence_peak"].get<double>();
  if (j.contains("votes")) p.votes = j["votes"].get<std::vector<int>>();
  if (j.contains("evidence_regions"))
    for (const auto& w : j["evidence_regions"].get<std::vector<std::string>>())
      if (const auto r = text::parse_region(w)) p.evidence_regions.push_back(*r);
  if (j.contains("evidence_family") && j["evidence_family"].is_string())
    p.evidence_family = j["evidence_family"].get<std::string>();
  if (j.contains("centre_localized") && j["centre_localized"].is_boolean())
    p.centre_localized = j["centre_localized"].get<bool>();
  if (j.contains("peak_localized") && j["peak_localized"].is_boolean())
    p.peak_localized = j["peak_localized"].get<bool>();
  return p;
}

bool region_overlaps_mask(text::Region region, const cv::Mat& mask) {
  if (mask.empty()) return false;
  const int r = int(region) / 3, c = int(region) % 3;
  const int x0 = c * mask.cols / 3, x1 = (c + 1) * mask.cols / 3;
  const int y0 = r * mask.rows / 3, y1 = (r + 1) * mask.rows / 3;
  if (x1 <= x0 || y1 <= y0) return false;
  return cv::countNonZero(mask(cv::Range(y0, y1), cv::Range(x0, x1))) > 0;
}

nlohmann::json summarize(const std::vector<Prediction>& predictions, const text::DefectMap* user) {
  std::vector<const Prediction*> all;
  std::map<std::string, std::vector<const Prediction*>> by_category, by_type;
  for (const auto& p : predictions) {
    all.push_back(&p);
    by_category[p.category].push_back(&p);
    if (p.label == 1) by_type[p.defect_type].push_back(&p);
  }
  nlohmann::json out = binary_block(all);
  cot_block(all, user, out);
  explanation_block(all, user, out);

  nlohmann::json per_category = nlohmann::json::object();
  std::map<std::string, std::vector<double>> macro_values;
  for (const auto& [cat, ps] : by_category) {
    nlohmann::json c = binary_block(ps);
    cot_block(ps, user, c);
    for (const char* key : kMacroKeys)
      if (!c[key].is_null()) macro_values[key].push_back(c[key].get<double>());
    per_category[cat] = c;
  }
  out["per_category"] = per_category;
  nlohmann::json macro = nlohmann::json::object();
  for (const char* key : kMacroKeys) {
    const auto& v = macro_values[key];
    double s = 0;
    for (double x : v) s += x;
    macro[key] = v.empty() ? nlohmann::json(nullptr) : nlohmann::json(s / double(v.size()));
  }
  macro["categories"] = by_category.size();
  out["macro"] = macro;

  nlohmann::json per_type = nlohmann::json::object();
  for (const auto& [type, ps] : by_type) {
    int64_t flagged = 0, named = 0;
    for (const auto* p : ps) {
      flagged += p->pred == 1;
      named += p->pred == 1 && text::same_defect(p->pred_defect_type, type, user);
    }
    const auto family = text::family_of(type, user);
    per_type[type] = {
        {"n", ps.size()},
        {"family", family ? nlohmann::json(text::family_word(*family)) : nlohmann::json(nullptr)},
        {"recall", share(flagged, int64_t(ps.size()))},
        {"type_accuracy",
         flagged && !text::is_unnamed_defect(type) ? nlohmann::json(share(named, flagged)) : nlohmann::json(nullptr)}};
  }
  out["per_defect_type"] = per_type;
  return out;
}

std::string format_table(const nlohmann::json& m) {
  auto num = [](const nlohmann::json& v) {
    char buf[16];
    if (v.is_null()) return std::string("    -");
    std::snprintf(buf, sizeof buf, "%5.3f", v.get<double>());
    return std::string(buf);
  };
  // The evidence-only baseline (eval/baseline.h) beside the policy, when the run has one.
  const bool base = m.contains("baseline") && m["baseline"].is_object();
  auto baseline_of = [&](const nlohmann::json& b) {
    char cols[32];
    std::snprintf(cols, sizeof cols, "  %6s %7s", num(b.value("balanced_accuracy", nlohmann::json())).c_str(),
                  num(b.value("auroc", nlohmann::json())).c_str());
    return std::string(cols);
  };
  std::ostringstream o;
  char line[256];
  std::snprintf(line, sizeof line, "%-16s %5s %5s %5s %5s %5s %5s %6s", "category", "n", "acc", "bacc", "f1", "auroc",
                "fmt", "recall");
  o << line << (base ? "  b.bacc b.auroc" : "") << "\n";  // b. = baseline
  auto row = [&](const std::string& name, const nlohmann::json& c, const std::string& n, const nlohmann::json& b) {
    std::snprintf(line, sizeof line, "%-16s %5s %5s %5s %5s %5s %5s %6s", name.substr(0, 16).c_str(), n.c_str(),
                  num(c["accuracy"]).c_str(), num(c["balanced_accuracy"]).c_str(), num(c["f1"]).c_str(),
                  num(c["auroc"]).c_str(), num(c["format_rate"]).c_str(), num(c["recall"]).c_str());
    o << line << (base ? baseline_of(b) : "") << "\n";
  };
  const nlohmann::json none = nlohmann::json::object();
  const nlohmann::json& b = base ? m["baseline"] : none;
  auto part = [&](const char* key, const std::string& cat) {
    return b.contains(key) && b[key].contains(cat) ? b[key][cat] : none;
  };
  for (const auto& [cat, c] : m["per_category"].items())
    row(cat, c, std::to_string(c["n"].get<int64_t>()), part("per_category", cat));
  if (m["per_category"].size() > 1) row("macro", m["macro"], "", b.value("macro", none));
  row("all", m, std::to_string(m["n"].get<int64_t>()), b);
  return o.str();
}

}  // namespace lriad::eval
