// CropZoom and BoxcarMask (attend/ops/image.h): the PyTorch oracle
// (tests/reference/image_reference.py -> image_reference.bin: grid_sample over affine_grid, and
// the mask's formula), f64 finite-difference gradient checks, properties and error messages.
#include <cmath>
#include <iostream>
#include <optional>
#include <string>
#include <vector>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "attend/attend.h"
#include "attend/ops/image.h"
#include "support/gradcheck.h"
#include "support/reference_compare.h"
#include "support/reference_file.h"

namespace attend {
namespace {

using gradcheck::GradCheck;
using gradcheck::RandomUniform;
using gradcheck::ThrownMessage;
using reference::ExpectMatches;
using reference::OpKey;
using reference::Ref;
using reference::RefCase;
using reference::ToTensor;
using ::testing::HasSubstr;
using Xs = std::vector<Tensor>;

// Boxes [B, 3] from a flat list of (t_x, t_y, t_l).
Tensor Boxes(const std::vector<double>& v, DType dtype = DType::kF64) {
  return Tensor::FromVector(v, Shape{static_cast<int64_t>(v.size() / 3), 3}).To(dtype);
}

// ---------------------------------------------------------------------------------------------
// PyTorch oracle
// ---------------------------------------------------------------------------------------------

const reference::LoadedCases& Load() {
  static const reference::LoadedCases loaded =
      reference::LoadReferenceCases("image_reference.bin", "tests/reference/image_reference.py");
  return loaded;
}

// Replays one case: the op on leaf copies of the inputs, then backward with torch's cotangent.
// Tolerances (reference::Tolerance, |got - want| <= atol * n + rtol * |want|) scale with n, the
// number of terms summed into one element: 4 corners per sample; for the image's gradient every
// sample may land in one pixel's cell (tiny boxes, upsampling), so n = out_h * out_w; for the
// box's gradient all C * out_h * out_w samples are summed. The mask's value is a product of two
// sigmoid differences (n = 4), its box gradient a sum over the h * w pixels.
void ReplayCase(const RefCase& c) {
  const OpKey key(c.op);
  std::vector<Tensor> leaves;
  for (int i = 0; c.Find(reference::Named("x", i)) != nullptr; ++i) {
    Tensor t = ToTensor(Ref(c, reference::Named("x", i)));
    t.set_requires_grad(true);
    leaves.push_back(t);
  }
  Tensor y;
  double n_y = 1, n_x = 1, n_boxes = 1;
  int boxes_input = 1;
  if (key.name() == "crop_zoom") {
    const std::vector<int64_t> out = key.IntList("out");
    ASSERT_EQ(out.size(), 2u) << c.op;
    y = CropZoom(leaves.at(0), leaves.at(1), out[0], out[1]);
    n_y = 4;
    n_x = static_cast<double>(out[0] * out[1]);
    n_boxes = static_cast<double>(leaves[0].size(1) * out[0] * out[1]);
  } else if (key.name() == "boxcar_mask") {
    const int64_t h = key.Int("h"), w = key.Int("w");
    y = BoxcarMask(leaves.at(0), h, w, key.Double("k"));
    n_y = 4;
    n_boxes = static_cast<double>(h * w);
    boxes_input = 0;
  } else {
    FAIL() << "case " << c.name << ": unknown op " << c.op;
  }
  ExpectMatches(c, "output y0", y, Ref(c, "y0"), n_y);
  Backward({y}, {ToTensor(Ref(c, "dy0"))});
  for (int i = 0; i < static_cast<int>(leaves.size()); ++i) {
    const double n = i == boxes_input ? n_boxes : n_x;
    ExpectMatches(c, "gradient " + reference::Named("dx", i), leaves[i].grad(),
                  Ref(c, reference::Named("dx", i)), n);
  }
}

int ReplayFamily(const std::string& op) {
  const reference::LoadedCases& l = Load();
  EXPECT_TRUE(l.error.empty()) << l.error;
  int count = 0;
  for (const RefCase& c : l.cases) {
    if (OpKey(c.op).name() != op) continue;
    ++count;
    SCOPED_TRACE("case " + c.name);
    try {
      ReplayCase(c);
    } catch (const std::exception& e) {
      ADD_FAILURE() << "case " << c.name << " [" << c.op << "]: " << e.what();
    }
  }
  std::cout << "[ reference ] " << op << ": " << count << " torch cases\n";
  return count;
}

TEST(ImageOpsTorchReference, CropZoom) { EXPECT_GE(ReplayFamily("crop_zoom"), 10); }
TEST(ImageOpsTorchReference, BoxcarMask) { EXPECT_GE(ReplayFamily("boxcar_mask"), 6); }

TEST(ImageOpsTorchReference, EveryCaseHasARunner) {
  const reference::LoadedCases& l = Load();
  ASSERT_TRUE(l.error.empty()) << l.error;
  for (const RefCase& c : l.cases) {
    const std::string name = OpKey(c.op).name();
    EXPECT_TRUE(name == "crop_zoom" || name == "boxcar_mask") << c.name << ": " << c.op;
  }
}

// ---------------------------------------------------------------------------------------------
// Gradient checks (f64, central differences; tests/support/gradcheck.h). Boxes are drawn at
// random, so no sample position sits within eps of a pixel centre, where the bilinear slope
// jumps.
// ---------------------------------------------------------------------------------------------

struct ZoomCase {
  Shape x;
  int64_t out_h, out_w;
  std::vector<double> boxes;
};

TEST(ImageOpsGradCheck, CropZoom) {
  const std::vector<ZoomCase> cases = {
      {{2, 2, 7, 8}, 5, 4, {3.71, 4.13, 2.27, 4.42, 3.05, 1.61}},   // inside
      {{2, 1, 6, 9}, 4, 6, {-0.83, 5.37, 2.94, 8.31, 1.17, 3.52}},  // across the edges
      {{1, 3, 5, 5}, 3, 3, {2.43, 2.61, 0.173}},                    // tiny: one cell
      {{2, 2, 5, 6}, 4, 5, {2.91, 2.37, 6.13, 3.33, 2.71, 4.07}},   // larger than the image
      {{2, 1, 4, 4}, 9, 7, {2.03, 1.87, 1.93, 1.21, 2.77, 1.44}},   // upsampling
      {{1, 2, 6, 6}, 3, 3, {-4.37, 2.81, 1.13}},                    // wholly outside
  };
  uint64_t seed = 11;
  for (const ZoomCase& c : cases) {
    SCOPED_TRACE("x " + c.x.str() + " out " + std::to_string(c.out_h) + "x" +
                 std::to_string(c.out_w));
    Xs in = {RandomUniform(c.x, seed++), Boxes(c.boxes)};
    EXPECT_TRUE(GradCheck([&](const Xs& v) { return CropZoom(v[0], v[1], c.out_h, c.out_w); }, in));
  }
}

TEST(ImageOpsGradCheck, BoxcarMask) {
  struct MaskCase {
    int64_t h, w;
    double k;
    std::vector<double> boxes;
  };
  const std::vector<MaskCase> cases = {
      {6, 7, 10.0, {3.37, 2.91, 1.73, 1.13, 4.52, 2.41}},
      {5, 5, 1.0, {-1.3, 6.1, 2.2}},
      {4, 9, 3.0, {4.4, 2.2, 9.7, 0.7, 0.3, 0.21}},
  };
  for (const MaskCase& c : cases) {
    EXPECT_TRUE(
        GradCheck([&](const Xs& v) { return BoxcarMask(v[0], c.h, c.w, c.k); }, {Boxes(c.boxes)}));
  }
}

// The two composed as RA-CNN does: crop of the masked image, gradients to the image and box.
TEST(ImageOpsGradCheck, MaskThenZoom) {
  Xs in = {RandomUniform(Shape{2, 2, 8, 8}, 5), Boxes({4.31, 3.77, 2.63, 5.12, 4.43, 1.91})};
  EXPECT_TRUE(GradCheck(
      [](const Xs& v) { return CropZoom(Mul(v[0], BoxcarMask(v[1], 8, 8, 2.0)), v[1], 5, 6); },
      in));
}

// ---------------------------------------------------------------------------------------------
// Properties
// ---------------------------------------------------------------------------------------------

void ExpectAllNear(const Tensor& got, const Tensor& want, double tol) {
  ASSERT_EQ(got.shape(), want.shape());
  const std::vector<double> g = got.To(DType::kF64).ToVector<double>();
  const std::vector<double> w = want.To(DType::kF64).ToVector<double>();
  for (size_t i = 0; i < g.size(); ++i) ASSERT_NEAR(g[i], w[i], tol) << "at flat " << i;
}

TEST(ImageOps, IdentityBoxReproducesTheImage) {
  for (DType dt : {DType::kF32, DType::kF64}) {
    for (int64_t side : {1, 7, 10, 96}) {
      Tensor x = RandomUniform(Shape{2, 3, side, side}, 3).To(dt);
      const double half = side / 2.0;
      Tensor y = CropZoom(x, Boxes({half, half, half, half, half, half}, dt), side, side);
      ExpectAllNear(y, x, dt == DType::kF32 ? 1e-6 : 1e-12);
    }
  }
}

// A box whose side is the output size and whose corner is a pixel corner samples pixel centres:
// the crop is the sub-image itself.
TEST(ImageOps, PixelAlignedBoxIsAPlainCrop) {
  Tensor x = RandomUniform(Shape{1, 2, 9, 11}, 4);
  // Corner (x0, y0) = (3, 2), side 4: t = (5, 4, 2).
  Tensor y = CropZoom(x, Boxes({5.0, 4.0, 2.0}), 4, 4);
  ExpectAllNear(y, x.Narrow(2, 2, 4).Narrow(3, 3, 4).Contiguous(), 1e-12);
}

TEST(ImageOps, ZoomOfAConstantImageIsConstantInsideTheImage) {
  const int64_t h = 12, w = 10, out = 16;
  Tensor x = Tensor::Full(Shape{3, 2, h, w}, 0.7, DType::kF64);
  // Inside, across an edge, larger than the image.
  const std::vector<double> b = {5.1, 6.3, 3.7, 0.4, 11.2, 4.9, 4.8, 6.1, 20.0};
  Tensor y = CropZoom(x, Boxes(b), out, out);
  const std::vector<double> v = y.ToVector<double>();
  int inside = 0, outside = 0;
  for (int64_t n = 0; n < 3; ++n) {
    for (int64_t i = 0; i < out; ++i) {
      for (int64_t j = 0; j < out; ++j) {
        // Sample position in pixel-centre index units (attend/ops/image.h).
        const double px = b[3 * n] + b[3 * n + 2] * ((2.0 * j + 1) / out - 1) - 0.5;
        const double py = b[3 * n + 1] + b[3 * n + 2] * ((2.0 * i + 1) / out - 1) - 0.5;
        for (int64_t c = 0; c < 2; ++c) {
          const double got = v[((n * 2 + c) * out + i) * out + j];
          if (px >= 0 && px <= w - 1 && py >= 0 && py <= h - 1) {
            ++inside;
            ASSERT_NEAR(got, 0.7, 1e-12) << "image " << n << " at " << i << ", " << j;
          } else if (px <= -1 || px >= w || py <= -1 || py >= h) {
            ++outside;
            ASSERT_EQ(got, 0.0) << "image " << n << " at " << i << ", " << j;
          }
        }
      }
    }
  }
  EXPECT_GT(inside, 300);
  EXPECT_GT(outside, 50);
}

TEST(ImageOps, TinyBoxRepeatsOneInterpolatedValue) {
  Tensor x = RandomUniform(Shape{1, 1, 5, 5}, 6);
  // t_l = 0: every sample at (2.8, 2.1), which is (2.3, 1.6) in pixel-centre index units: columns
  // 2 and 3 weighted 0.7 and 0.3, rows 1 and 2 weighted 0.4 and 0.6.
  Tensor y = CropZoom(x, Boxes({2.8, 2.1, 0.0}), 3, 4);
  const std::vector<double> xv = x.ToVector<double>();
  auto at = [&](int i, int j) { return xv[i * 5 + j]; };
  const double want =
      0.4 * (0.7 * at(1, 2) + 0.3 * at(1, 3)) + 0.6 * (0.7 * at(2, 2) + 0.3 * at(2, 3));
  for (double got : y.ToVector<double>()) EXPECT_NEAR(got, want, 1e-12);
}

TEST(ImageOps, MaskOfAHugeBoxIsOneAndOfAFarBoxIsZero) {
  Tensor m = BoxcarMask(Boxes({48, 48, 1000, 10, 10, 1000}, DType::kF32), 96, 96, 10.0);
  ASSERT_EQ(m.shape(), (Shape{2, 1, 96, 96}));
  for (float v : m.ToVector<float>()) ASSERT_NEAR(v, 1.0f, 1e-6f);
  Tensor far = BoxcarMask(Boxes({300, 300, 5}), 20, 20, 10.0);
  for (double v : far.ToVector<double>()) ASSERT_NEAR(v, 0.0, 1e-12);
}

TEST(ImageOps, MaskIsABoxcar) {
  // Box [3, 9] x [2, 6]: pixel centres inside are >= 1 pixel from the edges with k = 10.
  Tensor m = BoxcarMask(Boxes({6.0, 4.0, 3.0, 6.0, 4.0, 3.0}).Narrow(0, 0, 1), 8, 12, 10.0);
  const std::vector<double> v = m.ToVector<double>();
  for (int64_t i = 0; i < 8; ++i) {
    for (int64_t j = 0; j < 12; ++j) {
      const double x = j + 0.5, y = i + 0.5;
      const bool in = x > 3 && x < 9 && y > 1 && y < 7;
      // The nearest centre is half a pixel from an edge: s(5) = 0.9933, so |m - in| < 0.014.
      EXPECT_NEAR(v[i * 12 + j], in ? 1.0 : 0.0, 0.014) << i << ", " << j;
    }
  }
}

TEST(ImageOps, GradientsReachTheBoxThroughMaskAndCrop) {
  Tensor x = RandomUniform(Shape{2, 1, 16, 16}, 8).To(DType::kF32);
  Tensor boxes = Boxes({8, 8, 4, 6, 9, 5}, DType::kF32);
  boxes.set_requires_grad(true);
  Tensor y = CropZoom(Mul(x, BoxcarMask(boxes, 16, 16, 10.0)), boxes, 8, 8);
  Backward({Sum(y)});
  ASSERT_TRUE(boxes.grad().defined());
  double norm = 0;
  for (float g : boxes.grad().ToVector<float>()) norm += std::fabs(g);
  EXPECT_GT(norm, 0.0);
}

TEST(ImageOps, NoGradientRecordedWithoutRequiresGrad) {
  Tensor y = CropZoom(RandomUniform(Shape{1, 1, 4, 4}, 1), Boxes({2, 2, 1}), 2, 2);
  EXPECT_FALSE(y.requires_grad());
}

// ---------------------------------------------------------------------------------------------
// Errors
// ---------------------------------------------------------------------------------------------

TEST(ImageOps, BadInputsNameTheProblem) {
  Tensor x = Tensor::Zeros(Shape{2, 1, 8, 8});
  Tensor b = Tensor::Zeros(Shape{2, 3});
  EXPECT_THAT(ThrownMessage([&] {
                CropZoom(Tensor::Zeros(Shape{1, 8, 8}), b, 4, 4);
              }),
              HasSubstr("CropZoom: input must be [B, C, H, W], got f32[1, 8, 8]"));
  EXPECT_THAT(ThrownMessage([&] {
                CropZoom(x, Tensor::Zeros(Shape{3, 3}), 4, 4);
              }),
              HasSubstr("boxes must be [B, 3]"));
  EXPECT_THAT(ThrownMessage([&] {
                CropZoom(x, Tensor::Zeros(Shape{2, 4}), 4, 4);
              }),
              HasSubstr("got f32[2, 4]"));
  EXPECT_THAT(ThrownMessage([&] {
                CropZoom(x, Tensor::Zeros(Shape{2, 3}, DType::kF64), 4, 4);
              }),
              HasSubstr("CropZoom: dtypes differ"));
  EXPECT_THAT(ThrownMessage([&] { CropZoom(x, b, 0, 4); }),
              HasSubstr("CropZoom: output size must be positive, got 0 x 4"));
  EXPECT_THAT(ThrownMessage([&] {
                CropZoom(Tensor::Zeros(Shape{2, 1, 0, 8}), b, 4, 4);
              }),
              HasSubstr("has an empty image"));
  EXPECT_THAT(ThrownMessage([&] {
                CropZoom(Tensor::Zeros(Shape{2, 1, 8, 8}, DType::kI64), b, 4, 4);
              }),
              HasSubstr("CropZoom: expected a floating tensor"));
  EXPECT_THAT(ThrownMessage([&] { CropZoom(Tensor(), b, 4, 4); }), HasSubstr("undefined"));
  EXPECT_THAT(ThrownMessage([&] {
                BoxcarMask(Tensor::Zeros(Shape{2, 3, 1}), 4, 4, 10);
              }),
              HasSubstr("BoxcarMask: boxes must be [B, 3]"));
  EXPECT_THAT(ThrownMessage([&] { BoxcarMask(b, 4, 0, 10); }),
              HasSubstr("BoxcarMask: mask size must be positive, got 4 x 0"));
  EXPECT_THAT(ThrownMessage([&] { BoxcarMask(b, 4, 4, 0); }),
              HasSubstr("BoxcarMask: sharpness k must be positive"));
  EXPECT_THAT(ThrownMessage([&] { BoxcarMask(b, 4, 4, std::nan("")); }),
              HasSubstr("BoxcarMask: sharpness k must be positive"));
}

}  // namespace
}  // namespace attend
