// Parsing of the PyTorch oracle file format (see reference_file.h) and of op keys.
#include "support/reference_file.h"

#include <bit>
#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <iterator>
#include <limits>
#include <sstream>

#include "attend/error.h"

namespace attend::reference {
namespace {

// Raw tensor bytes are copied straight into host arrays, which is only right on little-endian.
static_assert(std::endian::native == std::endian::little, "reference files are little-endian");

constexpr char kMagic[8] = {'A', 'T', 'N', 'D', 'R', 'E', 'F', '\0'};
constexpr char kEndMagic[8] = {'A', 'T', 'N', 'D', 'E', 'N', 'D', '\0'};
constexpr char kCaseTag[4] = {'C', 'A', 'S', 'E'};
constexpr uint32_t kVersion = 1;
// Sanity bounds: far above anything the generator writes, low enough that a corrupt length
// field is reported instead of attempting a huge allocation.
constexpr uint32_t kMaxStringLength = 1 << 16;
constexpr uint32_t kMaxTensorsPerCase = 1 << 12;
constexpr int kMaxDims = 8;

// A bounds-checked little-endian cursor over the file's bytes.
class Cursor {
 public:
  Cursor(const std::string& bytes, const std::string& source) : bytes_(bytes), source_(source) {}

  size_t pos() const { return pos_; }
  size_t remaining() const { return bytes_.size() - pos_; }

  [[noreturn]] void Fail(const std::string& what) const {
    std::ostringstream os;
    os << "reference file " << source_ << ": " << what << " (at byte " << pos_ << " of "
       << bytes_.size() << ")";
    throw Error(os.str());
  }

  void Need(size_t n, const char* what) const {
    if (remaining() < n) Fail(std::string("truncated while reading ") + what);
  }

  void Expect(const char* tag, size_t n, const char* what) {
    Need(n, what);
    if (std::memcmp(bytes_.data() + pos_, tag, n) != 0) Fail(std::string("bad ") + what);
    pos_ += n;
  }

  template <typename T>
  T Read(const char* what) {
    Need(sizeof(T), what);
    T v;
    std::memcpy(&v, bytes_.data() + pos_, sizeof(T));
    pos_ += sizeof(T);
    return v;
  }

  std::string ReadString(const char* what) {
    uint32_t n = Read<uint32_t>(what);
    if (n > kMaxStringLength) Fail(std::string("implausible length of ") + what);
    Need(n, what);
    std::string s(bytes_.data() + pos_, n);
    pos_ += n;
    return s;
  }

  void ReadBytes(uint8_t* out, size_t n, const char* what) {
    Need(n, what);
    if (n) std::memcpy(out, bytes_.data() + pos_, n);
    pos_ += n;
  }

 private:
  const std::string& bytes_;
  const std::string& source_;
  size_t pos_ = 0;
};

RefTensor ReadTensor(Cursor& c) {
  RefTensor t;
  t.name = c.ReadString("tensor name");
  if (t.name.empty()) c.Fail("empty tensor name");
  uint8_t code = c.Read<uint8_t>("dtype");
  if (code > static_cast<uint8_t>(RefDType::kBool)) {
    c.Fail("unknown dtype code " + std::to_string(code) + " in tensor " + t.name);
  }
  t.dtype = static_cast<RefDType>(code);
  uint8_t ndim = c.Read<uint8_t>("ndim");
  if (ndim > kMaxDims) c.Fail("ndim " + std::to_string(ndim) + " too large in " + t.name);
  uint64_t numel = 1;
  for (int i = 0; i < ndim; ++i) {
    int64_t d = c.Read<int64_t>("dims");
    if (d < 0) c.Fail("negative dimension in tensor " + t.name);
    // Keeps numel * element size from overflowing; the byte count check below does the rest.
    if (d != 0 && numel > std::numeric_limits<uint32_t>::max() / static_cast<uint64_t>(d)) {
      c.Fail("implausible shape of tensor " + t.name);
    }
    numel *= static_cast<uint64_t>(d);
    t.dims.push_back(d);
  }
  uint64_t nbytes = c.Read<uint64_t>("byte count");
  if (nbytes != numel * RefDTypeSize(t.dtype)) {
    c.Fail("byte count " + std::to_string(nbytes) + " does not match the shape of tensor " +
           t.name);
  }
  if (nbytes > c.remaining()) c.Fail("truncated in the data of tensor " + t.name);
  t.bytes.resize(nbytes);
  c.ReadBytes(t.bytes.data(), nbytes, "tensor data");
  if (t.dtype == RefDType::kBool) {
    for (uint8_t b : t.bytes) {
      if (b > 1) c.Fail("bool tensor " + t.name + " holds a byte other than 0 or 1");
    }
  }
  return t;
}

[[noreturn]] void KeyError(const std::string& key, const std::string& what) {
  throw Error("op key '" + key + "': " + what);
}

int64_t ParseInt(const std::string& key, const std::string& s) {
  errno = 0;
  char* end = nullptr;
  long long v = std::strtoll(s.c_str(), &end, 10);
  if (s.empty() || errno != 0 || *end != '\0') KeyError(key, "not an integer: '" + s + "'");
  return v;
}

}  // namespace

const char* RefDTypeName(RefDType t) {
  switch (t) {
    case RefDType::kF32: return "f32";
    case RefDType::kF64: return "f64";
    case RefDType::kI64: return "i64";
    case RefDType::kBool: return "bool";
  }
  return "?";
}

size_t RefDTypeSize(RefDType t) {
  switch (t) {
    case RefDType::kF32: return 4;
    case RefDType::kF64: return 8;
    case RefDType::kI64: return 8;
    case RefDType::kBool: return 1;
  }
  return 0;
}

int64_t RefTensor::numel() const {
  int64_t n = 1;
  for (int64_t d : dims) n *= d;
  return n;
}

std::string RefTensor::ShapeString() const {
  std::string s = "[";
  for (size_t i = 0; i < dims.size(); ++i) {
    if (i) s += ", ";
    s += std::to_string(dims[i]);
  }
  return s + "]";
}

std::vector<double> RefTensor::AsDoubles() const {
  std::vector<double> out(static_cast<size_t>(numel()));
  for (size_t i = 0; i < out.size(); ++i) {
    const uint8_t* p = bytes.data() + i * RefDTypeSize(dtype);
    switch (dtype) {
      case RefDType::kF32: {
        float v;
        std::memcpy(&v, p, 4);
        out[i] = v;
        break;
      }
      case RefDType::kF64: {
        double v;
        std::memcpy(&v, p, 8);
        out[i] = v;
        break;
      }
      case RefDType::kI64: {
        int64_t v;
        std::memcpy(&v, p, 8);
        out[i] = static_cast<double>(v);
        break;
      }
      case RefDType::kBool: out[i] = *p ? 1.0 : 0.0; break;
    }
  }
  return out;
}

const RefTensor* RefCase::Find(const std::string& tensor_name) const {
  for (const RefTensor& t : tensors) {
    if (t.name == tensor_name) return &t;
  }
  return nullptr;
}

std::vector<RefCase> ParseReference(const std::string& bytes, const std::string& source) {
  Cursor c(bytes, source);
  c.Expect(kMagic, sizeof(kMagic), "magic (not a reference file)");
  uint32_t version = c.Read<uint32_t>("version");
  if (version != kVersion) {
    c.Fail("unsupported version " + std::to_string(version) + " (expected " +
           std::to_string(kVersion) + "; regenerate the file)");
  }
  uint32_t count = c.Read<uint32_t>("case count");
  // Every case needs at least its tag, two lengths and a tensor count (16 bytes), so a count
  // the rest of the file cannot hold is a truncation (or corruption), caught before reserving.
  if (count > c.remaining() / 16) {
    c.Fail("truncated or corrupt: " + std::to_string(count) + " cases cannot fit in the " +
           std::to_string(c.remaining()) + " bytes left");
  }
  std::vector<RefCase> cases;
  cases.reserve(count);
  for (uint32_t i = 0; i < count; ++i) {
    c.Expect(kCaseTag, sizeof(kCaseTag), "case tag");
    RefCase rc;
    rc.name = c.ReadString("case name");
    rc.op = c.ReadString("op key");
    if (rc.name.empty() || rc.op.empty())
      c.Fail("case " + std::to_string(i) + " has no name or op");
    uint32_t n = c.Read<uint32_t>("tensor count");
    if (n > kMaxTensorsPerCase) c.Fail("implausible tensor count in case " + rc.name);
    for (uint32_t j = 0; j < n; ++j) {
      RefTensor t = ReadTensor(c);
      if (rc.Find(t.name)) c.Fail("duplicate tensor " + t.name + " in case " + rc.name);
      rc.tensors.push_back(std::move(t));
    }
    cases.push_back(std::move(rc));
  }
  c.Expect(kEndMagic, sizeof(kEndMagic), "end marker");
  if (c.remaining() != 0) c.Fail("trailing bytes after the end marker");
  return cases;
}

std::vector<RefCase> ReadReferenceFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw Error("reference file " + path + ": cannot be opened");
  std::string bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  if (in.bad()) throw Error("reference file " + path + ": read error");
  return ParseReference(bytes, path);
}

OpKey::OpKey(const std::string& key) : key_(key) {
  size_t start = 0;
  bool first = true;
  while (true) {
    size_t bar = key.find('|', start);
    std::string part =
        key.substr(start, bar == std::string::npos ? std::string::npos : bar - start);
    if (first) {
      if (part.empty()) KeyError(key, "empty op name");
      name_ = part;
      first = false;
    } else {
      size_t eq = part.find('=');
      if (eq == std::string::npos || eq == 0) KeyError(key, "parameter without '=': " + part);
      if (!params_.emplace(part.substr(0, eq), part.substr(eq + 1)).second) {
        KeyError(key, "repeated parameter " + part.substr(0, eq));
      }
    }
    if (bar == std::string::npos) break;
    start = bar + 1;
  }
}

const std::string& OpKey::Str(const std::string& param) const {
  auto it = params_.find(param);
  if (it == params_.end()) KeyError(key_, "missing parameter " + param);
  return it->second;
}

int64_t OpKey::Int(const std::string& param) const { return ParseInt(key_, Str(param)); }

int64_t OpKey::Int(const std::string& param, int64_t fallback) const {
  return Has(param) ? Int(param) : fallback;
}

double OpKey::Double(const std::string& param) const {
  const std::string& s = Str(param);
  errno = 0;
  char* end = nullptr;
  double v = std::strtod(s.c_str(), &end);
  if (s.empty() || errno != 0 || *end != '\0') KeyError(key_, "not a number: " + param + "=" + s);
  return v;
}

bool OpKey::Bool(const std::string& param) const {
  int64_t v = Int(param);
  if (v != 0 && v != 1) KeyError(key_, "not 0 or 1: " + param);
  return v == 1;
}

std::vector<int64_t> OpKey::IntList(const std::string& param) const {
  const std::string& s = Str(param);
  std::vector<int64_t> out;
  if (s.empty()) return out;
  size_t start = 0;
  while (true) {
    size_t comma = s.find(',', start);
    out.push_back(ParseInt(
        key_, s.substr(start, comma == std::string::npos ? std::string::npos : comma - start)));
    if (comma == std::string::npos) break;
    start = comma + 1;
  }
  return out;
}

}  // namespace attend::reference
