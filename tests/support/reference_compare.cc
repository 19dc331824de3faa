// Shared helpers of the PyTorch reference tests: loading, conversion and comparison.
#include "support/reference_compare.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <sstream>

#include "attend/error.h"

namespace attend::reference {
namespace {
// Mismatching elements listed per tensor before the message is cut short.
constexpr int kMaxListedMismatches = 6;
}  // namespace

LoadedCases LoadReferenceCases(const std::string& file_name, const std::string& generator) {
  LoadedCases l;
  const char* dir = std::getenv("ATTEND_REFERENCE_DIR");
  if (dir == nullptr || *dir == '\0') {
    l.error =
        "ATTEND_REFERENCE_DIR is not set. Run these tests through ctest (its generate_* "
        "fixture writes the file first), or generate it yourself with `/usr/bin/python3 " +
        generator + " --out DIR/" + file_name + "` and set ATTEND_REFERENCE_DIR=DIR.";
    return l;
  }
  const std::string path = std::string(dir) + "/" + file_name;
  try {
    l.cases = ReadReferenceFile(path);
    if (l.cases.empty()) l.error = path + " holds no cases";
  } catch (const Error& e) {
    l.error = std::string(e.what()) + " -- the generator " + generator +
              " (run by ctest before these tests, needs /usr/bin/python3 with torch) must have "
              "failed or not run.";
  }
  return l;
}

DType ToDType(RefDType t) {
  switch (t) {
    case RefDType::kF32: return DType::kF32;
    case RefDType::kF64: return DType::kF64;
    case RefDType::kI64: return DType::kI64;
    case RefDType::kBool: return DType::kBool;
  }
  return DType::kF32;
}

template <typename T>
std::vector<T> RawAs(const RefTensor& r) {
  std::vector<T> v(static_cast<size_t>(r.numel()));
  if (!v.empty()) std::memcpy(v.data(), r.bytes.data(), r.bytes.size());
  return v;
}

Tensor ToTensor(const RefTensor& r) {
  Shape shape(r.dims);
  switch (r.dtype) {
    case RefDType::kF32: return Tensor::FromVector(RawAs<float>(r), shape);
    case RefDType::kF64: return Tensor::FromVector(RawAs<double>(r), shape);
    case RefDType::kI64: return Tensor::FromVector(RawAs<int64_t>(r), shape);
    case RefDType::kBool: {
      std::vector<bool> v(static_cast<size_t>(r.numel()));
      for (size_t i = 0; i < v.size(); ++i) v[i] = r.bytes[i] != 0;
      return Tensor::FromVector(v, shape);
    }
  }
  return Tensor();
}

// The tensor's elements as doubles, in logical (row-major) order.
std::vector<double> ValuesOf(const Tensor& t) {
  std::vector<double> out;
  switch (t.dtype()) {
    case DType::kF32:
      for (float v : t.ToVector<float>()) out.push_back(v);
      break;
    case DType::kF64: out = t.ToVector<double>(); break;
    case DType::kI64:
      for (int64_t v : t.ToVector<int64_t>()) out.push_back(static_cast<double>(v));
      break;
    case DType::kBool:
      for (bool v : t.ToVector<bool>()) out.push_back(v ? 1.0 : 0.0);
      break;
    case DType::kI8:
      for (int8_t v : t.ToVector<int8_t>()) out.push_back(v);
      break;
  }
  return out;
}

std::string IndexString(int64_t flat, const std::vector<int64_t>& dims) {
  std::vector<int64_t> idx(dims.size());
  for (int i = static_cast<int>(dims.size()) - 1; i >= 0; --i) {
    if (dims[i] > 0) {
      idx[i] = flat % dims[i];
      flat /= dims[i];
    }
  }
  std::string s = "[";
  for (size_t i = 0; i < idx.size(); ++i) s += (i ? ", " : "") + std::to_string(idx[i]);
  return s + "]";
}

// Compares `got` to torch's `want`; on mismatch adds one failure naming the case and tensor.
void ExpectMatches(const RefCase& c, const std::string& what, const Tensor& got,
                   const RefTensor& want, double n, const Tolerance& tol) {
  std::string where = "case " + c.name + " [" + c.op + "] " + what;
  if (!got.defined()) {
    ADD_FAILURE() << where << ": attend gave an undefined tensor, torch gave "
                  << reference::RefDTypeName(want.dtype) << want.ShapeString();
    return;
  }
  if (got.dtype() != ToDType(want.dtype) || got.shape().vec() != want.dims) {
    ADD_FAILURE() << where << ": expected " << reference::RefDTypeName(want.dtype)
                  << want.ShapeString() << ", got " << got.str();
    return;
  }
  const bool is_f32 = want.dtype == RefDType::kF32;
  const bool is_float = is_f32 || want.dtype == RefDType::kF64;
  const double rtol = is_float ? (is_f32 ? tol.f32_rtol : tol.f64_rtol) : 0.0;
  const double atol = is_float ? (is_f32 ? tol.f32_atol : tol.f64_atol) * n : 0.0;
  std::vector<double> g = ValuesOf(got);
  std::vector<double> w = want.AsDoubles();
  int64_t bad = 0;
  double max_diff = 0.0;
  std::ostringstream list;
  list.precision(9);
  for (size_t i = 0; i < w.size(); ++i) {
    bool ok;
    double diff = std::fabs(g[i] - w[i]);
    if (std::isnan(w[i])) {
      ok = std::isnan(g[i]);
    } else if (std::isinf(w[i]) || std::isinf(g[i])) {
      ok = g[i] == w[i];
    } else {
      ok = diff <= atol + rtol * std::fabs(w[i]);
    }
    if (ok) continue;
    if (!std::isnan(diff)) max_diff = std::max(max_diff, diff);
    if (bad++ < kMaxListedMismatches) {
      list << "\n    at " << IndexString(static_cast<int64_t>(i), want.dims) << ": expected "
           << w[i] << ", got " << g[i];
    }
  }
  if (bad > 0) {
    std::ostringstream msg;
    msg.precision(3);
    msg << where << " (" << reference::RefDTypeName(want.dtype) << want.ShapeString()
        << "): " << bad << " of " << w.size() << " elements differ, max |diff| " << max_diff
        << ", tolerance " << atol << " + " << rtol << " * |expected|" << list.str();
    ADD_FAILURE() << msg.str();
  }
}

const RefTensor& Ref(const RefCase& c, const std::string& name) {
  const RefTensor* t = c.Find(name);
  if (t == nullptr) throw Error("case " + c.name + " has no tensor " + name);
  return *t;
}

// The file's tensor names: x<i>, y<i>, dy<i>, dx<i>. (Built with append rather than
// "x" + std::to_string(i), which trips a GCC 12 -Wrestrict false positive.)
std::string Named(const char* prefix, int64_t i) {
  std::string s(prefix);
  s += std::to_string(i);
  return s;
}

}  // namespace attend::reference
