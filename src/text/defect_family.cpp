// Defect families and the published names' mapping (see defect_family.h).
#include "lriad/text/defect_family.h"

#include <fstream>
#include <utility>
#include <vector>

#include "lriad/io/error.h"
#include "lriad/text/prompt.h"

namespace lriad::text {
namespace {

using F = DefectFamily;

// MVTec-AD's defect folders (all 15 categories), VisA's defect words (image_anno.csv), and
// lriad's synthetic kinds and demo defects. Canonical names.
const std::vector<std::pair<std::string, F>>& table() {
  static const std::vector<std::pair<std::string, F>> t = {// MVTec-AD
                                                           {"broken_large", F::Missing},
                                                           {"broken_small", F::Missing},
                                                           {"contamination", F::Contamination},
                                                           {"bent_wire", F::Deformation},
                                                           {"cable_swap", F::Misplaced},
                                                           {"cut_inner_insulation", F::Cut},
                                                           {"cut_outer_insulation", F::Cut},
                                                           {"missing_cable", F::Missing},
                                                           {"missing_wire", F::Missing},
                                                           {"poke_insulation", F::Hole},
                                                           {"crack", F::Crack},
                                                           {"faulty_imprint", F::Misprint},
                                                           {"poke", F::Hole},
                                                           {"scratch", F::Scratch},
                                                           {"squeeze", F::Deformation},
                                                           {"color", F::Stain},
                                                           {"cut", F::Cut},
                                                           {"hole", F::Hole},
                                                           {"metal_contamination", F::Contamination},
                                                           {"thread", F::Contamination},
                                                           {"bent", F::Deformation},
                                                           {"broken", F::Missing},
                                                           {"glue", F::Stain},
                                                           {"print", F::Misprint},
                                                           {"fold", F::Deformation},
                                                           {"flip", F::Misplaced},
                                                           {"pill_type", F::Misprint},
                                                           {"manipulated_front", F::Deformation},
                                                           {"scratch_head", F::Scratch},
                                                           {"scratch_neck", F::Scratch},
                                                           {"thread_side", F::Deformation},
                                                           {"thread_top", F::Deformation},
                                                           {"glue_strip", F::Stain},
                                                           {"gray_stroke", F::Stain},
                                                           {"oil", F::Stain},
                                                           {"rough", F::Deformation},
                                                           {"bent_lead", F::Deformation},
                                                           {"cut_lead", F::Cut},
                                                           {"damaged_case", F::Missing},
                                                           {"misplaced", F::Misplaced},
                                                           {"liquid", F::Stain},
                                                           {"broken_teeth", F::Missing},
                                                           {"fabric_border", F::Deformation},
                                                           {"fabric_interior", F::Deformation},
                                                           {"split_teeth", F::Deformation},
                                                           {"squeezed_teeth", F::Deformation},
                                                           // VisA
                                                           {"burnt", F::Stain},
                                                           {"chip", F::Missing},
                                                           {"melt", F::Deformation},
                                                           {"missing", F::Missing},
                                                           {"extra", F::Contamination},
                                                           {"wrong_place", F::Misplaced},
                                                           {"damage", F::Missing},
                                                           {"stuck", F::Contamination},
                                                           {"spot", F::Stain},
                                                           {"dirt", F::Contamination},
                                                           {"breakage", F::Missing},
                                                           {"bubble", F::Deformation},
                                                           {"partical", F::Contamination},
                                                           {"particle", F::Contamination},
                                                           {"scratches", F::Scratch},
                                                           {"discolor", F::Stain},
                                                           {"weird_wick", F::Deformation},
                                                           {"wrong_place", F::Misplaced},
                                                           // Common words of other sets (folder datasets, photo sets)
                                                           {"foreign", F::Contamination},
                                                           {"foreign_body", F::Contamination},
                                                           {"foreign_matter", F::Contamination},
                                                           {"foreign_object", F::Contamination},
                                                           {"discoloration", F::Stain},
                                                           {"discolouration", F::Stain},
                                                           // lriad's synthetic kinds and demo defects
                                                           {"foreign_patch", F::Contamination},
                                                           {"texture_blend", F::Contamination},
                                                           {"stain", F::Stain},
                                                           {"missing_part", F::Missing},
                                                           {"misplaced_part", F::Misplaced},
                                                           {"dent", F::Deformation},
                                                           {"broken_corner", F::Missing},
                                                           {"broken_tip", F::Missing},
                                                           {"thread_damage", F::Deformation},
                                                           {"print_error", F::Misprint}};
  return t;
}

}  // namespace

const char* family_word(DefectFamily f) {
  switch (f) {
    case F::Scratch:
      return "scratch";
    case F::Crack:
      return "crack";
    case F::Hole:
      return "hole";
    case F::Stain:
      return "stain";
    case F::Contamination:
      return "contamination";
    case F::Missing:
      return "missing part";
    case F::Misplaced:
      return "misplaced part";
    case F::Deformation:
      return "deformation";
    case F::Cut:
      return "cut";
    case F::Misprint:
      return "misprint";
  }
  return "scratch";
}

std::vector<DefectFamily> all_families() {
  std::vector<DefectFamily> out;
  for (int i = 0; i < kDefectFamilyCount; ++i) out.push_back(DefectFamily(i));
  return out;
}

std::optional<DefectFamily> parse_family(const std::string& word) {
  const std::string c = canonical_defect_type(word);
  for (auto f : all_families())
    if (canonical_defect_type(family_word(f)) == c) return f;
  return std::nullopt;
}

std::optional<DefectFamily> family_of(const std::string& defect_type, const DefectMap* user) {
  const std::string c = canonical_defect_type(defect_type);
  if (c.empty() || is_unnamed_defect(c) || c == "good") return std::nullopt;
  if (user) {
    auto it = user->find(c);
    if (it != user->end()) return it->second;
  }
  auto known = [&](const std::string& name) -> std::optional<DefectFamily> {
    for (const auto& [n, f] : table())
      if (n == name) return f;
    return parse_family(name);
  };
  if (auto f = known(c)) return f;
  // A plural of a known name ("cracks", "holes", "foreign_bodies"): its singular's family.
  for (const auto& [tail, singular] :
       std::vector<std::pair<std::string, std::string>>{{"ies", "y"}, {"es", ""}, {"s", ""}})
    if (c.size() > tail.size() + 2 && c.compare(c.size() - tail.size(), tail.size(), tail) == 0)
      if (auto f = known(c.substr(0, c.size() - tail.size()) + singular)) return f;
  return std::nullopt;
}

bool same_defect(const std::string& a, const std::string& b, const DefectMap* user) {
  const std::string ca = canonical_defect_type(a), cb = canonical_defect_type(b);
  if (ca.empty() || cb.empty()) return false;
  if (ca == cb) return true;
  const auto fa = family_of(ca, user), fb = family_of(cb, user);
  return fa && fb && *fa == *fb;
}

std::vector<std::pair<std::string, std::string>> published_defect_map() {
  std::vector<std::pair<std::string, std::string>> out;
  for (const auto& [name, f] : table()) {
    bool seen = false;
    for (const auto& o : out) seen = seen || o.first == name;
    if (!seen) out.emplace_back(name, family_word(f));
  }
  return out;
}

DefectMap load_defect_map(const std::string& path) {
  std::ifstream in(path);
  if (!in) throw Error("cannot read the defect map " + path, "give a CSV of name,family lines");
  DefectMap out;
  std::string line;
  int n = 0;
  std::string families;
  for (auto f : all_families()) families += std::string(families.empty() ? "" : ", ") + family_word(f);
  while (std::getline(in, line)) {
    ++n;
    if (!line.empty() && line.back() == '\r') line.pop_back();
    if (line.empty() || line[0] == '#') continue;
    const auto comma = line.find(',');
    if (comma == std::string::npos)
      throw Error(path + ":" + std::to_string(n) + ": expected name,family, got '" + line + "'",
                  "one mapping per line");
    const std::string name = canonical_defect_type(line.substr(0, comma)), family = line.substr(comma + 1);
    if (n == 1 && name == "name" && canonical_defect_type(family) == "family") continue;  // the header
    const auto f = parse_family(family);
    if (name.empty() || !f)
      throw Error(path + ":" + std::to_string(n) + ": '" + family + "' is not a defect family",
                  "use one of: " + families);
    out[name] = *f;
  }
  return out;
}

}  // namespace lriad::text
