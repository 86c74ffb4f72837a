// autograd/gradcheck.h — finite-difference checks of every differentiable op.
//
// One table (gradcheck_table()) lists every op in kOps with sample inputs; run_gradcheck()
// compares the tape's gradients against central differences of L = Σ out ⊙ W (W fixed and
// random), with the loss accumulated in double. vjp_check() is the cheap identity
// ⟨v, J u⟩ = ⟨Jᵀ v, u⟩ for inputs too large to difference element by element.
//
//   for (auto& c : gradcheck_table()) { auto r = run_gradcheck(c); if (!r.pass) ... r.worst }
#pragma once
#include <functional>
#include <string>
#include <vector>

#include <attnlab/autograd/ops.h>

namespace attn {

struct GradcheckCase {
  std::string op;     // the kOps name this case covers
  std::string label;  // which variation ("trans_b", "masked", "Q used twice", ...)
  std::vector<Shape> inputs;
  std::function<Var(const std::vector<Var>&)> build;  // must be deterministic (reseed any Rng inside)
};

struct GradcheckResult {
  std::string op, label;
  double max_abs_err = 0, max_rel_err = 0;
  bool pass = false;
  std::string worst;  // "input 1 element 7: analytic 0.123 numeric 0.125"
};

const std::vector<GradcheckCase>& gradcheck_table();
GradcheckResult run_gradcheck(const GradcheckCase& c, uint64_t seed = 1);
// The directional identity on the case's inputs: give it a case with large shapes.
GradcheckResult vjp_check(const GradcheckCase& c, uint64_t seed = 1);

// Tolerances of run_gradcheck: pass when |analytic − numeric| <= kAbsTol + kRelTol * |numeric|.
inline constexpr double kGradAbsTol = 5e-4, kGradRelTol = 5e-3, kGradStep = 5e-3;

}  // namespace attn
