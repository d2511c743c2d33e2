// util/: the portable hashes every seed's draws are made from.
#include <gtest/gtest.h>

#include "lriad/util/rng.h"

// util/rng.h's hashes are part of every seed's draws: golden values (Python's FNV-1a by hand).
TEST(Util, HashesAreTheFnvOnesAndTheDrawsBasisIsKept) {
  EXPECT_EQ(lriad::util::hash_string(""), 14695981039346656037ull);  // FNV-1a's offset basis
  EXPECT_EQ(lriad::util::hash_string("wood"), 8105941626046089128ull);
  // The training draws' and the folder split's basis since their first version (its last digit lost).
  EXPECT_EQ(lriad::util::hash_string("wood", lriad::util::kDrawHashBasis), 13781777165950672290ull);
}
