// FromExternal (attend/external.h): a Storage whose memory belongs to someone else.
#include "attend/external.h"

#include <utility>

#include "core/tensor_impl.h"

namespace attend {

Tensor FromExternal(void* data, const Shape& shape, const Shape& strides, DType dtype,
                    std::shared_ptr<void> owner) {
  ATTEND_CHECK(shape.size() == strides.size(), "FromExternal: shape ", shape.str(), " and strides ",
               strides.str(), " differ in rank");
  int64_t last = 0;  // the largest element offset the strides reach
  for (int d = 0; d < shape.size(); ++d) {
    ATTEND_CHECK(shape[d] >= 0, "FromExternal: negative size in shape ", shape.str());
    ATTEND_CHECK(strides[d] >= 0, "FromExternal: negative stride in ", strides.str());
    if (shape[d] > 0) last += (shape[d] - 1) * strides[d];
  }
  const bool empty = shape.numel() == 0;
  ATTEND_CHECK(empty || data != nullptr, "FromExternal: no memory for ", shape.str());
  // The storage's destructor returns its block to attend's cache unless `data` is null: the
  // deleter clears it first, then lets go of the owner.
  auto storage = std::shared_ptr<Storage>(new Storage(), [owner = std::move(owner)](Storage* s) {
    s->data = nullptr;
    delete s;
  });
  storage->data = data;
  storage->bytes = storage->capacity = empty ? 0 : static_cast<size_t>(last + 1) * DTypeSize(dtype);
  auto impl = std::make_shared<TensorImpl>();
  impl->storage = std::move(storage);
  impl->shape = shape;
  impl->strides = strides;
  impl->dtype = dtype;
  return Tensor(std::move(impl));
}

}  // namespace attend
