// core/rng.h — a small, seedable, serialisable random generator (xoshiro128+ seeded by splitmix64).
//
// Every random choice in attnlab (init, dropout, shuffling, synthetic data) draws from an Rng
// that the caller owns, so a run is reproducible from its seed and its state can be saved.
//   Rng rng(42);  float u = rng.uniform();  float g = rng.normal();  uint32_t k = rng.below(10);
#pragma once
#include <array>
#include <cmath>
#include <cstdint>

namespace attn {

class Rng {
 public:
  explicit Rng(uint64_t seed = 0) { reseed(seed); }
  void reseed(uint64_t seed) {
    uint64_t z = seed;
    for (auto& s : state) {
      z += 0x9E3779B97F4A7C15ull;
      uint64_t x = z;
      x = (x ^ (x >> 30)) * 0xBF58476D1CE4E5B9ull;
      x = (x ^ (x >> 27)) * 0x94D049BB133111EBull;
      s = static_cast<uint32_t>((x ^ (x >> 31)) >> 7) | 1u;
    }
  }
  uint32_t next() {  // xoshiro128+
    const uint32_t result = state[0] + state[3];
    const uint32_t t = state[1] << 9;
    state[2] ^= state[0];
    state[3] ^= state[1];
    state[1] ^= state[2];
    state[0] ^= state[3];
    state[2] ^= t;
    state[3] = (state[3] << 11) | (state[3] >> 21);
    return result;
  }
  float uniform() { return (next() >> 8) * (1.0f / 16777216.0f); }  // [0, 1)
  uint32_t below(uint32_t n) { return static_cast<uint32_t>((uint64_t(next()) * n) >> 32); }
  float normal() {  // Box–Muller
    float u1 = uniform(), u2 = uniform();
    if (u1 < 1e-7f) u1 = 1e-7f;
    return std::sqrt(-2.0f * std::log(u1)) * std::cos(6.2831853f * u2);
  }
  std::array<uint32_t, 4> state{};
};

}  // namespace attn
