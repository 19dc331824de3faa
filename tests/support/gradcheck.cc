// GradCheck: analytic gradients through Backward against central finite differences, in f64.
#include "support/gradcheck.h"

#include <algorithm>
#include <cmath>
#include <exception>
#include <iomanip>
#include <iterator>
#include <numeric>
#include <random>
#include <sstream>

#include "attend/autograd.h"

namespace attend::gradcheck {
namespace {

// "(1, 0, 4)": the position of a flat row-major index in `shape`, for failure messages.
std::string MultiIndex(const Shape& shape, int64_t flat) {
  std::vector<int64_t> idx(shape.size());
  for (int d = shape.size() - 1; d >= 0; --d) {
    idx[d] = flat % shape[d];
    flat /= shape[d];
  }
  std::ostringstream os;
  os << "(";
  for (size_t d = 0; d < idx.size(); ++d) os << (d ? ", " : "") << idx[d];
  os << ")";
  return os.str();
}

std::vector<double> UniformValues(int64_t n, uint64_t seed, double lo, double hi) {
  std::mt19937_64 rng(seed);
  std::uniform_real_distribution<double> dist(lo, hi);
  std::vector<double> v(n);
  for (double& x : v) x = dist(rng);
  return v;
}

// The element indices of an n-element input to check: all of them, or `limit` of them chosen
// deterministically from `seed`, the first and last included.
std::vector<int64_t> ElementsToCheck(int64_t n, int64_t limit, uint64_t seed) {
  std::vector<int64_t> all(n);
  std::iota(all.begin(), all.end(), 0);
  if (limit <= 0 || n <= limit) return all;
  std::vector<int64_t> picked;
  std::mt19937_64 rng(seed);
  std::sample(all.begin() + 1, all.end() - 1, std::back_inserter(picked), limit - 2, rng);
  picked.insert(picked.begin(), 0);
  picked.push_back(n - 1);
  return picked;  // std::sample keeps the order, so this is sorted
}

// Runs fn without recording on plain (non-leaf-requiring) copies of `values` and returns each
// output's values in logical order. Recording is off because only values are needed, which also
// checks that forward results do not depend on grad mode.
std::vector<std::vector<double>> Evaluate(const MultiFn& fn,
                                          const std::vector<std::vector<double>>& values,
                                          const std::vector<Shape>& shapes) {
  NoGradGuard no_grad;
  std::vector<Tensor> xs;
  xs.reserve(values.size());
  for (size_t i = 0; i < values.size(); ++i) xs.push_back(Tensor::FromVector(values[i], shapes[i]));
  std::vector<Tensor> outs = fn(xs);
  std::vector<std::vector<double>> result;
  result.reserve(outs.size());
  for (const Tensor& o : outs) result.push_back(o.ToVector<double>());
  return result;
}

struct Mismatch {
  size_t input;
  int64_t element;
  double analytic;
  double numeric;
};

}  // namespace

::testing::AssertionResult GradCheckMulti(const MultiFn& fn, const std::vector<Tensor>& inputs,
                                          const Options& options) {
  // ---- inputs: validated, copied to contiguous leaves so fn sees fresh history each time ----
  std::vector<std::vector<double>> values;
  std::vector<Shape> shapes;
  std::vector<Tensor> leaves;
  for (size_t i = 0; i < inputs.size(); ++i) {
    if (!inputs[i].defined())
      return ::testing::AssertionFailure() << "input " << i << " is undefined";
    if (inputs[i].dtype() != DType::kF64) {
      return ::testing::AssertionFailure()
             << "input " << i << " is " << inputs[i].str() << "; GradCheck needs f64 inputs";
    }
    values.push_back(inputs[i].ToVector<double>());
    shapes.push_back(inputs[i].shape());
    Tensor leaf = Tensor::FromVector(values.back(), shapes.back());
    leaf.set_requires_grad(true);
    leaves.push_back(leaf);
  }

  // ---- analytic: Backward of the outputs with the random cotangents ----
  std::vector<Tensor> outs;
  std::vector<std::vector<double>> cotangents;
  try {
    outs = fn(leaves);
    if (outs.empty()) return ::testing::AssertionFailure() << "fn returned no outputs";
    std::vector<Tensor> roots, grads;
    for (size_t k = 0; k < outs.size(); ++k) {
      if (!outs[k].defined())
        return ::testing::AssertionFailure() << "output " << k << " is undefined";
      if (outs[k].dtype() != DType::kF64) {
        return ::testing::AssertionFailure() << "output " << k << " is " << outs[k].str()
                                             << "; f64 inputs should give an f64 output";
      }
      cotangents.push_back(UniformValues(outs[k].numel(), options.seed + 7919 * k, -1.0, 1.0));
      // An output that does not require grad contributes nothing analytically; if it should
      // have, the numeric side disagrees and the check fails there.
      if (outs[k].requires_grad()) {
        roots.push_back(outs[k]);
        grads.push_back(Tensor::FromVector(cotangents.back(), outs[k].shape()));
      }
    }
    // One output goes through Tensor::Backward, several through attend::Backward, so both entry
    // points are exercised by the op checks.
    if (outs.size() == 1) {
      if (!roots.empty()) roots[0].Backward(grads[0]);
    } else if (!roots.empty()) {
      Backward(roots, grads);
    }
  } catch (const std::exception& e) {
    return ::testing::AssertionFailure() << "forward/backward threw: " << e.what();
  }

  std::vector<std::vector<double>> analytic(inputs.size());
  for (size_t i = 0; i < inputs.size(); ++i) {
    Tensor g = leaves[i].grad();
    if (!g.defined()) {
      analytic[i].assign(values[i].size(), 0.0);  // unused input: zero gradient
      continue;
    }
    if (g.shape() != shapes[i] || g.dtype() != DType::kF64) {
      return ::testing::AssertionFailure() << "input " << i << " has gradient " << g.str()
                                           << " but the input is f64" << shapes[i].str();
    }
    analytic[i] = g.ToVector<double>();
  }

  // ---- forward under no-grad must give the recorded values (and fixes output shapes) ----
  std::vector<Shape> out_shapes;
  try {
    std::vector<std::vector<double>> base = Evaluate(fn, values, shapes);
    if (base.size() != outs.size()) {
      return ::testing::AssertionFailure()
             << "fn returned " << outs.size() << " outputs with grad mode on but " << base.size()
             << " under NoGradGuard";
    }
    for (size_t k = 0; k < outs.size(); ++k) {
      out_shapes.push_back(outs[k].shape());
      std::vector<double> recorded = outs[k].ToVector<double>();
      if (recorded.size() != base[k].size()) {
        return ::testing::AssertionFailure()
               << "output " << k << " has " << recorded.size() << " elements with grad mode on but "
               << base[k].size() << " under NoGradGuard";
      }
      for (size_t m = 0; m < recorded.size(); ++m) {
        const double a = recorded[m], b = base[k][m];
        // Identical kernels should run in both modes; allow only last-bit differences.
        if (!(a == b || std::abs(a - b) <= 1e-12 * std::max(1.0, std::abs(a)))) {
          return ::testing::AssertionFailure()
                 << "output " << k << outs[k].str() << " element " << m << " at "
                 << MultiIndex(outs[k].shape(), m) << " is " << std::setprecision(17) << a
                 << " with grad mode on but " << b << " under NoGradGuard";
        }
      }
    }
  } catch (const std::exception& e) {
    return ::testing::AssertionFailure() << "forward under NoGradGuard threw: " << e.what();
  }

  // ---- numeric: central differences, element by element ----
  std::vector<Mismatch> mismatches;
  int64_t checked = 0;
  std::vector<std::vector<double>> perturbed = values;
  for (size_t i = 0; i < inputs.size(); ++i) {
    for (int64_t j : ElementsToCheck(static_cast<int64_t>(values[i].size()),
                                     options.max_checked_per_input, options.seed + 104729 * i)) {
      const double x = values[i][j];
      const double x_plus = x + options.eps, x_minus = x - options.eps;
      std::vector<std::vector<double>> plus, minus;
      try {
        perturbed[i][j] = x_plus;
        plus = Evaluate(fn, perturbed, shapes);
        perturbed[i][j] = x_minus;
        minus = Evaluate(fn, perturbed, shapes);
        perturbed[i][j] = x;
      } catch (const std::exception& e) {
        return ::testing::AssertionFailure() << "forward threw while perturbing input " << i
                                             << " element " << j << ": " << e.what();
      }
      // Differences of outputs, weighted, rather than the difference of two full objectives:
      // outputs untouched by this element cancel exactly (including masked -inf entries of a
      // log-softmax, whose gradient must then be zero), and large outputs add no rounding.
      double weighted = 0.0;
      for (size_t k = 0; k < plus.size(); ++k) {
        for (size_t m = 0; m < plus[k].size(); ++m) {
          const double p = plus[k][m], q = minus[k][m];
          if (p == q) continue;
          if (!std::isfinite(p) || !std::isfinite(q)) {
            return ::testing::AssertionFailure()
                   << "output " << k << " element " << m << " at " << MultiIndex(out_shapes[k], m)
                   << " is non-finite (" << p << " / " << q << ") when input " << i << " element "
                   << j << " is perturbed";
          }
          weighted += cotangents[k][m] * (p - q);
        }
      }
      // The step actually taken, which differs from 2 * eps by the rounding of x +- eps.
      const double numeric = weighted / (x_plus - x_minus);
      const double a = analytic[i][j];
      ++checked;
      if (!(std::abs(a - numeric) <= options.atol + options.rtol * std::abs(numeric))) {
        mismatches.push_back({i, j, a, numeric});
      }
    }
  }
  if (mismatches.empty()) return ::testing::AssertionSuccess();

  std::ostringstream os;
  os << "gradient mismatch in " << mismatches.size() << " of " << checked
     << " input elements (|analytic - numeric| > atol " << options.atol << " + rtol "
     << options.rtol << " * |numeric|, eps " << options.eps << "; outputs";
  for (const Shape& s : out_shapes) os << " " << s.str();
  os << ")" << std::setprecision(10);
  for (size_t n = 0; n < mismatches.size() && n < static_cast<size_t>(options.max_reported); ++n) {
    const Mismatch& mm = mismatches[n];
    os << "\n  input " << mm.input << " f64" << shapes[mm.input].str() << " element " << mm.element
       << " at " << MultiIndex(shapes[mm.input], mm.element) << ": analytic " << mm.analytic
       << ", numeric " << mm.numeric;
  }
  if (mismatches.size() > static_cast<size_t>(options.max_reported)) os << "\n  ...";
  return ::testing::AssertionFailure() << os.str();
}

::testing::AssertionResult GradCheck(const Fn& fn, const std::vector<Tensor>& inputs,
                                     const Options& options) {
  return GradCheckMulti(
      [&fn](const std::vector<Tensor>& xs) { return std::vector<Tensor>{fn(xs)}; }, inputs,
      options);
}

Tensor RandomUniform(const Shape& shape, uint64_t seed, double lo, double hi) {
  return Tensor::FromVector(UniformValues(shape.numel(), seed, lo, hi), shape);
}

Tensor RandomAway(const Shape& shape, uint64_t seed, double lo, double hi,
                  const std::vector<double>& kinks, double margin) {
  std::vector<double> v = UniformValues(shape.numel(), seed, lo, hi);
  for (double& x : v) {
    for (double k : kinks) {
      if (std::abs(x - k) < margin) x += 2 * margin;
    }
  }
  return Tensor::FromVector(v, shape);
}

Tensor RandomSigned(const Shape& shape, uint64_t seed, double lo, double hi) {
  std::vector<double> v = UniformValues(shape.numel(), seed, lo, hi);
  std::mt19937_64 rng(seed ^ 0x5bd1e995u);
  for (double& x : v) {
    if (rng() & 1) x = -x;
  }
  return Tensor::FromVector(v, shape);
}

Tensor RandomDistinct(const Shape& shape, uint64_t seed) {
  const int64_t n = shape.numel();
  std::vector<int64_t> rank(n);
  std::iota(rank.begin(), rank.end(), 0);
  std::mt19937_64 rng(seed);
  std::shuffle(rank.begin(), rank.end(), rng);
  std::vector<double> jitter = UniformValues(n, seed + 1, -0.02, 0.02);
  std::vector<double> v(n);
  // Ranks 0.1 apart with +-0.02 jitter: neighbours differ by at least 0.06.
  for (int64_t m = 0; m < n; ++m) v[m] = (rank[m] - 0.5 * (n - 1)) * 0.1 + jitter[m];
  return Tensor::FromVector(v, shape);
}

Tensor RandomMask(const Shape& shape, uint64_t seed, double p) {
  std::mt19937_64 rng(seed);
  std::bernoulli_distribution dist(p);
  std::vector<bool> v(shape.numel());
  for (size_t m = 0; m < v.size(); ++m) v[m] = dist(rng);
  return Tensor::FromVector(v, shape);
}

Tensor Indices(const std::vector<int64_t>& values, const Shape& shape) {
  return Tensor::FromVector(values, shape);
}

Tensor Mask(const std::vector<bool>& values, const Shape& shape) {
  return Tensor::FromVector(values, shape);
}

}  // namespace attend::gradcheck
