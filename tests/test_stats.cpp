// Dataset statistics: golden counts, ratios, JSON schema, table, corrupt files found by probing.
#include <gtest/gtest.h>

#include <filesystem>
#include <nlohmann/json.hpp>

#include "fixtures.h"
#include "lriad/data/dataset.h"
#include "lriad/data/stats.h"
#include "lriad/io/error.h"

using namespace lriad;
using namespace lriad::data;

TEST(Stats, GoldenCountsOnTheFixtureTree) {
  test::TempDir dir;
  test::make_mvtec_tree(dir.path());
  const Dataset ds = read_mvtec(dir.path(), {});
  const DatasetStats st = compute_stats(ds, true, true);
  const CategoryStats& alpha = st.categories.at("alpha");
  EXPECT_EQ(alpha.train.normal, 4);
  EXPECT_EQ(alpha.test.normal, 2);
  EXPECT_EQ(alpha.test.anomalous, 3);
  EXPECT_EQ(alpha.test.masks, 3);
  EXPECT_EQ(alpha.test.by_defect.at("crack"), 2);
  EXPECT_EQ(alpha.test.by_defect.at("hole"), 1);
  EXPECT_DOUBLE_EQ(alpha.imbalance_ratio(), 2.0);   // (4 + 2) normal / 3 anomalous
  EXPECT_DOUBLE_EQ(alpha.defect_imbalance(), 2.0);  // crack 2 / hole 1
  EXPECT_EQ(st.totals.train.normal + st.totals.test.normal, 10);
  EXPECT_EQ(st.totals.test.anomalous, 5);
  EXPECT_EQ(st.totals.image_sizes.at("32x32"), 15);
}

TEST(Stats, JsonHasTheDocumentedKeys) {
  test::TempDir dir;
  test::make_mvtec_tree(dir.path());
  const Dataset ds = read_mvtec(dir.path(), {});
  const auto j = stats_to_json(ds, compute_stats(ds, false, false));
  EXPECT_EQ(j["categories"]["beta"]["train"]["normal"], 3);
  EXPECT_EQ(j["categories"]["beta"]["test"]["anomalous"], 2);
  EXPECT_EQ(j["categories"]["beta"]["test"]["by_defect"]["scratch"], 2);
  EXPECT_EQ(j["totals"]["test"]["by_defect"]["good"], 3);
  EXPECT_FALSE(j["categories"]["beta"].contains("image_sizes"));  // not probed
}

TEST(Stats, TableListsEveryCategoryAndTotal) {
  test::TempDir dir;
  test::make_mvtec_tree(dir.path());
  const Dataset ds = read_mvtec(dir.path(), {});
  const std::string table = stats_to_table(ds, compute_stats(ds, true, false));
  EXPECT_NE(table.find("alpha"), std::string::npos);
  EXPECT_NE(table.find("TOTAL"), std::string::npos);
  EXPECT_NE(table.find("crack:2 hole:1"), std::string::npos) << table;
  EXPECT_NE(table.find("32x32 (15)"), std::string::npos) << table;
}

TEST(Stats, ProbingNamesATruncatedImage) {
  test::TempDir dir;
  test::make_mvtec_tree(dir.path(), 64);
  const std::string victim = dir / "beta/train/good/001.png";
  const std::string bytes = test::read_text(victim);
  test::write_text(victim, bytes.substr(0, bytes.size() / 2));
  const Dataset ds = read_mvtec(dir.path(), {});  // listing does not decode
  try {
    compute_stats(ds, true, false);
    FAIL() << "expected the truncated image to be reported";
  } catch (const lriad::Error& e) {
    EXPECT_NE(std::string(e.what()).find(victim), std::string::npos) << e.what();
  }
}
