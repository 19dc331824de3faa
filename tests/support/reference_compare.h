// Replaying PyTorch reference cases: loading the generated file, converting its tensors, and
// comparing attend's results with stated tolerances (shared by every *_reference test).
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "attend/tensor.h"
#include "support/reference_file.h"

namespace attend::reference {

// An element passes when |got - want| <= atol * n + rtol * |want|; n >= 1 is the number of terms
// accumulated into the element (reduction length, matmul inner size, broadcast fan-in): the
// worst-case rounding error of a float sum grows linearly in n. f32 rtol is ~84 ulp, room for
// differently approximated exp/log/erf/tanh; f64 is held far tighter.
struct Tolerance {
  double f32_rtol = 1e-5;
  double f32_atol = 1e-6;
  double f64_rtol = 1e-10;
  double f64_atol = 1e-10;
};

struct LoadedCases {
  std::vector<RefCase> cases;
  std::string error;  // non-empty when the file could not be used: tests must fail with it
};

// Reads $ATTEND_REFERENCE_DIR/<file_name>, which CTest's generate_<stem> fixture writes by
// running <generator>; explains how to produce it when it is missing.
LoadedCases LoadReferenceCases(const std::string& file_name, const std::string& generator);

DType ToDType(RefDType t);
Tensor ToTensor(const RefTensor& r);
std::vector<double> ValuesOf(const Tensor& t);  // logical (row-major) order
std::string IndexString(int64_t flat, const std::vector<int64_t>& dims);
const RefTensor& Ref(const RefCase& c, const std::string& name);  // throws when absent
std::string Named(const char* prefix, int64_t i);                 // "x" + i, "dy" + i, ...

// Adds one gtest failure naming the case and tensor when `got` differs from torch's `want`.
void ExpectMatches(const RefCase& c, const std::string& what, const Tensor& got,
                   const RefTensor& want, double n, const Tolerance& tol = Tolerance());

}  // namespace attend::reference
