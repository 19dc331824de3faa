// Bad input throws attend::Error whose message names the op and the shapes/dtypes/values at fault.
#include <string>
#include <vector>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "attend/attend.h"
#include "support/gradcheck.h"

namespace attend {
namespace {

using gradcheck::Indices;
using gradcheck::ThrownMessage;
using ::testing::AllOf;
using ::testing::HasSubstr;

// The message came from an attend::Error raised as a user error (ATTEND_CHECK): not "no
// exception" or another exception type (as ThrownMessage words them), nor an ATTEND_ASSERT.
MATCHER(IsUserError, "is an attend::Error user message") {
  return arg.rfind("(no exception", 0) != 0 && arg.rfind("(threw a non-attend", 0) != 0 &&
         arg.find("internal error") == std::string::npos;
}

// A user error whose message also satisfies every matcher in `m`.
template <typename... M>
auto UserError(M... m) {
  return AllOf(IsUserError(), m...);
}

Tensor F32(const Shape& s) { return Tensor::Zeros(s, DType::kF32); }
Tensor F64(const Shape& s) { return Tensor::Zeros(s, DType::kF64); }

// ---- broadcasting ----

TEST(Errors, AddShapeMismatchNamesOpAndShapes) {
  Tensor a = F32({2, 3}), b = F32({4});
  EXPECT_THAT(ThrownMessage([&] { Add(a, b); }),
              UserError(HasSubstr("Add"), HasSubstr("[2, 3]"), HasSubstr("[4]")));
  EXPECT_THAT(ThrownMessage([&] { Sub(a, b); }),
              UserError(HasSubstr("Sub"), HasSubstr("[2, 3]"), HasSubstr("[4]")));
  EXPECT_THAT(ThrownMessage([&] { Mul(a, b); }),
              UserError(HasSubstr("Mul"), HasSubstr("[2, 3]"), HasSubstr("[4]")));
  EXPECT_THAT(ThrownMessage([&] { Div(a, b); }),
              UserError(HasSubstr("Div"), HasSubstr("[2, 3]"), HasSubstr("[4]")));
  EXPECT_THAT(ThrownMessage([&] { (void)(a + b); }),
              UserError(HasSubstr("[2, 3]"), HasSubstr("[4]")));
}

TEST(Errors, BroadcastMismatchInAMiddleDim) {
  Tensor a = F32({3, 1, 5}), b = F32({4, 2});
  EXPECT_THAT(ThrownMessage([&] { Add(a, b); }),
              UserError(HasSubstr("Add"), HasSubstr("[3, 1, 5]"), HasSubstr("[4, 2]")));
}

TEST(Errors, UndefinedInput) {
  Tensor a = F32({2, 3});
  EXPECT_THAT(ThrownMessage([&] { Add(Tensor(), a); }), UserError(HasSubstr("Add")));
  EXPECT_THAT(ThrownMessage([&] { Exp(Tensor()); }), UserError(HasSubstr("Exp")));
}

// ---- linear algebra ----

TEST(Errors, MatmulInnerDimMismatch) {
  EXPECT_THAT(ThrownMessage([] {
                Matmul(F32({2, 3}), F32({4, 5}));
              }),
              UserError(HasSubstr("Matmul"), HasSubstr("[2, 3]"), HasSubstr("[4, 5]")));
  EXPECT_THAT(ThrownMessage([] { Matmul(F32({3}), F32({4})); }),
              UserError(HasSubstr("Matmul"), HasSubstr("[3]"), HasSubstr("[4]")));
  EXPECT_THAT(ThrownMessage([] {
                Matmul(F32({2, 3, 4}), F32({2, 5, 6}));
              }),
              UserError(HasSubstr("Matmul"), HasSubstr("[2, 3, 4]"), HasSubstr("[2, 5, 6]")));
}

TEST(Errors, MatmulBatchDimsDoNotBroadcast) {
  EXPECT_THAT(ThrownMessage([] {
                Matmul(F32({2, 3, 4}), F32({3, 4, 5}));
              }),
              UserError(HasSubstr("Matmul"), HasSubstr("[2, 3, 4]"), HasSubstr("[3, 4, 5]")));
}

TEST(Errors, MatmulOfAScalar) {
  EXPECT_THAT(ThrownMessage([] { Matmul(Tensor::Scalar(2.0), F32({3})); }),
              UserError(HasSubstr("Matmul")));
}

TEST(Errors, MatmulDtypeMismatch) {
  EXPECT_THAT(ThrownMessage([] {
                Matmul(F32({2, 3}), F64({3, 4}));
              }),
              UserError(HasSubstr("Matmul"), HasSubstr(DTypeName(DType::kF32)),
                        HasSubstr(DTypeName(DType::kF64))));
}

// ---- indexing ----

TEST(Errors, EmbeddingWithFloatIndices) {
  Tensor w = F32({5, 3});
  Tensor idx = Tensor::FromVector(std::vector<double>{0, 1}, {2});
  EXPECT_THAT(ThrownMessage([&] { Embedding(w, idx); }),
              UserError(HasSubstr("Embedding"), HasSubstr(DTypeName(DType::kF64))));
}

TEST(Errors, EmbeddingIndexOutOfRange) {
  Tensor w = F32({5, 3});
  EXPECT_THAT(ThrownMessage([&] {
                Embedding(w, Indices({0, 11}, {2}));
              }),
              UserError(HasSubstr("Embedding"), HasSubstr("11"), HasSubstr("[5, 3]")));
  EXPECT_THAT(ThrownMessage([&] {
                Embedding(w, Indices({0, 5}, {2}));
              }),
              UserError(HasSubstr("Embedding"), HasSubstr("[5, 3]")));
  EXPECT_THAT(ThrownMessage([&] {
                Embedding(w, Indices({-3, 0}, {2}));
              }),
              UserError(HasSubstr("Embedding"), HasSubstr("-3")));
}

TEST(Errors, IndexSelectIndexOutOfRange) {
  Tensor a = F32({4, 6});
  EXPECT_THAT(ThrownMessage([&] {
                IndexSelect(a, 1, Indices({2, 9}, {2}));
              }),
              UserError(HasSubstr("IndexSelect"), HasSubstr("9"), HasSubstr("[4, 6]")));
  EXPECT_THAT(ThrownMessage([&] { IndexSelect(a, 0, Indices({4}, {1})); }),
              UserError(HasSubstr("IndexSelect"), HasSubstr("[4, 6]")));
  EXPECT_THAT(ThrownMessage([&] { IndexSelect(a, 2, Indices({0}, {1})); }),
              UserError(HasSubstr("IndexSelect"), HasSubstr("[4, 6]")));
  EXPECT_THAT(
      ThrownMessage([&] { IndexSelect(a, 0, Tensor::FromVector(std::vector<float>{0}, {1})); }),
      UserError(HasSubstr("IndexSelect"), HasSubstr(DTypeName(DType::kF32))));
}

TEST(Errors, GatherIndexOutOfRange) {
  Tensor a = F32({3, 4});
  EXPECT_THAT(ThrownMessage([&] {
                Gather(a, 1, Indices({0, 8, 1, 1, 2, 2}, {3, 2}));
              }),
              UserError(HasSubstr("Gather"), HasSubstr("8"), HasSubstr("[3, 4]")));
  EXPECT_THAT(ThrownMessage([&] {
                Gather(a, 0, Indices({0, 3}, {1, 2}));
              }),
              UserError(HasSubstr("Gather"), HasSubstr("[3, 4]")));
  EXPECT_THAT(ThrownMessage([&] {
                Gather(a, 1, Indices({0, 1}, {2}));
              }),  // rank differs
              UserError(HasSubstr("Gather"), HasSubstr("[3, 4]"), HasSubstr("[2]")));
  EXPECT_THAT(ThrownMessage([&] {
                Gather(a, 1, Tensor::FromVector(std::vector<double>{0, 1, 0}, {3, 1}));
              }),
              UserError(HasSubstr("Gather"), HasSubstr(DTypeName(DType::kF64))));
}

TEST(Errors, TopKWithKLargerThanTheDim) {
  EXPECT_THAT(ThrownMessage([] {
                TopK(F32({3, 4}), 5, -1);
              }),
              UserError(HasSubstr("TopK"), HasSubstr("5"), HasSubstr("[3, 4]")));
  EXPECT_THAT(ThrownMessage([] { TopK(F32({3, 4}), -1, -1); }), UserError(HasSubstr("TopK")));
  EXPECT_THAT(ThrownMessage([] {
                TopK(F32({3, 4}), 2, 2);
              }),
              UserError(HasSubstr("TopK"), HasSubstr("[3, 4]")));
}

// ---- views ----

TEST(Errors, NarrowOutOfRange) {
  Tensor a = F32({3, 5});
  EXPECT_THAT(ThrownMessage([&] { a.Narrow(1, 3, 4); }),
              UserError(HasSubstr("Narrow"), HasSubstr("[3, 5]")));
  EXPECT_THAT(ThrownMessage([&] { a.Narrow(0, -1, 2); }),
              UserError(HasSubstr("Narrow"), HasSubstr("[3, 5]")));
  EXPECT_THAT(ThrownMessage([&] { a.Narrow(0, 1, -1); }),
              UserError(HasSubstr("Narrow"), HasSubstr("[3, 5]")));
  EXPECT_THAT(ThrownMessage([&] { a.Narrow(2, 0, 1); }),
              UserError(HasSubstr("Narrow"), HasSubstr("[3, 5]")));
}

TEST(Errors, SelectOutOfRange) {
  Tensor a = F32({3, 5});
  EXPECT_THAT(ThrownMessage([&] { a.Select(0, 3); }),
              UserError(HasSubstr("Select"), HasSubstr("[3, 5]")));
  EXPECT_THAT(ThrownMessage([&] { a.Select(2, 0); }),
              UserError(HasSubstr("Select"), HasSubstr("[3, 5]")));
}

TEST(Errors, DimOutOfRange) {
  Tensor a = F32({3, 5});
  EXPECT_THAT(ThrownMessage([&] { Sum(a, {2}); }),
              UserError(HasSubstr("Sum"), HasSubstr("[3, 5]")));
  EXPECT_THAT(ThrownMessage([&] { Sum(a, {-3}); }),
              UserError(HasSubstr("Sum"), HasSubstr("[3, 5]")));
  EXPECT_THAT(ThrownMessage([&] {
                Mean(a, {0, 7});
              }),
              UserError(HasSubstr("Mean"), HasSubstr("[3, 5]")));
  EXPECT_THAT(ThrownMessage([&] { Max(a, {2}); }),
              UserError(HasSubstr("Max"), HasSubstr("[3, 5]")));
  EXPECT_THAT(ThrownMessage([&] { Min(a, {2}); }),
              UserError(HasSubstr("Min"), HasSubstr("[3, 5]")));
  EXPECT_THAT(ThrownMessage([&] { Var(a, {2}); }),
              UserError(HasSubstr("Var"), HasSubstr("[3, 5]")));
  EXPECT_THAT(ThrownMessage([&] { Argmax(a, 2); }),
              UserError(HasSubstr("Argmax"), HasSubstr("[3, 5]")));
  EXPECT_THAT(ThrownMessage([&] { Softmax(a, 2); }),
              UserError(HasSubstr("Softmax"), HasSubstr("[3, 5]")));
  EXPECT_THAT(ThrownMessage([&] { LogSoftmax(a, -3); }),
              UserError(HasSubstr("LogSoftmax"), HasSubstr("[3, 5]")));
  EXPECT_THAT(ThrownMessage([&] { a.Transpose(0, 2); }),
              UserError(HasSubstr("Transpose"), HasSubstr("[3, 5]")));
  EXPECT_THAT(ThrownMessage([&] { a.Unsqueeze(3); }),
              UserError(HasSubstr("Unsqueeze"), HasSubstr("[3, 5]")));
  EXPECT_THAT(ThrownMessage([&] { a.Squeeze(2); }),
              UserError(HasSubstr("Squeeze"), HasSubstr("[3, 5]")));
  EXPECT_THAT(ThrownMessage([&] { a.Flatten(0, 2); }),
              UserError(HasSubstr("Flatten"), HasSubstr("[3, 5]")));
  EXPECT_THAT(ThrownMessage([&] {
                Concat({a, a}, 2);
              }),
              UserError(HasSubstr("Concat"), HasSubstr("[3, 5]")));
  EXPECT_THAT(ThrownMessage([&] {
                Stack({a, a}, 3);
              }),
              UserError(HasSubstr("Stack"), HasSubstr("[3, 5]")));
  EXPECT_THAT(ThrownMessage([&] { Split(a, 2, 2); }),
              UserError(HasSubstr("Split"), HasSubstr("[3, 5]")));
  EXPECT_THAT(ThrownMessage([&] { Chunk(a, 2, -3); }),
              UserError(HasSubstr("Chunk"), HasSubstr("[3, 5]")));
}

TEST(Errors, RepeatedReductionDim) {
  // {1, -1} name the same dim of a 2-D tensor; reducing it twice is meaningless.
  EXPECT_THAT(ThrownMessage([] {
                Sum(F32({3, 5}), {1, -1});
              }),
              UserError(HasSubstr("Sum"), HasSubstr("[3, 5]")));
}

TEST(Errors, PermuteNotAPermutation) {
  Tensor a = F32({3, 5, 7});
  EXPECT_THAT(ThrownMessage([&] {
                a.Permute({0, 1});
              }),
              UserError(HasSubstr("Permute"), HasSubstr("[3, 5, 7]")));
  EXPECT_THAT(ThrownMessage([&] {
                a.Permute({0, 0, 1});
              }),
              UserError(HasSubstr("Permute"), HasSubstr("[3, 5, 7]")));
}

TEST(Errors, ViewWithIncompatibleStrides) {
  Tensor t = F32({3, 4}).Transpose(0, 1);  // [4, 3] with strides [1, 4]
  EXPECT_THAT(ThrownMessage([&] { t.View({12}); }),
              UserError(HasSubstr("View"), HasSubstr("[4, 3]"), HasSubstr("[12]")));
  // Reshape copies instead.
  EXPECT_EQ(t.Reshape({12}).shape(), Shape({12}));
}

TEST(Errors, ViewOrReshapeWithWrongNumel) {
  Tensor a = F32({3, 4});
  EXPECT_THAT(ThrownMessage([&] {
                a.Reshape({5, 3});
              }),
              UserError(HasSubstr("Reshape"), HasSubstr("[3, 4]"), HasSubstr("[5, 3]")));
  EXPECT_THAT(ThrownMessage([&] { a.View({5}); }),
              UserError(HasSubstr("View"), HasSubstr("[3, 4]"), HasSubstr("[5]")));
  EXPECT_THAT(ThrownMessage([&] {
                a.Reshape({5, -1});
              }),
              UserError(HasSubstr("Reshape"), HasSubstr("[3, 4]")));
  EXPECT_THAT(ThrownMessage([&] {
                a.Reshape({-1, -1});
              }),
              UserError(HasSubstr("Reshape"), HasSubstr("[3, 4]")));
}

TEST(Errors, ExpandToAnIncompatibleShape) {
  EXPECT_THAT(ThrownMessage([] {
                F32({3, 2}).Expand({3, 4});
              }),
              UserError(HasSubstr("Expand"), HasSubstr("[3, 2]"), HasSubstr("[3, 4]")));
  EXPECT_THAT(ThrownMessage([] {
                F32({3, 2}).Expand({2});
              }),
              UserError(HasSubstr("Expand"), HasSubstr("[3, 2]")));
}

TEST(Errors, SplitAndChunkSizes) {
  EXPECT_THAT(ThrownMessage([] { Split(F32({6, 2}), 0, 0); }), UserError(HasSubstr("Split")));
  EXPECT_THAT(ThrownMessage([] { Chunk(F32({6, 2}), 0, 0); }), UserError(HasSubstr("Chunk")));
}

// ---- joining ----

TEST(Errors, ConcatOfMismatchedShapes) {
  EXPECT_THAT(ThrownMessage([] {
                Concat({F32({2, 3}), F32({2, 4})}, 0);
              }),
              UserError(HasSubstr("Concat"), HasSubstr("[2, 3]"), HasSubstr("[2, 4]")));
  EXPECT_THAT(ThrownMessage([] {
                Concat({F32({2, 3}), F32({2, 3, 1})}, 0);
              }),
              UserError(HasSubstr("Concat"), HasSubstr("[2, 3]"), HasSubstr("[2, 3, 1]")));
  EXPECT_THAT(ThrownMessage([] { Concat({}, 0); }), UserError(HasSubstr("Concat")));
}

TEST(Errors, StackOfMismatchedShapes) {
  EXPECT_THAT(ThrownMessage([] {
                Stack({F32({2, 3}), F32({3, 2})}, 0);
              }),
              UserError(HasSubstr("Stack"), HasSubstr("[2, 3]"), HasSubstr("[3, 2]")));
  EXPECT_THAT(ThrownMessage([] { Stack({}, 0); }), UserError(HasSubstr("Stack")));
}

// ---- selection and masks ----

TEST(Errors, WhereAndMaskedFillMasks) {
  Tensor a = F32({3, 5});
  Tensor float_mask = F32({3, 5});
  Tensor bad_mask = Tensor::FromVector(std::vector<bool>(4, true), {4});
  EXPECT_THAT(ThrownMessage([&] { Where(float_mask, a, a); }),
              UserError(HasSubstr("Where"), HasSubstr(DTypeName(DType::kF32))));
  EXPECT_THAT(ThrownMessage([&] { Where(bad_mask, a, a); }),
              UserError(HasSubstr("Where"), HasSubstr("[4]"), HasSubstr("[3, 5]")));
  EXPECT_THAT(ThrownMessage([&] { MaskedFill(a, float_mask, 0.0); }),
              UserError(HasSubstr("MaskedFill"), HasSubstr(DTypeName(DType::kF32))));
  EXPECT_THAT(ThrownMessage([&] { MaskedFill(a, bad_mask, 0.0); }),
              UserError(HasSubstr("MaskedFill"), HasSubstr("[3, 5]"), HasSubstr("[4]")));
  EXPECT_THAT(ThrownMessage([&] { Softmax(a, -1, bad_mask); }),
              UserError(HasSubstr("Softmax"), HasSubstr("[3, 5]"), HasSubstr("[4]")));
}

// ---- normalisation, dropout, loss ----

TEST(Errors, LayerNormShapes) {
  Tensor a = F32({3, 5});
  EXPECT_THAT(ThrownMessage([&] { LayerNorm(a, 1, F32({4})); }),
              UserError(HasSubstr("LayerNorm"), HasSubstr("[3, 5]"), HasSubstr("[4]")));
  EXPECT_THAT(ThrownMessage([&] {
                LayerNorm(a, 1, Tensor(), F32({5, 1}));
              }),
              UserError(HasSubstr("LayerNorm"), HasSubstr("[5, 1]")));
  EXPECT_THAT(ThrownMessage([&] { LayerNorm(a, 3); }),
              UserError(HasSubstr("LayerNorm"), HasSubstr("[3, 5]")));
}

TEST(Errors, DropoutProbabilityOutOfRange) {
  Generator gen(0);
  Tensor a = F32({3, 5});
  EXPECT_THAT(ThrownMessage([&] { Dropout(a, -0.1, true, gen); }), UserError(HasSubstr("Dropout")));
  EXPECT_THAT(ThrownMessage([&] { Dropout(a, 1.5, true, gen); }), UserError(HasSubstr("Dropout")));
}

TEST(Errors, CrossEntropyTargetOutOfRange) {
  Tensor logits = F32({2, 3});
  EXPECT_THAT(ThrownMessage([&] {
                CrossEntropy(logits, Indices({0, 7}, {2}));
              }),
              UserError(HasSubstr("CrossEntropy"), HasSubstr("7")));
  EXPECT_THAT(ThrownMessage([&] {
                CrossEntropy(logits, Indices({0, 3}, {2}));
              }),
              UserError(HasSubstr("CrossEntropy")));
  EXPECT_THAT(ThrownMessage([&] {
                CrossEntropy(logits, Indices({-5, 0}, {2}));
              }),
              UserError(HasSubstr("CrossEntropy"), HasSubstr("-5")));
}

TEST(Errors, CrossEntropyShapesAndDtypes) {
  Tensor logits = F32({2, 3});
  EXPECT_THAT(ThrownMessage([&] {
                CrossEntropy(logits, Indices({0, 1, 2}, {3}));
              }),
              UserError(HasSubstr("CrossEntropy"), HasSubstr("[2, 3]"), HasSubstr("[3]")));
  EXPECT_THAT(ThrownMessage([&] {
                CrossEntropy(logits, Tensor::FromVector(std::vector<float>{0, 1}, {2}));
              }),
              UserError(HasSubstr("CrossEntropy"), HasSubstr(DTypeName(DType::kF32))));
  EXPECT_THAT(ThrownMessage([&] {
                CrossEntropy(logits, Indices({0, 1}, {2}), -100, 1.5);
              }),
              UserError(HasSubstr("CrossEntropy")));
}

// ---- autograd ----

TEST(Errors, BackwardTwice) {
  Tensor x = Tensor::FromVector(std::vector<double>{1, 2, 3}, {3});
  x.set_requires_grad(true);
  Tensor y = Sum(Mul(Exp(x), x));
  y.Backward();
  EXPECT_THAT(ThrownMessage([&] { y.Backward(); }), UserError(HasSubstr("freed")));
}

TEST(Errors, BackwardFromANonScalarWithoutAGradient) {
  Tensor x = Tensor::FromVector(std::vector<double>{1, 2, 3, 4, 5, 6}, {2, 3});
  x.set_requires_grad(true);
  Tensor y = MulScalar(x, 2);
  EXPECT_THAT(ThrownMessage([&] { y.Backward(); }),
              UserError(HasSubstr("Backward"), HasSubstr("[2, 3]")));
}

TEST(Errors, BackwardWithAWronglyShapedGradient) {
  Tensor x = Tensor::FromVector(std::vector<double>{1, 2, 3, 4, 5, 6}, {2, 3});
  x.set_requires_grad(true);
  Tensor y = MulScalar(x, 2);
  EXPECT_THAT(ThrownMessage([&] {
                y.Backward(F64({3, 2}));
              }),
              UserError(HasSubstr("Backward"), HasSubstr("[2, 3]"), HasSubstr("[3, 2]")));
}

TEST(Errors, BackwardOfATensorThatDoesNotRequireGrad) {
  Tensor y = Sum(F64({2, 3}));
  EXPECT_THAT(ThrownMessage([&] { y.Backward(); }), UserError(HasSubstr("Backward")));
}

TEST(Errors, IntegerTensorsCannotRequireGrad) {
  Tensor i = Indices({1, 2}, {2});
  EXPECT_THAT(ThrownMessage([&] { i.set_requires_grad(true); }),
              UserError(HasSubstr(DTypeName(DType::kI64))));
}

// ---- creation and access ----

TEST(Errors, FromVectorWithTheWrongNumberOfValues) {
  EXPECT_THAT(ThrownMessage([] {
                Tensor::FromVector(std::vector<float>(5, 0.f), {2, 3});
              }),
              UserError(HasSubstr("FromVector"), HasSubstr("[2, 3]"), HasSubstr("5")));
}

TEST(Errors, NegativeSizeInAShape) {
  EXPECT_THAT(ThrownMessage([] { Tensor::Zeros({-1, 3}); }), UserError(HasSubstr("[-1, 3]")));
}

// Issue 11: a zero dim makes the element count 0 but not the others' strides, which must still
// be countable ([0, 2^62, 4]: the stride of dim 0 is 2^64; it overflowed silently).
TEST(Errors, ShapesWhoseStridesOrBytesOverflow) {
  const int64_t big = int64_t{1} << 62;
  EXPECT_THAT(ThrownMessage([&] {
                Tensor::Empty({0, big, 4});
              }),
              UserError(HasSubstr("[0, 4611686018427387904, 4]"), HasSubstr("overflow")));
  EXPECT_THAT(ThrownMessage([&] { Tensor::Zeros({big, 4, 1}); }), UserError(HasSubstr("overflow")));
  EXPECT_THAT(ThrownMessage([&] { Tensor::Empty({big / 2}, DType::kF64); }),
              UserError(HasSubstr("bytes")));
  EXPECT_THAT(ThrownMessage([&] {
                Tensor::Zeros({0, 3}).Reshape({0, big, 4});
              }),
              UserError(HasSubstr("overflow")));
  // Zero elements with countable strides are fine, wherever the zero is.
  EXPECT_EQ(Tensor::Empty({big, 0}).numel(), 0);
  EXPECT_EQ(Tensor::Empty({big, 4, 0}).numel(), 0);
  EXPECT_EQ(Shape({0, big, 4}).numel(), 0);
  EXPECT_EQ(Tensor::Empty({0, 5, 3}).strides(), Shape({15, 3, 1}));
}

TEST(Errors, ItemOfAMultiElementTensor) {
  EXPECT_THAT(ThrownMessage([] {
                F32({2, 3}).item();
              }),
              UserError(HasSubstr("item"), HasSubstr("[2, 3]")));
}

TEST(Errors, DataWithTheWrongType) {
  Tensor a = F64({2, 3});
  EXPECT_THAT(ThrownMessage([&] { a.data<float>(); }),
              UserError(HasSubstr(DTypeName(DType::kF64)), HasSubstr(DTypeName(DType::kF32))));
}

TEST(Errors, CopyFromAnIncompatibleShape) {
  Tensor a = F32({2, 3});
  EXPECT_THAT(ThrownMessage([&] { a.CopyFrom(F32({4})); }),
              UserError(HasSubstr("CopyFrom"), HasSubstr("[2, 3]"), HasSubstr("[4]")));
}

TEST(Errors, TooManyDims) {
  EXPECT_THAT(ThrownMessage([] {
                Shape s;
                for (int i = 0; i <= Shape::kMaxDims; ++i) s.push_back(1);
              }),
              UserError(HasSubstr(std::to_string(Shape::kMaxDims))));
}

}  // namespace
}  // namespace attend
