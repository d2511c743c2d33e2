// parse_completion: the format, verdict, defect type, region and consistency of one completion.
#include "lriad/text/answer.h"

#include "lriad/text/defect_family.h"

#include <cctype>

namespace lriad::text {
namespace {

bool is_space(char c) { return std::isspace(static_cast<unsigned char>(c)) != 0; }
bool is_word_char(char c) { return std::isalnum(static_cast<unsigned char>(c)) != 0; }

std::string lowercase(std::string s) {
  for (char& c : s) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return s;
}

std::string trim(const std::string& s) {
  size_t b = 0, e = s.size();
  while (b < e && is_space(s[b])) ++b;
  while (e > b && is_space(s[e - 1])) --e;
  return s.substr(b, e - b);
}

bool blank(const std::string& s, size_t from, size_t to) {
  for (size_t i = from; i < to && i < s.size(); ++i)
    if (!is_space(s[i])) return false;
  return true;
}

size_t count(const std::string& s, const std::string& tag) {
  size_t n = 0;
  for (size_t p = s.find(tag); p != std::string::npos; p = s.find(tag, p + tag.size())) ++n;
  return n;
}

// Maximal runs of ASCII letters and digits, lowercased, with their end offsets.
struct Word {
  std::string text;
  size_t end;
};
std::vector<Word> words(const std::string& s) {
  std::vector<Word> out;
  for (size_t i = 0; i < s.size();) {
    if (!is_word_char(s[i])) {
      ++i;
      continue;
    }
    size_t j = i;
    while (j < s.size() && is_word_char(s[j])) ++j;
    out.push_back({lowercase(s.substr(i, j - i)), j});
    i = j;
  }
  return out;
}

bool is_negation(const std::string& w) { return w == "not" || w == "no" || w == "neither" || w == "nor"; }

std::string clip(const std::string& s) { return s.size() <= 40 ? s : s.substr(0, 40) + "..."; }

// The dataset's spelling of `canonical` if it names a known type, else "".
std::string match_known(const std::string& canonical, const std::vector<std::string>& known) {
  for (const auto& k : known)
    if (!canonical.empty() && canonical_defect_type(k) == canonical) return k;
  return "";
}

struct AnswerReading {
  std::optional<int> verdict;
  std::string defect_type;
  std::string problem;  // why there is no verdict
};

// Rules 3 and 4 of answer.h.
AnswerReading read_answer(const std::string& answer, const std::vector<std::string>& known) {
  AnswerReading r;
  // 1. split into the verdict part and the defect-type part
  std::string head = answer, tail;
  if (const size_t colon = answer.find(':'); colon != std::string::npos) {
    head = answer.substr(0, colon);
    tail = answer.substr(colon + 1);
  } else {
    for (const auto& w : words(answer))
      if (verdict_of_word(w.text)) {
        head = answer.substr(0, w.end);
        tail = answer.substr(w.end);
        break;
      }
  }
  const std::string type_canonical = canonical_defect_type(tail);
  const std::string type_known = match_known(type_canonical, known);

  // 2. verdict words of the head (and of the tail unless it names a known type)
  bool seen[2] = {false, false};
  bool negated = false;
  auto scan = [&](const std::string& part) {
    for (const auto& w : words(part)) {
      if (auto v = verdict_of_word(w.text)) seen[*v] = true;
      negated = negated || is_negation(w.text);
    }
  };
  scan(head);
  if (type_known.empty()) scan(tail);
  if (negated)
    r.problem = "answer negates a verdict (say just normal or anomalous)";
  else if (seen[0] && seen[1])
    r.problem = "answer hedges between normal and anomalous";
  else if (!seen[0] && !seen[1])
    r.problem = "answer names no verdict (normal or anomalous)";
  else
    r.verdict = seen[1] ? 1 : 0;

  // 3. the defect type, for anomalous answers
  if (r.verdict == 1 && !verdict_of_word(type_canonical))  // "anomaly: defect" names no type
    r.defect_type = type_known.empty() ? type_canonical : type_known;
  return r;
}

// Rule 5: the verdict word right after the last conclusion marker of the think.
std::optional<int> reasoning_verdict(const std::string& think) {
  static const char* markers[] = {"so it is", "therefore it is", "thus it is", "hence it is"};
  std::string t;  // lowercase, whitespace runs collapsed to one space
  for (char c : lowercase(think)) {
    if (is_space(c)) {
      if (!t.empty() && t.back() != ' ') t += ' ';
    } else {
      t += c;
    }
  }
  size_t best = std::string::npos, best_end = 0;
  for (const char* m : markers) {
    const std::string marker = m;
    size_t p = t.rfind(marker);
    while (p != std::string::npos && p > 0 && is_word_char(t[p - 1]))  // "also it is" is no marker
      p = t.rfind(marker, p - 1);
    if (p == std::string::npos) continue;
    if (best == std::string::npos || p > best) best = p, best_end = p + marker.size();
  }
  if (best == std::string::npos) return std::nullopt;
  const auto after = words(t.substr(best_end));
  if (after.empty()) return std::nullopt;
  return verdict_of_word(after.front().text);
}

// Rule 6: what the think says it found, from its phrases (lowercase, whitespace collapsed).
std::optional<int> finding_verdict(const std::string& think) {
  const std::string t = lowercase(think);
  static const char* none[] = {"nothing there stands out", "nothing there seems defective", "no defect",
                               "nothing looks out of place", "surface is uniform"};
  static const char* some[] = {"there is a ", "there is an ", "there is only a ",         "i find a ",
                               "i find an ",  " is visible",  "there is what looks like "};
  bool n = false, a = false;
  for (const char* p : none) n = n || t.find(p) != std::string::npos;
  for (const char* p : some) a = a || t.find(p) != std::string::npos;
  if (n == a) return std::nullopt;
  return a ? 1 : 0;
}

// Rule 6: "like a crack," -> "crack", "like contamination." -> "contamination" (canonical); "" when
// the think likens the finding to nothing.
std::string named_type(const std::string& think) {
  const std::string t = " " + lowercase(think);
  const size_t p = t.find(" like ");
  if (p == std::string::npos) return "";
  size_t from = p + 6;
  for (const char* article : {"an ", "a "})
    if (t.compare(from, std::char_traits<char>::length(article), article) == 0)
      from += std::char_traits<char>::length(article);
  const size_t to = t.find_first_of(",.;", from);
  const std::string name =
      canonical_defect_type(t.substr(from, to == std::string::npos ? std::string::npos : to - from));
  return name == "defect" ? "" : name;  // "like a defect": no name
}

// Blanks out whole-word occurrences of the defect-type names so parse_region skips them.
std::string mask_names(const std::string& think, const std::vector<std::string>& names) {
  std::string t = lowercase(think);
  for (char& c : t)
    if (c == '_' || c == '-') c = ' ';
  for (const auto& name : names) {
    std::string n = lowercase(name);
    for (char& c : n)
      if (c == '_' || c == '-') c = ' ';
    n = trim(n);
    if (n.empty()) continue;
    for (size_t p = t.find(n); p != std::string::npos; p = t.find(n, p + 1)) {
      const bool starts = p == 0 || !is_word_char(t[p - 1]);
      const bool ends = p + n.size() >= t.size() || !is_word_char(t[p + n.size()]);
      if (starts && ends) t.replace(p, n.size(), n.size(), '.');
    }
  }
  return t;
}

}  // namespace

std::optional<int> verdict_of_word(const std::string& w) {
  if (w == "normal" || w == "good" || w == "ok" || w == "okay") return 0;
  if (w == "anomalous" || w == "anomaly" || w == "abnormal" || w == "defective" || w == "defect") return 1;
  return std::nullopt;
}

ParsedCompletion parse_completion(const std::string& text, const std::vector<std::string>& known) {
  ParsedCompletion r;
  const std::string to = kThinkOpen, tc = kThinkClose, ao = kAnswerOpen, ac = kAnswerClose;
  const size_t n_to = count(text, to), n_tc = count(text, tc), n_ao = count(text, ao), n_ac = count(text, ac);
  const size_t p_to = text.find(to), p_tc = text.find(tc), p_ao = text.find(ao), p_ac = text.find(ac);

  // 1. the parts that can be read unambiguously, whatever else is wrong (rule 2)
  const bool has_think = n_to == 1 && n_tc == 1 && p_to < p_tc;
  const bool has_answer = n_ao == 1 && n_ac == 1 && p_ao < p_ac;
  if (has_think) r.think = trim(text.substr(p_to + to.size(), p_tc - p_to - to.size()));
  std::string answer_problem;
  if (has_answer) {
    r.answer = trim(text.substr(p_ao + ao.size(), p_ac - p_ao - ao.size()));
    const AnswerReading a = read_answer(r.answer, known);
    r.verdict = a.verdict;
    r.defect_type = a.defect_type;
    answer_problem = a.problem;
  }
  if (has_think) {
    r.reasoning_verdict = reasoning_verdict(r.think);
    std::vector<std::string> names = known;
    if (!r.defect_type.empty()) names.push_back(r.defect_type);
    r.region = parse_region(mask_names(r.think, names));
  }
  if (has_think) {
    r.finding_verdict = finding_verdict(r.think);
    r.named_type = named_type(r.think);
  }
  r.consistent = r.verdict && r.reasoning_verdict && *r.verdict == *r.reasoning_verdict &&
                 (!r.finding_verdict || *r.finding_verdict == *r.verdict) &&
                 (r.named_type.empty() || (*r.verdict == 1 && same_defect(r.named_type, r.defect_type)));

  // 2. the format rules, first failure wins
  auto tag_count = [](size_t n, const std::string& tag) -> std::string {
    if (n == 0) return "missing " + tag;
    if (n > 1) return "more than one " + tag;
    return "";
  };
  const std::pair<size_t, std::string> tags[] = {{n_to, to}, {n_tc, tc}, {n_ao, ao}, {n_ac, ac}};
  for (const auto& [n, tag] : tags)
    if (r.error.empty()) r.error = tag_count(n, tag);
  if (r.error.empty()) {
    if (p_tc < p_to)
      r.error = tc + " comes before " + to;
    else if (p_ao < p_tc)
      r.error = ao + " comes before " + tc;
    else if (p_ac < p_ao)
      r.error = ac + " comes before " + ao;
    else if (!blank(text, 0, p_to))
      r.error = "text before " + to;
    else if (!blank(text, p_tc + tc.size(), p_ao))
      r.error = "text between " + tc + " and " + ao;
    else if (!blank(text, p_ac + ac.size(), text.size()))
      r.error = "text after " + ac;
    else if (r.think.empty())
      r.error = "empty " + to + tc;
    else if (r.answer.empty())
      r.error = "empty " + ao + ac;
    else if (!answer_problem.empty())
      r.error = answer_problem + ": '" + clip(r.answer) + "'";
  }
  r.well_formed = r.error.empty();
  return r;
}

}  // namespace lriad::text
