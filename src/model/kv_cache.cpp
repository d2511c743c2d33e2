// KV cache allocation and row expansion for prefix-shared group sampling.
#include "lriad/model/kv_cache.h"

namespace lriad::model {

KVCache::KVCache(int64_t layers, int64_t rows, int64_t kv_heads, int64_t capacity, int64_t head_dim,
                 const torch::TensorOptions& options) {
  for (int64_t l = 0; l < layers; ++l) {
    k.push_back(torch::zeros({rows, kv_heads, capacity, head_dim}, options));
    v.push_back(torch::zeros({rows, kv_heads, capacity, head_dim}, options));
  }
  valid = torch::zeros({rows, capacity}, options.dtype(torch::kBool));
  next_pos = torch::zeros({rows}, options.dtype(torch::kInt64));
}

void KVCache::repeat_rows(int64_t times) {
  if (times == 1) return;
  for (auto& t : k) t = t.repeat_interleave(times, 0);
  for (auto& t : v) t = t.repeat_interleave(times, 0);
  valid = valid.repeat_interleave(times, 0);
  next_pos = next_pos.repeat_interleave(times, 0);
}

}  // namespace lriad::model
