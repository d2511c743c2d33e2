// The demo generator (`lriad synth`): split arithmetic, the MVTec-AD layout and masks, channels,
// determinism, visible defects, and option errors (the VisA layout: test_demo_visa.cpp).
#include <gtest/gtest.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <functional>
#include <iterator>
#include <map>
#include <set>

#include <opencv2/imgcodecs.hpp>
#include <opencv2/imgproc.hpp>

#include "../src/demo/internal.h"
#include "demo_fixtures.h"
#include "fixtures.h"
#include "lriad/data/dataset.h"
#include "lriad/demo/synth.h"
#include "lriad/io/csv.h"
#include "lriad/io/error.h"

namespace fs = std::filesystem;
using lriad::demo::split_counts;
using lriad::demo::synth_categories;
using lriad::demo::SynthOptions;
using lriad::demo::SynthSummary;
using lriad::test::list_files;
using lriad::test::read_bytes;
using lriad::test::small_options;
using lriad::test::synth_error;
using lriad::test::TempDir;

namespace {

std::vector<std::string> pngs_in(const fs::path& dir) {
  std::vector<std::string> out;
  if (!fs::exists(dir)) return out;
  for (const auto& e : fs::directory_iterator(dir))
    if (e.path().extension() == ".png") out.push_back(e.path().filename().string());
  std::sort(out.begin(), out.end());
  return out;
}

// One small dataset with every category, shared by the read-only tests below.
class SynthTree : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    dir_ = new TempDir();
    summary_ = new SynthSummary(lriad::demo::generate_synthetic(small_options(dir_->path())));
  }
  static void TearDownTestSuite() {
    delete summary_;
    delete dir_;
  }
  static fs::path root() { return dir_->path(); }
  static TempDir* dir_;
  static SynthSummary* summary_;
};
TempDir* SynthTree::dir_ = nullptr;
SynthSummary* SynthTree::summary_ = nullptr;

}  // namespace

TEST(SynthCounts, SplitsOneHundredImagesLikeMvtec) {
  // 100 images, 4 types: defects round(23.5) = 24, test/good round(16.5) = 17, train 59.
  // One defect per type, the other 20 by weights 4:3:2:1 -> 8, 6, 4, 2 -> 9, 7, 5, 3.
  const auto c = split_counts(100, 4);
  EXPECT_EQ(c.train_good, 59);
  EXPECT_EQ(c.test_good, 17);
  EXPECT_EQ(c.defects, (std::vector<int>{9, 7, 5, 3}));
  EXPECT_EQ(c.total_defects(), 24);
}

TEST(SynthCounts, ThreeTypesGiveTiesToTheMoreFrequent) {
  // 24 defects, 3 types: 1 each + 21 by 3:2:1 -> 10.5, 7, 3.5; floors 10, 7, 3 (20), the
  // one left goes to the first of the equal remainders (0.5): 11+1, 7+1, 3+1 = 12, 8, 4.
  const auto c = split_counts(100, 3);
  EXPECT_EQ(c.defects, (std::vector<int>{12, 8, 4}));
  EXPECT_EQ(c.train_good + c.test_good + c.total_defects(), 100);
}

TEST(SynthCounts, TenImagesStillHaveEveryDefectType) {
  // round(2.35) = 2 defects would miss types: raised to 4; test/good round(1.65) = 2; train 4.
  const auto c = split_counts(10, 4);
  EXPECT_EQ(c.defects, (std::vector<int>{1, 1, 1, 1}));
  EXPECT_EQ(c.test_good, 2);
  EXPECT_EQ(c.train_good, 4);
}

TEST(SynthCounts, InvariantsHoldForManySizes) {
  for (int types = 1; types <= 5; ++types)
    for (int n = 10; n <= 400; n += 7) {
      const auto c = split_counts(n, types);
      SCOPED_TRACE("n=" + std::to_string(n) + " types=" + std::to_string(types));
      ASSERT_EQ(c.train_good + c.test_good + c.total_defects(), n);
      EXPECT_GE(c.train_good, 1);
      EXPECT_GE(c.test_good, 1);
      ASSERT_EQ(static_cast<int>(c.defects.size()), types);
      EXPECT_GE(c.defects.back(), 1);
      EXPECT_TRUE(std::is_sorted(c.defects.rbegin(), c.defects.rend()));  // non-increasing
      if (n >= 40) {
        const double share = static_cast<double>(c.total_defects()) / n;
        EXPECT_GE(share, 0.18);
        EXPECT_LE(share, 0.30);
      }
    }
  EXPECT_THROW(split_counts(4, 4), lriad::Error);
}

TEST(SynthCategories, MixTexturesObjectsGrayAndColour) {
  const auto& cats = synth_categories();
  ASSERT_GE(cats.size(), 8u);
  std::set<std::string> names;
  for (const auto& c : cats) {
    EXPECT_GE(c.defect_types.size(), 3u) << c.name;
    EXPECT_TRUE(names.insert(c.name).second) << "duplicate " << c.name;
    // With 100 images the rarest type is rarer than the most frequent one.
    const auto n = split_counts(100, static_cast<int>(c.defect_types.size()));
    EXPECT_LT(n.defects.back(), n.defects.front()) << c.name;
  }
  // The default (first six) has each kind.
  int texture = 0, colour = 0;
  for (int i = 0; i < 6; ++i) {
    texture += cats[static_cast<size_t>(i)].is_texture;
    colour += cats[static_cast<size_t>(i)].colour;
  }
  EXPECT_GT(texture, 0);
  EXPECT_LT(texture, 6);
  EXPECT_GT(colour, 0);
  EXPECT_LT(colour, 6);
}

TEST_F(SynthTree, LayoutAndCountsMatchTheSummary) {
  EXPECT_EQ(summary_->root, root().string());
  EXPECT_TRUE(fs::exists(root() / "README.txt"));
  EXPECT_TRUE(fs::exists(root() / "synth.json"));
  int anomalous = 0, total = 0;
  for (const auto& c : synth_categories()) {
    const fs::path cat = root() / c.name;
    const auto train = pngs_in(cat / "train" / "good");
    const auto good = pngs_in(cat / "test" / "good");
    EXPECT_EQ(static_cast<int>(train.size()), summary_->train_good.at(c.name)) << c.name;
    EXPECT_EQ(static_cast<int>(good.size()), summary_->test_good.at(c.name)) << c.name;
    EXPECT_EQ(train.front(), "000.png");
    EXPECT_FALSE(fs::exists(cat / "ground_truth" / "good"));  // no masks for good images
    int n = static_cast<int>(train.size() + good.size());
    for (const auto& t : c.defect_types) {
      const auto imgs = pngs_in(cat / "test" / t);
      EXPECT_EQ(static_cast<int>(imgs.size()), summary_->test_defects.at(c.name).at(t)) << t;
      EXPECT_GE(imgs.size(), 1u) << c.name << "/" << t;
      n += static_cast<int>(imgs.size());
      anomalous += static_cast<int>(imgs.size());
      EXPECT_EQ(pngs_in(cat / "ground_truth" / t).size(), imgs.size()) << c.name << "/" << t;
    }
    EXPECT_EQ(n, 20) << c.name;
    total += n;
  }
  EXPECT_EQ(summary_->total_images(), total);
  EXPECT_EQ(summary_->total_anomalous(), anomalous);
  const double share = static_cast<double>(anomalous) / total;
  EXPECT_GE(share, 0.18);
  EXPECT_LE(share, 0.30);
}

TEST_F(SynthTree, EveryDefectImageHasAMatchingNonEmptyMask) {
  for (const auto& c : synth_categories())
    for (const auto& t : c.defect_types)
      for (const auto& name : pngs_in(root() / c.name / "test" / t)) {
        const std::string stem = fs::path(name).stem().string();
        const fs::path mask_path = root() / c.name / "ground_truth" / t / (stem + "_mask.png");
        SCOPED_TRACE(mask_path.string());
        const cv::Mat img = cv::imread((root() / c.name / "test" / t / name).string(), cv::IMREAD_UNCHANGED);
        const cv::Mat mask = cv::imread(mask_path.string(), cv::IMREAD_UNCHANGED);
        ASSERT_FALSE(mask.empty());
        EXPECT_EQ(mask.type(), CV_8UC1);
        EXPECT_EQ(mask.size(), img.size());
        EXPECT_GT(cv::countNonZero(mask), 0);
        // Binary 0/255 only.
        EXPECT_EQ(cv::countNonZero(mask == 0) + cv::countNonZero(mask == 255), mask.rows * mask.cols);
      }
}

TEST_F(SynthTree, GreyscaleCategoriesHaveOneChannelColourThree) {
  for (const auto& c : synth_categories()) {
    const cv::Mat img = cv::imread((root() / c.name / "train" / "good" / "000.png").string(), cv::IMREAD_UNCHANGED);
    ASSERT_FALSE(img.empty()) << c.name;
    EXPECT_EQ(img.channels(), c.colour ? 3 : 1) << c.name;
    EXPECT_EQ(img.depth(), CV_8U);
    EXPECT_EQ(img.cols, 64);
    EXPECT_EQ(img.rows, 64);
  }
}

TEST_F(SynthTree, NormalImagesVary) {
  for (const auto& c : synth_categories()) {
    const fs::path dir = root() / c.name / "train" / "good";
    const cv::Mat a = cv::imread((dir / "000.png").string(), cv::IMREAD_UNCHANGED);
    const cv::Mat b = cv::imread((dir / "001.png").string(), cv::IMREAD_UNCHANGED);
    cv::Mat diff;
    cv::absdiff(a, b, diff);
    const cv::Scalar m = cv::mean(diff);
    // Pose, lighting and texture change, not just the sensor noise (~2-3 grey levels).
    EXPECT_GT((m[0] + m[1] + m[2]) / a.channels(), 3.0) << c.name;
  }
}

TEST(SynthGenerate, SameSeedIsByteIdenticalOtherSeedDiffers) {
  TempDir a, b, c;
  lriad::demo::generate_synthetic(small_options(a / "d", 11));
  lriad::demo::generate_synthetic(small_options(b / "d", 11));
  lriad::demo::generate_synthetic(small_options(c / "d", 12));
  const auto files = list_files(a / "d");
  ASSERT_EQ(files, list_files(b / "d"));
  ASSERT_EQ(files, list_files(c / "d"));
  int differing = 0;
  for (const auto& f : files) {
    EXPECT_EQ(read_bytes(fs::path(a / "d") / f), read_bytes(fs::path(b / "d") / f)) << f;
    if (fs::path(f).extension() == ".png" && read_bytes(fs::path(a / "d") / f) != read_bytes(fs::path(c / "d") / f))
      ++differing;
  }
  EXPECT_GT(differing, 0);
}

TEST(SynthGenerate, ImagesDoNotDependOnWhichCategoriesAreWritten) {
  // Each image's seed comes from (seed, category, folder, index), not from generation order.
  TempDir a, b;
  SynthOptions all = small_options(a.path(), 3);
  all.categories = 6;
  all.per_category = 10;
  SynthOptions one = all;
  one.out = b.path();
  one.only = {"screw"};
  lriad::demo::generate_synthetic(all);
  lriad::demo::generate_synthetic(one);
  const auto files = list_files(fs::path(b.path()) / "screw");
  ASSERT_FALSE(files.empty());
  for (const auto& f : files)
    EXPECT_EQ(read_bytes(fs::path(a.path()) / "screw" / f), read_bytes(fs::path(b.path()) / "screw" / f)) << f;
}

TEST(SynthGenerate, DefectsAreVisibleInsideTheMaskAndOnlyThere) {
  using lriad::demo::render_sample;
  for (const auto& c : synth_categories()) {
    const auto good = render_sample(c.name, "good", 64, 5);
    EXPECT_EQ(cv::countNonZero(good.mask), 0) << c.name;
    EXPECT_EQ(cv::norm(good.clean, good.image, cv::NORM_INF), 0.0) << c.name;
    for (const auto& t : c.defect_types)
      for (uint64_t seed = 1; seed <= 4; ++seed) {
        SCOPED_TRACE(c.name + "/" + t + " seed " + std::to_string(seed));
        const auto s = render_sample(c.name, t, 64, seed);
        cv::Mat diff;
        cv::absdiff(s.clean, s.image, diff);
        if (diff.channels() == 3) cv::cvtColor(diff, diff, cv::COLOR_BGR2GRAY);
        const double inside = cv::mean(diff, s.mask)[0];
        const double outside = cv::mean(diff, s.mask == 0)[0];
        EXPECT_GT(inside, 2.0);   // grey levels, averaged over the mask
        EXPECT_LT(outside, 4.0);  // soft edges only
        EXPECT_GT(inside, 4.0 * outside);
      }
  }
}

TEST(SynthGenerate, OverwriteReplacesTheCategoryFolders) {
  TempDir dir;
  SynthOptions o = small_options(dir.path());
  o.only = {"pill"};
  lriad::demo::generate_synthetic(o);
  o.per_category = 10;
  o.overwrite = true;
  const auto sum = lriad::demo::generate_synthetic(o);
  const auto train = pngs_in(fs::path(dir.path()) / "pill" / "train" / "good");
  EXPECT_EQ(static_cast<int>(train.size()), sum.train_good.at("pill"));  // no stale 012.png
  EXPECT_EQ(sum.total_images(), 10);
}

TEST(SynthGenerate, RejectsBadOptionsWithThePathOrValue) {
  TempDir dir;
  lriad::test::write_text(dir / "keep.txt", "x");
  SynthOptions o = small_options(dir.path());
  EXPECT_NE(synth_error(o).find(dir.path()), std::string::npos);  // non-empty, no overwrite
  EXPECT_NE(synth_error(o).find("--overwrite"), std::string::npos);

  o.out = dir / "new";
  o.size = 16;
  EXPECT_NE(synth_error(o).find("16"), std::string::npos);
  o.size = 2048;
  EXPECT_NE(synth_error(o).find("2048"), std::string::npos);
  o.size = 64;
  o.per_category = 5;
  EXPECT_NE(synth_error(o).find("5"), std::string::npos);
  o.per_category = 20;
  o.categories = 0;
  EXPECT_NE(synth_error(o).find("--categories"), std::string::npos);
  o.categories = 99;
  EXPECT_NE(synth_error(o).find("99"), std::string::npos);
  o.categories = 1;
  o.only = {"pill", "teapot"};
  const std::string unknown = synth_error(o);
  EXPECT_NE(unknown.find("teapot"), std::string::npos);
  EXPECT_NE(unknown.find("fabric"), std::string::npos);  // lists the known names
  o.only.clear();
  o.out = "";
  EXPECT_NE(synth_error(o), "");
  EXPECT_FALSE(fs::exists(dir / "new"));  // nothing written on invalid options
}
