// PyTorch oracle tests: every op's values and gradients against torch on the same inputs.
//
// tests/reference/ops_reference.py (run by CTest as the generate_ops_reference fixture) writes
// $ATTEND_REFERENCE_DIR/ops_reference.bin: per case an op key, inputs x<i>, torch's outputs y<i>,
// cotangents dy<i> and the gradients dx<i> of sum(y * dy) w.r.t. each floating input. Each TEST
// below replays one op family through attend and compares; a failure names the case.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <functional>
#include <iostream>
#include <optional>
#include <sstream>
#include <string>
#include <vector>

#include "attend/attend.h"
#include "support/reference_compare.h"
#include "support/reference_file.h"

namespace attend {
namespace {

using reference::ExpectMatches;
using reference::Named;
using reference::OpKey;
using reference::Ref;
using reference::RefCase;
using reference::RefDType;
using reference::RefTensor;
using reference::ToDType;
using reference::ToTensor;
using reference::ValuesOf;

// The file, loaded once per process.
const reference::LoadedCases& Load() {
  static const reference::LoadedCases loaded =
      reference::LoadReferenceCases("ops_reference.bin", "tests/reference/ops_reference.py");
  return loaded;
}

// ---- tolerances ----
// An element passes when |got - want| <= kAtol * n + kRtol * |want|, where n >= 1 is the number
// of terms the op accumulates into one element (a reduction's length, a matmul's inner size, the
// fan-in of a broadcast input's gradient; see the Acc* functions). The worst-case rounding error
// of a float sum grows linearly in n, and torch and attend may sum in different orders, so the
// absolute part scales with n; the relative part stays fixed. kF32Rtol is ~84 ulp, room for
// differently-approximated exp/log/erf/tanh; float64 cases are held far tighter. The values are
// reference::Tolerance's defaults (tests/support/reference_compare.h).

std::vector<int> IntsOf(const std::vector<int64_t>& v) {
  return std::vector<int>(v.begin(), v.end());
}

bool AllZero(const RefTensor& t) {
  for (double v : t.AsDoubles()) {
    if (v != 0.0) return false;
  }
  return true;
}

// ---- the ops ----

using Runner = std::function<std::vector<Tensor>(const OpKey&, const std::vector<Tensor>&)>;
// Accumulation length n for the tolerance (see the top of the file).
using AccFn = std::function<double(const OpKey&, const RefCase&)>;

struct OpSpec {
  std::string name;
  std::string family;
  Runner run;
  AccFn acc;
};

double AccOne(const OpKey&, const RefCase&) { return 1.0; }

// Elementwise and view ops: a broadcast input's gradient sums numel(y0) / numel(x_i) terms.
double AccBroadcast(const OpKey&, const RefCase& c) {
  double n = 1.0;
  double out = static_cast<double>(Ref(c, "y0").numel());
  for (int i = 0; const RefTensor* x = c.Find(Named("x", i)); ++i) {
    if (x->numel() > 0) n = std::max(n, out / static_cast<double>(x->numel()));
  }
  return n;
}

// Reductions: each output element sums numel(x0) / numel(y0) inputs.
double AccReduce(const OpKey&, const RefCase& c) {
  double out = static_cast<double>(std::max<int64_t>(1, Ref(c, "y0").numel()));
  return std::max(1.0, static_cast<double>(Ref(c, "x0").numel()) / out);
}

bool Transposed(const OpKey& k, int64_t input) {
  if (!k.Has("tr")) return false;
  std::vector<int64_t> tr = k.IntList("tr");
  return std::find(tr.begin(), tr.end(), input) != tr.end();
}

// Matmul: numel(y) * K multiply-adds in all, spread over the smallest of the three tensors.
double AccMatmul(const OpKey& k, const RefCase& c) {
  const RefTensor& a = Ref(c, "x0");
  const RefTensor& b = Ref(c, "x1");
  int64_t inner = a.dims.size() == 1 ? a.dims[0]
                  : Transposed(k, 0) ? a.dims[a.dims.size() - 2]
                                     : a.dims.back();
  double total = static_cast<double>(std::max<int64_t>(1, Ref(c, "y0").numel())) * inner;
  double smallest = static_cast<double>(
      std::min({a.numel(), b.numel(), std::max<int64_t>(1, Ref(c, "y0").numel())}));
  return std::max(1.0, total / smallest);
}

double AccSoftmax(const OpKey& k, const RefCase& c) {
  const RefTensor& x = Ref(c, "x0");
  int64_t nd = static_cast<int64_t>(x.dims.size());
  int64_t d = k.Int("dim");
  if (d < 0) d += nd;
  if (Transposed(k, 0) && d >= nd - 2) d = (d == nd - 1) ? nd - 2 : nd - 1;
  return static_cast<double>(x.dims.at(d));
}

// LayerNorm: the statistics sum over the normalised part, weight/bias grads over the rest.
double AccLayerNorm(const OpKey& k, const RefCase& c) {
  const RefTensor& x = Ref(c, "x0");
  int64_t inner = 1;
  for (int64_t i = 0; i < k.Int("nd"); ++i) inner *= x.dims[x.dims.size() - 1 - i];
  return static_cast<double>(std::max(inner, x.numel() / std::max<int64_t>(1, inner)));
}

double AccNumelX0(const OpKey&, const RefCase& c) {
  return std::max(1.0, static_cast<double>(Ref(c, "x0").numel()));
}

// Index ops: a repeated index adds up to numel(index) gradient terms into one element.
double AccNumelX1(const OpKey&, const RefCase& c) {
  return std::max(1.0, static_cast<double>(Ref(c, "x1").numel()));
}

// A parameter that names a dim (or another small int) of the op.
int IntParam(const OpKey& k, const char* name) { return static_cast<int>(k.Int(name)); }

Tensor OptionalInput(const std::vector<Tensor>& in, size_t i) {
  return in.size() > i ? in[i] : Tensor();
}

std::vector<OpSpec> BuildOps() {
  std::vector<OpSpec> ops;
  // The runner comes last so each entry reads as name, family, tolerance rule, body.
  auto add = [&ops](const std::string& name, const std::string& family, AccFn acc, Runner run) {
    ops.push_back({name, family, std::move(run), std::move(acc)});
  };
  using In = const std::vector<Tensor>&;
  using K = const OpKey&;
  using V = std::vector<Tensor>;

  // Arithmetic.
  add("add", "Arithmetic", AccBroadcast, [](K, In in) { return V{Add(in.at(0), in.at(1))}; });
  add("sub", "Arithmetic", AccBroadcast, [](K, In in) { return V{Sub(in.at(0), in.at(1))}; });
  add("mul", "Arithmetic", AccBroadcast, [](K, In in) { return V{Mul(in.at(0), in.at(1))}; });
  add("div", "Arithmetic", AccBroadcast, [](K, In in) { return V{Div(in.at(0), in.at(1))}; });
  add("add_scalar", "Arithmetic", AccOne,
      [](K k, In in) { return V{AddScalar(in.at(0), k.Double("s"))}; });
  add("mul_scalar", "Arithmetic", AccOne,
      [](K k, In in) { return V{MulScalar(in.at(0), k.Double("s"))}; });
  // The operators of tensor.h with a double on either side.
  add("rsub_scalar", "Arithmetic", AccOne, [](K k, In in) { return V{k.Double("s") - in.at(0)}; });
  add("rdiv_scalar", "Arithmetic", AccOne, [](K k, In in) { return V{k.Double("s") / in.at(0)}; });
  add("sub_scalar", "Arithmetic", AccOne, [](K k, In in) { return V{in.at(0) - k.Double("s")}; });
  add("div_scalar", "Arithmetic", AccOne, [](K k, In in) { return V{in.at(0) / k.Double("s")}; });
  add("neg", "Arithmetic", AccOne, [](K, In in) { return V{Neg(in.at(0))}; });
  add("neg_operator", "Arithmetic", AccOne, [](K, In in) { return V{-in.at(0)}; });

  // Unary math.
  add("pow", "UnaryMath", AccOne, [](K k, In in) { return V{Pow(in.at(0), k.Double("p"))}; });
  add("abs", "UnaryMath", AccOne, [](K, In in) { return V{Abs(in.at(0))}; });
  add("exp", "UnaryMath", AccOne, [](K, In in) { return V{Exp(in.at(0))}; });
  add("log", "UnaryMath", AccOne, [](K, In in) { return V{Log(in.at(0))}; });
  add("sqrt", "UnaryMath", AccOne, [](K, In in) { return V{Sqrt(in.at(0))}; });
  add("rsqrt", "UnaryMath", AccOne, [](K, In in) { return V{Rsqrt(in.at(0))}; });

  // Activations.
  add("tanh", "Activations", AccOne, [](K, In in) { return V{Tanh(in.at(0))}; });
  add("sigmoid", "Activations", AccOne, [](K, In in) { return V{Sigmoid(in.at(0))}; });
  add("relu", "Activations", AccOne, [](K, In in) { return V{Relu(in.at(0))}; });
  add("gelu", "Activations", AccOne, [](K, In in) { return V{Gelu(in.at(0))}; });
  add("clamp", "Activations", AccOne, [](K k, In in) {
    std::optional<double> lo, hi;
    if (k.Has("lo")) lo = k.Double("lo");
    if (k.Has("hi")) hi = k.Double("hi");
    return V{Clamp(in.at(0), lo, hi)};
  });

  // Comparisons.
  add("eq", "Comparisons", AccOne, [](K, In in) { return V{Eq(in.at(0), in.at(1))}; });
  add("ne", "Comparisons", AccOne, [](K, In in) { return V{Ne(in.at(0), in.at(1))}; });
  add("lt", "Comparisons", AccOne, [](K, In in) { return V{Lt(in.at(0), in.at(1))}; });
  add("le", "Comparisons", AccOne, [](K, In in) { return V{Le(in.at(0), in.at(1))}; });
  add("gt", "Comparisons", AccOne, [](K, In in) { return V{Gt(in.at(0), in.at(1))}; });
  add("ge", "Comparisons", AccOne, [](K, In in) { return V{Ge(in.at(0), in.at(1))}; });
  add("logical_not", "Comparisons", AccOne, [](K, In in) { return V{LogicalNot(in.at(0))}; });

  // Selection.
  add("where", "Selection", AccBroadcast,
      [](K, In in) { return V{Where(in.at(0), in.at(1), in.at(2))}; });
  add("masked_fill", "Selection", AccOne,
      [](K k, In in) { return V{MaskedFill(in.at(0), in.at(1), k.Double("value"))}; });

  // Reductions (amax/amin semantics for max/min); an empty dims list means all dims.
  add("sum", "Reductions", AccReduce,
      [](K k, In in) { return V{Sum(in.at(0), IntsOf(k.IntList("dims")), k.Bool("keepdim"))}; });
  add("mean", "Reductions", AccReduce,
      [](K k, In in) { return V{Mean(in.at(0), IntsOf(k.IntList("dims")), k.Bool("keepdim"))}; });
  add("max", "Reductions", AccReduce,
      [](K k, In in) { return V{Max(in.at(0), IntsOf(k.IntList("dims")), k.Bool("keepdim"))}; });
  add("min", "Reductions", AccReduce,
      [](K k, In in) { return V{Min(in.at(0), IntsOf(k.IntList("dims")), k.Bool("keepdim"))}; });
  add("var", "Variance", AccReduce, [](K k, In in) {
    return V{
        Var(in.at(0), IntsOf(k.IntList("dims")), IntParam(k, "correction"), k.Bool("keepdim"))};
  });
  add("argmax", "ArgReductions", AccOne,
      [](K k, In in) { return V{Argmax(in.at(0), IntParam(k, "dim"), k.Bool("keepdim"))}; });
  add("argmin", "ArgReductions", AccOne,
      [](K k, In in) { return V{Argmin(in.at(0), IntParam(k, "dim"), k.Bool("keepdim"))}; });

  add("matmul", "Matmul", AccMatmul, [](K, In in) { return V{Matmul(in.at(0), in.at(1))}; });

  // Softmax family; an optional second input is the mask (true = excluded).
  add("softmax", "Softmax", AccSoftmax,
      [](K k, In in) { return V{Softmax(in.at(0), IntParam(k, "dim"), OptionalInput(in, 1))}; });
  add("log_softmax", "Softmax", AccSoftmax,
      [](K k, In in) { return V{LogSoftmax(in.at(0), IntParam(k, "dim"), OptionalInput(in, 1))}; });

  // LayerNorm: inputs are x, then weight if w=1, then bias if b=1.
  add("layer_norm", "LayerNorm", AccLayerNorm, [](K k, In in) {
    size_t next = 1;
    Tensor w = k.Bool("w") ? in.at(next++) : Tensor();
    Tensor b = k.Bool("b") ? in.at(next++) : Tensor();
    double eps = k.Has("eps") ? k.Double("eps") : 1e-5;
    return V{LayerNorm(in.at(0), IntParam(k, "nd"), w, b, eps)};
  });

  // Indexing.
  add("embedding", "Embedding", AccNumelX1,
      [](K k, In in) { return V{Embedding(in.at(0), in.at(1), k.Int("padding_idx", -1))}; });
  add("index_select", "Indexing", AccNumelX1,
      [](K k, In in) { return V{IndexSelect(in.at(0), IntParam(k, "dim"), in.at(1))}; });
  add("gather", "Indexing", AccNumelX1,
      [](K k, In in) { return V{Gather(in.at(0), IntParam(k, "dim"), in.at(1))}; });
  add("topk", "TopK", AccOne, [](K k, In in) {
    auto [values, indices] = TopK(in.at(0), k.Int("k"), IntParam(k, "dim"), k.Bool("largest"));
    return V{values, indices};
  });

  // Joining and splitting.
  add("concat", "JoinSplit", AccOne, [](K k, In in) { return V{Concat(in, IntParam(k, "dim"))}; });
  add("stack", "JoinSplit", AccOne, [](K k, In in) { return V{Stack(in, IntParam(k, "dim"))}; });
  add("split", "JoinSplit", AccOne,
      [](K k, In in) { return Split(in.at(0), k.Int("size"), IntParam(k, "dim")); });
  add("chunk", "JoinSplit", AccOne,
      [](K k, In in) { return Chunk(in.at(0), k.Int("chunks"), IntParam(k, "dim")); });

  add("cross_entropy", "CrossEntropy", AccNumelX0, [](K k, In in) {
    const std::string& r = k.Str("reduction");
    if (r != "mean" && r != "sum" && r != "none") throw Error("unknown reduction " + r);
    Reduction red = r == "mean"  ? Reduction::kMean
                    : r == "sum" ? Reduction::kSum
                                 : Reduction::kNone;
    return V{CrossEntropy(in.at(0), in.at(1), k.Int("ignore_index"), k.Double("smoothing"), red)};
  });

  // Views (and Contiguous, Clone, To), each followed by Mul with x1 so the gradient flows
  // through an op into the view.
  add("view", "Views", AccBroadcast, [](K k, In in) {
    const Tensor& x = in.at(0);
    const std::string& kind = k.Str("kind");
    Tensor v;
    if (kind == "reshape") {
      v = x.Reshape(Shape(k.IntList("shape")));
    } else if (kind == "transpose") {
      v = x.Transpose(IntParam(k, "d0"), IntParam(k, "d1"));
    } else if (kind == "permute") {
      v = x.Permute(IntsOf(k.IntList("dims")));
    } else if (kind == "narrow") {
      v = x.Narrow(IntParam(k, "dim"), k.Int("start"), k.Int("length"));
    } else if (kind == "select") {
      v = x.Select(IntParam(k, "dim"), k.Int("index"));
    } else if (kind == "expand") {
      v = x.Expand(Shape(k.IntList("shape")));
    } else if (kind == "squeeze") {
      v = x.Squeeze(IntParam(k, "dim"));
    } else if (kind == "squeeze_all") {
      v = x.Squeeze();
    } else if (kind == "unsqueeze") {
      v = x.Unsqueeze(IntParam(k, "dim"));
    } else if (kind == "flatten") {
      v = x.Flatten(IntParam(k, "start"), IntParam(k, "end"));
    } else if (kind == "contiguous") {
      v = x.Contiguous();
    } else if (kind == "clone") {
      v = x.Clone();
    } else if (kind == "to") {
      v = x.To(k.Str("dtype") == "f64" ? DType::kF64 : DType::kF32);
    } else if (kind == "chain") {
      // Mirrors the generator: transpose, narrow, select, unsqueeze, expand, copying reshape.
      v = x.Transpose(0, 2)
              .Narrow(0, 1, 4)
              .Select(1, 2)
              .Unsqueeze(0)
              .Expand(Shape{2, 4, 3})
              .Reshape(Shape{8, 3});
    } else {
      throw Error("unknown view kind " + kind);
    }
    return V{Mul(v, in.at(1))};
  });
  return ops;
}

const std::vector<OpSpec>& Ops() {
  static const std::vector<OpSpec> ops = BuildOps();
  return ops;
}

const OpSpec* FindOp(const std::string& name) {
  for (const OpSpec& op : Ops()) {
    if (op.name == name) return &op;
  }
  return nullptr;
}

// ---- running one case ----

void RunCase(const RefCase& c, const OpSpec& spec, const OpKey& key) {
  const std::string where = "case " + c.name + " [" + c.op + "]";
  std::vector<Tensor> leaves, inputs;
  for (int i = 0; const RefTensor* r = c.Find(Named("x", i)); ++i) {
    Tensor leaf = ToTensor(*r);
    if (c.Find(Named("dx", i))) leaf.set_requires_grad(true);
    leaves.push_back(leaf);
    // Inputs listed in tr are stored transposed, so the op sees a non-contiguous view.
    inputs.push_back(Transposed(key, i) ? leaf.Transpose(-2, -1) : leaf);
  }
  const double n = spec.acc(key, c);

  std::vector<Tensor> outs;
  try {
    outs = spec.run(key, inputs);
  } catch (const std::exception& e) {
    ADD_FAILURE() << where << ": forward threw: " << e.what();
    return;
  }
  int expected_outs = 0;
  while (c.Find(Named("y", expected_outs))) ++expected_outs;
  if (static_cast<int>(outs.size()) != expected_outs) {
    ADD_FAILURE() << where << ": expected " << expected_outs << " outputs, got " << outs.size();
    return;
  }
  std::vector<Tensor> roots, cots;
  for (int i = 0; i < expected_outs; ++i) {
    ExpectMatches(c, "output " + Named("y", i), outs[i], Ref(c, Named("y", i)), n);
    if (const RefTensor* dy = c.Find(Named("dy", i))) {
      roots.push_back(outs[i]);
      cots.push_back(ToTensor(*dy));
    }
  }
  if (roots.empty()) return;
  try {
    Backward(roots, cots);
  } catch (const std::exception& e) {
    ADD_FAILURE() << where << ": backward threw: " << e.what();
    return;
  }
  for (size_t i = 0; i < leaves.size(); ++i) {
    const RefTensor* dx = c.Find(Named("dx", i));
    if (dx == nullptr) continue;
    Tensor g = leaves[i].grad();
    // An input that only ever receives zero gradient may legitimately have none accumulated.
    if (!g.defined() && AllZero(*dx)) continue;
    ExpectMatches(c, "gradient " + Named("dx", static_cast<int64_t>(i)), g, *dx, n);
  }
}

// Runs every case of one family; fails if the file is unusable or holds none of the family.
void RunFamily(const std::string& family) {
  const reference::LoadedCases& l = Load();
  ASSERT_TRUE(l.error.empty()) << l.error;
  int count = 0;
  for (const RefCase& c : l.cases) {
    std::optional<OpKey> key;
    try {
      key.emplace(c.op);
    } catch (const Error&) {
      continue;  // reported by EveryCaseHasAKnownOp
    }
    const OpSpec* spec = FindOp(key->name());
    if (spec == nullptr || spec->family != family) continue;
    ++count;
    SCOPED_TRACE("case " + c.name);
    try {
      RunCase(c, *spec, *key);
    } catch (const std::exception& e) {
      // A malformed case (missing parameter or tensor): the generator and this file disagree.
      ADD_FAILURE() << "case " << c.name << " [" << c.op << "]: " << e.what();
    }
  }
  EXPECT_GT(count, 0) << "the reference file holds no cases of family " << family;
  std::cout << "[ reference ] " << family << ": " << count << " torch cases\n";
}

TEST(TorchReference, Arithmetic) { RunFamily("Arithmetic"); }
TEST(TorchReference, UnaryMath) { RunFamily("UnaryMath"); }
TEST(TorchReference, Activations) { RunFamily("Activations"); }
TEST(TorchReference, Comparisons) { RunFamily("Comparisons"); }
TEST(TorchReference, Selection) { RunFamily("Selection"); }
TEST(TorchReference, Reductions) { RunFamily("Reductions"); }
TEST(TorchReference, Variance) { RunFamily("Variance"); }
TEST(TorchReference, ArgReductions) { RunFamily("ArgReductions"); }
TEST(TorchReference, Matmul) { RunFamily("Matmul"); }
TEST(TorchReference, Softmax) { RunFamily("Softmax"); }
TEST(TorchReference, LayerNorm) { RunFamily("LayerNorm"); }
TEST(TorchReference, Embedding) { RunFamily("Embedding"); }
TEST(TorchReference, Indexing) { RunFamily("Indexing"); }
TEST(TorchReference, TopK) { RunFamily("TopK"); }
TEST(TorchReference, JoinSplit) { RunFamily("JoinSplit"); }
TEST(TorchReference, CrossEntropy) { RunFamily("CrossEntropy"); }
TEST(TorchReference, Views) { RunFamily("Views"); }

// Every case in the file must be run by one of the family tests above: a case with an op this
// file does not know would otherwise be silently skipped.
TEST(TorchReference, EveryCaseHasAKnownOp) {
  const reference::LoadedCases& l = Load();
  ASSERT_TRUE(l.error.empty()) << l.error;
  for (const RefCase& c : l.cases) {
    try {
      OpKey key(c.op);
      EXPECT_NE(FindOp(key.name()), nullptr)
          << "case " << c.name << ": op '" << key.name() << "' has no runner in this test";
    } catch (const Error& e) {
      ADD_FAILURE() << "case " << c.name << ": " << e.what();
    }
  }
  std::cout << "[ reference ] " << l.cases.size() << " torch cases in the file\n";
}

// Our convention where torch gives NaN (so no torch here): a softmax row with every position
// excluded is all zeros, log_softmax gives -inf there, and no gradient reaches that row.
TEST(TorchReference, FullyMaskedSoftmaxRowConvention) {
  for (bool log : {false, true}) {
    SCOPED_TRACE(log ? "LogSoftmax" : "Softmax");
    Tensor x =
        Tensor::FromVector(std::vector<float>{0.5f, -1.0f, 2.0f, 0.25f, 1.5f, -0.5f}, Shape{2, 3});
    x.set_requires_grad(true);
    Tensor mask =
        Tensor::FromVector(std::vector<bool>{true, true, true, false, true, false}, Shape{2, 3});
    Tensor y = log ? LogSoftmax(x, 1, mask) : Softmax(x, 1, mask);
    std::vector<float> v = y.ToVector<float>();
    ASSERT_EQ(v.size(), 6u);
    for (int j = 0; j < 3; ++j) {
      if (log) {
        EXPECT_TRUE(std::isinf(v[j]) && v[j] < 0) << "row 0 col " << j << ": " << v[j];
      } else {
        EXPECT_EQ(v[j], 0.0f) << "row 0 col " << j;
      }
    }
    // Row 1 keeps columns 0 and 2: softmax over {0.25, -0.5}.
    double e0 = std::exp(0.25), e2 = std::exp(-0.5);
    double p0 = e0 / (e0 + e2), p2 = e2 / (e0 + e2);
    EXPECT_NEAR(v[3], log ? std::log(p0) : p0, 1e-6);
    EXPECT_TRUE(log ? std::isinf(v[4]) && v[4] < 0 : v[4] == 0.0f) << v[4];
    EXPECT_NEAR(v[5], log ? std::log(p2) : p2, 1e-6);

    Tensor g =
        Tensor::FromVector(std::vector<float>{1.0f, -2.0f, 3.0f, 0.5f, 4.0f, -1.5f}, Shape{2, 3});
    y.Backward(g);
    ASSERT_TRUE(x.grad().defined());
    std::vector<float> dx = x.grad().ToVector<float>();
    for (int j = 0; j < 3; ++j) {
      EXPECT_EQ(dx[j], 0.0f) << "fully masked row, col " << j;
      EXPECT_FALSE(std::isnan(dx[3 + j])) << "col " << j;
    }
    EXPECT_EQ(dx[4], 0.0f) << "masked position of a live row";
  }
}

// ---- the reader itself ----

// Builds reference-file bytes by hand, independently of the Python writer.
class FileBuilder {
 public:
  FileBuilder& Raw(const std::string& s) {
    bytes_ += s;
    return *this;
  }
  template <typename T>
  FileBuilder& Put(T v) {
    char b[sizeof(T)];
    std::memcpy(b, &v, sizeof(T));
    bytes_.append(b, sizeof(T));
    return *this;
  }
  FileBuilder& Str(const std::string& s) {
    Put<uint32_t>(static_cast<uint32_t>(s.size()));
    return Raw(s);
  }
  const std::string& bytes() const { return bytes_; }

 private:
  std::string bytes_;
};

// One case "c" with an f32 [2] tensor x0 and a bool [] tensor y0; `bool_byte` is y0's data.
std::string SmallFile(uint32_t version = 1, uint8_t dtype = 0, uint64_t nbytes = 8,
                      char bool_byte = 1) {
  FileBuilder f;
  f.Raw(std::string("ATNDREF\0", 8)).Put<uint32_t>(version).Put<uint32_t>(1);
  f.Raw("CASE").Str("c").Str("neg|s=1.5").Put<uint32_t>(2);
  f.Str("x0").Put<uint8_t>(dtype).Put<uint8_t>(1).Put<int64_t>(2).Put<uint64_t>(nbytes);
  f.Put<float>(1.5f).Put<float>(-2.0f);
  f.Str("y0").Put<uint8_t>(3).Put<uint8_t>(0).Put<uint64_t>(1).Raw(std::string(1, bool_byte));
  f.Raw(std::string("ATNDEND\0", 8));
  return f.bytes();
}

TEST(TorchReferenceFile, ParsesAWellFormedFile) {
  std::vector<RefCase> cases = reference::ParseReference(SmallFile(), "small");
  ASSERT_EQ(cases.size(), 1u);
  EXPECT_EQ(cases[0].name, "c");
  EXPECT_EQ(cases[0].op, "neg|s=1.5");
  const RefTensor* x = cases[0].Find("x0");
  ASSERT_NE(x, nullptr);
  EXPECT_EQ(x->dims, std::vector<int64_t>{2});
  EXPECT_EQ(x->AsDoubles(), (std::vector<double>{1.5, -2.0}));
  const RefTensor* y = cases[0].Find("y0");
  ASSERT_NE(y, nullptr);
  EXPECT_TRUE(y->dims.empty());
  EXPECT_EQ(y->AsDoubles(), std::vector<double>{1.0});
}

TEST(TorchReferenceFile, RejectsEveryTruncation) {
  const std::string full = SmallFile();
  for (size_t len = 0; len < full.size(); ++len) {
    EXPECT_THROW(reference::ParseReference(full.substr(0, len), "truncated"), Error)
        << "accepted a file cut to " << len << " of " << full.size() << " bytes";
  }
}

TEST(TorchReferenceFile, RejectsCorruption) {
  std::string bad_magic = SmallFile();
  bad_magic[0] = 'X';
  EXPECT_THROW(reference::ParseReference(bad_magic, "bad magic"), Error);
  EXPECT_THROW(reference::ParseReference(SmallFile(/*version=*/2), "version"), Error);
  EXPECT_THROW(reference::ParseReference(SmallFile(1, /*dtype=*/7), "dtype"), Error);
  EXPECT_THROW(reference::ParseReference(SmallFile(1, 0, /*nbytes=*/12), "byte count"), Error);
  EXPECT_THROW(reference::ParseReference(SmallFile(1, 0, 8, /*bool_byte=*/2), "bool"), Error);
  EXPECT_THROW(reference::ParseReference(SmallFile() + "x", "trailing"), Error);
  std::string bad_tag = SmallFile();
  bad_tag[16] = 'K';  // inside "CASE"
  EXPECT_THROW(reference::ParseReference(bad_tag, "case tag"), Error);
  EXPECT_THROW(reference::ReadReferenceFile("/nonexistent/ops_reference.bin"), Error);
  try {
    reference::ParseReference(SmallFile().substr(0, 30), "cut");
    ADD_FAILURE() << "no error";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("truncated"), std::string::npos) << e.what();
  }
}

TEST(TorchReferenceFile, ParsesOpKeys) {
  OpKey k("sum|dims=0,-2|keepdim=1|s=-0.75|empty=");
  EXPECT_EQ(k.name(), "sum");
  EXPECT_EQ(k.IntList("dims"), (std::vector<int64_t>{0, -2}));
  EXPECT_TRUE(k.Bool("keepdim"));
  EXPECT_EQ(k.Double("s"), -0.75);
  EXPECT_TRUE(k.IntList("empty").empty());
  EXPECT_FALSE(k.Has("dim"));
  EXPECT_EQ(k.Int("dim", 7), 7);
  EXPECT_THROW(k.Int("dim"), Error);
  EXPECT_THROW(k.Int("s"), Error);
  EXPECT_THROW(OpKey("sum|novalue"), Error);
  EXPECT_THROW(OpKey("|a=1"), Error);
}

}  // namespace
}  // namespace attend
