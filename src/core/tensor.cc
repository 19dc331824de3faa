// Tensor creation, metadata, element access, copies and the autograd accessors. Clone() and To(),
// which record themselves for autograd, are ops: src/ops/copy.cc.
#include <type_traits>
#include <cmath>
#include <cstring>
#include <sstream>

#include <omp.h>

#include "core/strided.h"
#include "core/tensor_impl.h"

namespace attend {

namespace {
Tensor NewTensor(const Shape& shape, DType dtype) {
  for (int64_t d : shape) ATTEND_CHECK(d >= 0, "Tensor: negative size in shape ", shape.str());
  Shape strides = ContiguousStrides(shape);  // checks that they fit 64 bits, zero dims or not
  size_t bytes = 0;
  ATTEND_CHECK(
      !__builtin_mul_overflow(static_cast<size_t>(shape.numel()), DTypeSize(dtype), &bytes),
      "Tensor: ", shape.str(), " of ", DTypeName(dtype), " needs more bytes than exist");
  auto impl = std::make_shared<TensorImpl>();
  impl->storage = AllocateStorage(bytes);
  impl->shape = shape;
  impl->strides = strides;
  impl->dtype = dtype;
  return Tensor(std::move(impl));
}

template <typename Fn>
void DispatchAll(DType t, Fn&& fn) {
  switch (t) {
    case DType::kF32: fn(float{}); break;
    case DType::kF64: fn(double{}); break;
    case DType::kI64: fn(int64_t{}); break;
    case DType::kBool: fn(bool{}); break;
    case DType::kI8: fn(int8_t{}); break;
  }
}
}  // namespace

Shape BroadcastShapes(const Shape& a, const Shape& b, const char* op) {
  int n = std::max(a.size(), b.size());
  Shape out;
  for (int i = 0; i < n; ++i) out.push_back(1);
  for (int i = 0; i < n; ++i) {
    int64_t da = i < n - a.size() ? 1 : a[i - (n - a.size())];
    int64_t db = i < n - b.size() ? 1 : b[i - (n - b.size())];
    ATTEND_CHECK(da == db || da == 1 || db == 1, op, ": shapes ", a.str(), " and ", b.str(),
                 " cannot be broadcast together (dim ", i, ": ", da, " vs ", db, ")");
    out[i] = da == 1 ? db : da;
  }
  return out;
}

Shape BroadcastStrides(const Tensor& t, const Shape& out_shape) {
  Shape s;
  int n = out_shape.size(), m = t.dim();
  for (int i = 0; i < n; ++i) {
    int j = i - (n - m);
    s.push_back(j < 0 || t.shape()[j] == 1 ? 0 : t.strides()[j]);
  }
  return s;
}

Tensor MakeView(const Tensor& base, const Shape& shape, const Shape& strides, int64_t offset) {
  auto impl = std::make_shared<TensorImpl>();
  impl->storage = base.impl()->storage;
  impl->shape = shape;
  impl->strides = strides;
  impl->offset = offset;
  impl->dtype = base.dtype();
  return Tensor(std::move(impl));
}

// ---- creation ----
Tensor Tensor::Empty(const Shape& shape, DType dtype) { return NewTensor(shape, dtype); }
// Copies and fills above this many bytes are shared among the OpenMP threads (a gradient of the
// output layer's logits is tens of MB; the other threads would wait at the next parallel op).
constexpr int64_t kThreadBytes = int64_t{1} << 18;

Tensor Tensor::Zeros(const Shape& shape, DType dtype) {
  Tensor t = NewTensor(shape, dtype);
  char* p = static_cast<char*>(t.raw_data());
  ParallelRange(shape.numel() * DTypeSize(dtype), kThreadBytes,
                [&](int64_t b, int64_t e) { std::memset(p + b, 0, e - b); });
  return t;
}
Tensor Tensor::Ones(const Shape& shape, DType dtype) { return Full(shape, 1.0, dtype); }
Tensor Tensor::Full(const Shape& shape, double value, DType dtype) {
  Tensor t = NewTensor(shape, dtype);
  t.Fill(value);
  return t;
}
Tensor Tensor::Scalar(double value, DType dtype) { return Full(Shape{}, value, dtype); }
Tensor Tensor::Arange(int64_t n, DType dtype) {
  Tensor t = NewTensor(Shape{n}, dtype);
  DispatchAll(dtype, [&](auto tag) {
    using T = decltype(tag);
    T* p = t.data<T>();
    for (int64_t i = 0; i < n; ++i) p[i] = static_cast<T>(i);
  });
  return t;
}

namespace {
template <typename T, typename V>
Tensor FromVec(const V& v, const Shape& shape, DType dtype) {
  ATTEND_CHECK(static_cast<int64_t>(v.size()) == shape.numel(), "FromVector: ", v.size(),
               " values do not fill shape ", shape.str());
  Tensor t = NewTensor(shape, dtype);
  T* p = t.data<T>();
  for (size_t i = 0; i < v.size(); ++i) p[i] = static_cast<T>(v[i]);
  return t;
}
}  // namespace

Tensor Tensor::FromVector(const std::vector<float>& v, const Shape& s) {
  return FromVec<float>(v, s, DType::kF32);
}
Tensor Tensor::FromVector(const std::vector<double>& v, const Shape& s) {
  return FromVec<double>(v, s, DType::kF64);
}
Tensor Tensor::FromVector(const std::vector<int64_t>& v, const Shape& s) {
  return FromVec<int64_t>(v, s, DType::kI64);
}
Tensor Tensor::FromVector(const std::vector<bool>& v, const Shape& s) {
  return FromVec<bool>(v, s, DType::kBool);
}

uint64_t Generator::Bits(uint64_t seed, uint64_t counter) {
  // splitmix64 of a mix of seed and counter: cheap, stateless, well distributed.
  uint64_t z =
      seed * 0x9E3779B97F4A7C15ull + counter * 0xD1B54A32D192ED03ull + 0x632BE59BD9B4E019ull;
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
  return z ^ (z >> 31);
}
float Generator::UniformF(uint64_t seed, uint64_t counter) {
  return static_cast<float>(Bits(seed, counter) >> 40) * (1.0f / 16777216.0f);
}
double Generator::UniformD(uint64_t seed, uint64_t counter) {
  return static_cast<double>(Bits(seed, counter) >> 11) * (1.0 / 9007199254740992.0);
}

Tensor Tensor::Rand(const Shape& shape, Generator& gen, DType dtype) {
  ATTEND_CHECK(IsFloating(dtype), "Rand: dtype must be floating, got ", DTypeName(dtype));
  Tensor t = NewTensor(shape, dtype);
  int64_t n = shape.numel();
  uint64_t base = gen.Reserve(n), seed = gen.seed();
  if (dtype == DType::kF32) {
    float* p = t.data<float>();
    for (int64_t i = 0; i < n; ++i) p[i] = Generator::UniformF(seed, base + i);
  } else {
    double* p = t.data<double>();
    for (int64_t i = 0; i < n; ++i) p[i] = Generator::UniformD(seed, base + i);
  }
  return t;
}

Tensor Tensor::Randn(const Shape& shape, Generator& gen, DType dtype) {
  ATTEND_CHECK(IsFloating(dtype), "Randn: dtype must be floating, got ", DTypeName(dtype));
  Tensor t = NewTensor(shape, dtype);
  int64_t n = shape.numel();
  uint64_t base = gen.Reserve(2 * n), seed = gen.seed();
  for (int64_t i = 0; i < n; ++i) {
    // Box-Muller from two counters per element.
    double u1 = Generator::UniformD(seed, base + 2 * i),
           u2 = Generator::UniformD(seed, base + 2 * i + 1);
    double z = std::sqrt(-2.0 * std::log(1.0 - u1)) * std::cos(6.283185307179586 * u2);
    if (dtype == DType::kF32) t.data<float>()[i] = static_cast<float>(z);
    else t.data<double>()[i] = z;
  }
  return t;
}

Tensor Tensor::Randint(const Shape& shape, int64_t low, int64_t high, Generator& gen) {
  ATTEND_CHECK(high > low, "Randint: empty range [", low, ", ", high, ")");
  Tensor t = NewTensor(shape, DType::kI64);
  int64_t n = shape.numel();
  uint64_t base = gen.Reserve(n), seed = gen.seed();
  uint64_t range = static_cast<uint64_t>(high - low);
  for (int64_t i = 0; i < n; ++i)
    t.data<int64_t>()[i] = low + static_cast<int64_t>(Generator::Bits(seed, base + i) % range);
  return t;
}

// ---- metadata ----
const Shape& Tensor::shape() const {
  ATTEND_CHECK(impl_, "Tensor: use of an undefined tensor");
  return impl_->shape;
}
const Shape& Tensor::strides() const {
  ATTEND_CHECK(impl_, "Tensor: use of an undefined tensor");
  return impl_->strides;
}
int64_t Tensor::size(int d) const { return shape()[WrapDim(d, shape(), "size")]; }
int64_t Tensor::stride(int d) const { return strides()[WrapDim(d, shape(), "stride")]; }
int64_t Tensor::numel() const { return shape().numel(); }
int64_t Tensor::offset() const { return impl_->offset; }
DType Tensor::dtype() const {
  ATTEND_CHECK(impl_, "Tensor: use of an undefined tensor");
  return impl_->dtype;
}
Device Tensor::device() const { return impl_->storage->device; }
bool Tensor::is_contiguous() const {
  int64_t expected = 1;
  for (int i = dim() - 1; i >= 0; --i) {
    if (impl_->shape[i] == 1) continue;
    if (impl_->strides[i] != expected) return false;
    expected *= impl_->shape[i];
  }
  return true;
}
std::string Tensor::str() const {
  if (!impl_) return "undefined";
  return std::string(DTypeName(dtype())) + shape().str();
}
bool Tensor::SameStorage(const Tensor& o) const {
  return impl_ && o.impl_ && impl_->storage == o.impl_->storage;
}

// ---- data access ----
namespace {
template <typename T>
constexpr DType DTypeOf() {
  if constexpr (std::is_same_v<T, float>) return DType::kF32;
  else if constexpr (std::is_same_v<T, double>) return DType::kF64;
  else if constexpr (std::is_same_v<T, int64_t>) return DType::kI64;
  else if constexpr (std::is_same_v<T, int8_t>) return DType::kI8;
  else {
    static_assert(std::is_same_v<T, bool>, "tensors hold f32, f64, i64, bool or i8");
    return DType::kBool;
  }
}
}  // namespace

template <typename T>
T* Tensor::data() {
  ATTEND_CHECK(dtype() == DTypeOf<T>(), "data: tensor is ", str(), ", accessed as ",
               DTypeName(DTypeOf<T>()));
  return static_cast<T*>(impl_->storage->data) + impl_->offset;
}
template <typename T>
const T* Tensor::data() const {
  return const_cast<Tensor*>(this)->data<T>();
}
template float* Tensor::data<float>();
template double* Tensor::data<double>();
template int64_t* Tensor::data<int64_t>();
template bool* Tensor::data<bool>();
template int8_t* Tensor::data<int8_t>();
template const float* Tensor::data<float>() const;
template const double* Tensor::data<double>() const;
template const int64_t* Tensor::data<int64_t>() const;
template const bool* Tensor::data<bool>() const;
template const int8_t* Tensor::data<int8_t>() const;

void* Tensor::raw_data() {
  return static_cast<char*>(impl_->storage->data) + impl_->offset * DTypeSize(dtype());
}
const void* Tensor::raw_data() const { return const_cast<Tensor*>(this)->raw_data(); }

double Tensor::item() const {
  ATTEND_CHECK(numel() == 1, "item: tensor ", str(), " has ", numel(), " elements, expected 1");
  double v = 0;
  DispatchAll(dtype(), [&](auto tag) {
    using T = decltype(tag);
    v = static_cast<double>(*data<T>());
  });
  return v;
}

template <typename T>
std::vector<T> Tensor::ToVector() const {
  Tensor c = Contiguous();
  const T* p = c.data<T>();
  return std::vector<T>(p, p + c.numel());
}
template std::vector<float> Tensor::ToVector<float>() const;
template std::vector<double> Tensor::ToVector<double>() const;
template std::vector<int64_t> Tensor::ToVector<int64_t>() const;
template std::vector<int8_t> Tensor::ToVector<int8_t>() const;
template <>
std::vector<bool> Tensor::ToVector<bool>() const {
  Tensor c = Contiguous();
  const bool* p = c.data<bool>();
  return std::vector<bool>(p, p + c.numel());
}

std::string Tensor::ToString(int max_elems) const {
  std::ostringstream os;
  os << str() << " {";
  Tensor c = Contiguous();
  int64_t n = std::min<int64_t>(c.numel(), max_elems);
  DispatchAll(dtype(), [&](auto tag) {
    using T = decltype(tag);
    const T* p = c.data<T>();
    for (int64_t i = 0; i < n; ++i) os << (i ? ", " : "") << +p[i];
  });
  if (c.numel() > n) os << ", ...";
  os << "}";
  return os.str();
}

// ---- copies ----
void Tensor::Fill(double value) {
  DispatchAll(dtype(), [&](auto tag) {
    using T = decltype(tag);
    T v = static_cast<T>(value);
    std::array<Shape, 1> st{strides()};
    T* base = data<T>();
    ForEachRow<1>(
        shape(), st,
        [&](const std::array<int64_t, 1>& off, int64_t n, const std::array<int64_t, 1>& inner) {
          T* p = base + off[0];
          for (int64_t i = 0; i < n; ++i) p[i * inner[0]] = v;
        });
  });
}

void Tensor::CopyFrom(const Tensor& src) {
  ATTEND_CHECK(src.defined() && defined(), "CopyFrom: undefined tensor");
  Shape b = BroadcastShapes(shape(), src.shape(), "CopyFrom");
  ATTEND_CHECK(b == shape(), "CopyFrom: source ", src.shape().str(),
               " does not broadcast to destination ", shape().str());
  std::array<Shape, 2> st{strides(), BroadcastStrides(src, shape())};
  DispatchAll(dtype(), [&](auto dtag) {
    using D = decltype(dtag);
    D* dst = data<D>();
    DispatchAll(src.dtype(), [&](auto stag) {
      using S = decltype(stag);
      const S* s = src.data<S>();
      auto row = [&](const std::array<int64_t, 2>& off, int64_t n,
                     const std::array<int64_t, 2>& inner) {
        D* d = dst + off[0];
        const S* p = s + off[1];
        if (inner[0] == 1 && inner[1] == 1) {
          if constexpr (std::is_same_v<D, S>) std::memcpy(d, p, n * sizeof(D));
          else
            for (int64_t i = 0; i < n; ++i) d[i] = static_cast<D>(p[i]);
        } else {
          for (int64_t i = 0; i < n; ++i) d[i * inner[0]] = static_cast<D>(p[i * inner[1]]);
        }
      };
      ParallelForEachRow<2>(shape(), st, kThreadBytes / static_cast<int64_t>(sizeof(D)), row);
    });
  });
}

Tensor Tensor::Contiguous() const {
  if (is_contiguous()) return *this;
  return Clone();
}

Tensor Tensor::Detach() const { return MakeView(*this, shape(), strides(), offset()); }

// ---- autograd ----
bool Tensor::requires_grad() const { return impl_ && impl_->requires_grad; }
Tensor& Tensor::set_requires_grad(bool r) {
  ATTEND_CHECK(!r || IsFloating(dtype()),
               "set_requires_grad: only floating tensors can require "
               "grad, got ",
               str());
  ATTEND_CHECK(is_leaf(), "set_requires_grad: ", str(),
               " is the result of an op; only leaves "
               "can change requires_grad (use Detach())");
  impl_->requires_grad = r;
  return *this;
}
Tensor Tensor::grad() const { return impl_->grad; }
void Tensor::set_grad(const Tensor& g) {
  ATTEND_CHECK(!g.defined() || g.shape() == shape(), "set_grad: gradient ", g.str(),
               " does not match ", str());
  impl_->grad = g;
}
void Tensor::ZeroGrad() { impl_->grad = Tensor(); }
bool Tensor::is_leaf() const { return !impl_->grad_fn; }
const std::shared_ptr<Node>& Tensor::grad_fn() const { return impl_->grad_fn; }

void SetNumThreads(int n) {
  ATTEND_CHECK(n >= 1, "SetNumThreads: need at least one thread, got ", n);
  omp_set_num_threads(n);
}
int GetNumThreads() { return omp_get_max_threads(); }

}  // namespace attend
