// Dataset readers: MVTec-AD, VisA (CSV and converted), folder; golden counts and broken trees.
#include <gtest/gtest.h>

#include <algorithm>
#include <filesystem>
#include <functional>

#include "fixtures.h"
#include "lriad/data/dataset.h"
#include "lriad/io/csv.h"
#include "lriad/io/error.h"

using namespace lriad;
using namespace lriad::data;
using lriad::test::TempDir;
namespace fs = std::filesystem;

namespace {

std::string error_of(const std::function<void()>& f) {
  try {
    f();
  } catch (const lriad::Error& e) {
    return e.what();
  }
  return "";
}

int count(const Dataset& ds, const std::string& cat, Split split, Label label, const std::string& type = "") {
  return int(std::count_if(ds.samples.begin(), ds.samples.end(), [&](const Sample& s) {
    return s.category == cat && s.split == split && s.label == label && (type.empty() || s.defect_type == type);
  }));
}

// VisA as published: split_csv/1cls.csv, Data/Images/{Normal,Anomaly}, Data/Masks/Anomaly.
// Columns deliberately out of the published order (found by name).
void make_visa_tree(const std::string& root, const std::string& header = "split,object,mask,label,image") {
  std::string csv = header + "\n";
  auto row = [&](const std::string& obj, const std::string& split, bool anomaly, int i) {
    const std::string name = std::to_string(100 + i);
    const std::string image = obj + "/Data/Images/" + (anomaly ? "Anomaly/" : "Normal/") + name + ".JPG";
    test::write_jpeg(root + "/" + image, 40, 30);
    std::string mask;
    if (anomaly) {
      mask = obj + "/Data/Masks/Anomaly/" + name + ".png";
      test::write_mask(root + "/" + mask, 40, 30);
    }
    csv += split + "," + obj + "," + mask + "," + (anomaly ? "anomaly" : "normal") + "," + image + "\n";
  };
  for (int i = 0; i < 5; ++i) row("candle", "train", false, i);
  for (int i = 5; i < 7; ++i) row("candle", "test", false, i);
  for (int i = 7; i < 10; ++i) row("candle", "test", true, i);
  for (int i = 0; i < 3; ++i) row("pcb1", "train", false, i);
  row("pcb1", "test", false, 3);
  row("pcb1", "test", true, 4);
  test::write_text(root + "/split_csv/1cls.csv", csv);
}

}  // namespace

TEST(Categories, CommaSeparatedAndRepeatedAreTheSame) {
  EXPECT_EQ(normalize_categories({"brick,tile"}), normalize_categories({"brick", "tile"}));
  EXPECT_EQ(normalize_categories({"tile, brick", "brick"}), (std::vector<std::string>{"brick", "tile"}));
  EXPECT_TRUE(normalize_categories({}).empty());
}

TEST(Categories, AnImagesPathNamesItsCategoryInEveryLayout) {
  const std::vector<std::string> known = {"carpet", "candle", "screw"};
  EXPECT_EQ(data::category_of_path("/d/mvtec/carpet/test/hole/000.png", known), "carpet");
  EXPECT_EQ(data::category_of_path("/d/visa/candle/Data/Images/Anomaly/0012.JPG", known), "candle");
  EXPECT_EQ(data::category_of_path("/d/folder/screw/defect/a.png", known), "screw");
  // The nearest named folder wins: a category inside another's folder.
  EXPECT_EQ(data::category_of_path("/d/carpet/screw/good/a.png", known), "screw");
  // Not a trained category: MVTec's layout still names one (eval then says the run lacks it).
  EXPECT_EQ(data::category_of_path("/d/mvtec/bottle/test/good/000.png", known), "bottle");
  EXPECT_EQ(data::category_of_path("/d/photos/img.png", known), "");
}

TEST(MVTec, GoldenCountsAndMaskPairing) {
  TempDir dir;
  test::make_mvtec_tree(dir.path());
  Dataset ds = read_mvtec(dir.path(), {});
  EXPECT_EQ(ds.categories, (std::vector<std::string>{"alpha", "beta"}));
  EXPECT_EQ(ds.samples.size(), 4u + 2 + 2 + 1 + 3 + 1 + 2);
  EXPECT_EQ(count(ds, "alpha", Split::Train, Label::Normal), 4);
  EXPECT_EQ(count(ds, "alpha", Split::Test, Label::Normal), 2);
  EXPECT_EQ(count(ds, "alpha", Split::Test, Label::Anomalous, "crack"), 2);
  EXPECT_EQ(count(ds, "alpha", Split::Test, Label::Anomalous, "hole"), 1);
  EXPECT_EQ(count(ds, "beta", Split::Test, Label::Anomalous, "scratch"), 2);
  for (const auto& s : ds.samples) {
    EXPECT_EQ(s.mask_path.has_value(), s.label == Label::Anomalous) << s.image_path;
    if (s.mask_path)
      EXPECT_EQ(fs::path(*s.mask_path).stem().string(), fs::path(s.image_path).stem().string() + "_mask");
    if (s.label == Label::Normal) EXPECT_EQ(s.defect_type, "good");
  }
  EXPECT_TRUE(ds.warnings.empty());
}

TEST(MVTec, CategoryFilterAndUnknownCategoryListsFound) {
  TempDir dir;
  test::make_mvtec_tree(dir.path());
  LoadOptions o;
  o.categories = {"beta"};
  EXPECT_EQ(read_mvtec(dir.path(), o).samples.size(), 6u);
  o.categories = {"gamma"};
  const std::string msg = error_of([&] { read_mvtec(dir.path(), o); });
  EXPECT_NE(msg.find("unknown category 'gamma'"), std::string::npos) << msg;
  EXPECT_NE(msg.find("alpha, beta"), std::string::npos) << msg;
}

TEST(MVTec, MissingMaskWarnsButLoads) {
  TempDir dir;
  test::make_mvtec_tree(dir.path());
  fs::remove(dir / "alpha/ground_truth/crack/001_mask.png");
  Dataset ds = read_mvtec(dir.path(), {});
  ASSERT_EQ(ds.warnings.size(), 1u);
  EXPECT_NE(ds.warnings[0].find("1 anomalous test images have no mask"), std::string::npos) << ds.warnings[0];
}

TEST(MVTec, BrokenTreesFailNamingThePath) {
  {  // a mask without its image
    TempDir dir;
    test::make_mvtec_tree(dir.path());
    fs::remove(dir / "alpha/test/hole/000.png");
    const std::string msg = error_of([&] { read_mvtec(dir.path(), {}); });
    EXPECT_NE(msg.find("mask without an image"), std::string::npos) << msg;
    EXPECT_NE(msg.find("000_mask.png"), std::string::npos) << msg;
  }
  {  // an empty category (no train images)
    TempDir dir;
    test::make_mvtec_tree(dir.path());
    fs::remove_all(dir / "beta/train/good");
    fs::create_directories(dir / "beta/train/good");
    const std::string msg = error_of([&] { read_mvtec(dir.path(), {}); });
    EXPECT_NE(msg.find("'beta'"), std::string::npos) << msg;
    EXPECT_NE(msg.find("no train images"), std::string::npos) << msg;
  }
  {  // a mask of another size than its image
    TempDir dir;
    test::make_mvtec_tree(dir.path());
    test::write_mask(dir / "beta/ground_truth/scratch/001_mask.png", 16, 16);
    const std::string msg = error_of([&] { read_mvtec(dir.path(), {}); });
    EXPECT_NE(msg.find("001_mask.png is 16x16"), std::string::npos) << msg;
  }
  {  // missing root, empty root
    TempDir dir;
    EXPECT_NE(error_of([&] { read_mvtec(dir / "nope", {}); }).find("does not exist: " + dir / "nope"),
              std::string::npos);
    EXPECT_NE(error_of([&] { read_mvtec(dir.path(), {}); }).find("no categories found"), std::string::npos);
  }
}

TEST(VisA, ReadsPublishedCsvLayoutByColumnName) {
  TempDir dir;
  make_visa_tree(dir.path());
  Dataset ds = read_visa(dir.path(), {});
  EXPECT_EQ(ds.format, Format::VisA);
  EXPECT_EQ(ds.categories, (std::vector<std::string>{"candle", "pcb1"}));
  EXPECT_EQ(count(ds, "candle", Split::Train, Label::Normal), 5);
  EXPECT_EQ(count(ds, "candle", Split::Test, Label::Normal), 2);
  EXPECT_EQ(count(ds, "candle", Split::Test, Label::Anomalous, "anomaly"), 3);
  EXPECT_EQ(count(ds, "pcb1", Split::Test, Label::Anomalous), 1);
  for (const auto& s : ds.samples) EXPECT_EQ(s.mask_path.has_value(), s.label == Label::Anomalous);
}

TEST(VisA, BadCsvIsNamed) {
  {  // no label column
    TempDir dir;
    make_visa_tree(dir.path());
    test::write_text(dir / "split_csv/1cls.csv", "object,split,image,mask\ncandle,train,x.JPG,\n");
    const std::string msg = error_of([&] { read_visa(dir.path(), {}); });
    EXPECT_NE(msg.find("missing column 'label'"), std::string::npos) << msg;
    EXPECT_NE(msg.find("1cls.csv"), std::string::npos) << msg;
  }
  {  // unknown label value, with its line
    TempDir dir;
    make_visa_tree(dir.path());
    std::string csv = test::read_text(dir / "split_csv/1cls.csv");
    csv.replace(csv.find(",normal,"), 8, ",broken,");
    test::write_text(dir / "split_csv/1cls.csv", csv);
    const std::string msg = error_of([&] { read_visa(dir.path(), {}); });
    EXPECT_NE(msg.find("1cls.csv:2: unknown label 'broken'"), std::string::npos) << msg;
  }
  {  // image listed but missing
    TempDir dir;
    make_visa_tree(dir.path());
    fs::remove(dir / "pcb1/Data/Images/Normal/100.JPG");
    const std::string msg = error_of([&] { read_visa(dir.path(), {}); });
    EXPECT_NE(msg.find("pcb1/Data/Images/Normal/100.JPG"), std::string::npos) << msg;
  }
  {  // neither layout
    TempDir dir;
    fs::create_directories(dir / "something");
    EXPECT_NE(error_of([&] { read_visa(dir.path(), {}); }).find("not a VisA dataset"), std::string::npos);
  }
}

// parse_visa_split is read_visa's CSV half, exposed for fuzz_visa_csv: same result from a
// table held in memory, errors named after the table's source.
TEST(VisA, ParsesASplitTableHeldInMemory) {
  TempDir dir;
  make_visa_tree(dir.path());
  const io::CsvTable table = io::parse_csv(test::read_text(dir / "split_csv/1cls.csv"), "memory.csv");
  const Dataset ds = parse_visa_split(table, dir.path(), {});
  EXPECT_EQ(ds.samples.size(), read_visa(dir.path(), {}).samples.size());
  EXPECT_EQ(ds.samples.size(), 15u);  // candle 5 + 2 + 3, pcb1 3 + 1 + 1
  const io::CsvTable bad = io::parse_csv("object,split,label,image\npcb1,train,normal,nope.JPG\n", "memory.csv");
  const std::string msg = error_of([&] { parse_visa_split(bad, dir.path(), {}); });
  EXPECT_NE(msg.find("memory.csv:2: image not found"), std::string::npos) << msg;
}

TEST(VisA, AcceptsConvertedMvtecStyleTree) {
  TempDir dir;
  test::make_mvtec_tree(dir.path());
  Dataset ds = read_visa(dir.path(), {});
  EXPECT_EQ(ds.format, Format::VisA);
  EXPECT_EQ(ds.samples.size(), 15u);
}

TEST(Folder, StratifiedSeededSplitThatCanBeSavedAndReused) {
  TempDir dir;
  const std::string root = dir / "widget";
  for (int i = 0; i < 10; ++i) test::write_png(root + "/good/g" + std::to_string(i) + ".png", 16, 16);
  for (int i = 0; i < 5; ++i) test::write_png(root + "/dent/d" + std::to_string(i) + ".png", 16, 16);
  test::write_png(root + "/stain/s0.png", 16, 16);
  test::write_png(root + "/stain/s1.png", 16, 16);
  LoadOptions o;
  o.folder_test_fraction = 0.3;
  o.folder_seed = 7;
  Dataset ds = read_folder(root, o);
  EXPECT_EQ(ds.categories, (std::vector<std::string>{"widget"}));
  // round(10*0.3)=3 good, round(5*0.3)=2 dent (1.5 rounds up), round(2*0.3)=1 stain (clamped to >= 1)
  EXPECT_EQ(count(ds, "widget", Split::Test, Label::Normal), 3);
  EXPECT_EQ(count(ds, "widget", Split::Test, Label::Anomalous, "dent"), 2);
  EXPECT_EQ(count(ds, "widget", Split::Test, Label::Anomalous, "stain"), 1);
  EXPECT_EQ(count(ds, "widget", Split::Train, Label::Normal), 7);
  EXPECT_NE(ds.split_note.find("seed 7"), std::string::npos);

  // Same seed, same split; the saved split reads back identically.
  Dataset again = read_folder(root, o);
  for (size_t i = 0; i < ds.samples.size(); ++i) EXPECT_EQ(ds.samples[i].image_path, again.samples[i].image_path);
  save_split(ds, dir / "split.csv");
  o.folder_split_file = dir / "split.csv";
  o.folder_seed = 99;
  Dataset reused = read_folder(root, o);
  ASSERT_EQ(reused.samples.size(), ds.samples.size());
  for (size_t i = 0; i < ds.samples.size(); ++i) {
    EXPECT_EQ(reused.samples[i].image_path, ds.samples[i].image_path);
    EXPECT_EQ(reused.samples[i].split, ds.samples[i].split);
  }
  // A different seed gives a different split of the good images.
  o.folder_split_file.clear();
  Dataset other = read_folder(root, o);
  bool differs = false;
  for (size_t i = 0; i < ds.samples.size(); ++i) differs |= other.samples[i].image_path != ds.samples[i].image_path;
  EXPECT_TRUE(differs);
}

TEST(Folder, SeveralCategoriesAndMissingGoodFolder) {
  TempDir dir;
  for (const char* cat : {"a", "b"}) {
    for (int i = 0; i < 4; ++i) test::write_png(dir / (std::string(cat) + "/good/" + std::to_string(i) + ".png"), 8, 8);
    test::write_png(dir / (std::string(cat) + "/bad/0.png"), 8, 8);
  }
  Dataset ds = read_folder(dir.path(), {});
  EXPECT_EQ(ds.categories, (std::vector<std::string>{"a", "b"}));
  EXPECT_EQ(ds.samples.size(), 10u);
  TempDir empty;
  fs::create_directories(empty / "bad");
  EXPECT_NE(error_of([&] { read_folder(empty.path(), {}); }).find("no categories found"), std::string::npos);
}

TEST(LoadDataset, DispatchesOnFormat) {
  TempDir dir;
  test::make_mvtec_tree(dir.path());
  EXPECT_EQ(load_dataset(parse_format("mvtec"), dir.path(), {}).samples.size(), 15u);
  EXPECT_EQ(load_dataset(parse_format("synth"), dir.path(), {}).format, Format::Synthetic);
  EXPECT_THROW(parse_format("coco"), lriad::Error);
}
