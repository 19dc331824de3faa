// Tensors over memory that attend did not allocate (a NumPy array, a memory-mapped file): the
// tensor reads and writes that memory in place and keeps its owner alive for as long as any
// tensor or view of it lives.
#pragma once

#include <memory>

#include "attend/tensor.h"

namespace attend {

// A tensor of `shape` and `strides` (in elements, each >= 0) over `data`, which must hold every
// element those strides reach. `owner` is released when the last tensor over the memory goes;
// attend never frees `data` itself. attend::Error for a negative size or stride, or a null
// `data` with elements to address.
Tensor FromExternal(void* data, const Shape& shape, const Shape& strides, DType dtype,
                    std::shared_ptr<void> owner);

}  // namespace attend
