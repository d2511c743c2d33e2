// Where lriad finds what ships with it, from any working directory: the running executable's
// directory, the shipped configs (installed under <prefix>/share/lriad/configs by `cmake --install`
// or the Debian package; in a build tree, the configs/ of the source tree it was built from) and a
// --config argument that is either a file path or a shipped config's name ("tiny").
#pragma once
#include <string>
#include <vector>

namespace lriad::io {

// The directory of the running executable (/proc/self/exe); "" when it cannot be read.
std::string executable_dir();

// Where shipped configs are looked for, in order, those that exist: <exe>/../share/lriad/configs
// (an install), then the source tree's configs/ the binary was built from.
std::vector<std::string> shipped_config_dirs();

// The shipped configs' names ("base", "small", "tiny": *.json without the extension), sorted, of
// the first directory of shipped_config_dirs() that holds any; empty when none is found.
std::vector<std::string> shipped_config_names();

// The file a --config argument means: the argument itself when it is an existing file; else, for a
// name ("tiny" or "tiny.json"), NAME, NAME.json and configs/NAME.json in the current directory,
// then NAME.json in shipped_config_dirs(). Throws lriad::Error saying what was tried and listing
// the shipped configs.
std::string find_config(const std::string& name_or_path);

}  // namespace lriad::io
