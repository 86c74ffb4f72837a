// tests/decisions.h — two numerical paths compared token for token where their choices are decided.
//
// Two paths that compute the same scores in another order (the key/value cache or a full
// recomputation, a sentence alone or in a batch, another CPU's kernels) agree only to the last
// bits. A choice between two candidates whose scores are closer than the paths' difference may
// go either way, on any CPU; a choice with a wider margin may not. So the tokens are compared
// up to the first choice the reference path made within that bound (the decoders record each
// choice's margin: DecodeOptions::margins, GenerateOptions::margins), and counted: a test
// requires that at least 80% of the tokens were compared, so the rule cannot make it vacuous.
//
//   DecidedTokens d;
//   d.greedy(a, b, margins_of_a, delta);   ...   d.require_enough();
#pragma once
#include <catch2/catch.hpp>

#include <algorithm>
#include <cstdint>
#include <vector>

struct DecidedTokens {
  int64_t compared = 0, total = 0;

  // A greedy or sampled sequence: each choice is one step; step t's margin is decided when it
  // exceeds `bound` (the choices' scores are single log-probabilities or a draw's distance, so
  // the bound does not grow along the sequence). Every token before the first undecided step
  // must be equal; a fully decided pair must be equal, length included (the end is a choice).
  template <typename Margin>
  void greedy(const std::vector<int32_t>& a, const std::vector<int32_t>& b, const std::vector<Margin>& margins_a,
              double bound) {
    const size_t steps = a.size() + 1;  // each token, then the end
    size_t decided = 0;
    while (decided < margins_a.size() && double(margins_a[decided]) > bound) decided++;
    total += int64_t(std::max(a.size(), b.size()) + 1);
    if (decided >= steps) {
      REQUIRE(a == b);
      compared += int64_t(steps);
      return;
    }
    for (size_t t = 0; t < decided; t++) {
      INFO("token " << t << " (its choice decided by a margin of " << margins_a[t] << " > " << bound << ")");
      REQUIRE(t < b.size());
      REQUIRE(a[t] == b[t]);
    }
    compared += int64_t(decided);
  }

  // A beam search: a choice at step t ranks scores that are sums of t + 1 log-probabilities, so
  // two paths differing by at most `delta` in each log-probability differ by at most 2(t + 1)δ in
  // a gap. A near-tie at any step may change the whole result, so the sentence is compared
  // whole, or not at all.
  void beam(const std::vector<int32_t>& a, const std::vector<int32_t>& b, const std::vector<float>& margins_a,
            double delta) {
    total += int64_t(std::max(a.size(), b.size()) + 1);
    for (size_t t = 0; t < margins_a.size(); t++)
      if (double(margins_a[t]) <= 2 * double(t + 1) * delta) return;
    REQUIRE(a == b);
    compared += int64_t(a.size() + 1);
  }

  void require_enough() const {
    INFO(compared << " of " << total << " tokens were decided by a margin wider than the paths' difference");
    REQUIRE(total > 0);
    REQUIRE(compared * 5 >= total * 4);  // at least 80%
  }
};
