// Shipped files found from any working directory (see install.h).
#include "lriad/io/install.h"

#include <algorithm>
#include <filesystem>
#include <system_error>

#include "lriad/io/error.h"

namespace fs = std::filesystem;

namespace lriad::io {
namespace {

// The configs/ of the source tree this binary was built from (CMake sets it for this file only).
#ifndef LRIAD_SOURCE_CONFIGS
#define LRIAD_SOURCE_CONFIGS ""
#endif

bool is_file(const fs::path& p) {
  std::error_code ec;
  return fs::is_regular_file(p, ec);
}

std::string joined(const std::vector<std::string>& items) {
  std::string out;
  for (const auto& s : items) out += (out.empty() ? "" : ", ") + s;
  return out;
}

}  // namespace

std::string executable_dir() {
  std::error_code ec;
  const fs::path exe = fs::read_symlink("/proc/self/exe", ec);
  return ec ? std::string() : exe.parent_path().string();
}

std::vector<std::string> shipped_config_dirs() {
  std::vector<std::string> dirs;
  std::error_code ec;
  auto add = [&](const fs::path& p) {
    if (p.empty() || !fs::is_directory(p, ec)) return;
    const std::string d = fs::weakly_canonical(p, ec).string();
    if (std::find(dirs.begin(), dirs.end(), d) == dirs.end()) dirs.push_back(d);
  };
  if (const std::string exe = executable_dir(); !exe.empty()) add(fs::path(exe) / ".." / "share" / "lriad" / "configs");
  add(fs::path(LRIAD_SOURCE_CONFIGS));
  return dirs;
}

std::vector<std::string> shipped_config_names() {
  for (const auto& dir : shipped_config_dirs()) {
    std::vector<std::string> names;
    std::error_code ec;
    for (const auto& e : fs::directory_iterator(dir, ec))
      if (e.path().extension() == ".json" && is_file(e.path())) names.push_back(e.path().stem().string());
    if (names.empty()) continue;
    std::sort(names.begin(), names.end());
    return names;
  }
  return {};
}

std::string find_config(const std::string& name_or_path) {
  if (is_file(name_or_path)) return name_or_path;
  const fs::path given(name_or_path);
  std::vector<fs::path> tried;
  // A bare name (no directory part): the current directory's NAME.json and configs/NAME.json, then
  // the shipped configs. A path with a directory is only ever that path.
  if (!given.has_parent_path() && !name_or_path.empty()) {
    const std::string file = given.extension() == ".json" ? name_or_path : name_or_path + ".json";
    tried = {fs::path(file), fs::path("configs") / file};
    for (const auto& dir : shipped_config_dirs()) tried.push_back(fs::path(dir) / file);
    for (const auto& p : tried)
      if (is_file(p)) return p.string();
  }
  const auto names = shipped_config_names();
  std::string looked = name_or_path;
  for (const auto& p : tried) looked += ", " + p.string();
  throw Error("cannot find config '" + name_or_path + "' (looked for " + looked + ")",
              names.empty() ? "give the path of a config file (the shipped ones are in the source tree's configs/)"
                            : "give a config file's path or a shipped config's name: " + joined(names));
}

}  // namespace lriad::io
