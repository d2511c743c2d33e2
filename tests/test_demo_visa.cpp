// The demo generator's VisA layout: split_csv/1cls.csv, wide colour JPGs with aligned masks, the reader.
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

// --- the VisA layout ------------------------------------------------------------------

namespace {

SynthOptions visa_options(const std::string& out, uint64_t seed = 7) {
  SynthOptions o = small_options(out, seed);
  o.layout = "visa";
  return o;
}

// One VisA-layout dataset with every category (20 images each, 85 x 64), shared read-only.
class SynthVisaTree : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    dir_ = new TempDir();
    summary_ = new SynthSummary(lriad::demo::generate_synthetic(visa_options(dir_->path())));
    csv_ = new lriad::io::CsvTable(lriad::io::read_csv((fs::path(dir_->path()) / "split_csv" / "1cls.csv").string()));
  }
  static void TearDownTestSuite() {
    delete csv_;
    delete summary_;
    delete dir_;
  }
  static fs::path root() { return dir_->path(); }
  // The CSV's rows as maps column -> value.
  static std::vector<std::map<std::string, std::string>> rows() {
    std::vector<std::map<std::string, std::string>> out;
    for (const auto& r : csv_->rows) {
      std::map<std::string, std::string> m;
      for (size_t k = 0; k < csv_->header.size(); ++k) m[csv_->header[k]] = r[k];
      out.push_back(m);
    }
    return out;
  }
  static TempDir* dir_;
  static SynthSummary* summary_;
  static lriad::io::CsvTable* csv_;
};
TempDir* SynthVisaTree::dir_ = nullptr;
SynthSummary* SynthVisaTree::summary_ = nullptr;
lriad::io::CsvTable* SynthVisaTree::csv_ = nullptr;

}  // namespace

TEST_F(SynthVisaTree, CsvListsEveryImageWithTheMvtecSplitCounts) {
  EXPECT_EQ(csv_->header, (std::vector<std::string>{"object", "split", "label", "image", "mask"}));
  EXPECT_FALSE(fs::exists(root() / "fabric" / "train"));  // no MVTec folders
  EXPECT_TRUE(fs::exists(root() / "synth.json"));
  std::map<std::string, int> train_normal, test_normal, test_anomaly;
  for (const auto& r : rows()) {
    SCOPED_TRACE(r.at("image"));
    const std::string& obj = r.at("object");
    const bool normal = r.at("label") == "normal";
    ASSERT_TRUE(normal || r.at("label") == "anomaly");
    ASSERT_TRUE(r.at("split") == "train" || r.at("split") == "test");
    EXPECT_FALSE(r.at("split") == "train" && !normal);  // anomalies are test images only
    (r.at("split") == "train" ? train_normal : normal ? test_normal : test_anomaly)[obj] += 1;
    // Relative paths in VisA's folders; a mask exactly for the anomalies, with the image's stem.
    const std::string folder = obj + "/Data/Images/" + (normal ? "Normal/" : "Anomaly/");
    ASSERT_EQ(r.at("image").rfind(folder, 0), 0u);
    EXPECT_EQ(fs::path(r.at("image")).extension(), ".JPG");
    EXPECT_EQ(fs::path(r.at("image")).stem().string().size(), 4u);  // NNNN
    EXPECT_TRUE(fs::is_regular_file(root() / r.at("image")));
    if (normal) {
      EXPECT_EQ(r.at("mask"), "");
    } else {
      const std::string stem = fs::path(r.at("image")).stem().string();
      EXPECT_EQ(r.at("mask"), obj + "/Data/Masks/Anomaly/" + stem + ".png");
      EXPECT_TRUE(fs::is_regular_file(root() / r.at("mask")));
    }
  }
  for (const auto& c : synth_categories()) {
    // The same split as the MVTec layout with these options: split_counts(20, n_types).
    const auto n = split_counts(20, static_cast<int>(c.defect_types.size()));
    EXPECT_EQ(train_normal[c.name], n.train_good) << c.name;
    EXPECT_EQ(test_normal[c.name], n.test_good) << c.name;
    EXPECT_EQ(test_anomaly[c.name], n.total_defects()) << c.name;
    EXPECT_EQ(summary_->train_good.at(c.name), n.train_good) << c.name;
    EXPECT_EQ(summary_->test_good.at(c.name), n.test_good) << c.name;
  }
  EXPECT_EQ(static_cast<int>(csv_->rows.size()), summary_->total_images());
}

TEST_F(SynthVisaTree, ImagesAreWideColourJpgsWithAlignedMasks) {
  int checked = 0;
  for (const auto& r : rows()) {
    SCOPED_TRACE(r.at("image"));
    const cv::Mat img = cv::imread((root() / r.at("image")).string(), cv::IMREAD_UNCHANGED);
    ASSERT_FALSE(img.empty());
    EXPECT_EQ(img.type(), CV_8UC3);  // greyscale categories too
    EXPECT_EQ(img.cols, 85);         // round(64 * 4 / 3) = round(85.33)
    EXPECT_EQ(img.rows, 64);
    if (r.at("mask").empty()) continue;
    const cv::Mat mask = cv::imread((root() / r.at("mask")).string(), cv::IMREAD_UNCHANGED);
    ASSERT_FALSE(mask.empty());
    EXPECT_EQ(mask.type(), CV_8UC1);
    EXPECT_EQ(mask.size(), img.size());
    EXPECT_GT(cv::countNonZero(mask), 0);
    EXPECT_EQ(cv::countNonZero(mask == 0) + cv::countNonZero(mask == 255), mask.rows * mask.cols);
    ++checked;
  }
  EXPECT_EQ(checked, summary_->total_anomalous());
}

TEST_F(SynthVisaTree, TheVisaReaderLoadsWhatWasWritten) {
  const auto ds = lriad::data::load_dataset(lriad::data::Format::VisA, root().string(), {});
  EXPECT_EQ(ds.categories.size(), synth_categories().size());
  EXPECT_TRUE(ds.warnings.empty());
  ASSERT_EQ(static_cast<int>(ds.samples.size()), summary_->total_images());
  int anomalous = 0;
  for (const auto& sm : ds.samples) {
    if (sm.label != lriad::data::Label::Anomalous) {
      EXPECT_FALSE(sm.mask_path.has_value()) << sm.image_path;
      continue;
    }
    ++anomalous;
    EXPECT_EQ(sm.split, lriad::data::Split::Test);
    ASSERT_TRUE(sm.mask_path.has_value()) << sm.image_path;
    // The mask the reader pairs with an image has the image's stem, under Masks/Anomaly.
    EXPECT_EQ(fs::path(*sm.mask_path).stem(), fs::path(sm.image_path).stem());
    EXPECT_TRUE(fs::is_regular_file(*sm.mask_path));
  }
  EXPECT_EQ(anomalous, summary_->total_anomalous());
}

TEST(SynthVisa, DefectsAreVisibleInsideTheMaskAndUseTheWholeWidth) {
  using lriad::demo::render_sample;
  const cv::Size wide = lriad::demo::visa_canvas(64);
  ASSERT_EQ(wide, cv::Size(85, 64));
  int beyond_square = 0;  // defects reaching the strips outside the central 64 x 64
  for (const auto& c : synth_categories())
    for (const auto& t : c.defect_types)
      for (uint64_t seed = 1; seed <= 3; ++seed) {
        SCOPED_TRACE(c.name + "/" + t + " seed " + std::to_string(seed));
        const auto s = render_sample(c.name, t, wide, seed);
        ASSERT_EQ(s.image.size(), wide);
        ASSERT_EQ(s.mask.size(), wide);
        cv::Mat diff;
        cv::absdiff(s.clean, s.image, diff);
        if (diff.channels() == 3) cv::cvtColor(diff, diff, cv::COLOR_BGR2GRAY);
        const double inside = cv::mean(diff, s.mask)[0];
        const double outside = cv::mean(diff, s.mask == 0)[0];
        EXPECT_GT(inside, 2.0);
        EXPECT_LT(outside, 4.0);
        EXPECT_GT(inside, 4.0 * outside);
        // strips: columns [0, 10) and [75, 85), (85 - 64) / 2 = 10.5 px each side
        if (cv::countNonZero(s.mask.colRange(0, 10)) + cv::countNonZero(s.mask.colRange(75, 85)) > 0) ++beyond_square;
      }
  EXPECT_GT(beyond_square, 0) << "defects are only ever placed in the square middle";
}

TEST(SynthVisa, SameSeedIsByteIdenticalOtherSeedDiffers) {
  TempDir a, b, c;
  for (auto [dir, seed] : {std::pair{&a, 11}, std::pair{&b, 11}, std::pair{&c, 12}}) {
    SynthOptions o = visa_options(*dir / "d", static_cast<uint64_t>(seed));
    o.categories = 2;
    o.per_category = 10;
    lriad::demo::generate_synthetic(o);
  }
  const auto files = list_files(a / "d");
  ASSERT_EQ(files, list_files(b / "d"));
  ASSERT_EQ(files, list_files(c / "d"));
  int differing = 0;
  for (const auto& f : files) {
    EXPECT_EQ(read_bytes(fs::path(a / "d") / f), read_bytes(fs::path(b / "d") / f)) << f;
    if (fs::path(f).extension() == ".JPG" && read_bytes(fs::path(a / "d") / f) != read_bytes(fs::path(c / "d") / f))
      ++differing;
  }
  EXPECT_GT(differing, 0);
}

TEST(SynthVisa, OverwriteKeepsTheOtherObjectsRows) {
  TempDir dir;
  SynthOptions o = visa_options(dir.path());
  o.per_category = 10;
  o.size = 32;
  o.only = {"pill"};
  lriad::demo::generate_synthetic(o);
  o.overwrite = true;
  o.only = {"screw"};
  lriad::demo::generate_synthetic(o);
  o.only = {"pill"};
  o.per_category = 12;
  lriad::demo::generate_synthetic(o);
  const auto csv = lriad::io::read_csv(dir / "split_csv/1cls.csv");
  std::map<std::string, int> per_object;
  for (const auto& r : csv.rows) per_object[r[0]] += 1;
  EXPECT_EQ(per_object["screw"], 10);  // left alone
  EXPECT_EQ(per_object["pill"], 12);   // replaced, no stale rows
  EXPECT_EQ(per_object.size(), 2u);
  const auto ds = lriad::data::load_dataset(lriad::data::Format::VisA, dir.path(), {});
  EXPECT_EQ(ds.samples.size(), 22u);
}

TEST(SynthVisa, AnUnknownLayoutIsRejectedNamingTheChoices) {
  TempDir dir;
  SynthOptions o = small_options(dir / "new");
  o.layout = "coco";
  const std::string e = synth_error(o);
  EXPECT_NE(e.find("'coco'"), std::string::npos) << e;
  EXPECT_NE(e.find("mvtec"), std::string::npos) << e;
  EXPECT_NE(e.find("visa"), std::string::npos) << e;
  EXPECT_FALSE(fs::exists(dir / "new"));
}
