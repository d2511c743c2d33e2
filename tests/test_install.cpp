// Installed like a tool (issue 26): `cmake --install` into a temporary prefix, then the installed
// lriad run from another directory finds its sentencepiece shim and its shipped configs by name;
// `cpack -G DEB` makes a package that holds the same files and declares Debian's runtime packages.
#include <gtest/gtest.h>

#include <filesystem>

#include "fixtures.h"

using lriad::test::run_command;
using lriad::test::TempDir;
namespace fs = std::filesystem;

namespace {

const std::string kCmake = LRIAD_CMAKE_COMMAND;
const std::string kBuild = LRIAD_BUILD_DIR;

// The files an install and the package hold, relative to the prefix.
const char* kInstalled[] = {"bin/lriad",
                            "lib/lriad/liblriad_spm_shim.so",
                            "share/lriad/configs/tiny.json",
                            "share/lriad/configs/small.json",
                            "share/lriad/configs/base.json",
                            "share/doc/lriad/README.md",
                            "share/doc/lriad/LICENSE",
                            "share/man/man1/lriad.1"};

}  // namespace

TEST(Install, InstalledLriadRunsFromAnotherDirectoryWithAShippedConfigByName) {
  TempDir dir;
  const std::string prefix = dir / "prefix", elsewhere = dir / "elsewhere";
  fs::create_directories(elsewhere);
  auto r = run_command(kCmake + " --install " + kBuild + " --prefix " + prefix, true);
  ASSERT_EQ(r.code, 0) << r.out;
  for (const char* f : kInstalled) EXPECT_TRUE(fs::is_regular_file(fs::path(prefix) / f)) << f;
  const std::string man = lriad::test::read_text(prefix + "/share/man/man1/lriad.1");
  EXPECT_NE(man.find("train"), std::string::npos);  // made from the CLI's help
  EXPECT_NE(man.find("Subcommands"), std::string::npos);

  const std::string lriad = "cd " + elsewhere + " && " + prefix + "/bin/lriad";
  r = run_command(lriad + " --version", true);
  ASSERT_EQ(r.code, 0) << r.out;
  EXPECT_NE(r.out.find("lriad " LRIAD_VERSION), std::string::npos) << r.out;
  r = run_command(lriad + " info", true);
  ASSERT_EQ(r.code, 0) << r.out;
  EXPECT_NE(r.out.find("LibTorch"), std::string::npos) << r.out;

  // The acceptance's commands, small: a synthetic dataset, then a few steps with `--config tiny`
  // (short chains, small batches and bank: under a minute on 2 cores).
  r = run_command(lriad + " synth --out d --categories 1 --per-category 24 --size 64 --seed 1", true);
  ASSERT_EQ(r.code, 0) << r.out;
  r = run_command(lriad +
                      " train --config tiny --format synth --root d --out r --set sft.steps=5 --set grpo.steps=2"
                      " --set train.eval_every=1000 --set train.val_size=4 --set data.val_fraction=0.2"
                      " --set sampling.max_new_tokens=24 --set sft.batch_size=4 --set grpo.batch_size=2"
                      " --set grpo.num_generations=2 --set model.reference_bank=1000",
                  true);
  ASSERT_EQ(r.code, 0) << r.out;
  // The installed config, not the source tree's: the log says which file it read.
  EXPECT_NE(
      r.out.find("config: " + fs::weakly_canonical(prefix + "/share/lriad/configs/tiny.json").string() + " ('tiny')"),
      std::string::npos)
      << r.out;
  EXPECT_TRUE(fs::is_regular_file(elsewhere + "/r/model.safetensors"));
  EXPECT_TRUE(fs::is_regular_file(elsewhere + "/r/tokenizer.model"));  // trained through the installed shim

  // An unknown name lists the shipped ones.
  r = run_command(lriad + " train --config tinny --format synth --root d --out r2", true);
  EXPECT_EQ(r.code, 1) << r.out;
  EXPECT_NE(r.out.find("cannot find config 'tinny'"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("base, paligemma-3b, small, tiny"), std::string::npos) << r.out;
}

TEST(Install, DebianPackageHoldsTheInstallAndDeclaresItsRuntimePackages) {
  TempDir dir;
  auto r = run_command("cpack -G DEB --config " + kBuild + "/CPackConfig.cmake -B " + dir.path(), true);
  ASSERT_EQ(r.code, 0) << r.out;
  std::string deb;
  for (const auto& e : fs::directory_iterator(dir.path()))
    if (e.path().extension() == ".deb") deb = e.path().string();
  ASSERT_FALSE(deb.empty()) << r.out;
  EXPECT_NE(deb.find("lriad_" LRIAD_VERSION), std::string::npos) << deb;
  r = run_command("dpkg-deb --field " + deb + " Depends", true);
  ASSERT_EQ(r.code, 0) << r.out;
  for (const char* dep : {"libopenblas0-openmp", "libsentencepiece0", "libtorch", "libopencv-core"})
    EXPECT_NE(r.out.find(dep), std::string::npos) << dep << " in Depends: " << r.out;
  r = run_command("dpkg-deb --contents " + deb, true);
  ASSERT_EQ(r.code, 0) << r.out;
  for (const char* f : kInstalled)
    EXPECT_NE(r.out.find(std::string("./usr/") + f), std::string::npos) << f << "\n" << r.out;
}
