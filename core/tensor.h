// core/tensor.h — the one data type of attnlab: a float32, contiguous, row-major array.
//
// A Tensor is a shape (rank 0..4) plus a reference-counted buffer. Copying a Tensor
// shares the buffer (like numpy views); clone() deep-copies; reshape() shares.
//
//   Tensor x = Tensor::zeros({2, 3});     // (2,3) of 0
//   x.at({1, 2}) = 5.f;                   // bounds-checked in Debug builds
//   Tensor y = x.reshape({3, 2});         // same storage
//   fmt::print("{}\n", x);                // prints like numpy
#pragma once
#include <cstdint>
#include <initializer_list>
#include <memory>
#include <string>
#include <vector>

#include <fmt/format.h>

namespace attn {

using Shape = std::vector<int64_t>;

std::string shape_str(const Shape& s);  // "(2, 3)"
int64_t shape_numel(const Shape& s);

// Keeps freed memory in glibc's heap (mallopt: no fresh mmap and no trim for large blocks), so
// that a training step's buffers reuse the previous step's pages: ~15% of a step was page faults
// without it. It sets the whole process's allocator, so the library never calls it on its own:
// attn::init_runtime does (core/runtime.h), for the programs that ask.
void keep_freed_memory();

// The buffer behind one or more Tensors: `size` floats at `data`, 64-byte aligned, freed when
// the last Tensor sharing it goes away. (gdb: tools/gdb/attnlab_printers.py reads these fields.)
struct Storage {
  float* data = nullptr;
  int64_t size = 0;
  explicit Storage(int64_t n);  // uninitialised
  ~Storage();
  Storage(const Storage&) = delete;
  Storage& operator=(const Storage&) = delete;
};

class Tensor {
 public:
  Tensor() = default;  // empty: rank 0, no storage (defined() == false)
  explicit Tensor(const Shape& shape);  // zero-filled

  static Tensor zeros(const Shape& shape) { return Tensor(shape); }
  // Uninitialised: for outputs a kernel overwrites completely (saves a pass over memory).
  static Tensor empty(const Shape& shape);
  // Testing aid: while on, empty() fills new tensors with NaN, so a kernel that leaves part of
  // its output unwritten shows up as NaN instead of whatever the memory held before.
  static void poison_empty(bool on);
  static Tensor full(const Shape& shape, float value);
  static Tensor from(const Shape& shape, std::vector<float> values);
  static Tensor scalar(float v) { return from({}, {v}); }

  bool defined() const { return storage_ != nullptr; }
  int rank() const { return static_cast<int>(shape_.size()); }
  const Shape& shape() const { return shape_; }
  int64_t dim(int d) const;  // negative d counts from the end
  int64_t numel() const { return numel_; }

  float* data() { return storage_ ? storage_->data : nullptr; }
  const float* data() const { return storage_ ? storage_->data : nullptr; }

  float& at(std::initializer_list<int64_t> idx);
  float at(std::initializer_list<int64_t> idx) const;
  float& operator[](int64_t flat) { return data()[flat]; }
  float operator[](int64_t flat) const { return data()[flat]; }
  float item() const;  // the single value of a one-element tensor

  Tensor reshape(const Shape& shape) const;  // shares storage; -1 infers one dim
  Tensor clone() const;
  void fill(float v);
  void zero() { fill(0.f); }
  bool same_storage(const Tensor& o) const { return storage_ == o.storage_; }
  // Lets go of the numbers and keeps the shape (defined() turns false): for a value nobody reads
  // again whose shape is still asked for (a training backward's walk, autograd/tape.cpp).
  void release_storage() { storage_.reset(); }
  std::vector<float> to_vector() const;  // (at, item and to_vector refuse a released tensor)

 private:
  std::shared_ptr<Storage> storage_;
  Shape shape_;
  int64_t numel_ = 0;
};

// Summary statistics used by dumps and tests.
double l2_norm(const Tensor& t);
float max_abs_diff(const Tensor& a, const Tensor& b);
bool all_finite(const Tensor& t);

// numpy-like text: "tensor (2, 3)\n[[1, 2, 3],\n [4, 5, 6]]"; large dims elided with "...".
std::string format_tensor(const Tensor& t, int edge_items = 3, int precision = 4);

}  // namespace attn

template <>
struct fmt::formatter<attn::Tensor> : fmt::formatter<std::string_view> {
  template <typename Ctx>
  auto format(const attn::Tensor& t, Ctx& ctx) const {
    return fmt::formatter<std::string_view>::format(attn::format_tensor(t), ctx);
  }
};
