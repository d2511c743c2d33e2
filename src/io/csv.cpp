// RFC 4180 CSV parsing for dataset split files (VisA's split_csv/*.csv).
#include "lriad/io/csv.h"

#include <algorithm>
#include <fstream>
#include <sstream>

#include "lriad/io/error.h"

namespace lriad::io {
namespace {

std::string normalized(std::string s) {
  s.erase(0, s.find_first_not_of(" \t"));
  s.erase(s.find_last_not_of(" \t") + 1);
  std::transform(s.begin(), s.end(), s.begin(), [](unsigned char c) { return std::tolower(c); });
  return s;
}

// Splits `text` into records of fields; `lines[i]` is the 1-based line where record i starts.
std::vector<std::vector<std::string>> split_records(std::string_view text, const std::string& source,
                                                    std::vector<size_t>& lines) {
  std::vector<std::vector<std::string>> records;
  std::vector<std::string> fields;
  std::string field;
  bool in_quotes = false, field_started = false;
  size_t line = 1, record_line = 1, quote_line = 0;
  auto end_field = [&] {
    fields.push_back(std::move(field));
    field.clear();
    field_started = false;
  };
  auto end_record = [&] {
    end_field();
    bool blank = fields.size() == 1 && fields[0].empty();
    if (!blank) {
      records.push_back(std::move(fields));
      lines.push_back(record_line);
    }
    fields.clear();
  };
  for (size_t i = 0; i < text.size(); ++i) {
    char c = text[i];
    if (in_quotes) {
      if (c == '"' && i + 1 < text.size() && text[i + 1] == '"') {
        field += '"';
        ++i;
      } else if (c == '"')
        in_quotes = false;
      else {
        if (c == '\n') ++line;
        field += c;
      }
    } else if (c == '"' && !field_started) {
      in_quotes = true;
      field_started = true;
      quote_line = line;
    } else if (c == ',') {
      end_field();
    } else if (c == '\n' || c == '\r') {
      if (c == '\r' && i + 1 < text.size() && text[i + 1] == '\n') ++i;
      end_record();
      ++line;
      record_line = line;
    } else {
      field += c;
      field_started = true;
    }
  }
  if (in_quotes)
    throw Error(source + ":" + std::to_string(quote_line) + ": unterminated quoted field",
                "close the quote or remove it");
  if (!field.empty() || !fields.empty()) end_record();
  return records;
}

}  // namespace

CsvTable parse_csv(std::string_view text, const std::string& source) {
  if (text.size() >= 3 && text.substr(0, 3) == "\xEF\xBB\xBF") text.remove_prefix(3);
  std::vector<size_t> lines;
  auto records = split_records(text, source, lines);
  if (records.empty()) throw Error(source + ": empty CSV file", "expected a header row");
  CsvTable table;
  table.source = source;
  table.header = std::move(records[0]);
  for (size_t r = 1; r < records.size(); ++r) {
    if (records[r].size() != table.header.size())
      throw Error(source + ":" + std::to_string(lines[r]) + ": row has " + std::to_string(records[r].size()) +
                      " fields, header has " + std::to_string(table.header.size()),
                  "check for unquoted commas or a truncated file");
    table.rows.push_back(std::move(records[r]));
  }
  return table;
}

CsvTable read_csv(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw Error("cannot open CSV file " + path, "check that the file exists and is readable");
  std::stringstream buf;
  buf << in.rdbuf();
  return parse_csv(buf.str(), path);
}

bool CsvTable::has_column(const std::string& name) const {
  const std::string want = normalized(name);
  return std::any_of(header.begin(), header.end(), [&](const std::string& h) { return normalized(h) == want; });
}

size_t CsvTable::column(const std::string& name) const {
  const std::string want = normalized(name);
  for (size_t i = 0; i < header.size(); ++i)
    if (normalized(header[i]) == want) return i;
  std::string found;
  for (const auto& h : header) found += (found.empty() ? "" : ", ") + h;
  throw Error(source + ": missing column '" + name + "' (columns found: " + found + ")",
              "the file must have a header row naming this column");
}

std::string csv_field(const std::string& value) {
  if (value.find_first_of(",\"\r\n") == std::string::npos) return value;
  std::string out = "\"";
  for (char c : value) out += c == '"' ? std::string("\"\"") : std::string(1, c);
  return out + "\"";
}

}  // namespace lriad::io
