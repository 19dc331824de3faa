// Internal layout of a tensor: storage, view geometry and autograd fields.
#pragma once

#include <cstddef>
#include <memory>

#include "attend/tensor.h"

namespace attend {

// A buffer from the caching allocator; returned to the cache when the last view goes away.
struct Storage {
  void* data = nullptr;
  size_t bytes = 0;     // bytes requested
  size_t capacity = 0;  // bytes of the cached block
  Device device;
  Storage() = default;
  Storage(const Storage&) = delete;
  Storage& operator=(const Storage&) = delete;
  ~Storage();
};

std::shared_ptr<Storage> AllocateStorage(size_t bytes);

struct TensorImpl {
  std::shared_ptr<Storage> storage;
  Shape shape;
  Shape strides;       // in elements
  int64_t offset = 0;  // in elements
  DType dtype = DType::kF32;
  bool requires_grad = false;
  Tensor grad;
  std::shared_ptr<Node> grad_fn;           // set on non-leaf results of recorded ops
  std::shared_ptr<Node> grad_accumulator;  // created lazily for leaves that require grad
};

// Row-major strides for a shape.
Shape ContiguousStrides(const Shape& shape);
// Normalises a possibly negative dim against ndim; throws naming `op` when out of range.
int WrapDim(int dim, int ndim, const char* op);
// The same, naming the shape in the message.
int WrapDim(int dim, const Shape& shape, const char* op);
// A view sharing `base`'s storage (no autograd history).
Tensor MakeView(const Tensor& base, const Shape& shape, const Shape& strides, int64_t offset);

}  // namespace attend
