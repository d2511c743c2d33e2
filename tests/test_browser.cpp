// report.html in a real browser (Debian's headless Chromium): the DOM holds the expected
// elements and the screenshot shows the ROC curve and the image cards. Label "browser";
// skipped where no Chromium is installed (set LRIAD_CHROMIUM to its path to choose one).
#include <gtest/gtest.h>

#include <cstdlib>
#include <regex>

#include <opencv2/imgcodecs.hpp>

#include "fixtures.h"
#include "lriad/eval/report.h"
#include "lriad/eval/summary.h"

using namespace lriad::eval;
using lriad::test::run_command;
using lriad::test::TempDir;

namespace {

std::string find_chromium() {
  if (const char* env = std::getenv("LRIAD_CHROMIUM")) return env;
  for (const char* name : {"chromium", "chromium-headless-shell", "chromium-browser", "google-chrome"})
    if (run_command(std::string("command -v ") + name + " >/dev/null 2>&1").code == 0) return name;
  return "";
}

size_t count(const std::string& text, const std::string& what) {
  size_t n = 0;
  for (size_t at = text.find(what); at != std::string::npos; at = text.find(what, at + 1)) ++n;
  return n;
}

}  // namespace

TEST(Browser, ReportRendersInHeadlessChromium) {
  const std::string chromium = find_chromium();
  if (chromium.empty()) GTEST_SKIP() << "no chromium on PATH (apt install chromium)";
  TempDir dir;
  std::vector<Prediction> ps;
  for (int i = 0; i < 6; ++i) {
    Prediction p;
    p.image = dir / ("img" + std::to_string(i) + ".png");
    lriad::test::write_png(p.image, 48, 48, 3, 40 * i + 20);
    p.category = i < 3 ? "alpha" : "beta";
    p.label = i % 2;
    p.pred = i % 3 == 0 ? 1 - p.label : p.label;  // two errors: one false positive, one false negative
    p.parsed = true;
    p.score = 0.15 * i + 0.05;
    p.defect_type = p.label ? "crack" : "good";
    p.completion = "<think>I see a part, so it is " + std::string(p.pred ? "anomalous" : "normal") +
                   ".</think><answer>" + (p.pred ? "anomalous: crack" : "normal") + "</answer>";
    p.well_formed = true;
    if (p.label) {
      p.mask = dir / ("mask" + std::to_string(i) + ".png");
      lriad::test::write_mask(*p.mask, 48, 48);
    }
    ps.push_back(p);
  }
  auto m = summarize(ps);
  m["run"] = "runs/browser";
  m["dataset"] = "generated";
  m["split"] = "test";
  write_outputs(dir.path(), m, ps);
  const std::string flags = " --headless --no-sandbox --disable-gpu --no-first-run --window-size=1200,1400 ";
  const std::string url = "file://" + dir / "report.html";

  auto r = run_command(chromium + flags + "--dump-dom " + url + " 2>/dev/null");
  ASSERT_EQ(r.code, 0) << r.out;
  const std::string& dom = r.out;
  for (const char* id : {"<table id=\"summary\"", "<table id=\"per-category\"", "<table id=\"confusion\"",
                         "<svg id=\"roc\"", "<div id=\"gallery\"", "class=\"roc-curve\""})
    EXPECT_NE(dom.find(id), std::string::npos) << id;
  EXPECT_EQ(count(dom, "<div class=\"card "), 6u);
  EXPECT_EQ(count(dom, "<img src=\"data:image/jpeg;base64,"), 6u);
  EXPECT_LT(dom.find("card fn"), dom.find("card tp"));  // errors first

  const std::string shot = dir / "shot.png";
  r = run_command(chromium + flags + "--screenshot=" + shot + " " + url + " 2>&1");
  ASSERT_EQ(r.code, 0) << r.out;
  const cv::Mat png = cv::imread(shot, cv::IMREAD_COLOR);
  ASSERT_FALSE(png.empty()) << r.out;
  EXPECT_EQ(png.cols, 1200);
  // The ROC curve's colour (#c0392b) is on screen: the SVG was drawn.
  int red = 0;
  for (int y = 0; y < png.rows; ++y)
    for (int x = 0; x < png.cols; ++x) {
      const auto& px = png.at<cv::Vec3b>(y, x);  // BGR
      red += std::abs(px[2] - 0xc0) < 24 && std::abs(px[1] - 0x39) < 24 && std::abs(px[0] - 0x2b) < 24;
    }
  EXPECT_GT(red, 100);
}
