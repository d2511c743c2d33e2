// The evaluation's outputs: metrics.json, predictions.jsonl and a self-contained report.html
// (summary, per-category table, confusion matrix, ROC curve as inline SVG, and a gallery of
// image cards, errors first, with the ground-truth mask outlined and the deviation map the policy
// read as a heat map; no network needed).
#pragma once
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "lriad/eval/summary.h"

namespace lriad::eval {

struct ReportOptions {
  int thumbnail = 160;   // card image side in pixels
  int max_errors = 200;  // error cards shown (false negatives, then false positives)
  int max_correct = 24;  // correct cards shown after the errors
};

// Writes metrics.json, predictions.jsonl and report.html into `dir` (each atomically).
// `metrics` is summarize()'s object with the run/dataset/split/timestamp keys added.
void write_outputs(const std::string& dir, const nlohmann::json& metrics, const std::vector<Prediction>& predictions,
                   const ReportOptions& options = {});

// The report as one HTML string (images embedded as data: URIs).
std::string render_report(const nlohmann::json& metrics, const std::vector<Prediction>& predictions,
                          const ReportOptions& options = {});

// The colour scale of the report's heat maps: the deviation map over the normal level, red from
// this many times the level.
inline constexpr double kHeatSaturation = 2.0;

// A gallery card's heat map: `bgr` (CV_8UC3, any size) half and half with the colour-mapped `map`
// (CV_32FC1, the deviation over the normal level, any size: it is stretched onto the image, as the
// image was stretched square for the policy), and the 3x3 cell of `region` boxed in yellow when
// given. -> CV_8UC3 of bgr's size. Throws lriad::Error on other types or empty inputs.
cv::Mat heat_overlay(const cv::Mat& bgr, const cv::Mat& map, std::optional<text::Region> region);

// Standard base64 (RFC 4648, with padding).
std::string base64(const std::string& bytes);

// Escapes &, <, >, " and ' for HTML text and attributes.
std::string html_escape(const std::string& text);

}  // namespace lriad::eval
