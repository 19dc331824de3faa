// Views without copies (reshape, transpose, permute, narrow, select, expand, squeeze, unsqueeze),
// each differentiable.
#include <numeric>

#include "ops/op_helpers.h"

namespace attend {

namespace {
// Strides that let `shape` view the same memory as (old_shape, old_strides), if any exist
// (the classic stride-splitting rule: dims may only merge where the old layout is contiguous).
bool ComputeViewStrides(const Shape& old_shape, const Shape& old_strides, const Shape& shape,
                        Shape* out) {
  Shape strides = shape;
  if (old_shape.numel() == 0 || old_shape.size() == 0) {
    *out = ContiguousStrides(shape);
    return true;
  }
  int view_d = shape.size() - 1;
  int64_t chunk_base_stride = old_strides.size() ? old_strides[old_strides.size() - 1] : 1;
  int64_t tensor_numel = 1, view_numel = 1;
  for (int tensor_d = old_shape.size() - 1; tensor_d >= 0; --tensor_d) {
    tensor_numel *= old_shape[tensor_d];
    if (tensor_d == 0 || (old_shape[tensor_d - 1] != 1 &&
                          old_strides[tensor_d - 1] != tensor_numel * chunk_base_stride)) {
      while (view_d >= 0 && (view_numel < tensor_numel || shape[view_d] == 1)) {
        strides[view_d] = view_numel * chunk_base_stride;
        view_numel *= shape[view_d];
        view_d--;
      }
      if (view_numel != tensor_numel) return false;
      if (tensor_d > 0) {
        chunk_base_stride = old_strides[tensor_d - 1];
        tensor_numel = 1;
        view_numel = 1;
      }
    }
  }
  if (view_d != -1) return false;
  *out = strides;
  return true;
}

Shape InferShape(const Shape& shape, int64_t numel, const Tensor& t, const char* op) {
  Shape out = shape;
  int infer = -1;
  int64_t known = 1;
  for (int i = 0; i < out.size(); ++i) {
    if (out[i] == -1) {
      ATTEND_CHECK(infer < 0, op, ": only one dim can be -1 in ", shape.str(), " (input ", t.str(),
                   ")");
      infer = i;
    } else {
      ATTEND_CHECK(out[i] >= 0, op, ": invalid size in ", shape.str(), " (input ", t.str(), ")");
      known *= out[i];
    }
  }
  if (infer >= 0) {
    ATTEND_CHECK(known != 0 && numel % known == 0, op, ": cannot view ", t.str(), " as ",
                 shape.str());
    out[infer] = numel / known;
  }
  ATTEND_CHECK(out.numel() == numel, op, ": shape ", shape.str(), " is invalid for ", t.str(), " (",
               numel, " elements)");
  return out;
}

Tensor ReshapeBack(const Tensor& g, const Shape& s) { return g.Reshape(s); }
}  // namespace

Tensor Tensor::View(const Shape& s) const {
  CheckDefined(*this, "View");
  Shape shape_out = InferShape(s, numel(), *this, "View");
  Shape st;
  ATTEND_CHECK(ComputeViewStrides(shape(), strides(), shape_out, &st), "View: cannot view ", str(),
               " with strides ", strides().str(), " as ", shape_out.str(),
               " without a copy (use Reshape)");
  Tensor out = MakeView(*this, shape_out, st, offset());
  Shape in_shape = shape();
  RecordOp("View", out, {this},
           [in_shape](const Tensor& g) { return std::vector<Tensor>{ReshapeBack(g, in_shape)}; });
  return out;
}

Tensor Tensor::Reshape(const Shape& s) const {
  CheckDefined(*this, "Reshape");
  Shape shape_out = InferShape(s, numel(), *this, "Reshape");
  Shape st;
  if (ComputeViewStrides(shape(), strides(), shape_out, &st)) return View(shape_out);
  return Clone().View(shape_out);
}

Tensor Tensor::Flatten(int start, int end) const {
  int nd = dim();
  if (nd == 0) return Reshape(Shape{1});
  start = WrapDim(start, shape(), "Flatten");
  end = WrapDim(end, shape(), "Flatten");
  ATTEND_CHECK(start <= end, "Flatten: start dim ", start, " is after end dim ", end);
  Shape s;
  for (int i = 0; i < start; ++i) s.push_back(shape()[i]);
  int64_t m = 1;
  for (int i = start; i <= end; ++i) m *= shape()[i];
  s.push_back(m);
  for (int i = end + 1; i < nd; ++i) s.push_back(shape()[i]);
  return Reshape(s);
}

Tensor Tensor::Transpose(int d0, int d1) const {
  CheckDefined(*this, "Transpose");
  d0 = WrapDim(d0, shape(), "Transpose");
  d1 = WrapDim(d1, shape(), "Transpose");
  Shape sh = shape(), st = strides();
  std::swap(sh[d0], sh[d1]);
  std::swap(st[d0], st[d1]);
  Tensor out = MakeView(*this, sh, st, offset());
  RecordOp("Transpose", out, {this},
           [d0, d1](const Tensor& g) { return std::vector<Tensor>{g.Transpose(d0, d1)}; });
  return out;
}

Tensor Tensor::Permute(const std::vector<int>& dims) const {
  CheckDefined(*this, "Permute");
  int nd = dim();
  ATTEND_CHECK(static_cast<int>(dims.size()) == nd, "Permute: got ", dims.size(),
               " dims for a tensor with ", nd, " dims (", str(), ")");
  std::vector<int> perm(nd), inverse(nd);
  std::vector<bool> used(nd, false);
  Shape sh, st;
  for (int i = 0; i < nd; ++i) {
    int d = WrapDim(dims[i], shape(), "Permute");
    ATTEND_CHECK(!used[d], "Permute: dim ", d, " appears twice in the permutation of ", str());
    used[d] = true;
    perm[i] = d;
    inverse[d] = i;
    sh.push_back(shape()[d]);
    st.push_back(strides()[d]);
  }
  Tensor out = MakeView(*this, sh, st, offset());
  RecordOp("Permute", out, {this},
           [inverse](const Tensor& g) { return std::vector<Tensor>{g.Permute(inverse)}; });
  return out;
}

Tensor Tensor::Narrow(int d, int64_t start, int64_t length) const {
  CheckDefined(*this, "Narrow");
  d = WrapDim(d, shape(), "Narrow");
  int64_t n = shape()[d];
  if (start < 0) start += n;
  ATTEND_CHECK(start >= 0 && length >= 0 && start + length <= n, "Narrow: range [", start, ", ",
               start + length, ") is out of bounds for dim ", d, " of size ", n, " in ", str());
  Shape sh = shape();
  sh[d] = length;
  Tensor out = MakeView(*this, sh, strides(), offset() + start * strides()[d]);
  Shape in_shape = shape();
  DType dt = dtype();
  RecordOp("Narrow", out, {this}, [in_shape, dt, d, start, length](const Tensor& g) {
    // The slices of one tensor (a fused projection's q, k and v) add into the gradient the first
    // of them started instead of each making a zero tensor of the whole size to be summed.
    if (Tensor* sum = PendingGradient(0, in_shape, dt)) {
      Tensor slice = sum->Narrow(d, start, length);
      AccumulateGradient(slice, g);
      return std::vector<Tensor>{Tensor()};
    }
    Tensor z = Tensor::Zeros(in_shape, dt);
    z.Narrow(d, start, length).CopyFrom(g);
    return std::vector<Tensor>{z};
  });
  return out;
}

Tensor Tensor::Select(int d, int64_t index) const {
  CheckDefined(*this, "Select");
  d = WrapDim(d, shape(), "Select");
  int64_t n = shape()[d];
  ATTEND_CHECK(index >= -n && index < n, "Select: index ", index, " is out of range for dim ", d,
               " of size ", n, " in ", str());
  if (index < 0) index += n;
  return Narrow(d, index, 1).Squeeze(d);
}

Tensor Tensor::Expand(const Shape& s) const {
  CheckDefined(*this, "Expand");
  int nd = s.size(), m = dim();
  ATTEND_CHECK(nd >= m, "Expand: cannot expand ", str(), " to fewer dims ", s.str());
  Shape sh, st;
  for (int i = 0; i < nd; ++i) {
    int j = i - (nd - m);
    int64_t want = s[i];
    if (j < 0) {
      ATTEND_CHECK(want >= 0, "Expand: -1 is not allowed for a new leading dim in ", s.str());
      sh.push_back(want);
      st.push_back(0);
      continue;
    }
    int64_t have = shape()[j];
    if (want == -1) want = have;
    ATTEND_CHECK(have == want || have == 1, "Expand: cannot expand ", str(), " to ", s.str(),
                 " (dim ", i, ": ", have, " vs ", want, ")");
    sh.push_back(want);
    st.push_back(have == want ? strides()[j] : 0);
  }
  Tensor out = MakeView(*this, sh, st, offset());
  Shape in_shape = shape();
  RecordOp("Expand", out, {this},
           [in_shape](const Tensor& g) { return std::vector<Tensor>{SumTo(g, in_shape)}; });
  return out;
}

Tensor Tensor::Squeeze(int d) const {
  CheckDefined(*this, "Squeeze");
  d = WrapDim(d, shape(), "Squeeze");
  if (shape()[d] != 1) return *this;
  Shape sh = shape(), st = strides();
  sh.erase(d);
  st.erase(d);
  Tensor out = MakeView(*this, sh, st, offset());
  Shape in_shape = shape();
  RecordOp("Squeeze", out, {this},
           [in_shape](const Tensor& g) { return std::vector<Tensor>{ReshapeBack(g, in_shape)}; });
  return out;
}

Tensor Tensor::Squeeze() const {
  CheckDefined(*this, "Squeeze");
  Shape sh;
  for (int64_t d : shape())
    if (d != 1) sh.push_back(d);
  if (sh.size() == dim()) return *this;
  return Reshape(sh);
}

Tensor Tensor::Unsqueeze(int d) const {
  CheckDefined(*this, "Unsqueeze");
  ATTEND_CHECK(d >= -(dim() + 1) && d <= dim(), "Unsqueeze: dim ", d, " is out of range for shape ",
               shape().str(), " (expected ", -(dim() + 1), "..", dim(), ")");
  if (d < 0) d += dim() + 1;
  Shape sh = shape(), st = strides();
  int64_t new_stride = d < dim() ? strides()[d] * shape()[d] : 1;
  sh.insert(d, 1);
  st.insert(d, new_stride);
  Tensor out = MakeView(*this, sh, st, offset());
  Shape in_shape = shape();
  RecordOp("Unsqueeze", out, {this},
           [in_shape](const Tensor& g) { return std::vector<Tensor>{ReshapeBack(g, in_shape)}; });
  return out;
}

}  // namespace attend
