// GNU gettext .mo catalogs: a validating reader (every offset and length is checked against
// the file size before it is used) and gettext's plural-expression evaluator.
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <cstring>
#include <sstream>

#include "attend/corpus.h"
#include "attend/error.h"
#include "text/unicode.h"

namespace attend::data {
namespace {

constexpr uint32_t kMoMagic = 0x950412de;
constexpr uint32_t kMoMagicSwapped = 0xde120495;
constexpr size_t kHeaderBytes = 28;        // magic .. hash table offset
constexpr size_t kSysdepHeaderBytes = 48;  // revision x.1 adds five more words
// ReadMoCatalog refuses larger files (Debian's largest catalogs are ~2 MB).
constexpr uint64_t kMaxMoBytes = uint64_t{64} << 20;

uint32_t Swap32(uint32_t v) {
  return (v >> 24) | ((v >> 8) & 0xff00u) | ((v << 8) & 0xff0000u) | (v << 24);
}

// Reads words of the file in its own byte order; `at` has been checked by the caller.
class WordReader {
 public:
  WordReader(std::string_view bytes, bool big_endian) : bytes_(bytes), big_endian_(big_endian) {}
  uint32_t At(uint64_t at) const {
    uint32_t v;
    std::memcpy(&v, bytes_.data() + at, 4);  // the file's words need not be aligned
    // The assembled value is in host (little-endian) order; a big-endian file is swapped.
    return big_endian_ ? Swap32(v) : v;
  }

 private:
  std::string_view bytes_;
  bool big_endian_;
};

std::string Lower(std::string_view s) {
  std::string out(s);
  for (char& c : out) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return out;
}

// The value of "Key: value" in a PO header (one field per line), or "" when absent.
std::string HeaderField(const std::string& header, std::string_view key) {
  size_t pos = 0;
  while (pos < header.size()) {
    size_t end = header.find('\n', pos);
    if (end == std::string::npos) end = header.size();
    std::string_view line(header.data() + pos, end - pos);
    if (line.size() > key.size() && line.compare(0, key.size(), key) == 0 &&
        line[key.size()] == ':') {
      std::string_view value = line.substr(key.size() + 1);
      while (!value.empty() && (value.front() == ' ' || value.front() == '\t'))
        value.remove_prefix(1);
      while (!value.empty() && (value.back() == ' ' || value.back() == '\r'))
        value.remove_suffix(1);
      return std::string(value);
    }
    pos = end + 1;
  }
  return "";
}

std::string CharsetOf(const std::string& header) {
  const std::string content_type = Lower(HeaderField(header, "Content-Type"));
  const size_t at = content_type.find("charset=");
  if (at == std::string::npos) return "";
  std::string cs = content_type.substr(at + 8);
  const size_t end = cs.find_first_of("; \t");
  if (end != std::string::npos) cs.resize(end);
  return cs;
}

enum class CharsetKind { kUtf8, kLatin1, kOther };

CharsetKind ClassifyCharset(const std::string& cs) {
  // "charset" is the untranslated template's placeholder; gettext reads such files unconverted.
  if (cs.empty() || cs == "utf-8" || cs == "utf8" || cs == "ascii" || cs == "us-ascii" ||
      cs == "ansi_x3.4-1968" || cs == "charset")
    return CharsetKind::kUtf8;
  if (cs == "iso-8859-1" || cs == "iso8859-1" || cs == "iso_8859-1" || cs == "latin1" ||
      cs == "latin-1" || cs == "l1")
    return CharsetKind::kLatin1;
  return CharsetKind::kOther;
}

std::string Latin1ToUtf8(std::string_view s) {
  std::string out;
  out.reserve(s.size());
  for (unsigned char c : s) text::AppendUtf8(c, out);  // Latin-1 byte = its code point
  return out;
}

std::vector<std::string> SplitNul(std::string_view s) {
  std::vector<std::string> parts;
  size_t pos = 0;
  while (true) {
    const size_t nul = s.find('\0', pos);
    if (nul == std::string_view::npos) {
      parts.emplace_back(s.substr(pos));
      return parts;
    }
    parts.emplace_back(s.substr(pos, nul - pos));
    pos = nul + 1;
  }
}

// ---- plural expressions: recursive descent over gettext's C subset ----

class PluralParser {
 public:
  PluralParser(std::string_view text, uint64_t n) : text_(text), n_(n) {}

  uint64_t Run() {
    const uint64_t v = Ternary(true);
    SkipSpace();
    ATTEND_CHECK(pos_ == text_.size(), "plural expression \"", text_, "\": unexpected '",
                 text_[pos_], "' at offset ", pos_);
    return v;
  }

 private:
  // Nesting deeper than this is refused so that a hostile header cannot exhaust the stack.
  static constexpr int kMaxDepth = 64;

  void SkipSpace() {
    while (pos_ < text_.size() && std::isspace(static_cast<unsigned char>(text_[pos_]))) ++pos_;
  }
  bool Eat(std::string_view op) {
    SkipSpace();
    if (text_.substr(pos_, op.size()) == op) {
      pos_ += op.size();
      return true;
    }
    return false;
  }
  bool Peek(std::string_view op) {
    SkipSpace();
    return text_.substr(pos_, op.size()) == op;
  }
  [[noreturn]] void Fail(const char* what) {
    ::attend::detail::Throw(__FILE__, __LINE__, false, "plural expression \"", text_, "\": ", what,
                            " at offset ", pos_);
  }

  // `live` is false inside the branch of ?: (or the right side of && / ||) that is not taken:
  // it is parsed but a division by zero there is not an error.
  uint64_t Ternary(bool live) {
    DepthGuard guard(this);
    const uint64_t cond = Or(live);
    if (!Eat("?")) return cond;
    const uint64_t a = Ternary(live && cond != 0);
    if (!Eat(":")) Fail("expected ':'");
    const uint64_t b = Ternary(live && cond == 0);
    return cond != 0 ? a : b;
  }
  uint64_t Or(bool live) {
    uint64_t v = And(live);
    while (Eat("||")) {
      const uint64_t r = And(live && v == 0);
      v = (v != 0 || r != 0) ? 1 : 0;
    }
    return v;
  }
  uint64_t And(bool live) {
    uint64_t v = Equality(live);
    while (Eat("&&")) {
      const uint64_t r = Equality(live && v != 0);
      v = (v != 0 && r != 0) ? 1 : 0;
    }
    return v;
  }
  uint64_t Equality(bool live) {
    uint64_t v = Relational(live);
    while (true) {
      if (Eat("==")) {
        v = v == Relational(live);
      } else if (Eat("!=")) {
        v = v != Relational(live);
      } else {
        return v;
      }
    }
  }
  uint64_t Relational(bool live) {
    uint64_t v = Additive(live);
    while (true) {
      if (Eat("<=")) {
        v = v <= Additive(live);
      } else if (Eat(">=")) {
        v = v >= Additive(live);
      } else if (Eat("<")) {
        v = v < Additive(live);
      } else if (Eat(">")) {
        v = v > Additive(live);
      } else {
        return v;
      }
    }
  }
  uint64_t Additive(bool live) {
    uint64_t v = Multiplicative(live);
    while (true) {
      if (Eat("+")) {
        v += Multiplicative(live);
      } else if (Peek("-")) {
        ++pos_;
        v -= Multiplicative(live);
      } else {
        return v;
      }
    }
  }
  uint64_t Multiplicative(bool live) {
    uint64_t v = Unary(live);
    while (true) {
      char op;
      if (Eat("*")) {
        op = '*';
      } else if (Eat("/")) {
        op = '/';
      } else if (Eat("%")) {
        op = '%';
      } else {
        return v;
      }
      const uint64_t r = Unary(live);
      if (op == '*') {
        v *= r;
      } else if (r == 0) {
        if (live) Fail("division by zero");
        v = 0;
      } else {
        v = op == '/' ? v / r : v % r;
      }
    }
  }
  uint64_t Unary(bool live) {
    DepthGuard guard(this);
    // "!=" is an operator of Equality, never a negation.
    if (Peek("!") && !Peek("!=")) {
      ++pos_;
      return Unary(live) == 0 ? 1 : 0;
    }
    return Primary(live);
  }
  uint64_t Primary(bool live) {
    SkipSpace();
    if (pos_ >= text_.size()) Fail("unexpected end");
    const char c = text_[pos_];
    if (c == 'n') {
      ++pos_;
      return n_;
    }
    if (std::isdigit(static_cast<unsigned char>(c))) {
      uint64_t v = 0;
      while (pos_ < text_.size() && std::isdigit(static_cast<unsigned char>(text_[pos_]))) {
        const uint64_t digit = static_cast<uint64_t>(text_[pos_] - '0');
        if (v > (UINT64_MAX - digit) / 10) Fail("number too large");
        v = v * 10 + digit;
        ++pos_;
      }
      return v;
    }
    if (c == '(') {
      ++pos_;
      const uint64_t v = Ternary(live);
      if (!Eat(")")) Fail("expected ')'");
      return v;
    }
    Fail("expected n, a number or '('");
  }

  struct DepthGuard {
    explicit DepthGuard(PluralParser* p) : p_(p) {
      if (++p_->depth_ > kMaxDepth) p_->Fail("nesting too deep");
    }
    ~DepthGuard() { --p_->depth_; }
    PluralParser* p_;
  };

  std::string_view text_;
  uint64_t n_;
  size_t pos_ = 0;
  int depth_ = 0;
};

}  // namespace

uint64_t EvaluatePluralExpression(std::string_view expression, uint64_t n) {
  return PluralParser(expression, n).Run();
}

int SingularPluralIndex(const MoCatalog& catalog) {
  const std::string& pf = catalog.plural_forms;
  if (pf.empty()) return 0;  // gettext's default, "nplurals=2; plural=n != 1"
  const size_t np = pf.find("nplurals=");
  const size_t pl = pf.find("plural=", np == std::string::npos ? 0 : np + 9);
  if (np == std::string::npos || pl == std::string::npos) return -1;
  uint64_t nplurals = 0;
  size_t i = np + 9;
  while (i < pf.size() && pf[i] == ' ') ++i;
  size_t digits = 0;
  while (i < pf.size() && std::isdigit(static_cast<unsigned char>(pf[i])) && digits < 6) {
    nplurals = nplurals * 10 + static_cast<uint64_t>(pf[i++] - '0');
    ++digits;
  }
  if (digits == 0 || nplurals == 0) return -1;
  std::string_view expr(pf);
  expr = expr.substr(pl + 7);
  const size_t semi = expr.find(';');
  if (semi != std::string_view::npos) expr = expr.substr(0, semi);
  try {
    const uint64_t index = EvaluatePluralExpression(expr, 1);
    return index < nplurals ? static_cast<int>(index) : -1;
  } catch (const Error&) {
    return -1;
  }
}

namespace {

// The layout a .mo header gives: byte order, revision and the tables, each checked against the
// file's size. `head` holds the file's first min(size, 48) bytes at least.
struct MoLayout {
  bool big_endian = false;
  uint32_t revision = 0;
  uint64_t count = 0, orig_table = 0, trans_table = 0;
  uint32_t system_dependent_strings = 0;
};

MoLayout ParseMoHeader(std::string_view head, uint64_t size, const std::string& where) {
  ATTEND_CHECK(size >= kHeaderBytes && head.size() >= kHeaderBytes, where, ": the file is ", size,
               " bytes, shorter than the 28-byte .mo header");
  uint32_t magic;
  std::memcpy(&magic, head.data(), 4);
  MoLayout l;
  if (magic == kMoMagic) {
    l.big_endian = false;
  } else if (magic == kMoMagicSwapped) {
    l.big_endian = true;
  } else {
    std::ostringstream hex;
    hex << std::hex << magic;
    ATTEND_CHECK(false, where, ": not a .mo file (magic number 0x", hex.str(),
                 ", expected 0x950412de in either byte order)");
  }
  const WordReader w(head, l.big_endian);
  l.revision = w.At(4);
  const uint32_t major = l.revision >> 16, minor = l.revision & 0xffff;
  ATTEND_CHECK(major <= 1, where, ": unsupported major revision ", major, " (0 and 1 are known)");
  l.count = w.At(8);
  l.orig_table = w.At(12);
  l.trans_table = w.At(16);
  const uint64_t hash_size = w.At(20), hash_offset = w.At(24);
  // All arithmetic is in 64 bits on 32-bit fields, so none of these sums can wrap.
  ATTEND_CHECK(l.orig_table + l.count * 8 <= size, where, ": the table of ", l.count,
               " original strings at offset ", l.orig_table, " runs past the end of the file (",
               size, " bytes)");
  ATTEND_CHECK(l.trans_table + l.count * 8 <= size, where, ": the table of ", l.count,
               " translations at offset ", l.trans_table, " runs past the end of the file (", size,
               " bytes)");
  ATTEND_CHECK(hash_size == 0 || hash_offset + hash_size * 4 <= size, where, ": the hash table of ",
               hash_size, " slots at offset ", hash_offset, " runs past the end of the file (",
               size, " bytes)");
  if (minor >= 1) {
    ATTEND_CHECK(size >= kSysdepHeaderBytes && head.size() >= kSysdepHeaderBytes, where,
                 ": revision ", major, ".", minor, " needs a 48-byte header, the file is ", size,
                 " bytes");
    const uint64_t n_segments = w.At(28), segments_offset = w.At(32);
    const uint64_t n_sysdep = w.At(36), sysdep_orig = w.At(40), sysdep_trans = w.At(44);
    ATTEND_CHECK(segments_offset + n_segments * 8 <= size && sysdep_orig + n_sysdep * 4 <= size &&
                     sysdep_trans + n_sysdep * 4 <= size,
                 where, ": the system-dependent string tables (", n_segments, " segments, ",
                 n_sysdep, " strings) run past the end of the file (", size, " bytes)");
    l.system_dependent_strings = static_cast<uint32_t>(n_sysdep);
  }
  return l;
}

}  // namespace

MoCatalog ParseMoCatalog(std::string_view bytes, const std::string& source) {
  const std::string where = ".mo catalog " + source;
  const uint64_t size = bytes.size();
  const MoLayout layout = ParseMoHeader(bytes, size, where);
  MoCatalog cat;
  cat.source = source;
  cat.big_endian = layout.big_endian;
  cat.revision = layout.revision;
  cat.system_dependent_strings = layout.system_dependent_strings;
  const uint64_t count = layout.count, orig_table = layout.orig_table;
  const uint64_t trans_table = layout.trans_table;
  const WordReader w(bytes, cat.big_endian);

  // String i of a table, checked: it and its terminating NUL lie inside the file.
  auto string_at = [&](uint64_t table, uint64_t i, const char* table_name) {
    const uint64_t length = w.At(table + i * 8), offset = w.At(table + i * 8 + 4);
    ATTEND_CHECK(offset + length < size, where, ": string ", i, " of the ", table_name,
                 " table: offset ", offset, " + length ", length,
                 " (and its NUL) is past the end of the file (", size, " bytes)");
    ATTEND_CHECK(bytes[offset + length] == '\0', where, ": string ", i, " of the ", table_name,
                 " table (offset ", offset, ", length ", length, ") is not NUL-terminated");
    return bytes.substr(offset, length);
  };

  struct Raw {
    std::string_view orig, trans;
  };
  std::vector<Raw> raw;
  raw.reserve(count);
  for (uint64_t i = 0; i < count; ++i)
    raw.push_back({string_at(orig_table, i, "original"), string_at(trans_table, i, "translation")});

  // The header (empty msgid, no context) gives the charset before anything is decoded.
  for (const Raw& r : raw) {
    if (r.orig.empty()) {
      cat.header = std::string(r.trans);
      break;
    }
  }
  cat.charset = CharsetOf(cat.header);
  const CharsetKind kind = ClassifyCharset(cat.charset);
  cat.plural_forms = HeaderField(cat.header, "Plural-Forms");
  if (kind == CharsetKind::kOther) {
    cat.charset_supported = false;
    return cat;
  }
  const bool latin1 = kind == CharsetKind::kLatin1;
  cat.converted_from_latin1 = latin1;
  auto decode = [&](std::string_view s) { return latin1 ? Latin1ToUtf8(s) : std::string(s); };
  if (latin1) cat.header = Latin1ToUtf8(cat.header);

  for (uint64_t i = 0; i < count; ++i) {
    const Raw& r = raw[i];
    if (r.orig.empty()) continue;  // the header
    MoEntry e;
    std::string_view id = r.orig;
    const size_t eot = id.find('\x04');
    if (eot != std::string_view::npos) {
      e.has_context = true;
      e.context = decode(id.substr(0, eot));
      id = id.substr(eot + 1);
    }
    const size_t nul = id.find('\0');
    if (nul != std::string_view::npos) {
      e.is_plural = true;
      e.msgid_plural = decode(id.substr(nul + 1));
      id = id.substr(0, nul);
    }
    e.msgid = decode(id);
    for (std::string& form : SplitNul(r.trans))
      e.msgstr.push_back(latin1 ? Latin1ToUtf8(form) : form);
    ATTEND_CHECK(e.is_plural || e.msgstr.size() == 1, where, ": entry ", i,
                 " is singular but its translation holds ", e.msgstr.size(),
                 " NUL-separated forms");
    cat.entries.push_back(std::move(e));
  }
  return cat;
}

MoCatalog ReadMoCatalog(const std::string& path) {
  const std::string where = ".mo catalog " + path;
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  ATTEND_CHECK(fd >= 0, where, ": cannot open the file: ", ErrnoText());
  struct Closer {
    int fd;
    ~Closer() { ::close(fd); }
  } closer{fd};
  // pread until `n` bytes are in `dst` or the file ends; the count read.
  auto read_at = [&](char* dst, size_t n, uint64_t offset) {
    size_t done = 0;
    while (done < n) {
      const ssize_t r = ::pread(fd, dst + done, n - done, static_cast<off_t>(offset + done));
      if (r < 0 && errno == EINTR) continue;
      ATTEND_CHECK(r >= 0, where, ": read error: ", ErrnoText());
      if (r == 0) break;
      done += static_cast<size_t>(r);
    }
    return done;
  };
  struct stat st;
  ATTEND_CHECK(::fstat(fd, &st) == 0 && S_ISREG(st.st_mode), where, ": not a regular file");
  const uint64_t size = static_cast<uint64_t>(st.st_size);
  // The header and its tables are checked against the size before the rest is read: a large
  // (or sparse) file that is not a catalog costs one small read, not its size in memory.
  std::string head(static_cast<size_t>(std::min<uint64_t>(size, kSysdepHeaderBytes)), '\0');
  head.resize(read_at(head.data(), head.size(), 0));
  ParseMoHeader(head, size, where);
  ATTEND_CHECK(size <= kMaxMoBytes, where, ": the file is ", size, " bytes, over the ", kMaxMoBytes,
               " bytes a catalog may have (the largest Debian catalogs are ~2 MB)");
  std::string bytes(static_cast<size_t>(size), '\0');
  const size_t got = read_at(bytes.data(), bytes.size(), 0);
  ATTEND_CHECK(got == size, where, ": the file shrank while it was read (", got, " of ", size,
               " bytes)");
  return ParseMoCatalog(bytes, path);
}

}  // namespace attend::data
