// Run configuration: shipped configs load, unknown keys are rejected with a suggestion, types
// and ranges are checked with the key path, precedence defaults < file < --set.
#include <gtest/gtest.h>

#include <filesystem>
#include <nlohmann/json.hpp>

#include "fixtures.h"
#include "lriad/io/config.h"
#include "lriad/io/config_visit.h"
#include "lriad/io/error.h"
#include "lriad/io/install.h"

using namespace lriad;

namespace {
std::string load_error(const std::string& json_text, const std::vector<std::string>& overrides = {}) {
  test::TempDir dir;
  test::write_text(dir / "c.json", json_text);
  try {
    load_config(dir / "c.json", overrides);
  } catch (const lriad::Error& e) {
    return e.what();
  }
  return "";
}
}  // namespace

TEST(Config, ShippedConfigsLoadAndValidate) {
  for (const char* name : {"tiny", "small", "base"}) {
    const std::string path = std::string(LRIAD_SOURCE_DIR) + "/configs/" + name + ".json";
    RunConfig c = load_config(path);
    EXPECT_EQ(c.name, name);
    EXPECT_EQ(c.model.reference, "knn") << name;  // the policy depends on the normal reference
  }
  EXPECT_NO_THROW(RunConfig().validate());
  // The CUDA workstation's PaliGemma config: LoRA on bf16 weights, the evidence in its prompt.
  const RunConfig p = load_config(std::string(LRIAD_SOURCE_DIR) + "/configs/paligemma-3b.json");
  EXPECT_EQ(p.pretrained.dtype, "bf16");
  EXPECT_FALSE(p.pretrained.base.empty());
  EXPECT_TRUE(p.pretrained.recompute);
  EXPECT_EQ(p.model.reference, "knn");
  EXPECT_TRUE(p.model.prompt_evidence);
}

// --config takes a file or a shipped config's name (issue 26): a name is found from any directory
// (here the build tree's, whose binary reads the source tree's configs/); an unknown one lists them.
TEST(Config, AShippedConfigIsFoundByName) {
  const std::string shipped = std::string(LRIAD_SOURCE_DIR) + "/configs/tiny.json";
  const std::string found = lriad::io::find_config("tiny");
  EXPECT_TRUE(std::filesystem::equivalent(found, shipped)) << found;
  EXPECT_TRUE(std::filesystem::equivalent(lriad::io::find_config("small.json"),
                                          std::string(LRIAD_SOURCE_DIR) + "/configs/small.json"));
  EXPECT_EQ(lriad::io::find_config(shipped), shipped);  // a file is taken as given
  EXPECT_EQ(load_config("tiny").name, "tiny");
  const auto names = lriad::io::shipped_config_names();
  EXPECT_EQ(names, (std::vector<std::string>{"base", "paligemma-3b", "small", "tiny"}));
  try {
    lriad::io::find_config("tinny");
    ADD_FAILURE() << "an unknown name must throw";
  } catch (const lriad::Error& e) {
    const std::string what = std::string(e.what()) + " " + e.hint();
    EXPECT_NE(what.find("cannot find config 'tinny'"), std::string::npos) << what;
    EXPECT_NE(what.find("base, paligemma-3b, small, tiny"), std::string::npos) << what;
  }
  // A path with a directory part is only that path, never a name.
  EXPECT_THROW(lriad::io::find_config("/no/such/dir/tiny.json"), lriad::Error);
}

TEST(Config, UnknownKeySuggestsTheClosest) {
  const std::string msg = load_error(R"({"model": {"dimm": 64}})");
  EXPECT_NE(msg.find("unknown config key model.dimm"), std::string::npos) << msg;
  EXPECT_NE(msg.find("did you mean model.dim?"), std::string::npos) << msg;
  const std::string top = load_error(R"({"sampling": {}, "bogus_section_name": 1})");
  EXPECT_NE(top.find("unknown config key bogus_section_name"), std::string::npos) << top;
}

TEST(Config, AKeyNoLongerReadIsRefusedWithWhatReplacesIt) {
  // sampling.temperature was read by nothing (GRPO samples at grpo.temperature): a value a user set
  // is refused with the hint; the value every shipped config and older run had is ignored.
  const std::string msg = load_error(R"({"sampling": {"temperature": 0.7}})");
  EXPECT_NE(msg.find("config key sampling.temperature is no longer read"), std::string::npos) << msg;
  EXPECT_NE(msg.find("grpo.temperature"), std::string::npos) << msg;
  EXPECT_EQ(load_error(R"({"sampling": {"temperature": 1.0, "top_k": 0}})"), "");
  EXPECT_FALSE(lriad::io::config_to_json(lriad::RunConfig{})["sampling"].contains("temperature"));
}

TEST(Config, AKeyThatMovedIsReadAtItsNewPlaceAndNotTwice) {
  // Stage 0's keys were sft.vision_*: an older run's config.json, a user's file and --set still work.
  const auto c = lriad::parse_config(R"({"sft": {"vision_steps": 7, "vision_lr": 0.002, "steps": 5}})", "test",
                                     {"sft.vision_batch_size=12"});
  EXPECT_EQ(c.vision_warmup.steps, 7);
  EXPECT_DOUBLE_EQ(c.vision_warmup.lr, 0.002);
  EXPECT_EQ(c.vision_warmup.batch_size, 12);
  EXPECT_EQ(c.sft.steps, 5);
  const auto j = lriad::to_json(c);  // written under the new names only
  EXPECT_EQ(j["vision_warmup"]["steps"], 7);
  EXPECT_FALSE(j["sft"].contains("vision_steps"));
  EXPECT_EQ(lriad::config_from_json(j, "roundtrip").vision_warmup.steps, 7);
  // Both names at once: refused, naming both.
  const std::string msg = load_error(R"({"sft": {"vision_steps": 3}, "vision_warmup": {"steps": 4}})");
  EXPECT_NE(msg.find("sft.vision_steps and vision_warmup.steps are one setting"), std::string::npos) << msg;
  EXPECT_NE(load_error(R"({"vision_warmup": {"steps": -1}})").find("vision_warmup.steps"), std::string::npos);
}

TEST(Config, WrongTypeAndOutOfRangeNameTheKeyAndWhy) {
  std::string msg = load_error(R"({"model": {"dim": "big"}})");
  EXPECT_NE(msg.find("model.dim: expected an integer"), std::string::npos) << msg;
  msg = load_error(R"({"sampling": {"top_p": 1.5}})");
  EXPECT_NE(msg.find("sampling.top_p"), std::string::npos) << msg;
  EXPECT_NE(msg.find("(0, 1]"), std::string::npos) << msg;
  msg = load_error(R"({"model": {"dim": 100, "heads": 3}})");
  EXPECT_NE(msg.find("model.heads: must divide dim 100"), std::string::npos) << msg;
  msg = load_error(R"({"model": {"heads": 6, "kv_heads": 4}})");
  EXPECT_NE(msg.find("model.kv_heads"), std::string::npos) << msg;
  msg = load_error(R"({"model": {"image_size": 64, "reference_region_size": 80}})");
  EXPECT_NE(msg.find("model.reference_region_size: must be 0 (off) or between 3 and model.image_size, got 80"),
            std::string::npos)
      << msg;
  msg = load_error(R"({"model": {"image_size": 64, "reference_fine_size": 48}})");
  EXPECT_NE(msg.find("model.reference_fine_size: must be 0 (off) or between model.image_size and 1024"),
            std::string::npos)
      << msg;
  msg = load_error(R"({"model": {"reference_neighbours": -2}})");
  EXPECT_NE(msg.find("model.reference_neighbours"), std::string::npos) << msg;
  msg = load_error(R"({"seed": -1})");
  EXPECT_NE(msg.find("seed: expected an integer"), std::string::npos) << msg;
  msg = load_error("{not json");
  EXPECT_NE(msg.find("not valid JSON"), std::string::npos) << msg;
}

TEST(Config, IntegerOutOfRangeIsRejectedNotWrapped) {
  // 4294967360 = 2^32 + 64 would wrap to 64 in an int.
  std::string msg = load_error(R"({"model": {"dim": 4294967360}})");
  EXPECT_NE(msg.find("model.dim: expected an integer in [-2147483648, 2147483647]"), std::string::npos) << msg;
  msg = load_error(R"({"model": {"dim": -9223372036854775808}})");
  EXPECT_NE(msg.find("model.dim: expected an integer"), std::string::npos) << msg;
  // The full range of a 64-bit unsigned field is accepted.
  EXPECT_EQ(load_config("", {"seed=18446744073709551615"}).seed, 18446744073709551615u);
  EXPECT_EQ(load_config("", {"model.dim=192"}).model.dim, 192);
}

// (65536 / 1)^2 image tokens overflowed int inside validate() (UB; found in review, confirmed by
// running fuzz_config on that input).
TEST(Config, HugeModelSizesAreErrorsNotIntOverflows) {
  std::string msg = load_error(R"({"model": {"image_size": 65536, "patch_size": 1}})");
  EXPECT_NE(msg.find("model.max_seq_len: must exceed the 4294967296 image tokens"), std::string::npos) << msg;
  // 8 * dim overflowed int in mlp_width(); the automatic width must fit in an int.
  msg = load_error(R"({"model": {"dim": 1000000000, "heads": 1, "kv_heads": 1, "mlp_hidden": 0}})");
  EXPECT_NE(msg.find("model.dim: too large"), std::string::npos) << msg;
  ModelConfig m;
  m.mlp_hidden = 0;
  m.dim = 300000000;  // 8 * dim > 2^31, the width (800000000) fits
  EXPECT_EQ(m.mlp_width(), 800000000);
}

// Found by fuzz_config: a --set value that is not JSON is kept as a string; bytes that are not
// UTF-8 then made the type error's message (or save_config) throw nlohmann's exception instead.
TEST(Config, OverrideThatIsNotUtf8IsAnErrorNamingTheKey) {
  for (const std::string bad : {"data.categories=[\"a\"]\xCB", "name=caf\xE9"}) {
    try {
      load_config("", {bad});
      ADD_FAILURE() << "accepted " << bad;
    } catch (const lriad::Error& e) {
      EXPECT_NE(std::string(e.what()).find(bad.substr(0, bad.find('='))), std::string::npos) << e.what();
    }
  }
}

TEST(Config, PrecedenceDefaultsFileFlags) {
  test::TempDir dir;
  test::write_text(dir / "c.json", R"({"model": {"dim": 256, "heads": 8, "kv_heads": 4}, "seed": 5})");
  RunConfig c = load_config(dir / "c.json", {"model.dim=128", "data.root=/x/y"});
  EXPECT_EQ(c.model.dim, 128);  // flag beats file
  EXPECT_EQ(c.model.heads, 8);  // file beats default (6)
  EXPECT_EQ(c.seed, 5u);
  EXPECT_EQ(c.model.layers, 4);    // default
  EXPECT_EQ(c.data.root, "/x/y");  // strings need no quotes
  EXPECT_THROW(load_config(dir / "c.json", {"model.dimm=3"}), lriad::Error);
  EXPECT_THROW(load_config(dir / "c.json", {"no_equals_sign"}), lriad::Error);
}

TEST(Config, SavedConfigReloadsIdentically) {
  test::TempDir dir;
  RunConfig c = load_config(std::string(LRIAD_SOURCE_DIR) + "/configs/tiny.json", {"sampling.top_k=5"});
  save_config(c, dir / "config.json");
  RunConfig back = load_config(dir / "config.json");
  EXPECT_EQ(to_json(back), to_json(c));
  EXPECT_EQ(back.sampling.top_k, 5);
}

TEST(Config, OverrideParsingAndEditDistance) {
  EXPECT_EQ(io::parse_override("grpo.beta=0.04"), nlohmann::json::parse(R"({"grpo": {"beta": 0.04}})"));
  EXPECT_EQ(io::parse_override("data.categories=[\"a\",\"b\"]")["data"]["categories"].size(), 2u);
  EXPECT_EQ(io::edit_distance("kitten", "sitting"), 3u);  // k->s, e->i, +g
  EXPECT_EQ(io::closest_key("vocab_sise", {"vocab_size", "model"}), "vocab_size");
  EXPECT_EQ(io::closest_key("zzzzzzzz", {"dim", "layers"}), "");
}

TEST(Config, TrainingValuesAreValidatedWithReasons) {
  std::string msg = load_error(R"({"grpo": {"num_generations": 1}})");
  EXPECT_NE(msg.find("grpo.num_generations: GRPO needs at least 2 generations"), std::string::npos) << msg;
  msg = load_error(R"({"grpo": {"beta": -0.1}})");
  EXPECT_NE(msg.find("grpo.beta: must be >= 0"), std::string::npos) << msg;
  msg = load_error(R"({"grpo": {"loss_type": "ppo"}})");
  EXPECT_NE(msg.find("grpo.loss_type"), std::string::npos) << msg;
  msg = load_error(R"({"data": {"anomaly_mix": {"scratch": -1}}})");
  EXPECT_NE(msg.find("data.anomaly_mix.scratch"), std::string::npos) << msg;
  msg = load_error(R"({"data": {"anomaly_mix": {"scratch": "lots"}}})");
  EXPECT_NE(msg.find("data.anomaly_mix: expected an object"), std::string::npos) << msg;
  msg = load_error(R"({"reward": {"class_weights": "inverse"}})");
  EXPECT_NE(msg.find("reward.class_weights"), std::string::npos) << msg;
  // A file's anomaly_mix replaces the default mix as a whole.
  test::TempDir dir;
  test::write_text(dir / "c.json", R"({"data": {"anomaly_mix": {"hole": 1}}})");
  EXPECT_EQ(load_config(dir / "c.json").data.anomaly_mix.size(), 1u);
}
