// Minimal RFC 4180 CSV reader (quoted fields, CRLF, UTF-8 BOM) for dataset split files.
#pragma once
#include <string>
#include <string_view>
#include <vector>

namespace lriad::io {

struct CsvTable {
  std::string source;  // file name, for error messages
  std::vector<std::string> header;
  std::vector<std::vector<std::string>> rows;  // every row has header.size() fields

  // Index of the column named `name` (case-insensitive, trimmed); throws lriad::Error
  // naming the file and listing the columns found.
  size_t column(const std::string& name) const;
  bool has_column(const std::string& name) const;
};

// Parses `text`; `source` names it in errors. Throws on an unterminated quote or a row
// whose field count differs from the header's (naming the line).
CsvTable parse_csv(std::string_view text, const std::string& source);
CsvTable read_csv(const std::string& path);

// One field for writing: quoted (with "" for ") when it holds a comma, quote or newline.
std::string csv_field(const std::string& value);

}  // namespace lriad::io
