// What the corpus builders of src/data/ share: a small random generator whose sequence is the same
// on every platform (the standard distributions are not), and seeds for independent streams, so
// that each draw depends only on (seed, what is drawn) and a corpus is the same however its work is
// split among threads or processes.
#pragma once

#include <cstddef>
#include <cstdint>
#include <initializer_list>

namespace attend::data::detail {

// SplitMix64 (Steele, Lea and Flood 2014).
class SplitMix64 {
 public:
  explicit SplitMix64(uint64_t seed) : state_(seed) {}
  uint64_t Next() {
    uint64_t z = (state_ += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
  }
  // Uniform in [0, n), n > 0 (multiply-shift: no modulo bias worth the name at these sizes).
  size_t Below(size_t n) {
    return static_cast<size_t>((static_cast<unsigned __int128>(Next()) * n) >> 64);
  }
  // Uniform in [lo, hi].
  int64_t Between(int64_t lo, int64_t hi) {
    return lo + static_cast<int64_t>(Below(static_cast<size_t>(hi - lo + 1)));
  }
  // Uniform in [0, 1).
  double Uniform() { return static_cast<double>(Next() >> 11) * 0x1.0p-53; }

 private:
  uint64_t state_;
};

// The seed of the stream named by `keys` under `seed`.
inline uint64_t StreamSeed(uint64_t seed, std::initializer_list<uint64_t> keys) {
  uint64_t h = SplitMix64(seed).Next();
  for (uint64_t k : keys) h = SplitMix64(h ^ k).Next();
  return h;
}

}  // namespace attend::data::detail
