// End-to-end: bad input given to the lriad binary exits with code 1 and a message that names the
// offending file or config key (issue 7, "Reliability"). Datasets are read by `lriad data stats`,
// configs by `lriad model init`, checkpoints by `lriad predict` and `lriad model info`.
#include <gtest/gtest.h>

#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <functional>

#include <nlohmann/json.hpp>

#include "fixtures.h"

namespace fs = std::filesystem;
using lriad::test::CommandResult;
using lriad::test::run_command;
using lriad::test::TempDir;

namespace {

const std::string kBin = LRIAD_BIN;
const std::string kTiny = std::string(LRIAD_SOURCE_DIR) + "/configs/tiny.json";
// A model small enough that init, load and one training step take about a second.
const std::string kSmall =
    " --set model.dim=32 --set model.layers=1 --set model.heads=4 --set model.kv_heads=2"
    " --set model.vision_dim=32 --set model.vision_layers=1 --set model.vision_heads=2"
    " --set tokenizer.vocab_size=320 --set model.reference=none --set sampling.max_new_tokens=8";

// Asserts exit code 1 and that the combined output mentions every one of `needles`.
void expect_error(const CommandResult& r, std::initializer_list<std::string> needles) {
  EXPECT_EQ(r.code, 1) << r.out;
  for (const auto& n : needles) EXPECT_NE(r.out.find(n), std::string::npos) << "missing '" << n << "' in:\n" << r.out;
}

CommandResult stats(const std::string& format, const std::string& root, const std::string& extra = "") {
  return run_command(kBin + " data stats --format " + format + " --root " + root + extra, true);
}

// Keeps the first `keep` bytes of `path`.
void truncate_file(const std::string& path, uintmax_t keep) { fs::resize_file(path, keep); }

void write_bytes(const std::string& path, const std::string& bytes) { std::ofstream(path, std::ios::binary) << bytes; }

// A VisA tree as published: split_csv/1cls.csv plus one object "cap" with images and a mask.
std::string make_visa_tree(const TempDir& dir, const std::string& csv) {
  const std::string root = dir / "visa";
  lriad::test::write_jpeg(root + "/cap/Data/Images/Normal/000.JPG", 24, 24);
  lriad::test::write_jpeg(root + "/cap/Data/Images/Normal/001.JPG", 24, 24);
  lriad::test::write_jpeg(root + "/cap/Data/Images/Anomaly/000.JPG", 24, 24, 60);
  lriad::test::write_mask(root + "/cap/Data/Masks/Anomaly/000.png", 24, 24);
  lriad::test::write_text(root + "/split_csv/1cls.csv", csv);
  return root;
}

const char* kVisaRows =
    "cap,train,normal,cap/Data/Images/Normal/000.JPG,\n"
    "cap,test,normal,cap/Data/Images/Normal/001.JPG,\n"
    "cap,test,anomaly,cap/Data/Images/Anomaly/000.JPG,cap/Data/Masks/Anomaly/000.png\n";

}  // namespace

// --- datasets ------------------------------------------------------------------------------
// (A missing root and an unknown category are covered by Cli.ErrorsExitNonZeroAndNameThePath.)

TEST(BadInput, EmptySplitNamesCategoryAndRoot) {
  TempDir dir;
  lriad::test::make_mvtec_tree(dir.path());
  fs::remove_all(dir / "beta/train/good");
  fs::create_directories(dir / "beta/train/good");
  expect_error(stats("mvtec", dir.path()), {"'beta'", dir.path(), "no train images"});
}

TEST(BadInput, ZeroByteImageIsNamed) {
  TempDir dir;
  lriad::test::make_mvtec_tree(dir.path());
  const std::string img = dir / "alpha/train/good/001.png";
  truncate_file(img, 0);
  expect_error(stats("mvtec", dir.path()), {img, "empty"});
}

TEST(BadInput, CorruptImageIsNamed) {
  TempDir dir;
  lriad::test::make_mvtec_tree(dir.path());
  const std::string img = dir / "alpha/test/good/000.png";
  write_bytes(img, "this is not a picture at all");
  expect_error(stats("mvtec", dir.path()), {img});
}

TEST(BadInput, TruncatedPngIsNamed) {
  TempDir dir;
  lriad::test::make_mvtec_tree(dir.path());
  const std::string img = dir / "beta/test/good/000.png";
  truncate_file(img, fs::file_size(img) / 2);
  expect_error(stats("mvtec", dir.path()), {img});
}

TEST(BadInput, TruncatedJpegIsNamed) {
  TempDir dir;
  const std::string root = make_visa_tree(dir, std::string("object,split,label,image,mask\n") + kVisaRows);
  ASSERT_EQ(stats("visa", root).code, 0);
  const std::string img = root + "/cap/Data/Images/Normal/001.JPG";
  truncate_file(img, fs::file_size(img) / 2);
  expect_error(stats("visa", root), {img});
}

TEST(BadInput, MaskOfAnotherSizeNamesBothFiles) {
  TempDir dir;
  lriad::test::make_mvtec_tree(dir.path());
  const std::string mask = dir / "alpha/ground_truth/crack/000_mask.png";
  ASSERT_TRUE(fs::exists(mask));
  lriad::test::write_mask(mask, 16, 16);
  expect_error(stats("mvtec", dir.path()), {mask, dir / "alpha/test/crack/000.png", "16x16"});
}

TEST(BadInput, VisaCsvMissingColumnNamesFileAndColumn) {
  TempDir dir;
  const std::string root = make_visa_tree(dir, "object,split,image,mask\ncap,train,cap/Data/Images/Normal/000.JPG,\n");
  expect_error(stats("visa", root), {root + "/split_csv/1cls.csv", "missing column 'label'"});
}

TEST(BadInput, VisaCsvUnknownLabelNamesFileLineAndValue) {
  TempDir dir;
  const std::string root = make_visa_tree(dir, std::string("object,split,label,image,mask\n") + kVisaRows +
                                                   "cap,test,broken,cap/Data/Images/Normal/001.JPG,\n");
  expect_error(stats("visa", root), {root + "/split_csv/1cls.csv:5", "unknown label 'broken'"});
}

// An unreadable training image stops `lriad train` naming the file; with --skip-bad-images it
// becomes a counted warning and training goes on.
TEST(BadInput, SkipBadImagesTurnsAnUnreadableImageIntoAWarning) {
  TempDir dir;
  const std::string tree = dir / "tree";
  lriad::test::make_mvtec_tree(tree);
  const std::string img = tree + "/alpha/train/good/002.png";
  write_bytes(img, "garbage");
  const std::string train = kBin + " train --config " + kTiny + " --format mvtec --root " + tree + kSmall +
                            " --set sft.steps=1 --set vision_warmup.steps=0 --set grpo.steps=0 --set train.val_size=2"
                            " --set model.max_seq_len=256";
  expect_error(run_command(train + " --out " + (dir / "run1"), true), {img, "skip_bad_images"});
  const auto r = run_command(train + " --out " + (dir / "run2") + " --skip-bad-images", true);
  EXPECT_EQ(r.code, 0) << r.out;
  EXPECT_NE(r.out.find("skipping unreadable image"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find(img), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("1 unreadable training images skipped"), std::string::npos) << r.out;
}

// The same for `lriad eval` on a test image: stopped with the file and the flag named; with
// --skip-bad-images the image is left out, counted, and listed in metrics.json and the report.
TEST(BadInput, EvalSkipBadImagesLeavesOutAnUnreadableTestImage) {
  TempDir dir;
  const std::string tree = dir / "tree";
  lriad::test::make_mvtec_tree(tree);
  const std::string run = dir / "run";
  const auto init = run_command(kBin + " model init --config " + kTiny + " --out " + run + kSmall, true);
  ASSERT_EQ(init.code, 0) << init.out;
  const std::string eval = kBin + " eval --run " + run + " --format mvtec --root " + tree + " --category alpha";
  const auto good = run_command(eval + " --out " + (dir / "e0"), true);
  ASSERT_EQ(good.code, 0) << good.out;
  const std::string img = tree + "/alpha/test/good/000.png";
  ASSERT_TRUE(fs::exists(img));
  write_bytes(img, "garbage");
  expect_error(run_command(eval + " --out " + (dir / "e1"), true), {img, "--skip-bad-images"});
  const auto r = run_command(eval + " --out " + (dir / "e2") + " --skip-bad-images", true);
  ASSERT_EQ(r.code, 0) << r.out;
  EXPECT_NE(r.out.find("skipping unreadable image"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("1 unreadable images skipped"), std::string::npos) << r.out;
  const auto before = nlohmann::json::parse(lriad::test::read_text(dir / "e0/metrics.json"));
  const auto after = nlohmann::json::parse(lriad::test::read_text(dir / "e2/metrics.json"));
  EXPECT_EQ(after["skipped_images"], nlohmann::json::array({img}));
  EXPECT_EQ(before["skipped_images"], nlohmann::json::array());
  EXPECT_EQ(after["n"].get<int>(), before["n"].get<int>() - 1);  // one image fewer than the intact run
  EXPECT_NE(lriad::test::read_text(dir / "e2/report.html").find("unreadable images were left out"), std::string::npos);
}

// --- configs (via --set, as a user would mistype them) ---------------------------------------

TEST(BadInput, ConfigErrorsNameTheKeyAndWhy) {
  TempDir dir;
  auto init = [&](const std::string& set) {
    return run_command(kBin + " model init --config " + kTiny + " --out " + (dir / "run") + " --set " + set, true);
  };
  expect_error(init("grpo.betta=0.1"), {"unknown config key grpo.betta", "did you mean grpo.beta?"});
  expect_error(init("model.dim=wide"), {"model.dim", "expected an integer", "\"wide\""});
  expect_error(init("grpo.num_generations=1"), {"grpo.num_generations", "at least 2"});
  expect_error(init("grpo.beta=-0.5"), {"grpo.beta", "must be >= 0"});
  expect_error(init("sampling.top_p=0"), {"sampling.top_p", "(0, 1]"});
  expect_error(init("sampling.top_p=1.5"), {"sampling.top_p", "(0, 1]"});
  EXPECT_FALSE(fs::exists(dir / "run"));  // nothing is created for a rejected config
}

TEST(BadInput, ConfigFileErrorsNameTheFile) {
  TempDir dir;
  const std::string cfg = dir / "bad.json";
  lriad::test::write_text(cfg, R"({"modle": {"dim": 64}})");
  expect_error(run_command(kBin + " model init --config " + cfg + " --out " + (dir / "run"), true),
               {cfg, "unknown config key modle", "did you mean model?"});
  lriad::test::write_text(cfg, R"({"model": {"dim": 64,}})");
  expect_error(run_command(kBin + " model init --config " + cfg + " --out " + (dir / "run"), true),
               {cfg, "not valid JSON"});
}

// --- checkpoints ---------------------------------------------------------------------------

// One tiny run shared by the checkpoint cases (model init trains a tokenizer: ~1 s).
class DamagedCheckpoint : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    dir_ = new TempDir;
    const auto r = run_command(kBin + " model init --config " + kTiny + " --out " + run() + kSmall, true);
    ASSERT_EQ(r.code, 0) << r.out;
    lriad::test::write_png(image(), 32, 32);
  }
  static void TearDownTestSuite() { delete dir_; }
  static std::string run() { return *dir_ / "run"; }
  static std::string image() { return *dir_ / "img.png"; }

  // A copy of the run's weights, changed by `damage`, under a new name.
  static std::string damaged(const std::string& name, const std::function<void(std::string&)>& damage) {
    std::ifstream in(run() + "/model.safetensors", std::ios::binary);
    std::string bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    damage(bytes);
    const std::string path = *dir_ / name;
    write_bytes(path, bytes);
    return path;
  }
  static CommandResult predict(const std::string& weights) {
    return run_command(kBin + " predict --run " + run() + " --category alpha --weights " + weights + " " + image(),
                       true);
  }
  static uint64_t header_length(const std::string& bytes) {
    uint64_t n = 0;
    for (int i = 7; i >= 0; --i) n = (n << 8) | static_cast<unsigned char>(bytes[i]);
    return n;
  }
  static TempDir* dir_;
};
TempDir* DamagedCheckpoint::dir_ = nullptr;

TEST_F(DamagedCheckpoint, IntactWeightsLoad) {
  const auto r = predict(damaged("intact.safetensors", [](std::string&) {}));
  EXPECT_EQ(r.code, 0) << r.out;
}

TEST_F(DamagedCheckpoint, TruncatedHeaderIsNamed) {
  // The file ends in the middle of the JSON header.
  const std::string path = damaged("truncated.safetensors", [](std::string& b) { b.resize(8 + header_length(b) / 2); });
  expect_error(predict(path), {path, "header length"});
}

TEST_F(DamagedCheckpoint, HeaderLengthLargerThanTheFileIsNamed) {
  const std::string path = damaged("long.safetensors", [](std::string& b) {
    const uint64_t n = b.size() * 2;
    for (int i = 0; i < 8; ++i) b[i] = static_cast<char>((n >> (8 * i)) & 0xFF);
  });
  expect_error(predict(path), {path, "runs past the end of the file"});
}

TEST_F(DamagedCheckpoint, OffsetsOutOfRangeAreNamed) {
  // Cutting the data buffer short leaves the last tensor's data_offsets past its end.
  const std::string path = damaged("short_data.safetensors", [](std::string& b) { b.resize(b.size() - 4); });
  expect_error(predict(path), {path, "run past the data buffer"});
  // model info reads only the header, and checks the offsets against the file size all the same.
  fs::copy_file(path, run() + "/model.safetensors.bad");
  fs::rename(run() + "/model.safetensors", run() + "/model.safetensors.good");
  fs::rename(run() + "/model.safetensors.bad", run() + "/model.safetensors");
  const auto r = run_command(kBin + " model info --run " + run(), true);
  fs::rename(run() + "/model.safetensors.good", run() + "/model.safetensors");
  expect_error(r, {run() + "/model.safetensors", "run past the data buffer"});
}

TEST_F(DamagedCheckpoint, NotASafetensorsFileIsNamed) {
  const std::string path = *dir_ / "notes.safetensors";
  lriad::test::write_text(path, "hello");
  expect_error(predict(path), {path, "shorter than the 8-byte header length"});
}

// torchrun's variables for a rank whose rank 0 never comes: it gives up after LRIAD_DIST_TIMEOUT,
// saying where it waited and what every rank needs, before writing anything.
TEST(BadInput, SeveralRanksStopSayingWhyWithoutRankZeroOrWithUnevenBatches) {
  TempDir dir;
  const std::string tree = dir / "tree";
  lriad::test::make_mvtec_tree(tree);
  const std::string out = dir / "run";
  const std::string port = std::to_string(20000 + int(getpid() % 1000));
  expect_error(run_command("WORLD_SIZE=2 RANK=1 MASTER_PORT=" + port + " LRIAD_DIST_TIMEOUT=2 " + kBin +
                               " train --config " + kTiny + " --format mvtec --root " + tree + kSmall + " --out " + out,
                           true),
               {"rank 1 of 2: could not join the process group at 127.0.0.1:" + port, "within 2 s", "MASTER_PORT"});
  // --nproc: every batch in equal shares, refused before anything is written when it cannot be.
  expect_error(run_command(kBin + " train --config " + kTiny + " --format mvtec --root " + tree + kSmall +
                               " --set sft.batch_size=4 --nproc 3 --out " + out,
                           true),
               {"sft.batch_size 4 does not divide among 3 ranks", "--set sft.batch_size=6"});
  EXPECT_FALSE(std::filesystem::exists(out)) << "nothing written";
  EXPECT_FALSE(std::filesystem::exists(out)) << "nothing written";
}
