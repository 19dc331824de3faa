// Tensor: a typed, strided view over reference-counted storage, with the autograd fields.
#pragma once

#include <cstdint>
#include <initializer_list>
#include <memory>
#include <string>
#include <vector>

#include "attend/error.h"

namespace attend {

// kI8 is for storage only (a quantized checkpoint's weights): tensors of it can be made, copied,
// read and saved; arithmetic refuses it.
enum class DType : uint8_t { kF32, kF64, kI64, kBool, kI8 };
const char* DTypeName(DType t);
size_t DTypeSize(DType t);
inline bool IsFloating(DType t) { return t == DType::kF32 || t == DType::kF64; }

enum class DeviceType : uint8_t { kCPU, kCUDA };
struct Device {
  DeviceType type = DeviceType::kCPU;
  int index = 0;
  bool operator==(const Device& o) const { return type == o.type && index == o.index; }
};

// A small inline vector of dimension sizes (no heap allocation).
class Shape {
 public:
  static constexpr int kMaxDims = 8;
  Shape() = default;
  Shape(std::initializer_list<int64_t> dims);
  explicit Shape(const std::vector<int64_t>& dims);
  int size() const { return n_; }
  bool empty() const { return n_ == 0; }
  int64_t operator[](int i) const { return d_[i]; }
  int64_t& operator[](int i) { return d_[i]; }
  const int64_t* begin() const { return d_; }
  const int64_t* end() const { return d_ + n_; }
  void push_back(int64_t v);
  void insert(int pos, int64_t v);
  void erase(int pos);
  int64_t numel() const;
  bool operator==(const Shape& o) const;
  bool operator!=(const Shape& o) const { return !(*this == o); }
  std::vector<int64_t> vec() const { return std::vector<int64_t>(begin(), end()); }
  std::string str() const;  // "[2, 3, 4]"

 private:
  int64_t d_[kMaxDims] = {};
  int n_ = 0;
};

// Counter-based random numbers (splitmix64 over seed and offset): the same seed gives the same
// numbers whatever the thread count, and Fork() hands out disjoint ranges.
class Generator {
 public:
  explicit Generator(uint64_t seed = 0) : seed_(seed) {}
  uint64_t seed() const { return seed_; }
  uint64_t offset() const { return offset_; }
  void set_state(uint64_t seed, uint64_t offset) {
    seed_ = seed;
    offset_ = offset;
  }
  // Reserves n consecutive counters and returns the first.
  uint64_t Reserve(uint64_t n) {
    uint64_t o = offset_;
    offset_ += n;
    return o;
  }
  static uint64_t Bits(uint64_t seed, uint64_t counter);
  // Uniform in [0, 1) with 24 (float) or 53 (double) bits.
  static float UniformF(uint64_t seed, uint64_t counter);
  static double UniformD(uint64_t seed, uint64_t counter);

 private:
  uint64_t seed_;
  uint64_t offset_ = 0;
};

struct Storage;
struct TensorImpl;
class Node;

class Tensor {
 public:
  Tensor() = default;
  explicit Tensor(std::shared_ptr<TensorImpl> impl) : impl_(std::move(impl)) {}

  // ---- creation (CPU, contiguous) ----
  static Tensor Empty(const Shape& shape, DType dtype = DType::kF32);
  static Tensor Zeros(const Shape& shape, DType dtype = DType::kF32);
  static Tensor Ones(const Shape& shape, DType dtype = DType::kF32);
  static Tensor Full(const Shape& shape, double value, DType dtype = DType::kF32);
  static Tensor Scalar(double value, DType dtype = DType::kF32);
  static Tensor Arange(int64_t n, DType dtype = DType::kF32);
  static Tensor FromVector(const std::vector<float>& v, const Shape& shape);
  static Tensor FromVector(const std::vector<double>& v, const Shape& shape);
  static Tensor FromVector(const std::vector<int64_t>& v, const Shape& shape);
  static Tensor FromVector(const std::vector<bool>& v, const Shape& shape);
  static Tensor Randn(const Shape& shape, Generator& gen, DType dtype = DType::kF32);
  static Tensor Rand(const Shape& shape, Generator& gen, DType dtype = DType::kF32);  // U[0,1)
  static Tensor Randint(const Shape& shape, int64_t low, int64_t high, Generator& gen);

  // ---- metadata ----
  bool defined() const { return impl_ != nullptr; }
  const Shape& shape() const;
  const Shape& strides() const;
  int dim() const { return shape().size(); }
  int64_t size(int d) const;  // negative d counts from the end
  int64_t stride(int d) const;
  int64_t numel() const;
  int64_t offset() const;  // in elements, into the storage
  DType dtype() const;
  Device device() const;
  bool is_contiguous() const;
  std::string str() const;                         // shape and dtype, for messages: "f32[2, 3]"
  std::string ToString(int max_elems = 64) const;  // values, for debugging

  // ---- data access ----
  template <typename T>
  T* data();  // checks dtype; pointer at the view's first element
  template <typename T>
  const T* data() const;
  void* raw_data();
  const void* raw_data() const;
  double item() const;  // a one-element tensor's value
  template <typename T>
  std::vector<T> ToVector() const;  // contiguous copy in logical order

  // ---- views (no copy; differentiable) ----
  Tensor Reshape(
      const Shape& shape) const;          // a view when strides allow, else a copy; one -1 allowed
  Tensor View(const Shape& shape) const;  // a view or an error
  Tensor Flatten(int start = 0, int end = -1) const;
  Tensor Transpose(int d0, int d1) const;
  Tensor T() const { return Transpose(-2, -1); }
  Tensor Permute(const std::vector<int>& dims) const;
  Tensor Narrow(int dim, int64_t start, int64_t length) const;
  Tensor Select(int dim, int64_t index) const;  // removes dim
  Tensor Expand(const Shape& shape) const;      // -1 keeps a size; new leading dims allowed
  Tensor Squeeze(int dim) const;
  Tensor Squeeze() const;  // all size-1 dims
  Tensor Unsqueeze(int dim) const;

  // ---- copies ----
  Tensor Contiguous() const;     // itself if already contiguous
  Tensor Clone() const;          // always a fresh contiguous copy (differentiable)
  Tensor To(DType dtype) const;  // differentiable between floating types
  Tensor Detach() const;         // shares storage, no history
  // Copies src (broadcast to this shape, converting dtype) into this tensor; not recorded.
  void CopyFrom(const Tensor& src);
  void Fill(double value);  // in place; not recorded

  // ---- autograd ----
  bool requires_grad() const;
  Tensor& set_requires_grad(bool r);
  Tensor grad() const;  // undefined if none accumulated
  void set_grad(const Tensor& g);
  void ZeroGrad();  // drops .grad (the next backward writes a fresh one)
  bool is_leaf() const;
  const std::shared_ptr<Node>& grad_fn() const;
  // From a one-element tensor, or with an explicit gradient of this tensor's shape.
  void Backward(const Tensor& grad = Tensor(), bool retain_graph = false) const;

  TensorImpl* impl() const { return impl_.get(); }
  const std::shared_ptr<TensorImpl>& impl_ptr() const { return impl_; }
  bool SameStorage(const Tensor& o) const;

 private:
  std::shared_ptr<TensorImpl> impl_;
};

// Arithmetic operators (defined in ops).
Tensor operator+(const Tensor& a, const Tensor& b);
Tensor operator-(const Tensor& a, const Tensor& b);
Tensor operator*(const Tensor& a, const Tensor& b);
Tensor operator/(const Tensor& a, const Tensor& b);
Tensor operator+(const Tensor& a, double b);
Tensor operator-(const Tensor& a, double b);
Tensor operator*(const Tensor& a, double b);
Tensor operator/(const Tensor& a, double b);
Tensor operator+(double a, const Tensor& b);
Tensor operator-(double a, const Tensor& b);
Tensor operator*(double a, const Tensor& b);
Tensor operator/(double a, const Tensor& b);
Tensor operator-(const Tensor& a);

// Statistics of the caching allocator.
struct AllocatorStats {
  uint64_t system_allocs = 0;  // buffers obtained from the system (cache misses)
  uint64_t cache_hits = 0;     // buffers served from the cache
  uint64_t bytes_cached = 0;   // bytes held in the cache, free
  uint64_t bytes_in_use = 0;   // bytes handed out and not yet returned
  uint64_t peak_bytes_in_use = 0;
};
AllocatorStats GetAllocatorStats();
void ResetPeakBytes();
void EmptyCache();  // returns all cached free buffers to the system

// Caps the tensor bytes this thread requests while the guard lives (all requests, freed or not,
// cached or fresh): code that builds from untrusted sizes (a checkpoint's model config) fails
// with attend::Error "<what>: ..." at the first request past the cap, before allocating it.
// Guards nest; the innermost one counts.
class AllocationLimitGuard {
 public:
  AllocationLimitGuard(uint64_t max_bytes, std::string what);
  ~AllocationLimitGuard();
  AllocationLimitGuard(const AllocationLimitGuard&) = delete;
  AllocationLimitGuard& operator=(const AllocationLimitGuard&) = delete;
  uint64_t requested() const { return requested_; }
  // Called for every request on this thread (the allocator): throws past the cap.
  void Request(uint64_t bytes);

 private:
  uint64_t max_bytes_;
  uint64_t requested_ = 0;
  std::string what_;
  AllocationLimitGuard* outer_;
};

// Threads used by the library's own kernels (OpenMP); BLAS threads are set separately.
void SetNumThreads(int n);
int GetNumThreads();

}  // namespace attend
