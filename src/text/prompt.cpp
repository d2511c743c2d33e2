// Prompt and chain-of-thought templates, coarse regions, and the tokenizer corpus.
#include "lriad/text/prompt.h"

#include <algorithm>
#include <cctype>
#include <cmath>
#include <cstdlib>
#include <set>

#include "lriad/data/sample.h"
#include "lriad/text/defect_family.h"
#include "lriad/text/evidence.h"

namespace lriad::text {
namespace {

bool is_alnum(char c) { return std::isalnum(static_cast<unsigned char>(c)) != 0; }
char lower(char c) { return static_cast<char>(std::tolower(static_cast<unsigned char>(c))); }

// "metal_nut" -> "metal nut": names are rendered as words in the prose.
std::string spaced(const std::string& name) {
  std::string out = name;
  std::replace(out.begin(), out.end(), '_', ' ');
  return out;
}

// "a" or "an" by the first letter (good enough for category and defect names).
std::string article(const std::string& word, bool capital) {
  const bool vowel = !word.empty() && std::string("aeiou").find(lower(word[0])) != std::string::npos;
  return std::string(capital ? "A" : "a") + (vowel ? "n" : "");
}

// Lowercase; '-', '_' and any whitespace run become one space (so "Upper-Left" matches).
std::string normalize_for_phrases(const std::string& text) {
  std::string out;
  out.reserve(text.size());
  for (char c : text) {
    const bool space = c == '-' || c == '_' || std::isspace(static_cast<unsigned char>(c));
    if (space) {
      if (!out.empty() && out.back() != ' ') out += ' ';
    } else {
      out += lower(c);
    }
  }
  return out;
}

struct RegionPhrase {
  const char* text;
  Region region;
};

// Longest first, so that at one position "upper left" wins over "left".
const std::vector<RegionPhrase>& region_phrases() {
  static const std::vector<RegionPhrase> phrases = [] {
    std::vector<RegionPhrase> p = {{"upper left", Region::UpperLeft},
                                   {"top left", Region::UpperLeft},
                                   {"upper right", Region::UpperRight},
                                   {"top right", Region::UpperRight},
                                   {"lower left", Region::LowerLeft},
                                   {"bottom left", Region::LowerLeft},
                                   {"lower right", Region::LowerRight},
                                   {"bottom right", Region::LowerRight},
                                   {"top", Region::Top},
                                   {"left", Region::Left},
                                   {"center", Region::Center},
                                   {"centre", Region::Center},
                                   {"middle", Region::Center},
                                   {"right", Region::Right},
                                   {"bottom", Region::Bottom}};
    std::stable_sort(p.begin(), p.end(), [](const RegionPhrase& a, const RegionPhrase& b) {
      return std::string(a.text).size() > std::string(b.text).size();
    });
    return p;
  }();
  return phrases;
}

// Conclusion sentence shared by every phrasing (parse_completion looks for "so it is").
std::string conclusion(bool anomalous) { return anomalous ? ", so it is anomalous." : ", so it is normal."; }

std::string intro(const std::string& category, int v) {
  const std::string c = spaced(category);
  switch (v) {
    case 0:
      return "The image shows " + article(c, false) + " " + c + " sample.";
    case 1:
      return "This is " + article(c, false) + " " + c + " sample.";
    default:
      return "I see " + article(c, false) + " " + c + " sample.";
  }
}

std::string inspected(int v) {
  switch (v) {
    case 0:
      return "I check the surface and the shape.";
    case 1:
      return "I inspect its surface, edges and color.";
    default:
      return "I look at every part of the surface.";
  }
}

std::string finding_normal(int v) {
  switch (v) {
    case 0:
      return "The surface is uniform and the shape is intact" + conclusion(false);
    case 1:
      return "I find no defect" + conclusion(false);
    default:
      return "Nothing looks out of place" + conclusion(false);
  }
}

// "a crack defect at the upper left" or, unnamed, "a defect".
std::string finding_anomalous(const CotSpec& s, int v) {
  const std::string type = is_unnamed_defect(s.defect_type) ? "" : spaced(s.defect_type) + " ";
  const std::string what = type + "defect";
  const std::string where = s.region ? std::string(" at the ") + region_word(*s.region) : "";
  switch (v) {
    case 0:
      return "There is " + article(what, false) + " " + what + where + conclusion(true);
    case 1:
      return "I find " + article(what, false) + " " + what + where + conclusion(true);
    default:
      return article(what, true) + " " + what + " is visible" + where + conclusion(true);
  }
}

// The grounded chain's comparison sentence, ending with kDecisionMarker: where the largest deviation
// is, what the area above the normal level looks like (when there is one) and how strong it is.
std::string compared(const std::string& category, const EvidenceFacts& f, int v) {
  const std::string c = spaced(category), at = where_text(f) + ", " + ratio_text(f.ratio) + kDecisionMarker;
  const std::string look = f.above ? looks_text(f) + ", " : "";  // "a thin, long mark, "
  switch (v) {
    case 0:
      return "I compare it with normal " + c + " images: the largest deviation is " + look + "at the " + at;
    case 1:
      return "Against normal " + c + " images, its largest deviation" + (f.above ? ", " + look : " ") + "lies at the " +
             at;
    default:
      return "Compared with normal " + c + " images, the largest deviation is " + look + "at the " + at;
  }
}

// The word an anomalous answer names: the defect's family where it maps onto one, else its type;
// "" for an unnamed defect.
std::string answer_type(const std::string& defect_type) {
  if (is_unnamed_defect(defect_type)) return "";
  if (const auto f = family_of(defect_type)) return family_word(*f);
  return spaced(canonical_defect_type(defect_type));
}

// The finding follows the label and says only what the facts hold: below the normal level, "nothing
// stands out" (normal) or "a faint change" (anomalous); above it, what the area (described in the
// comparison) looks like to an inspector, its family (anomalous), or, for a normal image as strong as
// a few normal images are, that nothing seems defective (the label's judgement, not a measurement).
// Every finding starts with "Nothing" or "There is", right after the decision point.
std::string grounded_think(const CotSpec& s, int v) {
  const EvidenceFacts& f = *s.evidence;
  std::string think = intro(s.category, v) + " " + compared(s.category, f, v) + " ";
  if (!s.anomalous)
    return think +
           (f.above ? "Nothing there seems defective"
                    : "Nothing there stands out from normal " + spaced(s.category) + " images") +
           conclusion(false);
  const std::string type = answer_type(s.defect_type);
  const std::string like = like_phrase(type);
  if (f.above) return think + kLikeLead + " " + like + conclusion(true);
  return think + "There is only a faint change" + (type.empty() ? "" : ", like " + like) + conclusion(true);
}

}  // namespace

std::string like_phrase(const std::string& type) {
  if (type.empty()) return "a defect";
  if (type == "contamination") return type;
  return article(type, false) + " " + type;
}

std::string build_prompt(const std::string& category) {
  return "Inspect the " + spaced(category) + ". Is it normal or anomalous? Reason in " + kThinkOpen + kThinkClose +
         ", then answer in " + kAnswerOpen + kAnswerClose + ".";
}

std::string grounded_opening(const std::string& category, const EvidenceFacts& facts) {
  return std::string(kThinkOpen) + intro(category, 0) + " " + compared(category, facts, 0);
}

const char* region_word(Region r) {
  switch (r) {
    case Region::UpperLeft:
      return "upper left";
    case Region::Top:
      return "top";
    case Region::UpperRight:
      return "upper right";
    case Region::Left:
      return "left";
    case Region::Center:
      return "center";
    case Region::Right:
      return "right";
    case Region::LowerLeft:
      return "lower left";
    case Region::Bottom:
      return "bottom";
    case Region::LowerRight:
      return "lower right";
  }
  return "center";
}

bool names_category(const std::string& think, const std::string& category) {
  auto words = [](const std::string& s) {  // " w1 w2 ... ": lowercase words between single spaces
    std::string out = " ";
    for (char c : normalize_for_phrases(s)) {
      const char w = is_alnum(c) ? c : ' ';
      if (w != ' ' || out.back() != ' ') out += w;
    }
    if (out.back() != ' ') out += ' ';
    return out;
  };
  const std::string name = words(category);
  if (name == " ") return false;
  return words(think.substr(0, think.find('.'))).find(name) != std::string::npos;
}

std::optional<Region> parse_region(const std::string& text) {
  const std::string t = normalize_for_phrases(text);
  for (size_t i = 0; i < t.size(); ++i) {
    if (i > 0 && is_alnum(t[i - 1])) continue;  // phrases start at a word boundary
    for (const auto& p : region_phrases()) {
      const size_t n = std::char_traits<char>::length(p.text);
      if (t.compare(i, n, p.text) != 0) continue;
      if (i + n < t.size() && is_alnum(t[i + n])) continue;  // "topic" is not "top"
      return p.region;
    }
  }
  return std::nullopt;
}

Region region_of_point(double x, double y) {
  auto cell = [](double v) {
    if (!(v > 0)) return 0;  // also NaN
    return std::min(2, static_cast<int>(v * 3));
  };
  return static_cast<Region>(cell(y) * 3 + cell(x));
}

std::string canonical_defect_type(const std::string& name) {
  std::string out;
  for (char c : name) {
    if (c == ' ' || c == '_' || c == '-' || std::isspace(static_cast<unsigned char>(c))) {
      if (!out.empty() && out.back() != '_') out += '_';
    } else {
      out += lower(c);
    }
  }
  // Trim punctuation and separators at both ends ("crack." -> "crack", "(dent)" -> "dent").
  auto junk = [](char c) { return !is_alnum(c); };
  while (!out.empty() && junk(out.back())) out.pop_back();
  size_t start = 0;
  while (start < out.size() && junk(out[start])) ++start;
  return out.substr(start);
}

bool is_unnamed_defect(const std::string& defect_type) {
  const std::string c = canonical_defect_type(defect_type);
  return c.empty() || c == data::kUnknownAnomalyType;
}

std::string build_completion(const CotSpec& spec) {
  const int v = ((spec.variant % kCotVariants) + kCotVariants) % kCotVariants;
  std::string think = spec.evidence ? grounded_think(spec, v)
                                    : intro(spec.category, v) + " " + inspected(v) + " " +
                                          (spec.anomalous ? finding_anomalous(spec, v) : finding_normal(v));
  std::string answer = "normal";
  if (spec.anomalous) {
    answer = "anomalous";
    const std::string type = spec.evidence                         ? answer_type(spec.defect_type)
                             : is_unnamed_defect(spec.defect_type) ? ""
                                                                   : spaced(canonical_defect_type(spec.defect_type));
    if (!type.empty()) answer += ": " + type;
  }
  return std::string(kThinkOpen) + think + kThinkClose + kAnswerOpen + answer + kAnswerClose;
}

std::vector<std::string> corpus_sentences(const std::vector<std::string>& categories,
                                          const std::vector<std::string>& defect_types, bool grounded) {
  // 1. names, as given
  std::vector<std::string> cats = categories, types = defect_types;
  types.erase(std::remove(types.begin(), types.end(), std::string(data::kGoodType)), types.end());
  types.push_back("");  // the unnamed defect ("anomalous" without a type)

  // 2. every prompt and completion, in a fixed order, each once
  std::vector<std::string> out;
  std::set<std::string> seen;
  auto add = [&](std::string s) {
    if (seen.insert(s).second) out.push_back(std::move(s));
  };
  // The grounded chains: every region and region pair, every description and family, and every
  // ratio a chain can state (one sentence each, so that the numbers' pieces are learnt).
  std::vector<EvidenceFacts> facts;
  for (int r = 0; r < kRegionCount; ++r) {
    EvidenceFacts f;
    f.where = Region(r);
    f.ratio = 0.5 + r;
    facts.push_back(f);
    for (int o = 0; o < kRegionCount; ++o)
      if (o != r && std::abs(o / 3 - r / 3) <= 1 && std::abs(o % 3 - r % 3) <= 1) {
        f.also = Region(o);
        facts.push_back(f);
        f.also.reset();
      }
  }
  // The looks, in an order that fixes each one's phrasing (new looks go last).
  constexpr EvidenceFacts::Extent kExtents[] = {EvidenceFacts::Extent::Compact, EvidenceFacts::Extent::Thin,
                                                EvidenceFacts::Extent::Large};
  const auto look = [](EvidenceFacts::Extent e) {  // an area above the level of extent e
    EvidenceFacts f;
    f.above = true;
    f.ratio = 2.5;
    f.extent = e;
    return f;
  };
  std::vector<EvidenceFacts> looks;
  for (auto e : kExtents)
    for (auto t : {EvidenceFacts::Tone::Same, EvidenceFacts::Tone::Darker, EvidenceFacts::Tone::Brighter,
                   EvidenceFacts::Tone::Colour}) {
      looks.push_back(look(e));
      looks.back().tone = t;
    }
  for (auto part : {reference::MapPart::Fine, reference::MapPart::Colour, reference::MapPart::Region})
    for (auto e : kExtents) {  // each part's words once per extent (they follow the shape and tone's)
      looks.push_back(look(e));
      looks.back().part = part;
    }
  for (auto e : kExtents) {  // background where normal images show the part, once per extent
    looks.push_back(look(e));
    looks.back().absent = true;
  }
  for (auto e : kExtents) {  // a tint holding colours no normal image shows, once per extent
    looks.push_back(look(e));
    looks.back().part = reference::MapPart::Region;
    looks.back().new_colour = true;
  }
  std::vector<std::string> families = {""};
  for (auto fam : all_families()) families.push_back(family_word(fam));
  for (const auto& t : types)
    if (!family_of(t)) families.push_back(t);  // types no family holds are named as they are
  const std::string fragment = std::string(kThinkOpen) + "The largest deviation is ";
  for (int tenth = 0; tenth < 100 && grounded; ++tenth) add(fragment + ratio_text(tenth / 10.0) + kDecisionMarker);
  for (int whole = 10; whole < 100 && grounded; ++whole) add(fragment + ratio_text(whole) + kDecisionMarker);
  for (const auto& c : cats) {
    if (!grounded) break;
    add(build_prompt(c));
    for (int v = 0; v < kCotVariants; ++v) {
      for (const auto& f : facts) {
        add(build_completion({c, false, "", std::nullopt, v, &f}));  // below the level
        EvidenceFacts strong = f;
        strong.above = true;
        add(build_completion({c, false, "", std::nullopt, v, &strong}));  // a normal image above it
        if (f.also) continue;
        for (const auto& t : families) add(build_completion({c, true, t, std::nullopt, v, &f}));  // a faint change
      }
      for (size_t k = 0; k < looks.size(); ++k)
        for (const auto& t : families)
          if (k % kCotVariants == size_t(v) || t.empty())
            add(build_completion({c, true, t, std::nullopt, v, &looks[k]}));
    }
  }
  for (const auto& c : cats) {
    add(build_prompt(c));
    for (int v = 0; v < kCotVariants; ++v) {
      add(build_completion({c, false, "", std::nullopt, v}));
      for (const auto& t : types) {
        add(build_completion({c, true, t, std::nullopt, v}));
        for (int r = 0; r < kRegionCount; ++r) add(build_completion({c, true, t, static_cast<Region>(r), v}));
      }
    }
  }
  return out;
}

}  // namespace lriad::text
