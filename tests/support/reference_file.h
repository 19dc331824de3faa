// Reader for the PyTorch oracle files written by tests/reference/*_reference.py (format below).
//
// Version 1, all integers little-endian:
//   magic "ATNDREF\0" (8 bytes), u32 version, u32 case count,
//   per case: "CASE", str name, str op key, u32 tensor count,
//     per tensor: str name, u8 dtype (0 f32, 1 f64, 2 i64, 3 bool), u8 ndim (<= 8),
//                 i64 dims[ndim], u64 byte count (= numel * element size), raw row-major data,
//   end marker "ATNDEND\0".  A str is a u32 length followed by that many UTF-8 bytes.
// Anything truncated, inconsistent or trailing throws attend::Error naming the offset.
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <vector>

namespace attend::reference {

enum class RefDType : uint8_t { kF32 = 0, kF64 = 1, kI64 = 2, kBool = 3 };
const char* RefDTypeName(RefDType t);
size_t RefDTypeSize(RefDType t);

struct RefTensor {
  std::string name;
  RefDType dtype = RefDType::kF32;
  std::vector<int64_t> dims;
  std::vector<uint8_t> bytes;  // numel * RefDTypeSize(dtype), row-major

  int64_t numel() const;
  std::string ShapeString() const;  // "[2, 3]"
  // The elements converted to double (bool as 0/1); for comparisons and messages.
  std::vector<double> AsDoubles() const;
};

struct RefCase {
  std::string name;
  std::string op;  // "sum|dims=0,2|keepdim=1"
  std::vector<RefTensor> tensors;

  // nullptr when the case has no tensor of that name.
  const RefTensor* Find(const std::string& tensor_name) const;
};

// Parses a whole file's bytes; `source` names it in error messages.
std::vector<RefCase> ParseReference(const std::string& bytes, const std::string& source);
// Reads and parses a file; throws attend::Error if it cannot be opened or is malformed.
std::vector<RefCase> ReadReferenceFile(const std::string& path);

// An op key split into its name and parameters: "sum|dims=0,2|keepdim=1" gives name "sum" and
// {dims: "0,2", keepdim: "1"}. Accessors throw attend::Error on a missing or malformed parameter.
class OpKey {
 public:
  explicit OpKey(const std::string& key);
  const std::string& name() const { return name_; }
  const std::string& key() const { return key_; }
  bool Has(const std::string& param) const { return params_.count(param) != 0; }
  const std::string& Str(const std::string& param) const;
  int64_t Int(const std::string& param) const;
  int64_t Int(const std::string& param, int64_t fallback) const;
  double Double(const std::string& param) const;
  bool Bool(const std::string& param) const;
  std::vector<int64_t> IntList(const std::string& param) const;  // "" is the empty list

 private:
  std::string key_;
  std::string name_;
  std::map<std::string, std::string> params_;
};

}  // namespace attend::reference
