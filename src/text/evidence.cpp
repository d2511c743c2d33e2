// Facts of the normal reference's evidence (see evidence.h).
#include "lriad/text/evidence.h"

#include <algorithm>
#include <cmath>
#include <cstdio>

#include <opencv2/imgproc.hpp>

#include "lriad/io/error.h"

namespace lriad::text {
namespace {

int cell_of(int x, int y, int side) { return std::min(2, y * 3 / side) * 3 + std::min(2, x * 3 / side); }

bool adjacent(int a, int b) { return a != b && std::abs(a / 3 - b / 3) <= 1 && std::abs(a % 3 - b % 3) <= 1; }

double round_ratio(double r) { return r < 10 ? std::round(r * 10) / 10 : std::round(r); }

}  // namespace

bool dark_line_at_full(const cv::Mat& full, const cv::Mat& area) {
  if (full.empty() || full.type() != CV_32FC3 || full.rows != full.cols || area.empty() || area.type() != CV_8UC1 ||
      area.rows != area.cols || full.rows <= 2 * area.rows)
    throw Error("dark_line_at_full: need a square CV_32FC3 image over twice the side of a square CV_8UC1 area",
                "pass the image at the side training kept it at, and the area at the model's side");
  const int F = full.rows;
  const double k = F / kLineSide;
  const auto odd = [](double px) { return 2 * std::max(0, int(std::floor(px / 2))) + 1; };  // 7 -> 7, 8 -> 9
  // Where to look: the area brought to F, and a margin around it.
  cv::Mat near;
  cv::resize(area != 0, near, cv::Size(F, F), 0, 0, cv::INTER_NEAREST);
  cv::dilate(near, near, cv::Mat::ones(odd(2 * kLineMargin * k), odd(2 * kLineMargin * k), CV_8U));
  // Luminance at zero mean and unit spread, minus its blur: what is darker than around it.
  cv::Mat lum;
  cv::transform(full, lum, cv::Matx13f(1.f / 3, 1.f / 3, 1.f / 3));  // (F,F) CV_32FC1
  cv::Scalar mean, spread;
  cv::meanStdDev(lum, mean, spread);
  lum = (lum - mean[0]) / std::max(1e-6, spread[0]);
  cv::Mat blur;
  cv::GaussianBlur(lum, blur, cv::Size(), kLineSigma * k);
  const cv::Mat dark = (lum - blur < -kLineDarker) & near;  // CV_8UC1 255 inside
  const int n = cv::countNonZero(dark);
  if (n < 8) return false;
  cv::Mat left;
  const int w = odd(kLineWidth * k);
  cv::erode(dark, left, cv::getStructuringElement(cv::MORPH_ELLIPSE, cv::Size(w, w)));
  if (cv::countNonZero(left) > kLineSurvivors * n) return false;
  cv::Mat labels, stats, centroids;
  const int pieces = cv::connectedComponentsWithStats(dark, labels, stats, centroids, 8, CV_32S);
  int longest = 0, largest = 0;
  for (int i = 1; i < pieces; ++i)
    if (stats.at<int>(i, cv::CC_STAT_AREA) > largest) {
      largest = stats.at<int>(i, cv::CC_STAT_AREA);
      longest = std::max(stats.at<int>(i, cv::CC_STAT_WIDTH), stats.at<int>(i, cv::CC_STAT_HEIGHT));
    }
  return longest >= kLineLength * k;
}

EvidenceFacts evidence_facts(const cv::Mat& map, const cv::Mat& rgb, double level,
                             std::optional<reference::MapPart> part, const cv::Mat& full, const cv::Mat& absent,
                             const cv::Mat& colour) {
  if (map.empty() || map.type() != CV_32FC1 || map.rows != map.cols || rgb.type() != CV_32FC3 ||
      rgb.size() != map.size())
    throw Error("evidence_facts: need a square CV_32FC1 map and a CV_32FC3 image of its size",
                "pass the deviation channel of the policy input and its RGB channels");
  if (!(level > 0)) throw Error("evidence_facts: the normal level must be > 0, got " + std::to_string(level));
  if (!full.empty() && (full.type() != CV_32FC3 || full.rows != full.cols))
    throw Error("evidence_facts: the image at full side must be a square CV_32FC3, got " + std::to_string(full.cols) +
                    "x" + std::to_string(full.rows),
                "pass the image at the side training kept it at (model::model_side_image)");
  if (!absent.empty() && (absent.type() != CV_8UC1 || absent.size() != map.size()))
    throw Error("evidence_facts: the absent pixels must be a CV_8UC1 mask of the map's size",
                "pass NormalReference::absent of the same image");
  if (!colour.empty() && (colour.type() != CV_32FC1 || colour.size() != map.size()))
    throw Error("evidence_facts: the colour novelty must be a CV_32FC1 map of the map's size",
                "pass NormalReference::colour_novelty of the same image");
  EvidenceFacts f;
  f.level = level;
  double peak = 0;
  cv::Point at;
  cv::minMaxLoc(map, nullptr, &peak, nullptr, &at);
  const int S = map.rows;
  f.peak = peak;
  f.ratio = round_ratio(peak / level);
  f.where = Region(cell_of(at.x, at.y, S));
  f.above = peak > level;
  if (!f.above) return f;
  f.part = part;
  // The connected area above the level that holds the peak.
  cv::Mat above = map > level, labels;
  cv::connectedComponents(above, labels, 8, CV_32S);
  const cv::Mat area = labels == labels.at<int>(at);  // CV_8UC1 255 inside
  const int n = cv::countNonZero(area);
  f.area = double(n) / double(S * S);
  // Cells it spans: the neighbouring cell holding the most of it, if it holds enough.
  int counts[9] = {0};
  for (int y = 0; y < S; ++y)
    for (int x = 0; x < S; ++x)
      if (area.at<uchar>(y, x)) ++counts[cell_of(x, y, S)];
  int best = -1;
  for (int c = 0; c < 9; ++c)
    if (adjacent(c, int(f.where)) && counts[c] >= kSecondCellShare * n && (best < 0 || counts[c] > counts[best]))
      best = c;
  if (best >= 0) f.also = Region(best);
  // Extent: large, else thin and long (second moments), else compact.
  const cv::Moments m = cv::moments(area, true);
  const double a = m.mu20 / std::max(1.0, m.m00), b = m.mu02 / std::max(1.0, m.m00), c = m.mu11 / std::max(1.0, m.m00);
  const double root = std::sqrt(std::max(0.0, (a - b) * (a - b) + 4 * c * c));
  const double major = (a + b + root) / 2, minor = std::max((a + b - root) / 2, 1.0 / 12);  // a one-pixel line's width
  if (f.area >= kLargeArea)
    f.extent = EvidenceFacts::Extent::Large;
  else if (n >= 3 && std::sqrt(major / minor) >= kThinElongation)
    f.extent = EvidenceFacts::Extent::Thin;
  // Tone: the area's mean colour against a ring of 3 pixels around it.
  cv::Mat grown, ring;
  cv::dilate(area, grown, cv::Mat::ones(7, 7, CV_8U));
  ring = grown & ~area;
  if (cv::countNonZero(ring) > 0) {
    const cv::Scalar inside = cv::mean(rgb, area), around = cv::mean(rgb, ring);
    double d[3], lum = 0;
    for (int k = 0; k < 3; ++k) lum += (d[k] = inside[k] - around[k]) / 3;
    double chroma = 0;
    for (double v : d) chroma = std::max(chroma, std::abs(v - lum));
    if (chroma >= kToneStep && chroma > std::abs(lum))
      f.tone = EvidenceFacts::Tone::Colour;
    else if (lum <= -kToneStep)
      f.tone = EvidenceFacts::Tone::Darker;
    else if (lum >= kToneStep)
      f.tone = EvidenceFacts::Tone::Brighter;
  }
  // Background where the normal images show the part (evidence.h).
  if (!absent.empty()) {
    const int gone = cv::countNonZero(absent & area);
    f.absent = gone >= kAbsentShare * n && gone >= kAbsentMin * S * S;
  }
  // Colours no normal image shows, on average over the area (evidence.h).
  if (!colour.empty()) f.new_colour = cv::mean(colour, area)[0] >= kNewColour * level;
  // A compact piece of the map whose darker pixels at full resolution form a line (evidence.h).
  const bool patches = !f.part || *f.part == reference::MapPart::Patches;
  if (!full.empty() && full.rows > 2 * S && patches && !f.absent && f.extent == EvidenceFacts::Extent::Compact &&
      (f.tone == EvidenceFacts::Tone::Same || f.tone == EvidenceFacts::Tone::Darker) && dark_line_at_full(full, area)) {
    f.extent = EvidenceFacts::Extent::Thin;
    f.tone = EvidenceFacts::Tone::Darker;
    f.line_at_full = true;
  }
  return f;
}

std::string ratio_text(double ratio) {
  char buf[32];
  if (ratio < 10)
    std::snprintf(buf, sizeof(buf), "%.1f", std::max(0.0, round_ratio(ratio)));
  else
    std::snprintf(buf, sizeof(buf), "%.0f", std::min(999.0, round_ratio(ratio)));
  return buf;
}

std::string where_text(const EvidenceFacts& f) {
  std::string out = region_word(f.where);
  if (f.also) out += std::string(" and ") + region_word(*f.also);
  return out;
}

namespace {

// The shape and tone of the area: "a thin, long mark darker than around it".
std::string looks_shape_text(const EvidenceFacts& f) {
  std::string out;
  switch (f.extent) {
    case EvidenceFacts::Extent::Large:
      out = "a large area";
      break;
    case EvidenceFacts::Extent::Thin:
      out = "a thin, long mark";
      break;
    case EvidenceFacts::Extent::Compact:
      out = "a small, compact mark";
      break;
  }
  switch (f.tone) {
    case EvidenceFacts::Tone::Darker:
      return out + " darker than around it";
    case EvidenceFacts::Tone::Brighter:
      return out + " brighter than around it";
    case EvidenceFacts::Tone::Colour:
      return out + " of another colour";
    case EvidenceFacts::Tone::Same:
      return out;
  }
  return out;
}

}  // namespace

std::string looks_text(const EvidenceFacts& f) {
  if (f.absent) {
    const char* shape = f.extent == EvidenceFacts::Extent::Large  ? "a large area"
                        : f.extent == EvidenceFacts::Extent::Thin ? "a thin, long area"
                                                                  : "a small, compact area";
    return std::string(shape) + " of background where normal images show the part";
  }
  std::string part;
  if (f.part == reference::MapPart::Fine)
    part = ", in the fine detail";
  else if (f.part == reference::MapPart::Colour)
    part = ", of a colour no normal image shows";
  else if (f.part == reference::MapPart::Region)
    part = f.new_colour.value_or(false) ? ", of a tint no normal region shows, holding colours no normal image shows"
                                        : ", of a tint no normal region shows";
  return looks_shape_text(f) + part;
}

std::optional<DefectFamily> look_family(const EvidenceFacts& f) {
  using E = EvidenceFacts::Extent;
  using T = EvidenceFacts::Tone;
  using P = reference::MapPart;
  if (!f.above) return std::nullopt;
  if (f.absent) return DefectFamily::Missing;
  if (f.part == P::Region) {
    const bool covered = f.new_colour ? *f.new_colour : f.extent == E::Large;  // unread: as runs before it learnt
    return covered ? DefectFamily::Contamination : DefectFamily::Stain;
  }
  if (f.part == P::Colour) return f.extent == E::Large ? DefectFamily::Contamination : DefectFamily::Hole;
  if (f.part == P::Fine) return DefectFamily::Scratch;
  if (f.tone == T::Colour) return DefectFamily::Stain;
  if (f.extent == E::Large) return DefectFamily::Contamination;
  if (f.tone == T::Darker) return f.extent == E::Thin ? DefectFamily::Crack : DefectFamily::Hole;
  if (f.tone == T::Brighter || f.extent == E::Thin) return DefectFamily::Scratch;
  return DefectFamily::Hole;
}

std::string chain_defect_type(bool anomalous, const std::string& label, const EvidenceFacts* facts, bool from_look) {
  if (!anomalous) return "";
  if (!from_look || !facts) return label;
  const auto family = look_family(*facts);
  return family ? family_word(*family) : "";
}

}  // namespace lriad::text
