// DType names and sizes, Shape helpers, ErrnoText.
#include <cerrno>
#include <cstring>
#include <sstream>

#include "core/tensor_impl.h"

namespace attend {

std::string ErrnoText() { return std::strerror(errno); }

const char* DTypeName(DType t) {
  switch (t) {
    case DType::kF32: return "f32";
    case DType::kF64: return "f64";
    case DType::kI64: return "i64";
    case DType::kBool: return "bool";
    case DType::kI8: return "i8";
  }
  return "?";
}

size_t DTypeSize(DType t) {
  switch (t) {
    case DType::kF32: return 4;
    case DType::kF64: return 8;
    case DType::kI64: return 8;
    case DType::kBool: return 1;
    case DType::kI8: return 1;
  }
  return 0;
}

Shape::Shape(std::initializer_list<int64_t> dims) {
  ATTEND_CHECK(dims.size() <= static_cast<size_t>(kMaxDims), "Shape: at most ", kMaxDims,
               " dims are supported, got ", dims.size());
  for (int64_t d : dims) d_[n_++] = d;
}

Shape::Shape(const std::vector<int64_t>& dims) {
  ATTEND_CHECK(dims.size() <= static_cast<size_t>(kMaxDims), "Shape: at most ", kMaxDims,
               " dims are supported, got ", dims.size());
  for (int64_t d : dims) d_[n_++] = d;
}

void Shape::push_back(int64_t v) {
  ATTEND_CHECK(n_ < kMaxDims, "Shape: at most ", kMaxDims, " dims are supported");
  d_[n_++] = v;
}

void Shape::insert(int pos, int64_t v) {
  ATTEND_CHECK(n_ < kMaxDims, "Shape: at most ", kMaxDims, " dims are supported");
  for (int i = n_; i > pos; --i) d_[i] = d_[i - 1];
  d_[pos] = v;
  ++n_;
}

void Shape::erase(int pos) {
  for (int i = pos; i + 1 < n_; ++i) d_[i] = d_[i + 1];
  --n_;
}

int64_t Shape::numel() const {
  for (int i = 0; i < n_; ++i)
    if (d_[i] == 0) return 0;  // before multiplying: [0, 2^62, 4] has no elements, not overflow
  int64_t n = 1;
  for (int i = 0; i < n_; ++i)
    ATTEND_CHECK(!__builtin_mul_overflow(n, d_[i], &n), "Shape: ", str(),
                 " has more elements than a 64-bit count holds");
  return n;
}

bool Shape::operator==(const Shape& o) const {
  if (n_ != o.n_) return false;
  for (int i = 0; i < n_; ++i)
    if (d_[i] != o.d_[i]) return false;
  return true;
}

std::string Shape::str() const {
  std::ostringstream os;
  os << "[";
  for (int i = 0; i < n_; ++i) os << (i ? ", " : "") << d_[i];
  os << "]";
  return os.str();
}

Shape ContiguousStrides(const Shape& shape) {
  // A stride is the product of the dims after it, whatever the others are: a zero dim elsewhere
  // does not make [0, 2^62, 4]'s stride 2^64 countable.
  Shape s = shape;
  int64_t acc = 1;
  for (int i = shape.size() - 1; i >= 0; --i) {
    s[i] = acc;
    ATTEND_CHECK(!__builtin_mul_overflow(acc, shape[i], &acc), "Shape: the strides of ",
                 shape.str(), " overflow a 64-bit count");
  }
  return s;
}

int WrapDim(int dim, int ndim, const char* op) {
  int lo = ndim == 0 ? -1 : -ndim, hi = ndim == 0 ? 0 : ndim - 1;
  ATTEND_CHECK(dim >= lo && dim <= hi, op, ": dim ", dim, " is out of range for a tensor with ",
               ndim, " dims (expected ", lo, "..", hi, ")");
  return dim < 0 ? dim + (ndim == 0 ? 1 : ndim) : dim;
}

int WrapDim(int dim, const Shape& shape, const char* op) {
  const int ndim = shape.size();
  int lo = ndim == 0 ? -1 : -ndim, hi = ndim == 0 ? 0 : ndim - 1;
  ATTEND_CHECK(dim >= lo && dim <= hi, op, ": dim ", dim, " is out of range for shape ",
               shape.str(), " (expected ", lo, "..", hi, ")");
  return dim < 0 ? dim + (ndim == 0 ? 1 : ndim) : dim;
}

}  // namespace attend
