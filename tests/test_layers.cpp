// The architecture (README, "Architecture"): every include of an lriad header goes to the same folder
// or a lower layer, and the demo is included only by the layers above the tokenizer's (train, eval, cli).
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <map>
#include <regex>
#include <sstream>
#include <string>

namespace fs = std::filesystem;

namespace {

// The layers, lowest first; folders of one rank do not include each other.
const std::map<std::string, int> kRank = {{"io", 0},      {"util", 0},      {"data", 1}, {"demo", 2},
                                          {"anomaly", 2}, {"reference", 2}, {"text", 3}, {"model", 4},
                                          {"rl", 4},      {"train", 5},     {"eval", 6}, {"cli", 7}};

bool allowed(const std::string& from, const std::string& to) {
  if (from == to) return true;
  if (to == "demo" && kRank.at(from) < kRank.at("train")) return false;  // the demo is a leaf
  return kRank.at(to) < kRank.at(from);
}

}  // namespace

TEST(Layers, NoIncludeFromALowerLayerToAHigherOne) {
  const fs::path root = LRIAD_SOURCE_DIR;
  const std::regex include(R"(#include\s+"lriad/([a-z_]+)/)");
  int files = 0;
  for (const fs::path& top : {root / "src", root / "include" / "lriad"}) {
    for (const auto& e : fs::recursive_directory_iterator(top)) {
      if (!e.is_regular_file()) continue;
      const std::string folder = fs::relative(e.path(), top).begin()->string();
      ASSERT_TRUE(kRank.count(folder)) << e.path() << ": folder " << folder
                                       << " has no layer in this test (and README)";
      std::ifstream in(e.path());
      std::stringstream text;
      text << in.rdbuf();
      const std::string s = text.str();
      for (std::sregex_iterator m(s.begin(), s.end(), include), end; m != end; ++m) {
        const std::string to = (*m)[1];
        ASSERT_TRUE(kRank.count(to)) << e.path() << " includes lriad/" << to << "/, a folder of no layer";
        EXPECT_TRUE(allowed(folder, to)) << e.path() << " (" << folder << ") includes lriad/" << to << "/";
      }
      ++files;
    }
  }
  EXPECT_GT(files, 100);  // the walk found the tree
}

TEST(Layers, TheRuleRefusesWhatTheArchitectureForbids) {
  EXPECT_FALSE(allowed("data", "reference"));  // a lower layer up
  EXPECT_FALSE(allowed("anomaly", "demo"));    // one rank, another folder
  EXPECT_FALSE(allowed("text", "demo"));       // the demo is a leaf below train
  EXPECT_TRUE(allowed("train", "demo"));
  EXPECT_TRUE(allowed("model", "reference"));
}
