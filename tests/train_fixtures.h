// A small run configuration the training tests share (test_train.cpp, test_grpo.cpp).
#pragma once
#include <string>

#include "lriad/io/config.h"

namespace lriad::test {

// A model of a few thousand parameters at 32 px, for runs of seconds on a CPU.
inline RunConfig small_run(const std::string& root) {
  RunConfig c;
  c.data.format = "mvtec";
  c.data.root = root;
  c.model.image_size = 32;
  c.model.patch_size = 8;
  c.model.vision_dim = 32;
  c.model.vision_layers = 1;
  c.model.vision_heads = 2;
  c.model.dim = 48;
  c.model.layers = 1;
  c.model.heads = 4;
  c.model.kv_heads = 2;
  c.model.mlp_hidden = 96;
  c.model.max_seq_len = 256;
  c.tokenizer.vocab_size = 320;
  c.train.val_size = 8;
  return c;
}

}  // namespace lriad::test
