// Parsing a generated completion `<think>…</think><answer>…</answer>`: format, verdict, defect
// type, region and whether the reasoning's conclusion agrees with the answer. A pure function of
// its input (fuzzed): any byte string is accepted.
#pragma once
#include <optional>
#include <string>
#include <vector>

#include "lriad/text/prompt.h"

namespace lriad::text {

struct ParsedCompletion {
  bool well_formed = false;              // every format rule holds (see parse_completion)
  std::string think;                     // text inside <think></think>, trimmed; "" when ambiguous
  std::string answer;                    // text inside <answer></answer>, trimmed; "" when ambiguous
  std::optional<int> verdict;            // 0 normal, 1 anomalous; nullopt: unparseable or hedged
  std::string defect_type;               // known type as spelled in the dataset, else canonical; "" none
  std::optional<Region> region;          // first region phrase stated in the think
  std::optional<int> reasoning_verdict;  // the think's conclusion ("so it is normal")
  std::optional<int> finding_verdict;    // what the think says it found: 0 "nothing there stands out", "nothing
                                         // there seems defective", "no defect"; 1 "there is (only) a", "I find a";
                                         // nullopt neither or both
  std::string named_type;                // the type the think likens the finding to ("like a crack" -> "crack")
  // reasoning_verdict == verdict, both present; the finding, when stated, says the same; and a
  // type the think names is the answer's (the same family, text/defect_family.h)
  bool consistent = false;
  std::string error;  // the first format rule broken; "" when well-formed
};

// Rules (the format and the verdict are judged apart, so that the format and the accuracy
// rewards stay separate):
// 1. Well-formed: exactly one <think>, </think>, <answer>, </answer>, in that order, only
//    whitespace before <think>, between </think> and <answer> and after </answer>, non-empty
//    think and answer, and a verdict.
// 2. The answer (and so the verdict) is read whenever exactly one <answer> is followed by exactly
//    one </answer>, even when other rules fail (text after </answer>, no think, ...). The think
//    is read likewise from exactly one <think> … </think>.
// 3. Verdict words (case-insensitive, whole words): normal, good, ok, okay -> 0; anomalous,
//    anomaly, abnormal, defective, defect -> 1. Both classes named ("normal or anomalous",
//    "Anomalous / normal") is a hedge -> nullopt; so is a negation ("not", "no", "neither") in
//    the verdict part; no verdict word -> nullopt.
// 4. Defect type: for an anomalous verdict, the text after the first ':' (or, without ':', after
//    the first verdict word), matched case-insensitively against `known_defect_types` with
//    spaces, hyphens and underscores equivalent; unmatched -> canonical_defect_type(text).
//    A known type there is not searched for verdict words (a type named "good_print" is fine).
// 5. Reasoning verdict: the verdict word right after the last "so it is" / "therefore it is" /
//    "thus it is" / "hence it is" in the think. Region: parse_region on the think, with the
//    defect-type names masked out (MVTec's "thread_top" is a type, not a region).
// 6. Finding and named type: see ParsedCompletion; "I find no defect, so it is anomalous" is
//    inconsistent, and so is "like a crack" with the answer "anomalous: hole".
ParsedCompletion parse_completion(const std::string& text, const std::vector<std::string>& known_defect_types = {});

// 0, 1 or nullopt for one word (lowercase ASCII expected); exposed for the reward tests.
std::optional<int> verdict_of_word(const std::string& word);

}  // namespace lriad::text
