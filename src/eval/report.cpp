// metrics.json, predictions.jsonl and report.html (see report.h).
#include "lriad/eval/report.h"

#include <algorithm>
#include <cstdio>
#include <map>
#include <sstream>

#include <opencv2/imgcodecs.hpp>
#include <opencv2/imgproc.hpp>
#include <spdlog/spdlog.h>

#include "lriad/data/image_io.h"
#include "lriad/eval/metrics.h"
#include "lriad/io/error.h"
#include "lriad/io/fs.h"

namespace lriad::eval {
namespace {

std::string fmt(const nlohmann::json& v, int digits = 3) {
  if (v.is_null()) return "&ndash;";
  if (v.is_number_integer()) return std::to_string(v.get<int64_t>());
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.*f", digits, v.get<double>());
  return buf;
}

// The card's image at `side` (CV_8UC3 BGR, aspect kept) and the ground-truth mask resized onto it
// (empty without one); throws when the image cannot be read.
std::pair<cv::Mat, cv::Mat> card_image(const Prediction& p, int side) {
  cv::Mat rgb = data::read_image(p.image);  // CV_32FC3 RGB [0,1]
  cv::Mat bgr;
  cv::cvtColor(rgb, bgr, cv::COLOR_RGB2BGR);
  bgr.convertTo(bgr, CV_8UC3, 255.0);
  const double scale = double(side) / std::max(bgr.cols, bgr.rows);
  cv::resize(bgr, bgr, cv::Size(std::max(1, int(bgr.cols * scale)), std::max(1, int(bgr.rows * scale))), 0, 0,
             cv::INTER_AREA);
  cv::Mat mask;
  if (p.mask) cv::resize(data::read_mask(*p.mask), mask, bgr.size(), 0, 0, cv::INTER_NEAREST);
  return {bgr, mask};
}

void outline_mask(cv::Mat& bgr, const cv::Mat& mask) {  // in red
  if (mask.empty()) return;
  cv::Mat m = mask.clone();
  std::vector<std::vector<cv::Point>> contours;
  cv::findContours(m, contours, cv::RETR_EXTERNAL, cv::CHAIN_APPROX_SIMPLE);
  cv::drawContours(bgr, contours, -1, cv::Scalar(0, 0, 255), 1);
}

std::string jpeg_uri(const cv::Mat& bgr) {
  std::vector<uchar> jpeg;
  cv::imencode(".jpg", bgr, jpeg, {cv::IMWRITE_JPEG_QUALITY, 88});
  return "data:image/jpeg;base64," + base64(std::string(jpeg.begin(), jpeg.end()));
}

// The card's pictures as data: URIs: the image with the mask outlined in red and, where the
// prediction holds its deviation map, the heat map (heat_overlay) with the region the chain names
// boxed and the mask outlined too. Empty when the image cannot be read.
std::vector<std::string> card_pictures(const Prediction& p, int side) {
  try {
    auto [bgr, mask] = card_image(p, side);
    std::vector<std::string> out;
    cv::Mat plain = bgr.clone();
    outline_mask(plain, mask);
    out.push_back(jpeg_uri(plain));
    if (!p.evidence_map.empty()) {
      cv::Mat heat = heat_overlay(bgr, p.evidence_map, p.region.empty() ? std::nullopt : text::parse_region(p.region));
      outline_mask(heat, mask);
      out.push_back(jpeg_uri(heat));
    }
    return out;
  } catch (const std::exception& e) {
    spdlog::warn("report: no thumbnail for {}: {}", p.image, e.what());
    return {};
  }
}

std::string roc_svg(const std::vector<Prediction>& ps) {
  std::vector<int> labels;
  std::vector<double> scores;
  for (const auto& p : ps) {
    labels.push_back(p.label);
    scores.push_back(p.score);
  }
  std::ostringstream o;
  o << "<svg id=\"roc\" xmlns=\"http://www.w3.org/2000/svg\" width=\"260\" height=\"260\" viewBox=\"-30 -10 260 260\">"
    << "<rect x=\"0\" y=\"0\" width=\"220\" height=\"220\" fill=\"#fafafa\" stroke=\"#999\"/>"
    << "<line x1=\"0\" y1=\"220\" x2=\"220\" y2=\"0\" stroke=\"#ccc\" stroke-dasharray=\"4\"/>"
    << "<text x=\"110\" y=\"245\" text-anchor=\"middle\" font-size=\"11\">false positive rate</text>"
    << "<text x=\"-18\" y=\"110\" text-anchor=\"middle\" font-size=\"11\" transform=\"rotate(-90 -18 110)\">true "
       "positive "
       "rate</text>";
  const auto curve = roc_curve(labels, scores);
  if (curve.size() > 1) {
    o << "<polyline class=\"roc-curve\" fill=\"none\" stroke=\"#c0392b\" stroke-width=\"2\" points=\"";
    for (const auto& pt : curve) o << pt.fpr * 220 << "," << (1 - pt.tpr) * 220 << " ";
    o << "\"/>";
  } else {
    o << "<text x=\"110\" y=\"110\" text-anchor=\"middle\" font-size=\"12\">undefined: one class only</text>";
  }
  o << "</svg>";
  return o.str();
}

// The explanations beside their baselines (summary.h): localisation of the stated region against
// "always the centre" and "the evidence's peak cell", the stated region against the evidence,
// family accuracy against "the most frequent family" and "the family the look suggests", and phrase
// collapse (a share over 30% flagged).
std::string explanation_section(const nlohmann::json& m) {
  std::ostringstream o;
  o << "<h2>Explanations</h2><table id=\"explanations\"><tr><th>figure</th><th>policy</th><th>baseline</th></tr>";
  const auto lb = m.value("localization_baselines", nlohmann::json());
  auto row = [&](const std::string& name, const nlohmann::json& v, const std::string& base) {
    o << "<tr><td>" << name << "</td><td>" << fmt(v) << "</td><td>" << base << "</td></tr>";
  };
  if (lb.is_object()) {
    row("localisation (stated region holds defect pixels)", m.value("localization_agreement", nlohmann::json()),
        "always the centre " + fmt(lb["centre"]) +
            (lb["evidence_peak"].is_null() ? std::string() : "; the evidence's peak cell " + fmt(lb["evidence_peak"])));
  }
  row("stated region is where the evidence peaks", m.value("region_matches_evidence", nlohmann::json()), "-");
  row(m.value("family_from_look_written", false)
          ? "defect family accuracy (the family is the look's, written into the chain by lriad: model.fill_family)"
          : "defect family accuracy",
      m.value("defect_family_accuracy", nlohmann::json()),
      "the most frequent family " + fmt(m.value("family_baseline_most_frequent", nlohmann::json())) +
          (m.value("family_baseline_look", nlohmann::json()).is_null()
               ? std::string()
               : "; the family its look suggests " + fmt(m["family_baseline_look"])));
  o << "</table>";
  const auto c = m.value("collapse", nlohmann::json());
  if (c.is_object()) {
    o << "<p>Among " << fmt(c["n"]) << " anomalous answers, the most frequent chain is " << fmt(c["chain"])
      << " of them, the most frequent region " << fmt(c["region"]) << ", the most frequent type " << fmt(c["type"])
      << ".";
    std::string flagged;
    for (const char* k : {"chain", "region", "type"})
      if (c[k].is_number() && c[k].get<double>() > kCollapseShare)
        flagged += std::string(flagged.empty() ? "" : ", ") + k;
    if (!flagged.empty())
      o << " <strong class=\"flag\">Phrase collapse: the most frequent " << flagged
        << " is over 30% of the anomalous answers; the explanations may not be specific to each image.</strong>";
    o << "</p>";
  }
  return o.str();
}

// The policy beside the evidence-only baseline (eval/baseline.h): balanced accuracy and AUROC,
// overall and per category; or why the run has no baseline.
std::string baseline_section(const nlohmann::json& m) {
  std::ostringstream o;
  o << "<h2>Policy vs evidence-only baseline</h2>";
  if (!m.contains("baseline") || !m["baseline"].is_object()) {
    o << "<p id=\"baseline-none\" class=\"muted\">No baseline: "
      << html_escape(m.value("baseline_reason", "not computed")) << "</p>";
    return o.str();
  }
  const auto& b = m["baseline"];
  o << "<p class=\"muted\">Baseline: " << html_escape(b.value("method", ""))
    << "; anomalous when the peak is above.</p>"
    << "<table id=\"baseline\"><tr><th>category</th><th>n</th><th>policy balanced acc.</th><th>baseline balanced "
       "acc.</th><th>policy AUROC</th><th>baseline AUROC</th><th>baseline threshold</th></tr>";
  auto row = [&](const std::string& name, const nlohmann::json& c, const nlohmann::json& bc,
                 const nlohmann::json& thr) {
    o << "<tr><td>" << html_escape(name) << "</td><td>" << (c.contains("n") ? fmt(c["n"]) : "") << "</td><td>"
      << fmt(c.value("balanced_accuracy", nlohmann::json())) << "</td><td>"
      << fmt(bc.value("balanced_accuracy", nlohmann::json())) << "</td><td>" << fmt(c.value("auroc", nlohmann::json()))
      << "</td><td>" << fmt(bc.value("auroc", nlohmann::json())) << "</td><td>" << (thr.is_null() ? "" : fmt(thr))
      << "</td></tr>";
  };
  const nlohmann::json none = nlohmann::json::object();
  for (const auto& [cat, c] : m["per_category"].items()) {
    const bool has = b.contains("per_category") && b["per_category"].contains(cat);
    row(cat, c, has ? b["per_category"][cat] : none,
        has ? b["per_category"][cat].value("threshold", nlohmann::json()) : nlohmann::json());
  }
  if (m.contains("macro") && b.contains("macro")) row("macro average", m["macro"], b["macro"], nlohmann::json());
  row("all", m, b, nlohmann::json());
  o << "</table>";
  return o.str();
}

const char* kStyle = R"(
body{font-family:system-ui,sans-serif;margin:24px;color:#222;background:#fff}
h1{font-size:22px}h2{font-size:18px;margin-top:28px}
table{border-collapse:collapse;margin:8px 0;font-size:13px}td,th{border:1px solid #ccc;padding:3px 6px;text-align:right}
th:first-child,td:first-child{text-align:left}
.row{display:flex;gap:32px;flex-wrap:wrap;align-items:flex-start}
#gallery{display:flex;flex-wrap:wrap;gap:12px}
.card{width:340px;border:1px solid #ccc;border-radius:6px;padding:8px;display:flex;flex-direction:column;gap:6px}
.card .imgs{display:flex;gap:8px}.card img{width:160px;height:auto;image-rendering:pixelated;flex:none}
.card .text{font-size:12px;overflow-wrap:anywhere}
.card.fn{border-color:#c0392b;background:#fdf0ee}.card.fp{border-color:#d68910;background:#fef5e7}
.card.tp,.card.tn{border-color:#27ae60}
.tag{font-weight:bold}.cot{font-family:monospace;white-space:pre-wrap;margin-top:4px}
.muted{color:#777}
)";

}  // namespace

cv::Mat heat_overlay(const cv::Mat& bgr, const cv::Mat& map, std::optional<text::Region> region) {
  if (bgr.empty() || bgr.type() != CV_8UC3 || map.empty() || map.type() != CV_32FC1)
    throw Error("heat_overlay: expected a CV_8UC3 image and a CV_32FC1 map");
  cv::Mat m, level, colour, out;
  cv::resize(map, m, bgr.size(), 0, 0, cv::INTER_LINEAR);  // the map is of the image stretched square
  m.convertTo(level, CV_8UC1, 255.0 / kHeatSaturation);    // clamped to [0, 255]
  cv::applyColorMap(level, colour, cv::COLORMAP_JET);
  cv::addWeighted(bgr, 0.5, colour, 0.5, 0.0, out);
  if (region) {
    const int r = int(*region) / 3, c = int(*region) % 3, W = out.cols, H = out.rows;
    const cv::Rect cell(c * W / 3, r * H / 3, (c + 1) * W / 3 - c * W / 3, (r + 1) * H / 3 - r * H / 3);
    cv::rectangle(out, cell, cv::Scalar(0, 255, 255), 2);
  }
  return out;
}

std::string base64(const std::string& bytes) {
  static const char* abc = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
  std::string out;
  out.reserve((bytes.size() + 2) / 3 * 4);
  size_t i = 0;
  for (; i + 2 < bytes.size(); i += 3) {
    const uint32_t v = (uint8_t(bytes[i]) << 16) | (uint8_t(bytes[i + 1]) << 8) | uint8_t(bytes[i + 2]);
    for (int s = 18; s >= 0; s -= 6) out += abc[(v >> s) & 63];
  }
  if (i + 1 == bytes.size()) {
    const uint32_t v = uint8_t(bytes[i]) << 16;
    out += abc[(v >> 18) & 63];
    out += abc[(v >> 12) & 63];
    out += "==";
  } else if (i + 2 == bytes.size()) {
    const uint32_t v = (uint8_t(bytes[i]) << 16) | (uint8_t(bytes[i + 1]) << 8);
    out += abc[(v >> 18) & 63];
    out += abc[(v >> 12) & 63];
    out += abc[(v >> 6) & 63];
    out += '=';
  }
  return out;
}

std::string html_escape(const std::string& text) {
  std::string out;
  out.reserve(text.size());
  for (char c : text) switch (c) {
      case '&':
        out += "&amp;";
        break;
      case '<':
        out += "&lt;";
        break;
      case '>':
        out += "&gt;";
        break;
      case '"':
        out += "&quot;";
        break;
      case '\'':
        out += "&#39;";
        break;
      default:
        out += c;
    }
  return out;
}

std::string render_report(const nlohmann::json& m, const std::vector<Prediction>& ps, const ReportOptions& options) {
  std::ostringstream o;
  const std::string run = m.value("run", ""), dataset = m.value("dataset", ""), split = m.value("split", "");
  o << "<!DOCTYPE html><html lang=\"en\"><head><meta charset=\"utf-8\"><title>lriad evaluation: " << html_escape(run)
    << "</title><style>" << kStyle << "</style></head><body>";
  o << "<h1>lriad evaluation</h1><p class=\"muted\">run <code>" << html_escape(run) << "</code> &middot; dataset <code>"
    << html_escape(dataset) << "</code> &middot; split " << html_escape(split) << " &middot; "
    << html_escape(m.value("timestamp", "")) << "</p>";
  if (m.value("excluded_train_from_test", 0) > 0)
    o << "<p>" << m["excluded_train_from_test"].get<int64_t>()
      << " test images were excluded because training used them (data.train_from_test).</p>";
  if (m.contains("skipped_images") && m["skipped_images"].is_array() && !m["skipped_images"].empty()) {
    o << "<p>" << m["skipped_images"].size() << " unreadable images were left out (--skip-bad-images):";
    for (const auto& path : m["skipped_images"]) o << " <code>" << html_escape(path.get<std::string>()) << "</code>";
    o << "</p>";
  }

  o << "<h2>Summary</h2><table id=\"summary\"><tr><th>metric</th><th>value</th></tr>";
  for (const char* key :
       {"n", "n_normal", "n_anomalous", "accuracy", "balanced_accuracy", "precision", "recall", "specificity", "f1",
        "auroc", "average_precision", "format_rate", "consistency_rate", "unparseable", "truncation_rate",
        "mean_length", "max_length", "localization_agreement", "defect_type_accuracy"})
    if (m.contains(key)) o << "<tr><td>" << key << "</td><td>" << fmt(m[key]) << "</td></tr>";
  o << "</table>";

  o << "<div class=\"row\"><div><h2>Confusion matrix</h2><table id=\"confusion\"><tr><th></th><th>predicted "
       "normal</th><th>predicted anomalous</th></tr>";
  const auto& cm = m["confusion"];
  o << "<tr><td>normal</td><td>" << fmt(cm["tn"]) << "</td><td>" << fmt(cm["fp"]) << "</td></tr>";
  o << "<tr><td>anomalous</td><td>" << fmt(cm["fn"]) << "</td><td>" << fmt(cm["tp"]) << "</td></tr></table></div>";
  o << "<div><h2>ROC curve (AUROC " << fmt(m["auroc"]) << ")</h2>" << roc_svg(ps) << "</div></div>";

  o << "<h2>Per category</h2><table id=\"per-category\"><tr><th>category</th><th>n</th><th>accuracy</th><th>balanced "
       "acc.</th><th>precision</th><th>recall</th><th>specificity</th><th>F1</th><th>AUROC</th><th>AP</th><th>format</"
       "th><th>consistency</th><th>localisation</th></tr>";
  auto cat_row = [&](const std::string& name, const nlohmann::json& c) {
    o << "<tr><td>" << html_escape(name) << "</td><td>" << (c.contains("n") ? fmt(c["n"]) : "") << "</td>";
    for (const char* key : {"accuracy", "balanced_accuracy", "precision", "recall", "specificity", "f1", "auroc",
                            "average_precision", "format_rate", "consistency_rate", "localization_agreement"})
      o << "<td>" << (c.contains(key) ? fmt(c[key]) : "") << "</td>";
    o << "</tr>";
  };
  for (const auto& [cat, c] : m["per_category"].items()) cat_row(cat, c);
  if (m.contains("macro")) cat_row("macro average", m["macro"]);
  o << "</table>";

  o << baseline_section(m);

  o << explanation_section(m);

  o << "<h2>Per defect type</h2><table id=\"per-defect-type\"><tr><th>defect "
       "type</th><th>family</th><th>n</th><th>recall"
       "</th><th>type accuracy</th></tr>";
  for (const auto& [type, t] : m["per_defect_type"].items())
    o << "<tr><td>" << html_escape(type) << "</td><td>"
      << (t.contains("family") && t["family"].is_string() ? html_escape(t["family"].get<std::string>()) : "-")
      << "</td><td>" << fmt(t["n"]) << "</td><td>" << fmt(t["recall"]) << "</td><td>" << fmt(t["type_accuracy"])
      << "</td></tr>";
  o << "</table>";

  // Gallery: false negatives, false positives, then some correct ones.
  std::vector<std::pair<std::string, const Prediction*>> cards;
  for (const char* kind : {"fn", "fp", "tp", "tn"})
    for (const auto& p : ps) {
      const std::string k = p.label ? (p.pred ? "tp" : "fn") : (p.pred ? "fp" : "tn");
      if (k == kind) cards.emplace_back(k, &p);
    }
  int errors = 0, correct = 0;
  for (const auto& [k, p] : cards) (k == "fn" || k == "fp" ? errors : correct)++;
  o << "<h2>Gallery</h2><p class=\"muted\">" << errors << " errors and " << correct
    << " correct; errors first (false negatives, then false positives). Red outline: ground-truth mask. Right: the "
       "deviation map the policy read (its normal reference's evidence; blue below, red at "
    << fmt(kHeatSaturation, 0) << "&times; the normal level and above), the region its chain names boxed in yellow.</p>"
    << "<div id=\"gallery\">";
  int shown_errors = 0, shown_correct = 0;
  for (const auto& [k, p] : cards) {
    const bool error = k == "fn" || k == "fp";
    if (error ? shown_errors++ >= options.max_errors : shown_correct++ >= options.max_correct) continue;
    static const std::map<std::string, std::string> names = {
        {"fn", "false negative"}, {"fp", "false positive"}, {"tp", "true positive"}, {"tn", "true negative"}};
    o << "<div class=\"card " << k << "\"><div class=\"imgs\">";
    const char* alts[] = {"image", "deviation map"};
    const auto pictures = card_pictures(*p, options.thumbnail);
    for (size_t i = 0; i < pictures.size(); ++i)
      o << "<img src=\"" << pictures[i] << "\" alt=\"" << alts[i] << ": " << html_escape(p->image) << "\">";
    o << "</div>";
    o << "<div class=\"text\"><div class=\"tag\">" << names.at(k) << "</div><div>" << html_escape(p->category) << " / "
      << html_escape(p->defect_type) << " &middot; score " << fmt(p->score) << "</div><div class=\"muted\">"
      << html_escape(p->image) << "</div><div class=\"cot\">" << html_escape(p->completion) << "</div>";
    if (!p->votes.empty()) {
      o << "<div class=\"muted\">votes:";
      for (int v : p->votes) o << " " << (v < 0 ? "?" : v ? "anomalous" : "normal");
      o << "</div>";
    }
    o << "</div></div>";
  }
  o << "</div></body></html>\n";
  return o.str();
}

void write_outputs(const std::string& dir, const nlohmann::json& metrics, const std::vector<Prediction>& predictions,
                   const ReportOptions& options) {
  io::write_file_atomic(dir + "/metrics.json", metrics.dump(2) + "\n");
  std::string lines;
  for (const auto& p : predictions) lines += to_json(p).dump() + "\n";
  io::write_file_atomic(dir + "/predictions.jsonl", lines);
  io::write_file_atomic(dir + "/report.html", render_report(metrics, predictions, options));
}

}  // namespace lriad::eval
