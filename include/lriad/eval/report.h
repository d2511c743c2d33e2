// The evaluation's outputs: metrics.json, predictions.jsonl and a self-contained report.html
// (summary, per-category table, confusion matrix, ROC curve as inline SVG, and a gallery of
// image cards, errors first, with the ground-truth mask outlined; no network needed).
#pragma once
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "lriad/eval/summary.h"

namespace lriad::eval {

struct ReportOptions {
  int thumbnail = 160;        // card image side in pixels
  int max_errors = 200;       // error cards shown (false negatives, then false positives)
  int max_correct = 24;       // correct cards shown after the errors
};

// Writes metrics.json, predictions.jsonl and report.html into `dir` (each atomically).
// `metrics` is summarize()'s object with the run/dataset/split/timestamp keys added.
void write_outputs(const std::string& dir, const nlohmann::json& metrics, const std::vector<Prediction>& predictions,
                   const ReportOptions& options = {});

// The report as one HTML string (images embedded as data: URIs).
std::string render_report(const nlohmann::json& metrics, const std::vector<Prediction>& predictions,
                          const ReportOptions& options = {});

// Standard base64 (RFC 4648, with padding).
std::string base64(const std::string& bytes);

// Escapes &, <, >, " and ' for HTML text and attributes.
std::string html_escape(const std::string& text);

}  // namespace lriad::eval
