// Filesystem helpers: sorted listings, existence checks, atomic writes.
#include "lriad/io/fs.h"

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "lriad/io/error.h"

namespace fs = std::filesystem;

namespace lriad::io {

std::string read_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw Error("cannot read " + path, "check the path and its permissions");
  std::ostringstream s;
  s << in.rdbuf();
  return s.str();
}

std::vector<std::string> list_subdirs(const std::string& dir) {
  std::vector<std::string> out;
  std::error_code ec;
  for (const auto& e : fs::directory_iterator(dir, ec)) {
    const std::string name = e.path().filename().string();
    if (!name.empty() && name[0] != '.' && e.is_directory(ec)) out.push_back(name);
  }
  std::sort(out.begin(), out.end());
  return out;
}

bool is_dir(const std::string& path) {
  std::error_code ec;
  return fs::is_directory(path, ec);
}

bool is_file(const std::string& path) {
  std::error_code ec;
  return fs::is_regular_file(path, ec);
}

bool is_nonempty_dir(const std::string& path) {
  std::error_code ec;
  return fs::is_directory(path, ec) && fs::directory_iterator(path, ec) != fs::directory_iterator();
}

void require_dir(const std::string& path, const std::string& what, const std::string& hint) {
  if (path.empty()) throw Error(what + " is not set", hint);
  std::error_code ec;
  if (!fs::exists(path, ec)) throw Error(what + " does not exist: " + path, hint);
  if (!fs::is_directory(path, ec)) throw Error(what + " is not a directory: " + path, hint);
}

void write_file_atomic(const std::string& path, const std::string& content) {
  const std::string tmp = path + ".tmp";
  {
    std::ofstream out(tmp, std::ios::binary | std::ios::trunc);
    if (!out) throw Error("cannot write " + tmp, "check that the directory exists and is writable");
    out.write(content.data(), std::streamsize(content.size()));
    out.flush();
    if (!out) throw Error("failed writing " + tmp, "is the disk full?");
  }
  std::error_code ec;
  fs::rename(tmp, path, ec);
  if (ec) throw Error("cannot rename " + tmp + " to " + path + ": " + ec.message());
}

}  // namespace lriad::io
