// Portable randomness and hashing, shared by the demo generator, the training-time synthetic
// anomalies and the training draws. std distributions are implementation-defined, so every draw is
// derived here from the raw 64-bit output of mt19937_64: same seed, same numbers on every standard
// library.
#pragma once
#include <cstdint>
#include <random>
#include <string>

namespace lriad::util {

uint64_t mix64(uint64_t x);                                  // splitmix64 finaliser
uint64_t hash_string(const std::string& s);                  // FNV-1a, 64 bit (std::hash differs by library)
uint64_t hash_string(const std::string& s, uint64_t basis);  // FNV-1a from another offset basis
// The basis the training draws (train/source.cpp) and the folder format's split (data/folder.cpp)
// have hashed names from since their first version: FNV's offset basis with its last digit lost.
// Kept, so that a seed still holds out, draws and splits what it did.
inline constexpr uint64_t kDrawHashBasis = 1469598103934665603ull;
uint64_t hash_combine(uint64_t a, uint64_t b);
double hash_unit(uint64_t seed, int64_t i, int64_t j = 0);  // [0,1) from integer coordinates
inline double unit_from_bits(uint64_t bits) { return static_cast<double>(bits >> 11) * 0x1.0p-53; }  // [0,1)

class Rng {
 public:
  explicit Rng(uint64_t seed) : engine_(mix64(seed)) {}
  uint64_t next() { return engine_(); }
  double uniform() { return unit_from_bits(engine_()); }  // [0,1)
  double uniform(double lo, double hi) { return lo + (hi - lo) * uniform(); }
  int uniform_int(int lo, int hi);  // inclusive
  double normal(double mean = 0.0, double sd = 1.0);
  bool chance(double p) { return uniform() < p; }
  // An independent stream, so that one consumer's draws never shift another's.
  Rng fork(uint64_t salt) { return Rng(hash_combine(engine_(), salt)); }

 private:
  std::mt19937_64 engine_;
};

}  // namespace lriad::util
