// Key/value cache for incremental decoding, preallocated for prefix + completion.
// Shapes: B = rows, Hkv = key/value heads, Tmax = capacity in tokens, hd = head width.
#pragma once
#include <vector>

#include <torch/torch.h>

namespace lriad::model {

struct KVCache {
  std::vector<torch::Tensor> k, v;  // per layer (B,Hkv,Tmax,hd)
  torch::Tensor valid;              // (B,Tmax) bool: which columns hold real tokens
  torch::Tensor next_pos;           // (B) int64: rotary position of each row's next token
  int64_t length = 0;               // columns written so far (same for every row)

  KVCache() = default;
  KVCache(int64_t layers, int64_t rows, int64_t kv_heads, int64_t capacity, int64_t head_dim,
          const torch::TensorOptions& options);
  int64_t capacity() const { return valid.size(1); }
  int64_t rows() const { return valid.size(0); }
  // Repeats every row `times` times in place (row r -> rows r*times .. r*times+times-1), so
  // one prefix encoding serves a group of completions.
  void repeat_rows(int64_t times);
};

}  // namespace lriad::model
