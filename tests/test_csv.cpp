// CSV reader: quoting, line endings, BOM, header lookup, malformed input.
#include <gtest/gtest.h>

#include "lriad/io/csv.h"
#include "lriad/io/error.h"

using lriad::io::parse_csv;

TEST(Csv, ParsesQuotedFieldsAndCrlf) {
  // A quoted comma, an escaped quote, CRLF endings and a trailing blank line.
  auto t = parse_csv("a,b,c\r\n1,\"x,y\",\"say \"\"hi\"\"\"\r\n2,,z\r\n\r\n", "t.csv");
  ASSERT_EQ(t.header.size(), 3u);
  ASSERT_EQ(t.rows.size(), 2u);
  EXPECT_EQ(t.rows[0][1], "x,y");
  EXPECT_EQ(t.rows[0][2], "say \"hi\"");
  EXPECT_EQ(t.rows[1][1], "");
  EXPECT_EQ(t.rows[1][2], "z");
}

TEST(Csv, StripsBomAndFindsColumnsByNameCaseInsensitive) {
  auto t = parse_csv("\xEF\xBB\xBFObject, Split\npcb1,train\n", "t.csv");
  EXPECT_EQ(t.column("object"), 0u);
  EXPECT_EQ(t.column("split"), 1u);
  EXPECT_TRUE(t.has_column("SPLIT"));
  EXPECT_FALSE(t.has_column("label"));
}

TEST(Csv, MissingColumnNamesFileAndListsColumns) {
  auto t = parse_csv("object,split\npcb1,train\n", "/data/split.csv");
  try {
    t.column("label");
    FAIL() << "expected an error";
  } catch (const lriad::Error& e) {
    const std::string msg = e.what();
    EXPECT_NE(msg.find("/data/split.csv"), std::string::npos) << msg;
    EXPECT_NE(msg.find("'label'"), std::string::npos) << msg;
    EXPECT_NE(msg.find("object, split"), std::string::npos) << msg;
  }
}

TEST(Csv, RejectsRaggedRowsAndUnterminatedQuotes) {
  // Row 3 (line 3) has one field too many.
  try {
    parse_csv("a,b\n1,2\n1,2,3\n", "r.csv");
    FAIL();
  } catch (const lriad::Error& e) {
    EXPECT_NE(std::string(e.what()).find("r.csv:3"), std::string::npos) << e.what();
  }
  EXPECT_THROW(parse_csv("a,b\n\"1,2\n", "q.csv"), lriad::Error);
  EXPECT_THROW(parse_csv("", "empty.csv"), lriad::Error);
}

TEST(Csv, FieldsWrittenWithCsvFieldParseBack) {
  const std::vector<std::string> values = {"plain", "a,b", "say \"hi\"", "two\nlines"};
  std::string text = "v\n";
  for (const auto& v : values) text += lriad::io::csv_field(v) + "\n";
  EXPECT_EQ(lriad::io::csv_field("plain"), "plain");
  EXPECT_EQ(lriad::io::csv_field("a,b"), "\"a,b\"");
  const auto t = lriad::io::parse_csv(text, "mem");
  ASSERT_EQ(t.rows.size(), values.size());
  for (size_t i = 0; i < values.size(); ++i) EXPECT_EQ(t.rows[i][0], values[i]);
}
