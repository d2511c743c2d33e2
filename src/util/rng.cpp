#include "lriad/util/rng.h"

#include <cmath>

namespace lriad::util {

uint64_t mix64(uint64_t x) {
  x += 0x9E3779B97F4A7C15ull;
  x = (x ^ (x >> 30)) * 0xBF58476D1CE4E5B9ull;
  x = (x ^ (x >> 27)) * 0x94D049BB133111EBull;
  return x ^ (x >> 31);
}

uint64_t hash_string(const std::string& s, uint64_t basis) {
  uint64_t h = basis;
  for (unsigned char c : s) {
    h ^= c;
    h *= 0x100000001B3ull;
  }
  return h;
}

uint64_t hash_string(const std::string& s) { return hash_string(s, 0xCBF29CE484222325ull); }

uint64_t hash_combine(uint64_t a, uint64_t b) { return mix64(a ^ (mix64(b) + (a << 6) + (a >> 2))); }

double hash_unit(uint64_t seed, int64_t i, int64_t j) {
  return unit_from_bits(hash_combine(hash_combine(seed, static_cast<uint64_t>(i)), static_cast<uint64_t>(j)));
}

int Rng::uniform_int(int lo, int hi) {
  if (hi <= lo) return lo;
  const uint64_t span = static_cast<uint64_t>(hi - lo) + 1;
  return lo + static_cast<int>(static_cast<uint64_t>(uniform() * static_cast<double>(span)) % span);
}

double Rng::normal(double mean, double sd) {
  // Box-Muller without caching the second value: one call, two raw draws, always.
  const double u1 = 1.0 - uniform();  // (0,1]
  const double u2 = uniform();
  return mean + sd * std::sqrt(-2.0 * std::log(u1)) * std::cos(2.0 * M_PI * u2);
}

}  // namespace lriad::util
