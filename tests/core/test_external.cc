// FromExternal: tensors over memory attend did not allocate.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <memory>
#include <vector>

#include "attend/external.h"
#include "attend/ops.h"
#include "support/gradcheck.h"

namespace attend {
namespace {

TEST(FromExternal, SharesTheMemoryAndReleasesTheOwnerWithTheLastView) {
  auto buffer = std::make_shared<std::vector<float>>(std::vector<float>{1, 2, 3, 4, 5, 6});
  bool released = false;
  std::shared_ptr<void> owner(buffer.get(), [&released, buffer](void*) mutable {
    released = true;
    buffer.reset();
  });
  float* data = buffer->data();
  Tensor row;
  {
    Tensor t = FromExternal(data, {2, 3}, {3, 1}, DType::kF32, std::move(owner));
    EXPECT_EQ(t.data<float>(), data);
    EXPECT_EQ(t.ToVector<float>(), (std::vector<float>{1, 2, 3, 4, 5, 6}));
    data[4] = 50;
    EXPECT_EQ(t.Select(0, 1).ToVector<float>(), (std::vector<float>{4, 50, 6}));
    t.Select(0, 0).Fill(0);  // writes through
    EXPECT_EQ(data[0], 0);
    // An op's result is new memory; the view `row` keeps the external memory alive.
    Tensor doubled = MulScalar(t, 2.0);
    EXPECT_NE(doubled.data<float>(), data);
    row = t.Select(0, 1);
  }
  EXPECT_FALSE(released);
  EXPECT_EQ(row.ToVector<float>(), (std::vector<float>{4, 50, 6}));
  row = Tensor();
  EXPECT_TRUE(released);
}

TEST(FromExternal, StridedAndTransposedLayouts) {
  std::vector<double> v(12);
  for (int i = 0; i < 12; ++i) v[i] = i;
  // Every second column of a 3 x 4 matrix, and its transpose.
  Tensor t = FromExternal(v.data(), {3, 2}, {4, 2}, DType::kF64, nullptr);
  EXPECT_EQ(t.ToVector<double>(), (std::vector<double>{0, 2, 4, 6, 8, 10}));
  Tensor m = FromExternal(v.data(), {4, 3}, {1, 4}, DType::kF64, nullptr);
  EXPECT_EQ(Sum(m, {1}).ToVector<double>(), (std::vector<double>{12, 15, 18, 21}));
  Tensor empty = FromExternal(nullptr, {0, 5}, {5, 1}, DType::kF32, nullptr);
  EXPECT_EQ(empty.numel(), 0);
}

TEST(FromExternal, RefusesBadLayouts) {
  float x[4] = {0, 0, 0, 0};
  EXPECT_THAT(gradcheck::ThrownMessage([&] {
                FromExternal(x, {2, 2}, {2}, DType::kF32, nullptr);
              }),
              ::testing::HasSubstr("differ in rank"));
  EXPECT_THAT(gradcheck::ThrownMessage([&] {
                FromExternal(x, {2, 2}, {-2, 1}, DType::kF32, nullptr);
              }),
              ::testing::HasSubstr("negative stride"));
  EXPECT_THAT(
      gradcheck::ThrownMessage([&] { FromExternal(nullptr, {2}, {1}, DType::kF32, nullptr); }),
      ::testing::HasSubstr("no memory"));
}

}  // namespace
}  // namespace attend
