// The defect-family vocabulary the chains of thought name, and the mapping of MVTec-AD's and VisA's
// published defect names (and lriad's synthetic anomaly kinds and demo defects) onto it: "poke" is
// a hole, "color" a stain or discolouration, "bent_wire" a deformation. A chain names a family, so
// "like a crack" is scored against every dataset's own word for a crack. Names no table knows
// (a folder dataset's own) are mapped by a user's file (`--defect-map FILE`, load_defect_map).
#pragma once
#include <map>
#include <optional>
#include <string>
#include <utility>
#include <vector>

namespace lriad::text {

enum class DefectFamily { Scratch, Crack, Hole, Stain, Contamination, Missing, Misplaced, Deformation, Cut, Misprint };
inline constexpr int kDefectFamilyCount = 10;

// The family's word in a chain and an answer: "scratch", "crack", "hole", "stain", "contamination",
// "missing part", "misplaced part", "deformation", "cut", "misprint".
const char* family_word(DefectFamily f);
std::vector<DefectFamily> all_families();
// A family word (canonical forms compare: "missing_part" and "Missing part" alike), else nullopt.
std::optional<DefectFamily> parse_family(const std::string& word);

// Canonical defect name (canonical_defect_type) -> family.
using DefectMap = std::map<std::string, DefectFamily>;

// The family of a defect name: `user` first (canonical names), then the published tables, then a
// family word itself; nullopt for "good", unnamed defects and names nobody mapped ("combined").
std::optional<DefectFamily> family_of(const std::string& defect_type, const DefectMap* user = nullptr);

// Two defect names mean the same defect: equal canonical forms, or the same family.
bool same_defect(const std::string& a, const std::string& b, const DefectMap* user = nullptr);

// The published tables, (canonical name, family word) in a fixed order: for the README and report.
std::vector<std::pair<std::string, std::string>> published_defect_map();

// A user's map: a CSV of "name,family" lines (a header line "name,family" and lines starting with
// '#' are skipped). Throws lriad::Error naming the file and line on an unknown family or a bad line.
DefectMap load_defect_map(const std::string& path);

}  // namespace lriad::text
