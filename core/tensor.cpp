// core/tensor.cpp — Tensor storage, reshape, and the numpy-like printer.
#include <attnlab/core/tensor.h>

#include <attnlab/core/kernels.h>

#include <algorithm>
#include <cassert>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <limits>
#include <new>
#include <stdexcept>
#if defined(__GLIBC__)
#include <malloc.h>
#endif

namespace attn {

std::string shape_str(const Shape& s) {
  std::string out = "(";
  for (size_t i = 0; i < s.size(); i++) out += (i ? ", " : "") + std::to_string(s[i]);
  if (s.size() == 1) out += ",";
  return out + ")";
}

int64_t shape_numel(const Shape& s) {
  int64_t n = 1;
  for (int64_t d : s) n *= d;
  return n;
}

// A training step allocates and frees the same few hundred activation and gradient buffers
// every step. glibc serves large blocks with fresh mmap()s and trims freed memory back to the
// OS, so each step would page-fault all of its activations in again (measured: ~15% of a
// step's CPU time in the kernel). Keeping freed memory in the heap makes the second step's
// buffers come from the first step's memory; peak RSS is unchanged (it is the high-water mark
// either way). Other C libraries keep their defaults; ATTNLAB_MALLOC_DEFAULTS=1 keeps glibc's.
// It changes the whole process's allocator, so only a program that asks gets it
// (attn::init_runtime calls it; the attnlab command does).
void keep_freed_memory() {
#if defined(__GLIBC__)
  if (!std::getenv("ATTNLAB_MALLOC_DEFAULTS")) {
    mallopt(M_MMAP_THRESHOLD, 1 << 30);
    mallopt(M_TRIM_THRESHOLD, 1 << 30);
  }
#endif
}

Storage::Storage(int64_t n) : size(n) {
  // aligned_alloc needs a size that is a multiple of the alignment; allocate at least one line.
  const size_t bytes = std::max<size_t>(64, (static_cast<size_t>(n) * sizeof(float) + 63) / 64 * 64);
  data = static_cast<float*>(std::aligned_alloc(64, bytes));
  if (!data) throw std::bad_alloc();
}

Storage::~Storage() { std::free(data); }

static void check_shape(const Shape& shape) {
  if (shape.size() > 4) throw std::invalid_argument("tensor rank must be 0..4, got " + shape_str(shape));
  for (int64_t d : shape)
    if (d < 0) throw std::invalid_argument("negative dimension in shape " + shape_str(shape));
}

Tensor::Tensor(const Shape& shape) : shape_(shape), numel_(shape_numel(shape)) {
  check_shape(shape);
  storage_ = std::make_shared<Storage>(numel_);
  fill(0.f);
}

static bool g_poison_empty = false;

void Tensor::poison_empty(bool on) { g_poison_empty = on; }

Tensor Tensor::empty(const Shape& shape) {
  check_shape(shape);
  Tensor t;
  t.shape_ = shape;
  t.numel_ = shape_numel(shape);
  t.storage_ = std::make_shared<Storage>(t.numel_);
  if (g_poison_empty) t.fill(std::numeric_limits<float>::quiet_NaN());
  return t;
}

Tensor Tensor::full(const Shape& shape, float value) {
  Tensor t(shape);
  t.fill(value);
  return t;
}

Tensor Tensor::from(const Shape& shape, std::vector<float> values) {
  if (static_cast<int64_t>(values.size()) != shape_numel(shape))
    throw std::invalid_argument(fmt::format("Tensor::from: {} values do not fit shape {}", values.size(),
                                            shape_str(shape)));
  Tensor t = empty(shape);
  std::copy(values.begin(), values.end(), t.data());
  return t;
}

int64_t Tensor::dim(int d) const {
  if (d < 0) d += rank();
  assert(d >= 0 && d < rank());
  return shape_[d];
}

static int64_t flat_index(const Shape& shape, std::initializer_list<int64_t> idx) {
#ifdef ATTNLAB_BOUNDS_CHECK
  if (idx.size() != shape.size())
    throw std::out_of_range(fmt::format("Tensor::at: {} indices for shape {}", idx.size(), shape_str(shape)));
#endif
  int64_t flat = 0;
  size_t d = 0;
  for (int64_t i : idx) {
#ifdef ATTNLAB_BOUNDS_CHECK
    if (i < 0 || i >= shape[d])
      throw std::out_of_range(fmt::format("Tensor::at: index {} out of range for dim {} of {}", i, d,
                                          shape_str(shape)));
#endif
    flat = flat * shape[d] + i;
    d++;
  }
  return flat;
}

// A value a training backward let go of (release_storage): reading it is a clear error, not a crash.
static void check_readable(const Tensor& t, const char* what) {
  if (!t.defined() && t.numel() > 0)
    throw std::logic_error(std::string(what) + " on a tensor of shape " + shape_str(t.shape()) +
                           " whose numbers were released (a training backward, Tape::keep_grads off, lets go of "
                           "intermediate values: read them before backward())");
}

float& Tensor::at(std::initializer_list<int64_t> idx) {
  check_readable(*this, "at()");
  return data()[flat_index(shape_, idx)];
}
float Tensor::at(std::initializer_list<int64_t> idx) const {
  check_readable(*this, "at()");
  return data()[flat_index(shape_, idx)];
}

float Tensor::item() const {
  if (numel_ != 1) throw std::logic_error("item() on a tensor of shape " + shape_str(shape_));
  check_readable(*this, "item()");
  return data()[0];
}

std::vector<float> Tensor::to_vector() const {
  check_readable(*this, "to_vector()");
  return std::vector<float>(data(), data() + numel_);
}

Tensor Tensor::reshape(const Shape& shape) const {
  Shape s = shape;
  int infer = -1;
  int64_t known = 1;
  for (size_t i = 0; i < s.size(); i++) {
    if (s[i] == -1) infer = static_cast<int>(i);
    else known *= s[i];
  }
  if (infer >= 0 && known > 0) s[infer] = numel_ / known;
  if (shape_numel(s) != numel_ || s.size() > 4)
    throw std::invalid_argument(fmt::format("cannot reshape {} to {}", shape_str(shape_), shape_str(shape)));
  Tensor t = *this;
  t.shape_ = s;
  return t;
}

Tensor Tensor::clone() const {
  if (!defined()) return Tensor();
  Tensor t = empty(shape_);
  std::copy(data(), data() + numel_, t.data());
  return t;
}

void Tensor::fill(float v) {
  // Gradients start as zeros every step, up to the 49 MB of the logits' gradient: above a few
  // megabytes both threads write (one core does not reach the memory bandwidth alone).
  float* p = data();
  const int64_t n = numel_;
#pragma omp parallel for simd schedule(static) if (parallel : n > (1 << 20))
  for (int64_t i = 0; i < n; i++) p[i] = v;
}

double l2_norm(const Tensor& t) { return std::sqrt(sum_squares(t.data(), t.numel())); }

float max_abs_diff(const Tensor& a, const Tensor& b) {
  if (a.shape() != b.shape()) return INFINITY;
  float m = 0;
  for (int64_t i = 0; i < a.numel(); i++) m = std::max(m, std::fabs(a[i] - b[i]));
  return m;
}

bool all_finite(const Tensor& t) {
  const float* p = t.data();
  for (int64_t i = 0; i < t.numel(); i++)
    if (!std::isfinite(p[i])) return false;
  return true;
}

// Recursive numpy-style printer over the leading dims; rows longer than 2*edge are elided.
static void format_rec(std::string& out, const Tensor& t, int d, int64_t offset, int edge, int prec, int indent) {
  int64_t n = t.shape()[d];
  int64_t stride = 1;
  for (int k = d + 1; k < t.rank(); k++) stride *= t.shape()[k];
  out += "[";
  bool elide = n > 2 * edge;
  for (int64_t i = 0; i < n; i++) {
    if (elide && i == edge) {
      out += (d == t.rank() - 1) ? "..., " : "...,\n" + std::string(indent + 1, ' ');
      i = n - edge - 1;
      continue;
    }
    if (d == t.rank() - 1) {
      out += fmt::format("{:.{}g}", t[offset + i], prec);
    } else {
      format_rec(out, t, d + 1, offset + i * stride, edge, prec, indent + 1);
    }
    if (i + 1 < n) out += (d == t.rank() - 1) ? ", " : ",\n" + std::string(indent + 1, ' ');
  }
  out += "]";
}

std::string format_tensor(const Tensor& t, int edge_items, int precision) {
  if (!t.defined()) return "tensor(undefined)";
  std::string out = "tensor " + shape_str(t.shape()) + "\n";
  if (t.rank() == 0) return out + fmt::format("{:.{}g}", t[0], precision);
  format_rec(out, t, 0, 0, edge_items, precision, 0);
  return out;
}

}  // namespace attn
