// Evidence the text tests state (test_text.cpp, test_tokenizer.cpp).
#pragma once
#include "lriad/text/evidence.h"

namespace lriad::test {

// The evidence of a thin dark line from the upper left into the top cell, 3.4 times the normal level.
inline text::EvidenceFacts thin_dark_line() {
  text::EvidenceFacts f;
  f.where = text::Region::UpperLeft;
  f.also = text::Region::Top;
  f.ratio = 3.4;
  f.above = true;
  f.extent = text::EvidenceFacts::Extent::Thin;
  f.tone = text::EvidenceFacts::Tone::Darker;
  return f;
}

}  // namespace lriad::test
