// Filesystem helpers shared by the dataset readers and run directories.
#pragma once
#include <string>
#include <vector>

namespace lriad::io {

// Sorted names (not paths) of the sub-directories of `dir`; hidden entries are skipped.
std::vector<std::string> list_subdirs(const std::string& dir);

bool is_dir(const std::string& path);
bool is_file(const std::string& path);
bool is_nonempty_dir(const std::string& path);

// Throws lriad::Error naming `path` with `what` ("dataset root") if it is not a directory.
void require_dir(const std::string& path, const std::string& what, const std::string& hint);

// The whole file's bytes; throws lriad::Error naming `path` when it cannot be read.
std::string read_file(const std::string& path);

// Writes `content` to `path` through a temporary file and a rename (no half-written files).
void write_file_atomic(const std::string& path, const std::string& content);

}  // namespace lriad::io
