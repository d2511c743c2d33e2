// Synthetic dataset in VisA's published layout: <object>/Data/Images/{Normal,Anomaly}/NNNN.JPG,
// <object>/Data/Masks/Anomaly/NNNN.png and split_csv/1cls.csv (object,split,label,image,mask).
#include <cmath>
#include <filesystem>
#include <set>

#include <opencv2/imgproc.hpp>

#include "lriad/data/sample.h"
#include "lriad/io/csv.h"
#include "lriad/io/error.h"
#include "lriad/io/fs.h"
#include "internal.h"

namespace fs = std::filesystem;

namespace lriad::demo {
namespace {

const std::vector<std::string> kVisaColumns = {"object", "split", "label", "image", "mask"};

std::string stem4(int i) {
  char buf[16];
  std::snprintf(buf, sizeof buf, "%04d", i);
  return buf;
}

void make_dir(const fs::path& dir) {
  std::error_code ec;
  fs::create_directories(dir, ec);
  if (ec) throw Error("synth: cannot create " + dir.string() + ": " + ec.message(), "check the path and permissions");
}

// Numbers one object's images as VisA does: one sequence for Normal, one for Anomaly.
struct ObjectWriter {
  const SynthOptions& o;
  const std::string& object;
  std::vector<std::vector<std::string>>& rows;
  int normal = 0, anomaly = 0;

  // `n` images of one MVTec folder (split/defect); the seeds are the MVTec layout's, so each
  // VisA image is the wider frame of its MVTec twin.
  void add(const std::string& split, const std::string& defect, int n) {
    const bool good = defect == data::kGoodType;
    for (int i = 0; i < n; ++i) {
      const uint64_t seed = sample_seed(o.seed, object, split + "/" + defect, i);
      const RenderedSample s = render_sample(object, defect, visa_canvas(o.size), seed);
      cv::Mat image = s.image;
      if (image.channels() == 1) cv::cvtColor(image, image, cv::COLOR_GRAY2BGR);  // VisA is colour
      const std::string name = stem4(good ? normal++ : anomaly++);
      const std::string rel = object + "/Data/Images/" + (good ? "Normal/" : "Anomaly/") + name + ".JPG";
      write_image((fs::path(o.out) / rel).string(), image);
      std::string mask_rel;
      if (!good) {
        mask_rel = object + "/Data/Masks/Anomaly/" + name + ".png";
        write_image((fs::path(o.out) / mask_rel).string(), s.mask);
      }
      rows.push_back({object, split, good ? "normal" : "anomaly", rel, mask_rel});
    }
  }
};

}  // namespace

cv::Size visa_canvas(int size) { return {static_cast<int>(std::lround(size * 4.0 / 3.0)), size}; }

void write_visa_object(const SynthOptions& o, const SynthCategoryInfo& c, const SynthSplitCounts& n,
                       std::vector<std::vector<std::string>>& csv_rows) {
  const fs::path data = fs::path(o.out) / c.name / "Data";
  for (const char* sub : {"Images/Normal", "Images/Anomaly", "Masks/Anomaly"}) make_dir(data / sub);
  ObjectWriter w{o, c.name, csv_rows};
  w.add("train", data::kGoodType, n.train_good);
  w.add("test", data::kGoodType, n.test_good);
  for (size_t t = 0; t < c.defect_types.size(); ++t) w.add("test", c.defect_types[t], n.defects[t]);
}

void write_visa_csv(const std::string& root, const std::vector<SynthCategoryInfo>& written,
                    const std::vector<std::vector<std::string>>& rows) {
  const fs::path dir = fs::path(root) / "split_csv";
  const std::string path = (dir / "1cls.csv").string();
  make_dir(dir);
  std::set<std::string> mine;
  for (const auto& c : written) mine.insert(c.name);
  std::vector<std::vector<std::string>> all;
  if (io::is_file(path)) {  // an earlier run's other objects stay listed
    const io::CsvTable old = io::read_csv(path);
    std::vector<size_t> cols;
    for (const auto& name : kVisaColumns) cols.push_back(old.column(name));
    for (const auto& r : old.rows) {
      if (mine.count(r[cols[0]])) continue;
      std::vector<std::string> kept;
      for (size_t k : cols) kept.push_back(r[k]);
      all.push_back(std::move(kept));
    }
  }
  all.insert(all.end(), rows.begin(), rows.end());
  std::string text;
  for (size_t k = 0; k < kVisaColumns.size(); ++k) text += (k ? "," : "") + kVisaColumns[k];
  text += "\n";
  for (const auto& r : all) {
    for (size_t k = 0; k < r.size(); ++k) text += (k ? "," : "") + io::csv_field(r[k]);
    text += "\n";
  }
  io::write_file_atomic(path, text);
}

}  // namespace lriad::demo
