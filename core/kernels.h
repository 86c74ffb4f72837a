// core/kernels.h — the numerical kernels: plain functions on contiguous row-major float*.
//
// llm.c conventions: outputs first, then inputs, then sizes. No autograd knowledge here;
// autograd/ wraps these. BLAS (cblas_sgemm, cblas_ssyrk) is called from this file only.
// Shape letters used throughout attnlab:
//   B batch, H heads, T / Tq / Tk sequence lengths, C channels (d_model), D head dim,
//   V vocabulary, M,N,K the usual matrix-product sizes, R rows of a 2-D view.
//
//   // out(M,N) = a(M,K) @ b(N,K)^T
//   attn::matmul_forward(out, a, b, M, N, K, /*trans_a=*/false, /*trans_b=*/true);
#pragma once
#include <cstdint>
#include <cstring>
#include <vector>

#include <attnlab/core/rng.h>

namespace attn {

// ---- exp -------------------------------------------------------------------------------
// e^x without a libm call, so the softmax and cross-entropy loops vectorise (Cephes' expf):
// x = k ln2 + r with |r| <= ln2/2, e^r from a degree-6 polynomial, 2^k built in the exponent
// bits. Relative error below 3e-7 against std::exp on [-87, 88] (tests/test_core.cpp), 2e-5 on
// (88.38, 88.72] where k is held at 127; below -87.3 (e^x a denormal) it returns 0, -inf gives
// 0, x > 88.72 and +inf give inf, NaN stays NaN. Softmax and cross-entropy, whose x is never
// above 0, call exp_nonpositive (below): the same bits, fewer steps.

// The step both share: e^xc = 2^k e^r, for k = floor(xc/ln2 + 1/2) given as a float and as the
// integer ki (-126 <= ki <= 127, so 2^k is a normal float).
inline float exp_from_k(float xc, float k, int32_t ki) {
  const float r = xc - k * 0.693359375f + k * 2.12194440e-4f;  // ln2 in two parts (Cody–Waite)
  float p = 1.9875691500e-4f;
  p = p * r + 1.3981999507e-3f;
  p = p * r + 8.3334519073e-3f;
  p = p * r + 4.1665795894e-2f;
  p = p * r + 1.6666665459e-1f;
  p = p * r + 5.0000001201e-1f;
  p = p * r * r + r + 1.f;
  const int32_t bits = (ki + 127) << 23;
  float scale;
  std::memcpy(&scale, &bits, sizeof scale);
  return p * scale;
}

inline float exp_fast(float x) {
  const float lo = -87.33654475f, hi = 88.72283905f;
  // Below lo the polynomial is evaluated at 0, not at lo, and its result discarded: at lo,
  // p * 2^-126 can round to a denormal, and each denormal result costs the CPU a microcode
  // assist (~100 cycles). A causal mask's -inf scores all took that path: softmax ran at
  // 5 ns per score.
  float xc = x < lo ? 0.f : x;
  xc = xc > hi ? hi : xc;
  const float k = __builtin_floorf(xc * 1.44269504088896341f + 0.5f);  // one instruction from SSE4.1 on
  // 2^k must stay a normal float: k <= 127. Clamped as an integer: written on the float
  // (k > 127.f ? 127.f : k), GCC evaluated the whole polynomial twice, for k and for 127, and
  // blended: 54 AVX-512 instructions per 16 values against 40 (AVX2: 59 against 41), with the
  // same bits for all 2^32 inputs.
  int32_t ki = static_cast<int32_t>(k);
  ki = ki > 127 ? 127 : ki;
  float y = exp_from_k(xc, static_cast<float>(ki), ki);
  y = x < lo ? 0.f : y;
  y = x > hi ? __builtin_inff() : y;
  return x != x ? x : y;
}

// exp_fast for x <= 0 and -inf: the same bits, without the work only x > 0 needs (the clamp at
// 88.72, k held at 127, the inf and NaN selects); a NaN gives a NaN (exp_fast returns x itself).
// Softmax and cross-entropy exponentiate x - max(x), never above 0: 6 of exp_fast's ~40 vector
// instructions per 16 values are saved where the exponentials bound the loop. tests/test_core.cpp
// compares the two over 36 M non-positive floats, every one near a branch edge among them.
inline float exp_nonpositive(float x) {
  const float lo = -87.33654475f;
  const float xc = x < lo ? 0.f : x;  // as exp_fast: no denormal is ever formed
  const float k = __builtin_floorf(xc * 1.44269504088896341f + 0.5f);  // in [-126, 0]
  const float y = exp_from_k(xc, k, static_cast<int32_t>(k));  // NaN for NaN x: r is NaN
  return x < lo ? 0.f : y;
}

// Which compiled version of the vectorised loops below this CPU runs: "AVX-512", "AVX2",
// "baseline x86-64", or "as compiled (no multiversioning)" on builds without it.
const char* vector_isa();

// ---- matrix products -------------------------------------------------------------------
// out(M,N) = alpha * op(a) @ op(b) + beta * out. op(a) is (M,K): a is stored (M,K), or (K,M)
// when trans_a. op(b) is (K,N): b is stored (K,N), or (N,K) when trans_b.
void matmul_forward(float* out, const float* a, const float* b, int M, int N, int K, bool trans_a,
                    bool trans_b, float alpha = 1.f, float beta = 0.f);
// A linear layer's forward: out (R,O) = x (R,I) w (I,O) + bias, bias (O) added to every row (or
// none if null). The same sgemm calls as matmul_forward with beta = 1 onto the bias rows.
void linear_forward(float* out, const float* x, const float* w, const float* bias, int R, int O, int I);
// A linear layer's weight gradient: dw (I,O) = xᵀ g + beta dw, x (R,I), g (R,O); the same sgemm
// calls as matmul_forward(dw, x, g, I, O, R, true, false, 1, beta), so the same bits. x is an
// activation written a whole forward before, often out of the caches by now; when the product
// runs on one thread, x is first read once in order, one load per 64-byte line, which made the
// product alone, its operands from memory, up to 17% faster at d_model 64 and 128 on Zen 4
// (bench/cold_operand.cpp, docs/benchmarks.md "A cold operand read in order first"); on an Intel
// Xeon VM it gained nothing (0.97-1.11x, "Intel VM 3 at 92cce2a"), a cost too small to choose by
// CPU for. Split over threads, or with an x over 4 MiB, the pass did not pay: it is skipped.
void linear_weight_grad(float* dw, const float* x, const float* g, int R, int I, int O, float beta);
// Reads p[0, n) once, in order, one load per 64-byte line (the pass linear_weight_grad makes;
// bench/cold_operand.cpp times it before other products, and uses it to evict the caches).
void read_in_order(const float* p, int64_t n);
// The same product with plain loops: the reference the BLAS path is tested against.
void matmul_reference(float* out, const float* a, const float* b, int M, int N, int K, bool trans_a,
                      bool trans_b, float alpha = 1.f, float beta = 0.f);
// `batch` independent products with contiguous operands, one matrix after another.
void matmul_batched(float* out, const float* a, const float* b, int batch, int M, int N, int K, bool trans_a,
                    bool trans_b, float alpha = 1.f, float beta = 0.f);
// Where each matrix of a batch lies in memory: matrix i of the batch starts at offset(i) and its
// rows are ld floats apart. Attention keeps H heads per sequence; head (b, h) is matrix b·H + h.
//   contiguous(rows, cols): one matrix after another, (batch, rows, cols), e.g. scores (B,H,Tq,Tk)
//   side_by_side(H, T, D):  the heads' columns next to each other in each row, (B, T, H·D): the
//                           projections' own layout, read and written without splitting heads
struct HeadLayout {
  int heads;               // matrices per sequence
  int64_t seq_stride;      // floats from one sequence's first matrix to the next's
  int64_t head_stride;     // floats from one head's first element to the next head's
  int ld;                  // floats from one row to the next
  int64_t offset(int i) const { return (i / heads) * seq_stride + (i % heads) * head_stride; }
  static HeadLayout contiguous(int rows, int cols) { return {1, int64_t(rows) * cols, 0, cols}; }
  static HeadLayout side_by_side(int H, int T, int D) { return {H, int64_t(T) * H * D, D, H * D}; }
};
// matmul_batched over matrices laid out as given: out_i = alpha op(a_i) op(b_i) + beta out_i.
void matmul_heads(float* out, HeadLayout lo, const float* a, HeadLayout la, const float* b, HeadLayout lb, int batch,
                  int M, int N, int K, bool trans_a, bool trans_b, float alpha = 1.f, float beta = 0.f);
// Symmetric product out(N,N) = alpha * a a^T + beta * out, a (N,K), through cblas_ssyrk
// (half the flops of sgemm); both triangles of out are written.
void gram_forward(float* out, const float* a, int N, int K, float alpha, float beta = 0.f);
void gram_batched(float* out, const float* a, int batch, int N, int K, float alpha, float beta = 0.f);
// dq (batch,N,K) (+)= alpha (G + Gᵀ) Q for each batch entry: the gradient of S = alpha Q Qᵀ.
void gram_backward_batched(float* dq, const float* g, const float* q, int batch, int N, int K, float alpha,
                           bool accumulate);
// The same two over matrices laid out as given (a, dq and q may be heads side by side).
void gram_heads(float* out, HeadLayout lo, const float* a, HeadLayout la, int batch, int N, int K, float alpha,
                float beta = 0.f);
void gram_backward_heads(float* dq, HeadLayout ldq, const float* g, HeadLayout lg, const float* q, HeadLayout lq,
                         int batch, int N, int K, float alpha, bool accumulate);

// ---- elementwise -----------------------------------------------------------------------
// Backward kernels take `accumulate`: true adds into the gradient buffer (`d += ...`, a later
// consumer of the same variable), false assigns (`d = ...`, the first consumer, writing into
// fresh memory that is never read). Both are written out as separate loops, `(+)=` below.
void add_forward(float* out, const float* a, const float* b, int64_t n);
void mul_forward(float* out, const float* a, const float* b, int64_t n);
void axpy(float* y, float alpha, const float* x, int64_t n);  // y += alpha * x
void scale_forward(float* out, const float* inp, float alpha, int64_t n);  // out = alpha * inp
void scale_backward(float* dinp, const float* dout, float alpha, int64_t n, bool accumulate);  // dinp (+)= alpha * dout
// dbias += sum over rows, each column in row order; dbias must not overlap dout.
void bias_backward(float* dbias, const float* dout, int64_t R, int C);
void relu_forward(float* out, const float* inp, int64_t n);
void relu_backward(float* dinp, const float* dout, const float* out, int64_t n, bool accumulate);
void gelu_forward(float* out, const float* inp, int64_t n);  // tanh approximation
void gelu_backward(float* dinp, const float* dout, const float* inp, int64_t n, bool accumulate);

// ---- softmax ---------------------------------------------------------------------------
// Attention softmax over the last axis of (B,H,Tq,Tk): out = softmax(scale * inp + mask),
// mask (B,Tq,Tk) additive (0 or -inf), broadcast over heads; mask may be null. A row whose
// entries are all masked becomes all zeros (it attends to nothing) instead of NaN.
void softmax_forward(float* out, const float* inp, const float* mask, int B, int H, int Tq, int Tk,
                     float scale);
// dinp (+)= scale * out * (dout - <dout, out>_row), rows = B*H*Tq.
void softmax_backward(float* dinp, const float* dout, const float* out, int64_t rows, int Tk, float scale,
                      bool accumulate);
void log_softmax_forward(float* out, const float* inp, int64_t R, int C);  // out may be inp itself
// lse[r] = log Σ_c exp(inp[r, c]): log_softmax_forward's out is inp − lse, to the bit.
void logsumexp_rows(float* lse, const float* inp, int64_t R, int C);
void log_softmax_backward(float* dinp, const float* dout, const float* out, int64_t R, int C, bool accumulate);

// ---- attention over a decoder's cache (nn/kv_cache.h) ----------------------------------
// One query per row r and head h over T cached positions: position t of row r is the D floats
// at kv + ((t * slots + slot[t][r]) * H + h) * D.
//   cache_scores:  s[(r H + h) T + t] = q[r, h] · key(t, r, h)
//   cache_context: o[r, h] = Σ_t p[(r H + h) T + t] value(t, r, h)   (o overwritten; p = 0 skipped)
void cache_scores(float* s, const float* q, const float* keys, const int32_t* const* slot, int64_t R, int64_t H,
                  int64_t T, int64_t D, int64_t slots);
void cache_context(float* o, const float* p, const float* values, const int32_t* const* slot, int64_t R, int64_t H,
                   int64_t T, int64_t D, int64_t slots);

// ---- layer norm (over the last axis C) -------------------------------------------------
void layernorm_forward(float* out, float* mean, float* rstd, const float* inp, const float* weight,
                       const float* bias, int64_t R, int C, float eps = 1e-5f);
// dinp (+)= ... (`accumulate` applies to dinp); dweight and dbias are always added to.
void layernorm_backward(float* dinp, float* dweight, float* dbias, const float* dout, const float* inp,
                        const float* weight, const float* mean, const float* rstd, int64_t R, int C,
                        bool accumulate);

// ---- embeddings ------------------------------------------------------------------------
void embedding_forward(float* out, const int32_t* ids, const float* table, int64_t N, int C);
void embedding_backward(float* dtable, const float* dout, const int32_t* ids, int64_t N, int C);

// ---- loss ------------------------------------------------------------------------------
// Label-smoothed cross-entropy over R rows of V logits. Target distribution
// q = (1 - eps) onehot(y) + eps / V. Rows whose target is ignore_id contribute nothing.
// Writes probs (R,V) and returns the summed loss and the counted rows.
double cross_entropy_forward(float* probs, int64_t* count, const float* logits, const int32_t* targets,
                             int64_t R, int V, float smoothing, int ignore_id);
// dlogits (+)= scale * (probs - q) for counted rows (ignored rows: += 0, or = 0 when assigning).
void cross_entropy_backward(float* dlogits, const float* probs, const int32_t* targets, int64_t R, int V,
                            float smoothing, int ignore_id, float scale, bool accumulate);
// The two above in one pass, in place: z holds logits and becomes scale * (probs - q), row by
// row while each row is in cache; the same bits as forward then backward (assigning).
double cross_entropy_forward_backward(float* z, int64_t* count, const int32_t* targets, int64_t R, int V,
                                      float smoothing, int ignore_id, float scale);

// ---- dropout ---------------------------------------------------------------------------
// mask[i] = 0 or 1/(1-p); out = inp * mask.
// Dropout's mask is a pure function of (seed, element index): element i is dropped when a
// hash of (seed, i) falls below p. Counter-based, so the loop vectorises, and the backward
// recomputes the mask from the seed instead of storing it. p must be in [0, 1): the ops check
// it (autograd's dropout, dropout_add, relu_dropout); these kernels do not.
//   out = inp * mask,  mask_i = 0 (dropped) or 1/(1-p)
bool dropout_dropped(uint64_t seed, int64_t i, float p);
void dropout_forward(float* out, const float* inp, int64_t n, float p, uint64_t seed);
void dropout_backward(float* dinp, const float* dout, int64_t n, float p, uint64_t seed,
                      bool accumulate);  // dinp (+)= dout * mask
// x + dropout(y): a residual branch's dropout and the residual add in one pass, without the
// dropout's output; the same bits as dropout_forward then add_forward. The gradient with
// respect to y is dropout_backward's of the output's gradient; with respect to x, the gradient.
void dropout_add_forward(float* out, const float* x, const float* y, int64_t n, float p, uint64_t seed);
// dropout(relu(inp)) in one pass, the feed-forward's hidden layer in training: the same bits as
// relu_forward then dropout_forward, without the ReLU's output. The backward takes the op's
// output, as relu_backward does: out > 0 exactly where inp > 0 and the element was kept (the
// factor 1/(1−p) ≥ 1 cannot round a positive input to zero; NaN and −0 give 0), so the mask is
// not drawn again.
void relu_dropout_forward(float* out, const float* inp, int64_t n, float p, uint64_t seed);
void relu_dropout_backward(float* dinp, const float* dout, const float* out, int64_t n, float p,
                           bool accumulate);  // dinp (+)= dout * 1/(1−p) * [out > 0]

// ---- layout ----------------------------------------------------------------------------
// out(A,C,B,D) = inp(A,B,C,D): swaps axes 1 and 2 (splitting / merging attention heads).
void permute0213(float* out, const float* inp, int A, int B, int C, int D);
void permute0213_add(float* out, const float* inp, int A, int B, int C, int D);  // out += permuted inp

// ---- optimizer -------------------------------------------------------------------------
// One Adam step over n parameters, weight decay added to the update (nn/optim.cpp):
//   m = b1 m + (1 - b1) g;  v = b2 v + (1 - b2) g^2;  w -= lr (m/bc1 / (sqrt(v/bc2) + eps) + wd w)
// with the bias corrections bc1 = 1 - b1^t, bc2 = 1 - b2^t, and g = grad_scale · the gradient:
// clipping's factor taken here, the same float product a pass scaling the gradient in place
// would have stored (so the same bits), without that pass.
void adam_update(float* w, float* m, float* v, const float* g, int64_t n, float lr, float beta1, float beta2,
                 float eps, float weight_decay, float bc1, float bc2, float grad_scale = 1.f);
// adam_update on each of many tensors, in one parallel region: each tensor cut into pieces of
// at most 65,536 parameters and the pieces shared among the threads, so that a narrow model's
// tensors (each below the threading threshold, where adam_update alone runs on one thread) are
// updated in parallel too. A parameter's update reads that parameter alone, and the pieces start
// at fixed multiples of 65,536 whatever the thread count: the same bits as adam_update tensor by
// tensor (tests/test_core.cpp). The tensors must not overlap (two pieces of one memory would
// race).
struct AdamTensor {
  float *w, *m, *v;
  const float* g;
  int64_t n;
};
void adam_update_tensors(const std::vector<AdamTensor>& tensors, float lr, float beta1, float beta2, float eps,
                         float weight_decay, float bc1, float bc2, float grad_scale = 1.f);
// Σ x_k² in double: the squared norm global-norm clipping takes. Partial sums over fixed blocks,
// added in order, so the result is the same at any thread count.
double sum_squares(const float* x, int64_t n);

}  // namespace attn
