// model/policy_input.h: training and eval make the same input tensor for the same image and bank
// (for each dataset format, non-square JPGs, a texture and a part); train/validation.h: the chance
// rule, ties to the later checkpoint, and what the policy answers per category.
#include <gtest/gtest.h>

#include <fstream>
#include <set>

#include <nlohmann/json.hpp>
#include <torch/torch.h>

#include "fixtures.h"
#include "lriad/data/image_io.h"
#include "lriad/reference/reference.h"
#include "lriad/io/error.h"
#include "lriad/model/paligemma.h"
#include "lriad/model/policy_input.h"
#include "lriad/train/input_maker.h"
#include "lriad/train/source.h"
#include "lriad/train/validation.h"
#include "lriad/text/prompt.h"

using namespace lriad;
using lriad::test::TempDir;

namespace {

RunConfig input_config(const std::string& format, const std::string& root) {
  RunConfig c;
  c.data.format = format;
  c.data.root = root;
  c.model.image_size = 32;
  c.model.patch_size = 8;
  c.model.reference = "knn";
  c.model.reference_fine_size = 64;  // W = 64 > S = 32: parts are kept at 64, the texture at 32
  c.model.reference_bank = 64;
  c.train.val_size = 4;  // one held-out normal (and its anomaly) per category
  return c;
}

train::ValidationResult result(double recall_normal, double recall_anomalous, int normal_items = 10,
                               int anomalous_items = 10) {
  train::ValidationResult v;
  v.normal_items = normal_items;
  v.anomalous_items = anomalous_items;
  v.items = normal_items + anomalous_items;
  v.recall_normal = recall_normal;
  v.recall_anomalous = recall_anomalous;
  v.balanced_accuracy = (recall_normal + recall_anomalous) / 2;
  return v;
}

}  // namespace

TEST(Validation, AtChanceRule) {
  struct Case {
    train::ValidationResult v;
    bool chance;
    const char* why;
  };
  train::ValidationResult empty;
  train::ValidationResult at_line = result(0.6, 0.5);
  at_line.balanced_accuracy = 0.55;  // (0.6 + 0.5) / 2, the literal (the sum may round either way)
  const std::vector<Case> cases = {
      {result(1.0, 0.0), true, "'normal' to everything: (1 + 0) / 2 = 0.5, and anomalous recall 0"},
      {result(0.0, 1.0), true, "'anomalous' to everything"},
      {result(0.9, 0.0), true, "anomalous recall 0 although (0.9 + 0) / 2 = 0.45"},
      {at_line, true, "balanced accuracy 0.55: at the line counts as chance"},
      {result(0.6, 0.6), false, "(0.6 + 0.6) / 2 = 0.6 > 0.55 and both recalls > 0"},
      {result(1.0, 0.2), false, "(1.0 + 0.2) / 2 = 0.6"},
      {result(0.0, 0.0), true, "no readable answer: both recalls 0"},
      {empty, false, "no items: not judged"},
  };
  for (const auto& c : cases) EXPECT_EQ(train::at_chance(c.v), c.chance) << c.why;
  // Validation without anomalous items (no synthetic anomalies): its recall 0 is no verdict.
  train::ValidationResult normals_only = result(0.8, 0.0, 10, 0);
  normals_only.balanced_accuracy = 0.8;  // validate() takes the one recall there is
  EXPECT_FALSE(train::at_chance(normals_only));
}

TEST(Validation, TiesGoToTheLaterCheckpoint) {
  EXPECT_TRUE(train::replaces_best(0.5, -1));   // the first validation is the best so far
  EXPECT_TRUE(train::replaces_best(0.7, 0.7));  // a tie: the later checkpoint
  EXPECT_TRUE(train::replaces_best(0.8, 0.7));
  EXPECT_FALSE(train::replaces_best(0.69, 0.7));
  // Over a run's validations 0.5, 0.7, 0.6, 0.7, 0.65 the best is the 4th (0.7, the later of two).
  const std::vector<double> run = {0.5, 0.7, 0.6, 0.7, 0.65};
  double best = -1;
  size_t at = 0;
  for (size_t i = 0; i < run.size(); ++i)
    if (train::replaces_best(run[i], best)) best = run[i], at = i;
  EXPECT_EQ(at, 3u);
}

// The chains of a validation, scored: verdicts, and whether each flagged anomaly's chain names the
// type it was taught (a family counts: "hole" for a taught "poke").
TEST(Validation, ScoresVerdictsAndTheTypeTheChainsName) {
  auto anomalous = [](const std::string& type) {
    return "<think>I compare it with normal carpet images. There is what looks like a " + type +
           ", so it is anomalous.</think><answer>anomalous: " + type + "</answer>";
  };
  const std::string normal =
      "<think>I compare it with normal carpet images. Nothing there seems defective, so it is "
      "normal.</think><answer>normal</answer>";
  const std::vector<train::ValidationChain> chains = {
      {"carpet", "crack", true, "crack", anomalous("crack")},    // flagged, the taught type
      {"carpet", "crack", true, "hole", anomalous("scratch")},   // flagged, another family
      {"carpet", "poke", true, "poke", anomalous("hole")},       // flagged, the taught type's family
      {"carpet", "stain", true, "", anomalous("stain")},         // flagged, no type taught: not counted
      {"carpet", "stain", true, "anomaly", anomalous("stain")},  // VisA's unnamed "anomaly": not counted
      {"carpet", "stain", true, "stain", normal},                // missed: not counted for the type
      {"carpet", "good", false, "", normal},
      {"carpet", "good", false, "", anomalous("crack")},  // a false alarm
      {"screw", "good", false, "", "no tags at all"},     // unreadable
  };
  const auto v = train::score_validation(chains, {"crack", "poke", "stain"});
  EXPECT_EQ(v.items, 9);
  EXPECT_EQ(v.anomalous_items, 6);
  EXPECT_EQ(v.normal_items, 3);
  EXPECT_DOUBLE_EQ(v.recall_anomalous, 5.0 / 6);
  EXPECT_DOUBLE_EQ(v.recall_normal, 1.0 / 3);
  EXPECT_DOUBLE_EQ(v.balanced_accuracy, (5.0 / 6 + 1.0 / 3) / 2);
  EXPECT_DOUBLE_EQ(v.format_rate, 8.0 / 9);
  EXPECT_EQ(v.typed_items, 3);
  EXPECT_DOUBLE_EQ(v.type_agreement, 2.0 / 3);
  EXPECT_DOUBLE_EQ(v.class_accuracy.at("good"), 1.0 / 3);
  EXPECT_DOUBLE_EQ(v.class_accuracy.at("stain"), 2.0 / 3);
  EXPECT_EQ(v.answers.at("carpet").anomalous_said_anomalous, 5);
  EXPECT_EQ(v.answers.at("screw").normal_said_normal + v.answers.at("screw").normal_said_anomalous, 0);
  EXPECT_EQ(train::score_validation({}, {}).items, 0);
}

// best.safetensors: the balanced accuracy plus 0.05 x the share of flagged anomalies whose chain
// names the type it was taught; a validation at chance by its balanced accuracy alone.
TEST(Validation, TheBestWeighsTheChainsTypeWithinAFewItems) {
  auto with = [](double bacc, double type, bool chance = false) {
    train::ValidationResult v = result(chance ? 0.0 : bacc, chance ? 1.0 : bacc, 36, 36);
    v.balanced_accuracy = chance ? 0.5 : bacc;
    v.type_agreement = type;
    return v;
  };
  EXPECT_DOUBLE_EQ(train::selection_score(with(0.9, 0.6)), 0.93);
  EXPECT_DOUBLE_EQ(train::selection_score(with(0.9, 0.0)), 0.9);
  EXPECT_DOUBLE_EQ(train::selection_score(with(0.5, 1.0, true)), 0.5);  // at chance: the type does not count
  // A run whose validations are 0.986 (naming the taught type for 30%), 0.972 (90%: one anomalous
  // item of 36 fewer, which moves the balanced accuracy by 0.014) and 0.944 (100%: three fewer):
  // the second is the best.
  const std::vector<train::ValidationResult> run = {with(0.986, 0.3), with(0.972, 0.9), with(0.944, 1.0)};
  double best = -1;
  size_t at = 0;
  for (size_t i = 0; i < run.size(); ++i)
    if (train::replaces_best(train::selection_score(run[i]), best)) best = train::selection_score(run[i]), at = i;
  EXPECT_EQ(at, 1u);
}

TEST(Validation, DescribesWhichAnswerEachCategoryGets) {
  train::ValidationResult v = result(0.5, 0.5, 4, 4);
  auto& bottle = v.answers["bottle"];
  bottle.normal_items = bottle.anomalous_items = 2;
  bottle.normal_said_normal = bottle.anomalous_said_normal = 2;  // 4 of 4 answered "normal"
  auto& cable = v.answers["cable"];
  cable.normal_items = cable.anomalous_items = 2;
  cable.normal_said_anomalous = cable.anomalous_said_anomalous = 2;  // 4 of 4 "anomalous"
  EXPECT_EQ(train::describe_answers(v),
            "answers 'normal' to 100% of bottle images, 'anomalous' to 100% of cable images");
  // Mixed: 1 of 4 normals and 3 of 4 anomalous items answered "anomalous" -> 25% and 75%.
  train::ValidationResult m = result(0.75, 0.75, 4, 4);
  auto& nut = m.answers["nut"];
  nut.normal_items = nut.anomalous_items = 4;
  nut.normal_said_anomalous = 1;
  nut.normal_said_normal = 3;
  nut.anomalous_said_anomalous = 3;
  nut.anomalous_said_normal = 1;
  EXPECT_EQ(train::describe_answers(m), "answers 'anomalous' to 25% of normal and 75% of anomalous nut images");
  // validation.jsonl carries the shares: 1/4 = 0.25 of normal nut items answered "anomalous".
  const auto j = train::to_json(m);
  EXPECT_DOUBLE_EQ(j["answered_anomalous"]["nut"]["normal"].get<double>(), 0.25);
  EXPECT_DOUBLE_EQ(j["answered_anomalous"]["nut"]["anomalous"].get<double>(), 0.75);
  EXPECT_FALSE(j["at_chance"].get<bool>());
}

TEST(PolicyInput, ModelSideIsTheSameFromTheFileOrFromTheWorkSide) {
  ModelConfig m;
  m.image_size = 32;
  m.reference = "knn";
  m.reference_fine_size = 64;
  cv::Mat raw(48, 72, CV_32FC3);  // non-square: stretched to a square
  cv::randu(raw, 0.0, 1.0);
  const cv::Mat work = model::model_side_image(raw, true, m);
  ASSERT_EQ(work.rows, 64);
  ASSERT_EQ(work.cols, 64);
  // TrainingSource preloads at W and reduces later; eval reduces the decoded file at once.
  const cv::Mat later = model::model_side_image(work, false, m), at_once = model::model_side_image(raw, false, m);
  ASSERT_EQ(at_once.rows, 32);
  EXPECT_EQ(cv::norm(later, at_once, cv::NORM_INF), 0.0);
  // An image at neither model side is refused, so no caller can skip model_side_image.
  EXPECT_THROW(model::policy_input(raw, "x", 0, m, nullptr), Error);
}

// The fine side follows the images down, never below image_size, and never up.
TEST(PolicyInput, TheFineSideIsNeverAboveTheImagesOwn) {
  ModelConfig m;
  m.image_size = 64;
  m.reference = "knn";
  m.reference_fine_size = 256;
  EXPECT_EQ(model::fitted_fine_size(m, 128), 128);  // the demo's images
  EXPECT_EQ(model::fitted_fine_size(m, 255), 255);
  EXPECT_EQ(model::fitted_fine_size(m, 256), 256);
  EXPECT_EQ(model::fitted_fine_size(m, 320), 256);  // a VisA-like 320 x 240 photograph
  EXPECT_EQ(model::fitted_fine_size(m, 48), 64);    // smaller than the model's side
  EXPECT_EQ(model::fitted_fine_size(m, 0), 256);    // nothing read
  m.reference = "none";
  EXPECT_EQ(model::fitted_fine_size(m, 128), 256);
  m.reference = "knn";
  m.reference_fine_size = 0;  // off stays off
  EXPECT_EQ(model::fitted_fine_size(m, 128), 0);
}

// For each format: the tensor eval makes from the JPG of a training image equals, bit for bit, the
// one training made from its preloaded image, for the bank training used (and for the validation
// normals, both banks). The VisA and folder layouts also compare the texture finely (kept at W).
TEST(PolicyInput, EvalMakesTheTensorTrainingMadeForEachFormat) {
  for (const std::string format : {"mvtec", "visa", "folder"}) {
    SCOPED_TRACE(format);
    TempDir dir;
    lriad::test::make_photo_tree(dir / "d", format);
    RunConfig c = input_config(format, dir / "d");
    const bool fine_textures = format != "mvtec";
    c.model.reference_fine_textures = fine_textures;
    c.model.reference_part_lighting = true;  // as every shipped config: the screw is relit before it is compared
    const train::TrainingSource source(c);
    // The part is kept at W; the texture at S (mvtec: both branches of model_side_image are
    // compared) or at W when textures are compared finely.
    ASSERT_TRUE(source.keeps_work_side("screw"));
    ASSERT_EQ(source.keeps_work_side("carpet"), fine_textures);
    const reference::NormalReference ref = train::build_normal_reference(source, c);
    ASSERT_TRUE(ref.fine("screw"));
    ASSERT_EQ(ref.fine("carpet"), fine_textures);
    // The 3:2 photographs' screw is posed unstretched (reference/pose.h); a texture needs no pose.
    EXPECT_NEAR(ref.aspect("screw"), 1.5, 1e-6);
    EXPECT_TRUE(ref.options().part_lighting);
    EXPECT_EQ(ref.aspect("carpet"), 1.0);
    ASSERT_TRUE(ref.region("carpet"));  // the texture's map joins the colour of regions (on by default)
    const model::InputRecord record = source.input_record();
    std::vector<train::TrainItem> items;
    for (uint64_t step = 0; step < 12; ++step)
      if (!source.draw(step, 0).anomalous) items.push_back(source.draw(step, 0));
    for (const auto& v : source.validation())
      if (!v.anomalous) items.push_back(v);
    std::set<std::string> categories;
    int both = 0;
    train::InputMaker training_inputs(c.model, &ref);  // the trainer's path
    for (const auto& it : items) {
      SCOPED_TRACE(it.source);
      reference::MapPart trained_part = reference::MapPart::Fine, evaluated_part = reference::MapPart::Patches;
      const auto trained = training_inputs(it, &trained_part);  // (4,32,32)
      ASSERT_EQ(trained.sizes().vec(), (std::vector<int64_t>{4, 32, 32}));
      const int bank = record.bank_of(it.source, 99);
      EXPECT_EQ(bank, it.reference_bank);  // eval finds the bank training used
      const cv::Mat decoded = data::read_image(it.source);
      ASSERT_NE(decoded.rows, decoded.cols);  // the file is not square
      const auto evaluated =
          model::decoded_policy_input(decoded, it.category, bank, c.model, &ref, &record, &evaluated_part);
      EXPECT_TRUE(torch::equal(trained, evaluated))
          << "max difference " << (trained - evaluated).abs().max().item<float>();
      EXPECT_EQ(int(trained_part), int(evaluated_part));  // the chain states the same part of the map
      trained_part = evaluated_part == reference::MapPart::Fine ? reference::MapPart::Region : reference::MapPart::Fine;
      EXPECT_EQ(int(training_inputs(it, &trained_part).size(0)), 4);  // again, from the cache: the same part
      EXPECT_EQ(int(trained_part), int(evaluated_part));
      // A pretrained PaliGemma's pixels come from the image at its model side (model::siglip_pixels):
      // eval's equals the one training drew, so its pixels do too.
      const cv::Mat side = model::decoded_model_side(decoded, it.category, c.model, &ref, &record);
      ASSERT_EQ(side.size(), it.image.size());
      EXPECT_EQ(cv::norm(side, it.image, cv::NORM_INF), 0.0);
      EXPECT_TRUE(torch::equal(model::siglip_pixels(side, 56), model::siglip_pixels(it.image, 56)));
      // The evidence facts read that image too (a line at the side it was kept at): the same facts.
      const double level = 0.5 * trained[3].max().item<double>();  // an area above it to read
      const auto f_train = model::input_facts(trained, level, trained_part, it.image);
      const auto f_eval = model::input_facts(evaluated, level, evaluated_part, side);
      EXPECT_EQ(text::looks_text(f_train), text::looks_text(f_eval));
      EXPECT_EQ(f_train.line_at_full, f_eval.line_at_full);
      // And where the part shows its background (NormalReference::absent), as training and eval ask it.
      const cv::Mat a_train = record.absent(&ref, it.image, it.category, it.reference_bank);
      const cv::Mat a_eval = record.absent(&ref, side, it.category, bank);
      ASSERT_EQ(a_train.empty(), it.category == "carpet");  // a part's mask; none for a texture
      if (!a_train.empty()) EXPECT_EQ(cv::norm(a_train, a_eval, cv::NORM_INF), 0.0);
      model::InputRecord none = record;
      none.reads_absence = false;
      EXPECT_TRUE(none.absent(&ref, side, it.category, bank).empty());  // a run trained before reads none
      // And the colours no normal image shows (NormalReference::colour_novelty), likewise.
      const cv::Mat c_train = record.colour(&ref, it.image, it.category, it.reference_bank);
      const cv::Mat c_eval = record.colour(&ref, side, it.category, bank);
      ASSERT_FALSE(c_train.empty());  // every category has a palette here
      EXPECT_EQ(cv::norm(c_train, c_eval, cv::NORM_INF), 0.0);
      none.reads_colour = false;
      EXPECT_TRUE(none.colour(&ref, side, it.category, bank).empty());
      const auto g_train = record.facts(trained, level, trained_part, it.image, a_train, c_train);
      const auto g_eval = record.facts(evaluated, level, evaluated_part, side, a_eval, c_eval);
      EXPECT_EQ(text::looks_text(g_train), text::looks_text(g_eval));
      EXPECT_EQ(g_train.new_colour, g_eval.new_colour);
      EXPECT_EQ(int(f_train.where), int(f_eval.where));
      categories.insert(it.category);
      both += it.reference_bank == reference::NormalReference::kBothBanks;
    }
    EXPECT_EQ(categories.size(), 2u);
    EXPECT_GT(both, 0);
  }
}

// The prompt is input too: training and eval both build it with policy_prompt from the tensor, so
// with model.prompt_evidence its chain opening states what that tensor's deviation channel shows,
// and without it the prompt is the plain instruction.
// policy_input.json says whether the run's chains state the part of the map that shows the area:
// a record written before they did (format version 1) says no, and eval then leaves the part out.
// Likewise whether the facts read lines at the side training kept the images at (version 3).
TEST(PolicyInput, TheRecordSaysWhetherTheChainsStateTheMapsPart) {
  TempDir dir;
  model::InputRecord r;
  r.work_side_categories = {"screw"};
  r.reference_banks["a.png"] = 1;
  EXPECT_TRUE(r.states_parts);  // what training writes now
  EXPECT_TRUE(r.reads_lines);
  r.save(dir / "new.json");
  const auto back = model::InputRecord::load(dir / "new.json");
  EXPECT_TRUE(back.states_parts);
  EXPECT_TRUE(back.reads_lines);
  EXPECT_EQ(back.bank_of("a.png", 0), 1);
  {
    std::ofstream old(dir / "old.json");
    old << R"({"format": "lriad-policy-input", "format_version": 1, "work_side_categories": [],)"
        << R"( "reference_banks": {"a.png": 0}})";
  }
  EXPECT_FALSE(model::InputRecord::load(dir / "old.json").states_parts);
  EXPECT_FALSE(model::InputRecord::load(dir / "old.json").reads_lines);
  {
    std::ofstream v2(dir / "v2.json");
    v2 << R"({"format": "lriad-policy-input", "format_version": 2, "work_side_categories": [],)"
       << R"( "reference_banks": {}, "states_parts": true})";
  }
  const auto two = model::InputRecord::load(dir / "v2.json");
  EXPECT_TRUE(two.states_parts);
  EXPECT_FALSE(two.reads_lines);  // written before lines were read: eval reads none for it
  {
    std::ofstream v3(dir / "v3.json");
    v3 << R"({"format": "lriad-policy-input", "format_version": 3, "work_side_categories": [],)"
       << R"( "reference_banks": {}, "states_parts": true, "reads_lines": false})";
  }
  EXPECT_FALSE(model::InputRecord::load(dir / "v3.json").reads_lines);  // the value, not the version
  // Version 4: whether the facts read the absent pixels (NormalReference::absent); none before.
  EXPECT_TRUE(r.reads_absence);
  EXPECT_TRUE(back.reads_absence);
  EXPECT_FALSE(model::InputRecord::load(dir / "v3.json").reads_absence);
  EXPECT_FALSE(model::InputRecord::unrecorded().reads_absence);
  // A record that does not read them gives facts without them, and no mask to read.
  auto input = torch::full({4, 30, 30}, 0.5f);  // (4,S,S): grey, the map 0.2 ...
  input[3].fill_(0.2f);
  input[3].narrow(0, 4, 4).narrow(1, 4, 4).fill_(2.0f);  // ... and an area at 2.0 at the upper left
  const cv::Mat absent(30, 30, CV_8UC1, cv::Scalar(255));
  EXPECT_TRUE(back.facts(input, 1.0, reference::MapPart::Patches, cv::Mat(), absent).absent);
  model::InputRecord old = back;
  old.reads_absence = false;
  EXPECT_FALSE(old.facts(input, 1.0, reference::MapPart::Patches, cv::Mat(), absent).absent);
  // Version 5: whether the facts read the colours no normal image shows; none before.
  EXPECT_TRUE(r.reads_colour);
  EXPECT_TRUE(back.reads_colour);
  {
    std::ofstream v4(dir / "v4.json");
    v4 << R"({"format": "lriad-policy-input", "format_version": 4, "work_side_categories": [],)"
       << R"( "reference_banks": {}, "states_parts": true, "reads_lines": true, "reads_absence": true})";
  }
  const auto four = model::InputRecord::load(dir / "v4.json");
  EXPECT_TRUE(four.reads_absence);
  EXPECT_FALSE(four.reads_colour);
  EXPECT_FALSE(model::InputRecord::unrecorded().reads_colour);
  const cv::Mat colour(30, 30, CV_32FC1, cv::Scalar(5.0));
  EXPECT_TRUE(
      back.facts(input, 1.0, reference::MapPart::Region, cv::Mat(), cv::Mat(), colour).new_colour.value_or(false));
  EXPECT_FALSE(four.facts(input, 1.0, reference::MapPart::Region, cv::Mat(), cv::Mat(), colour).new_colour.has_value());
}

TEST(PolicyInput, PromptOpensTheChainWithTheInputsEvidenceOnlyWhenAsked) {
  ModelConfig m;
  m.reference = "knn";
  auto input = torch::full({4, 30, 30}, 0.5f);  // (4,S,S): grey RGB, flat map at 0.2
  input[3].fill_(0.2f);
  input[3].narrow(0, 2, 4).narrow(1, 22, 4).fill_(1.5f);  // a compact mark at the upper right
  const std::string plain = text::build_prompt("carpet");
  EXPECT_EQ(model::policy_prompt(input, "carpet", m, 0.5), plain);  // off by default
  EXPECT_EQ(model::chain_opening(input, "carpet", m, 0.5), "");
  m.prompt_evidence = true;
  const std::string p = model::policy_prompt(input, "carpet", m, 0.5);
  EXPECT_EQ(p.compare(0, plain.size(), plain), 0) << p;
  EXPECT_NE(
      p.find("<think>The image shows a carpet sample. I compare it with normal carpet images: the largest deviation "
             "is a small, compact mark, at the upper right, 3.0 times the normal level."),
      std::string::npos)
      << p;
  const auto facts = model::input_facts(input, 0.5);
  EXPECT_EQ(p, plain + text::grounded_opening("carpet", facts));
  input[3].narrow(0, 2, 4).narrow(1, 22, 4).fill_(0.3f);  // below the level now
  EXPECT_NE(model::chain_opening(input, "carpet", m, 0.5).find("0.6 times the normal level."), std::string::npos);
  // A thin dark line across the middle row: the opening says so (each clause measured from the input).
  input[3].fill_(0.2f);
  input[3].narrow(0, 15, 1).narrow(1, 12, 14).fill_(1.5f);               // (1,14): the map's line, 3.0x the level
  input.narrow(0, 0, 3).narrow(1, 15, 1).narrow(2, 12, 14).fill_(0.1f);  // darker than the grey around it
  const std::string line = model::chain_opening(input, "carpet", m, 0.5);
  EXPECT_NE(
      line.find("the largest deviation is a thin, long mark darker than around it, at the center and right, 3.0 times "
                "the normal level."),
      std::string::npos)
      << line;
  EXPECT_THROW(model::policy_prompt(input, "carpet", m, 0.0), Error);  // no level to state a ratio to
}

// Training's inputs (train/input_maker.h): a normal image's input is made once; a synthetic anomaly
// of the texture is updated from its normal image's patch distances and equals the whole map up to
// float rounding (at S, and at W when textures are compared finely); one of the part (compared in a
// pose, finely) is made whole, bit for bit.
class TrainingInputs : public ::testing::TestWithParam<bool> {};

TEST_P(TrainingInputs, UpdateTextureAnomaliesAndMakePartsWhole) {
  TempDir dir;
  lriad::test::make_photo_tree(dir / "d", "mvtec");
  RunConfig c = input_config("mvtec", dir / "d");
  c.data.anomaly_ratio = 0.5;
  c.model.reference_fine_textures = GetParam();
  const train::TrainingSource source(c);
  const reference::NormalReference ref = train::build_normal_reference(source, c);
  train::InputMaker inputs(c.model, &ref);
  int texture = 0, part = 0, normal = 0;
  for (uint64_t step = 0; step < 40 && (texture < 3 || part < 3 || normal < 2); ++step) {
    const auto it = source.draw(step, 0);
    SCOPED_TRACE(it.source);
    const auto made = inputs(it);
    const auto whole = model::policy_input(it.image, it.category, it.reference_bank, c.model, &ref);
    if (!it.anomalous) {
      EXPECT_TRUE(torch::equal(made, whole));
      EXPECT_TRUE(torch::equal(inputs(it), made));  // the second time from the cache
      ++normal;
    } else if (it.category == "carpet") {
      ASSERT_FALSE(it.base.empty());
      EXPECT_LE((made - whole).abs().max().item<double>(), 1e-4 * std::max(1.0, whole.abs().max().item<double>()));
      ++texture;
    } else {
      EXPECT_TRUE(torch::equal(made, whole));
      ++part;
    }
  }
  ASSERT_GE(texture, 3);
  ASSERT_GE(part, 3);
  ASSERT_GE(normal, 2);
  const auto n = inputs.counts();
  EXPECT_EQ(n.updated, size_t(texture));
  EXPECT_EQ(n.cached + n.whole, size_t(part + 2 * normal));  // a normal image drawn again is cached at once
  EXPECT_GE(n.cached, size_t(normal));
}

INSTANTIATE_TEST_SUITE_P(PolicyInput, TrainingInputs, ::testing::Values(false, true),
                         [](const ::testing::TestParamInfo<bool>& i) {
                           return i.param ? "FineTextures" : "TexturesAtS";
                         });
