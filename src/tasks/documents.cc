// Manual pages classified by section (attend/tasks/documents.h): the troff reader, the corpus,
// the HAN / flat / mean classifiers with single or stacked attention, the task the one trainer
// runs, and the page that draws the weights.
#include "attend/tasks/documents.h"

#include <sys/stat.h>
#include <zlib.h>

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <map>
#include <cstring>
#include <memory>
#include <set>
#include <sstream>
#include <string>
#include <unordered_map>
#include <utility>
#include <vector>

#include "attend/files.h"

namespace attend::tasks {
namespace {

namespace fs = std::filesystem;

// ---- troff ----

// Advances i (at the character after an escape's letter) past a name: "(xx", "[name]" or one
// character.
void SkipEscapeName(const std::string& s, size_t& i) {
  if (i + 1 >= s.size()) {
    i = s.size();
    return;
  }
  const char c = s[i + 1];
  if (c == '(') {
    i = std::min(s.size(), i + 3);
  } else if (c == '[') {
    const size_t close = s.find(']', i + 2);
    i = close == std::string::npos ? s.size() : close;
  } else {
    i += 1;
  }
}

// Advances past a delimited argument: \h'1n', \w"text".
void SkipDelimited(const std::string& s, size_t& i) {
  if (i + 1 >= s.size()) {
    i = s.size();
    return;
  }
  const char delim = s[i + 1];
  const size_t close = s.find(delim, i + 2);
  i = close == std::string::npos ? s.size() : close;
}

// The text of a line with its escapes resolved: fonts, sizes, strings, registers and motions
// vanish; special characters become a space (they are punctuation and symbols in man pages:
// \(em, \(bu, \(aq), so words on either side stay apart; \- is a hyphen, \e a backslash.
std::string StripEscapes(const std::string& s) {
  std::string out;
  out.reserve(s.size());
  for (size_t i = 0; i < s.size(); ++i) {
    const char c = s[i];
    if (c != '\\') {
      out += c;
      continue;
    }
    if (i + 1 >= s.size()) break;  // an escaped newline joins lines
    const char e = s[++i];
    switch (e) {
      case '"': return out;  // a comment runs to the end of the line
      case '#': return out;
      case 'f':
      case '*':
      case 'n':
      case 'm':
      case 'M':
      case 'F':
      case 'g':
      case 'V':
      case 'Y':
      case '$':
      case 'k': SkipEscapeName(s, i); break;
      case '(':
        i = std::min(s.size() - 1, i + 2);
        out += ' ';
        break;
      case '[': {
        const size_t close = s.find(']', i + 1);
        i = close == std::string::npos ? s.size() - 1 : close;
        out += ' ';
        break;
      }
      case 's':  // \s+1, \s-1, \s0, \s(12, \s[12]
        if (i + 1 < s.size() && (s[i + 1] == '+' || s[i + 1] == '-')) ++i;
        if (i + 1 < s.size() && (s[i + 1] == '(' || s[i + 1] == '[')) {
          SkipEscapeName(s, i);
        } else {
          while (i + 1 < s.size() && std::isdigit(static_cast<unsigned char>(s[i + 1]))) ++i;
        }
        break;
      case 'h':
      case 'v':
      case 'w':
      case 'l':
      case 'L':
      case 'o':
      case 'D':
      case 'X':
      case 'b':
      case 'x':
      case 'Z':
      case 'A':
      case 'B':
      case 'C':
      case 'N':
      case 'R':
      case 'S':
        SkipDelimited(s, i);
        out += ' ';
        break;
      case 'e':
      case '\\': out += '\\'; break;
      case '-': out += '-'; break;
      case '0':
      case '~':
      case '|':
      case '^':
      case ' ':
      case 't': out += ' '; break;
      case '&':
      case ')':
      case 'c':
      case ':':
      case '%':
      case '{':
      case '}':
      case 'd':
      case 'u':
      case 'p':
      case 'r':
      case 'a':
      case 'z':
      case '/':
      case ',': break;
      default: out += e;
    }
  }
  return out;
}

// A macro line's arguments: split at blanks, "double quotes" group (and "" is a literal quote).
std::vector<std::string> MacroArguments(const std::string& rest) {
  std::vector<std::string> args;
  size_t i = 0;
  while (i < rest.size()) {
    while (i < rest.size() && (rest[i] == ' ' || rest[i] == '\t')) ++i;
    if (i >= rest.size()) break;
    std::string a;
    if (rest[i] == '"') {
      ++i;
      while (i < rest.size()) {
        if (rest[i] == '"') {
          if (i + 1 < rest.size() && rest[i + 1] == '"') {
            a += '"';
            i += 2;
            continue;
          }
          ++i;
          break;
        }
        a += rest[i++];
      }
    } else {
      while (i < rest.size() && rest[i] != ' ' && rest[i] != '\t') a += rest[i++];
    }
    args.push_back(a);
  }
  return args;
}

bool IsWordByte(unsigned char c) { return std::isalnum(c) || c == '_' || c >= 0x80; }

std::vector<std::string> Words(const std::string& s) {
  std::vector<std::string> words;
  std::string w;
  for (unsigned char c : s) {
    if (IsWordByte(c)) {
      w += static_cast<char>(std::tolower(c));
    } else if (!w.empty()) {
      words.push_back(std::move(w));
      w.clear();
    }
  }
  if (!w.empty()) words.push_back(std::move(w));
  return words;
}

// Collects paragraphs and cuts them into sentences.
class SentenceSink {
 public:
  void Add(const std::string& text) {
    if (!paragraph_.empty()) paragraph_ += ' ';
    paragraph_ += text;
  }
  void Break() {
    size_t start = 0;
    for (size_t i = 0; i < paragraph_.size(); ++i) {
      const char c = paragraph_[i];
      const bool end =
          (c == '.' || c == '!' || c == '?') &&
          (i + 1 == paragraph_.size() || paragraph_[i + 1] == ' ' || paragraph_[i + 1] == '\t');
      if (end) {
        Emit(paragraph_.substr(start, i + 1 - start));
        start = i + 1;
      }
    }
    if (start < paragraph_.size()) Emit(paragraph_.substr(start));
    paragraph_.clear();
  }
  std::vector<std::vector<std::string>> Take() {
    Break();
    return std::move(sentences_);
  }

 private:
  void Emit(const std::string& s) {
    std::vector<std::string> w = Words(s);
    if (!w.empty()) sentences_.push_back(std::move(w));
  }
  std::string paragraph_;
  std::vector<std::vector<std::string>> sentences_;
};

std::vector<std::string> SplitLines(const std::string& text) {
  std::vector<std::string> lines;
  std::string line;
  std::istringstream in(text);
  while (std::getline(in, line)) {
    if (!line.empty() && line.back() == '\r') line.pop_back();
    lines.push_back(line);
  }
  return lines;
}

// A control line's request name and the rest: ".BR open (2)" -> ("BR", "open (2)").
std::pair<std::string, std::string> Request(const std::string& line) {
  size_t i = 1;
  while (i < line.size() && (line[i] == ' ' || line[i] == '\t')) ++i;
  size_t j = i;
  while (j < line.size() && line[j] != ' ' && line[j] != '\t') ++j;
  return {line.substr(i, j - i), j < line.size() ? line.substr(j + 1) : std::string()};
}

uint64_t Fnv1a(const std::string& s) {
  uint64_t h = 1469598103934665603ull;
  for (unsigned char c : s) {
    h ^= c;
    h *= 1099511628211ull;
  }
  return h;
}

// "man3" -> 3, anything else -> -1.
int SectionOfDirectory(const std::string& dir) {
  if (dir.size() == 4 && dir.compare(0, 3, "man") == 0 &&
      std::isdigit(static_cast<unsigned char>(dir[3])))
    return dir[3] - '0';
  return -1;
}

bool IsSymlink(const std::string& path) {
  struct stat st;
  return lstat(path.c_str(), &st) == 0 && S_ISLNK(st.st_mode);
}

std::string JsonString(const std::string& s) {
  std::string out = "\"";
  for (char c : s) {
    if (c == '"' || c == '\\') out += '\\';
    out += c;
  }
  return out + "\"";
}

std::string HtmlEscape(const std::string& s) {
  std::string out;
  for (char c : s) {
    if (c == '<') {
      out += "&lt;";
    } else if (c == '>') {
      out += "&gt;";
    } else if (c == '&') {
      out += "&amp;";
    } else {
      out += c;
    }
  }
  return out;
}

std::string Fixed(double v, int digits) {
  std::ostringstream s;
  s.setf(std::ios::fixed);
  s.precision(digits);
  s << v;
  return s.str();
}

}  // namespace

int DocumentLabelOfSection(int section) {
  for (size_t i = 0; i < kDocumentSections.size(); ++i)
    if (kDocumentSections[i] == section) return static_cast<int>(i);
  return -1;
}

std::vector<std::string> DefaultManPackages() {
  // The Linux man-pages project (sections 2, 3, 4, 5, 7 and a few of 1 and 8), and the base
  // system's commands and administration tools, so that sections 1 and 8 have pages too. Every
  // one is installed by scripts/setup.sh; most are on every Debian system.
  return {"manpages", "manpages-dev", "coreutils", "util-linux", "mount",
          "passwd",   "login",        "procps",    "e2fsprogs",  "dpkg",
          "apt",      "debianutils",  "man-db",    "findutils",  "grep",
          "sed",      "tar",          "gzip",      "bash"};
}

std::string ReadGzipFile(const std::string& path) {
  struct stat st;
  ATTEND_CHECK(stat(path.c_str(), &st) == 0, path, ": cannot read the file (", strerror(errno),
               ")");
  ATTEND_CHECK(st.st_size > 0, path, ": the file is empty, expected a gzip'ed manual page");
  gzFile f = gzopen(path.c_str(), "rb");
  ATTEND_CHECK(f != nullptr, path, ": cannot open the file");
  std::unique_ptr<gzFile_s, int (*)(gzFile)> closer(f, gzclose);
  std::string out;
  char buf[1 << 15];
  for (;;) {
    const int n = gzread(f, buf, sizeof(buf));
    if (n < 0) {
      int code = 0;
      const char* msg = gzerror(f, &code);
      ATTEND_CHECK(false, path, ": corrupt gzip data (", msg ? msg : "?", ")");
    }
    if (n == 0) break;
    out.append(buf, static_cast<size_t>(n));
  }
  // zlib reads a file that is not gzip as plain bytes ("transparent" mode): refuse it, a page
  // of the list is always compressed.
  ATTEND_CHECK(!gzdirect(f), path, ": not a gzip file");
  int code = Z_OK;
  const char* msg = gzerror(f, &code);
  ATTEND_CHECK(code == Z_OK, path, ": truncated or corrupt gzip data (", msg ? msg : "?", ")");
  return out;
}

std::string TroffRedirect(const std::string& troff) {
  for (const std::string& line : SplitLines(troff)) {
    if (line.empty()) continue;
    if (line.rfind(".\\\"", 0) == 0 || line.rfind("'\\\"", 0) == 0) continue;
    auto [name, rest] = Request(line);
    if ((line[0] == '.' || line[0] == '\'') && name == "so") {
      std::vector<std::string> args = MacroArguments(rest);
      return args.empty() ? std::string("?") : args[0];
    }
    return "";
  }
  return "";
}

std::vector<std::vector<std::string>> TroffToSentences(const std::string& troff) {
  // Macros whose arguments are running text; the alternating ones (.BR "open" "(2)") join their
  // arguments without a space.
  static const std::set<std::string> kSpaced = {"B",  "I",  "SM", "SB", "SH",
                                                "SS", "IP", "TP", "Nm", "OP"};
  static const std::set<std::string> kAlternating = {"BR", "RB", "IR", "RI", "BI", "IB"};
  // Requests and macros that end a paragraph (and so a sentence).
  static const std::set<std::string> kBreaks = {"PP", "LP", "P",  "TP", "IP", "sp", "br", "nf",
                                                "fi", "EX", "EE", "RS", "RE", "HP", "SY", "YS",
                                                "TQ", "bp", "SH", "SS", "TS", "TE", "in", "ti"};
  SentenceSink sink;
  bool in_definition = false, table_format = false, in_table = false, nofill = false;
  for (const std::string& line : SplitLines(troff)) {
    if (in_definition) {
      // ".." ends a definition, also written with blanks between the dots (".  .").
      if (line.rfind("..", 0) == 0 ||
          (!line.empty() && line[0] == '.' && Request(line).first == "."))
        in_definition = false;
      continue;
    }
    if (!line.empty() && (line[0] == '.' || line[0] == '\'')) {
      auto [name, rest] = Request(line);
      if (name.rfind("\\\"", 0) == 0 || name.rfind("\\#", 0) == 0 || name.empty()) continue;
      if (name == "de" || name == "de1" || name == "am" || name == "ig") {
        in_definition = true;
        continue;
      }
      if (kBreaks.count(name)) sink.Break();
      if (name == "nf" || name == "EX") nofill = true;
      if (name == "fi" || name == "EE") nofill = false;
      if (name == "TS") in_table = table_format = true;
      if (name == "TE") in_table = table_format = false;
      const bool spaced = kSpaced.count(name) > 0, alternating = kAlternating.count(name) > 0;
      if (spaced || alternating) {
        std::vector<std::string> args = MacroArguments(rest);
        // .IP's and .TP's argument beyond the tag is an indent, not text.
        if ((name == "IP") && args.size() > 1) args.resize(1);
        if (name == "TP") args.clear();
        std::string text;
        for (const std::string& a : args) {
          if (spaced && !text.empty()) text += ' ';
          text += StripEscapes(a);
        }
        sink.Add(text);
        // A heading is a sentence of its own.
        if (name == "SH" || name == "SS" || nofill) sink.Break();
      }
      continue;
    }
    if (table_format) {
      // A table's format lines end with the line that ends in '.'.
      std::string t = line;
      while (!t.empty() && (t.back() == ' ' || t.back() == '\t')) t.pop_back();
      if (!t.empty() && t.back() == '.') table_format = false;
      continue;
    }
    std::string text = StripEscapes(line);
    if (in_table) std::replace(text.begin(), text.end(), '\t', ' ');
    const bool blank = text.find_first_not_of(" \t") == std::string::npos;
    if (blank) {
      sink.Break();
      continue;
    }
    sink.Add(text);
    if (nofill || in_table) sink.Break();
  }
  return sink.Take();
}

std::vector<ManPageFile> ListPackageManPages(const std::vector<std::string>& packages,
                                             const std::string& dpkg_info, int64_t* links) {
  ATTEND_CHECK(!packages.empty(), "documents: no packages given");
  std::set<std::string> paths;
  for (const std::string& p : packages) {
    std::string list = dpkg_info + "/" + p + ".list";
    if (!fs::exists(list)) {
      // Multi-arch packages are listed as PACKAGE:ARCH.list.
      list.clear();
      std::error_code ec;
      std::vector<std::string> found;
      for (const auto& e : fs::directory_iterator(dpkg_info, ec)) {
        const std::string n = e.path().filename().string();
        if (n.rfind(p + ":", 0) == 0 && n.size() > 5 && n.compare(n.size() - 5, 5, ".list") == 0)
          found.push_back(e.path().string());
      }
      std::sort(found.begin(), found.end());
      if (!found.empty()) list = found[0];
    }
    ATTEND_CHECK(!list.empty(), "documents: package ", p, " is not installed (no ", dpkg_info, "/",
                 p, ".list); scripts/setup.sh installs the corpus's packages");
    std::ifstream in(list);
    ATTEND_CHECK(in.good(), "documents: cannot read ", list);
    std::string line;
    while (std::getline(in, line)) {
      const std::string prefix = "/usr/share/man/";
      if (line.rfind(prefix, 0) != 0) continue;
      const std::string rest = line.substr(prefix.size());
      const size_t slash = rest.find('/');
      if (slash == std::string::npos || rest.find('/', slash + 1) != std::string::npos) continue;
      if (SectionOfDirectory(rest.substr(0, slash)) < 0) continue;  // man/LANG/... too
      if (rest.size() < 3 || rest.compare(rest.size() - 3, 3, ".gz") != 0) continue;
      paths.insert(line);
    }
  }
  std::vector<ManPageFile> pages;
  for (const std::string& path : paths) {
    if (IsSymlink(path)) {
      if (links) ++*links;
      continue;
    }
    ATTEND_CHECK(fs::exists(path), "documents: ", path,
                 " is listed by its package but absent (are manual pages excluded by dpkg's "
                 "path-exclude, as in slim container images?)");
    const fs::path fp(path);
    ManPageFile m;
    m.path = path;
    m.name = fp.stem().string();
    m.section = SectionOfDirectory(fp.parent_path().filename().string());
    pages.push_back(std::move(m));
  }
  return pages;
}

std::vector<ManPageFile> ListDirectoryManPages(const std::string& man_dir, int64_t* links) {
  ATTEND_CHECK(fs::is_directory(man_dir), "documents: --man-dir ", man_dir, " is not a directory");
  std::vector<ManPageFile> pages;
  for (const auto& d : fs::directory_iterator(man_dir)) {
    const int section = SectionOfDirectory(d.path().filename().string());
    if (section < 0 || !d.is_directory()) continue;
    for (const auto& f : fs::directory_iterator(d.path())) {
      const std::string n = f.path().filename().string();
      if (n.size() < 4 || n.compare(n.size() - 3, 3, ".gz") != 0) continue;
      if (IsSymlink(f.path().string())) {
        if (links) ++*links;
        continue;
      }
      ManPageFile m;
      m.path = f.path().string();
      m.name = n.substr(0, n.size() - 3);
      m.section = section;
      pages.push_back(std::move(m));
    }
  }
  std::sort(pages.begin(), pages.end(),
            [](const ManPageFile& a, const ManPageFile& b) { return a.path < b.path; });
  return pages;
}

int DocumentSplitOfName(const std::string& name) {
  const uint64_t r = Fnv1a(name) % 10;
  return r < 8 ? 0 : (r == 8 ? 1 : 2);
}

std::string DocumentsCorpus::Summary() const {
  static const char* kNames[3] = {"train", "dev", "test"};
  std::ostringstream s;
  for (int k = 0; k < 3; ++k) {
    std::vector<int64_t> counts(kDocumentSections.size(), 0);
    for (const Document& d : splits[k]) ++counts[d.label];
    s << (k ? " | " : "") << kNames[k] << " " << splits[k].size() << " (";
    for (size_t c = 0; c < counts.size(); ++c)
      s << (c ? ", " : "") << "man" << kDocumentSections[c] << " " << counts[c];
    s << ")";
  }
  s << "; vocabulary " << vocab.size() << "; left out: " << links << " links, " << redirects
    << " .so redirects, " << other_sections << " pages of other sections";
  return s.str();
}

DocumentsCorpus BuildDocumentsCorpus(const DocumentsCorpusOptions& o) {
  ATTEND_CHECK(o.max_sentences >= 1 && o.max_words >= 1,
               "documents: --max-sentences and --max-words must be at least 1, got ",
               o.max_sentences, " and ", o.max_words);
  ATTEND_CHECK(o.vocab_size >= 3, "documents: --vocab must be at least 3, got ", o.vocab_size);
  DocumentsCorpus c;
  const std::vector<ManPageFile> pages =
      o.man_dir.empty() ? ListPackageManPages(o.packages, o.dpkg_info, &c.links)
                        : ListDirectoryManPages(o.man_dir, &c.links);
  std::set<std::string> names;
  for (const ManPageFile& p : pages) {
    const int label = DocumentLabelOfSection(p.section);
    if (label < 0) {
      ++c.other_sections;
      continue;
    }
    const std::string troff = ReadGzipFile(p.path);
    if (!TroffRedirect(troff).empty()) {
      ++c.redirects;
      continue;
    }
    // Two packages shipping a page of one name would put one text in two places.
    ATTEND_CHECK(names.insert(p.name).second, "documents: two pages are named ", p.name,
                 " (the second: ", p.path, ")");
    Document d;
    d.name = p.name;
    d.label = label;
    d.sentences = TroffToSentences(troff);
    ATTEND_CHECK(!d.sentences.empty(), p.path, ": the page has no text");
    if (static_cast<int64_t>(d.sentences.size()) > o.max_sentences)
      d.sentences.resize(static_cast<size_t>(o.max_sentences));
    for (auto& s : d.sentences)
      if (static_cast<int64_t>(s.size()) > o.max_words) s.resize(static_cast<size_t>(o.max_words));
    c.splits[DocumentSplitOfName(p.name)].push_back(std::move(d));
  }
  static const char* kNames[3] = {"training", "dev", "test"};
  for (int k = 0; k < 3; ++k) {
    ATTEND_CHECK(!c.splits[k].empty(), "documents: the ", kNames[k], " split is empty (",
                 pages.size(), " pages found): the corpus needs more pages");
    std::sort(c.splits[k].begin(), c.splits[k].end(),
              [](const Document& a, const Document& b) { return a.name < b.name; });
  }
  std::unordered_map<std::string, int64_t> counts;
  for (const Document& d : c.splits[0])
    for (const auto& s : d.sentences)
      for (const std::string& w : s) ++counts[w];
  std::vector<std::pair<int64_t, std::string>> ranked;
  for (auto& [w, n] : counts)
    if (n >= o.min_count) ranked.push_back({-n, w});
  std::sort(ranked.begin(), ranked.end());
  c.vocab = {"<pad>", "<unk>"};
  for (const auto& [n, w] : ranked) {
    if (static_cast<int64_t>(c.vocab.size()) >= o.vocab_size) break;
    c.vocab.push_back(w);
  }
  return c;
}

// ---- batches ----

EncodedDocument EncodeDocument(const Document& d, const std::vector<std::string>& vocab) {
  std::unordered_map<std::string, int64_t> ids;
  for (size_t i = 2; i < vocab.size(); ++i) ids[vocab[i]] = static_cast<int64_t>(i);
  EncodedDocument e;
  e.label = d.label;
  for (const auto& s : d.sentences) {
    std::vector<int64_t> row;
    for (const std::string& w : s) {
      auto it = ids.find(w);
      row.push_back(it == ids.end() ? 1 : it->second);
    }
    if (!row.empty()) e.sentences.push_back(std::move(row));
  }
  ATTEND_CHECK(!e.sentences.empty(), "documents: document ", d.name, " has no words");
  return e;
}

DocumentBatch MakeDocumentBatch(const std::vector<const EncodedDocument*>& docs) {
  ATTEND_CHECK(!docs.empty(), "documents: an empty batch");
  const int64_t b = static_cast<int64_t>(docs.size());
  int64_t s = 1, w = 1, l = 1;
  for (const EncodedDocument* d : docs) {
    s = std::max<int64_t>(s, static_cast<int64_t>(d->sentences.size()));
    int64_t total = 0;
    for (const auto& sent : d->sentences) {
      w = std::max<int64_t>(w, static_cast<int64_t>(sent.size()));
      total += static_cast<int64_t>(sent.size());
    }
    l = std::max(l, total);
  }
  std::vector<int64_t> words(b * s * w, 0), lengths(b * s, 0), counts(b), flat(b * l, 0),
      flat_lengths(b), labels(b);
  for (int64_t i = 0; i < b; ++i) {
    const EncodedDocument& d = *docs[i];
    counts[i] = static_cast<int64_t>(d.sentences.size());
    labels[i] = d.label;
    int64_t pos = 0;
    for (size_t j = 0; j < d.sentences.size(); ++j) {
      lengths[i * s + j] = static_cast<int64_t>(d.sentences[j].size());
      for (size_t t = 0; t < d.sentences[j].size(); ++t) {
        words[(i * s + j) * w + t] = d.sentences[j][t];
        flat[i * l + pos++] = d.sentences[j][t];
      }
    }
    flat_lengths[i] = pos;
  }
  DocumentBatch out;
  out.words = Tensor::FromVector(words, {b, s, w});
  out.word_lengths = Tensor::FromVector(lengths, {b, s});
  out.sentence_counts = Tensor::FromVector(counts, {b});
  out.flat_words = Tensor::FromVector(flat, {b, l});
  out.flat_lengths = Tensor::FromVector(flat_lengths, {b});
  out.labels = Tensor::FromVector(labels, {b});
  return out;
}

// ---- models ----

DocumentModelKind ParseDocumentModel(const std::string& s) {
  if (s == "han") return DocumentModelKind::kHan;
  if (s == "flat") return DocumentModelKind::kFlat;
  if (s == "mean") return DocumentModelKind::kMean;
  ATTEND_CHECK(false, "documents: unknown model '", s, "' (expected han, flat or mean)");
  return DocumentModelKind::kHan;
}

DocumentAttentionKind ParseDocumentAttention(const std::string& s) {
  if (s == "single") return DocumentAttentionKind::kSingle;
  if (s == "stacked") return DocumentAttentionKind::kStacked;
  ATTEND_CHECK(false, "documents: unknown attention '", s, "' (expected single or stacked)");
  return DocumentAttentionKind::kSingle;
}

std::string ToString(DocumentModelKind k) {
  return k == DocumentModelKind::kHan ? "han" : (k == DocumentModelKind::kFlat ? "flat" : "mean");
}

std::string ToString(DocumentAttentionKind k) {
  return k == DocumentAttentionKind::kSingle ? "single" : "stacked";
}

AttentionPool::AttentionPool(int64_t dim, int64_t attn_dim, DocumentAttentionKind kind,
                             int stacked_layers, Generator& gen, DType dtype) {
  if (kind == DocumentAttentionKind::kSingle) {
    single = RegisterModule(
        "attention", std::make_shared<attention::ContextAttention>(dim, attn_dim, gen, dtype));
    return;
  }
  // The learned query starts as u_w does in the single layer: U(-1/sqrt(A), 1/sqrt(A)).
  Tensor q = Tensor::Zeros({attn_dim}, dtype);
  const double a = 1.0 / std::sqrt(static_cast<double>(attn_dim));
  nn::init::Uniform(q, -a, a, gen);
  query = RegisterParameter("query", q);
  stacked = RegisterModule("attention", std::make_shared<attention::StackedLatentAttention>(
                                            attn_dim, dim, attn_dim, stacked_layers, gen, dtype));
}

AttentionPool::Output AttentionPool::Forward(const Tensor& h, const Tensor& mask) const {
  Output out;
  if (single) {
    attention::Attended a = single->Forward(h, mask);
    out.context = a.context;
    out.weights = a.weights;
    out.layer_weights = {a.weights};
    return out;
  }
  const int64_t b = h.size(0), q = query.size(0);
  Tensor queries = query.View({1, 1, q}).Expand({b, 1, q});
  attention::StackedLatentAttention::Output s = stacked->Forward(queries, h, mask.Unsqueeze(1));
  out.context = s.context;
  out.weights = s.weights.back();
  out.layer_weights = s.weights;
  return out;
}

DocumentClassifier::DocumentClassifier(const DocumentModelConfig& c, Generator& gen) : config_(c) {
  ATTEND_CHECK(c.vocab >= 3 && c.embed_dim >= 1 && c.word_hidden >= 1 && c.sentence_hidden >= 1 &&
                   c.attn_dim >= 1 && c.classes >= 2 && c.stacked_layers >= 1,
               "DocumentClassifier: sizes must be positive (vocab >= 3, classes >= 2), got vocab ",
               c.vocab, ", embed ", c.embed_dim, ", hidden ", c.word_hidden, "/", c.sentence_hidden,
               ", attention ", c.attn_dim, ", classes ", c.classes, ", stacked layers ",
               c.stacked_layers);
  nn::RnnOptions bi;
  bi.bidirectional = true;
  bi.dtype = c.dtype;
  embed = RegisterModule("embed",
                         std::make_shared<nn::Embedding>(c.vocab, c.embed_dim, gen, 0, c.dtype));
  word_rnn =
      RegisterModule("word_rnn", std::make_shared<nn::GRU>(c.embed_dim, c.word_hidden, gen, bi));
  int64_t doc_dim = 2 * c.word_hidden;
  if (c.model != DocumentModelKind::kMean)
    word_pool = RegisterModule(
        "word_pool", std::make_shared<AttentionPool>(2 * c.word_hidden, c.attn_dim, c.attention,
                                                     c.stacked_layers, gen, c.dtype));
  if (c.model == DocumentModelKind::kHan) {
    sentence_rnn = RegisterModule(
        "sentence_rnn", std::make_shared<nn::GRU>(2 * c.word_hidden, c.sentence_hidden, gen, bi));
    sentence_pool = RegisterModule(
        "sentence_pool",
        std::make_shared<AttentionPool>(2 * c.sentence_hidden, c.attn_dim, c.attention,
                                        c.stacked_layers, gen, c.dtype));
    doc_dim = 2 * c.sentence_hidden;
  }
  classifier = RegisterModule("classifier",
                              std::make_shared<nn::Linear>(doc_dim, c.classes, true, gen, c.dtype));
}

DocumentClassifier::Output DocumentClassifier::Forward(const DocumentBatch& batch) const {
  Output out;
  if (config_.model == DocumentModelKind::kHan) {
    const Tensor& words = batch.words;
    ATTEND_CHECK(words.defined() && words.dtype() == DType::kI64 && words.dim() == 3,
                 "DocumentClassifier: words must be i64 [B, S, W], got ", words.str());
    const int64_t b = words.size(0), s = words.size(1), w = words.size(2);
    ATTEND_CHECK(batch.word_lengths.defined() && batch.word_lengths.shape() == Shape({b, s}) &&
                     batch.sentence_counts.defined() && batch.sentence_counts.shape() == Shape({b}),
                 "DocumentClassifier: word_lengths must be [", b, ", ", s,
                 "] and sentence_counts [", b, "]");
    const std::vector<int64_t> wl = batch.word_lengths.ToVector<int64_t>(),
                               sc = batch.sentence_counts.ToVector<int64_t>();
    // Absent sentences run as one padding word; the sentence level masks them out, as
    // attention::HierarchicalAttentionNetwork does.
    std::vector<int64_t> run(wl);
    std::vector<bool> word_pad(b * s * w), sent_pad(b * s), present(b * s);
    for (int64_t i = 0; i < b; ++i) {
      ATTEND_CHECK(sc[i] >= 1 && sc[i] <= s, "DocumentClassifier: document ", i, " has ", sc[i],
                   " sentences, expected 1..", s);
      for (int64_t j = 0; j < s; ++j) {
        const int64_t k = i * s + j;
        ATTEND_CHECK(wl[k] >= (j < sc[i] ? 1 : 0) && wl[k] <= w, "DocumentClassifier: sentence ", j,
                     " of document ", i, " has length ", wl[k]);
        run[k] = std::max<int64_t>(wl[k], 1);
        sent_pad[k] = j >= sc[i];
        present[k] = !sent_pad[k];
        for (int64_t t = 0; t < w; ++t) word_pad[k * w + t] = t >= run[k];
      }
    }
    Tensor x = embed->Forward(words.Reshape({b * s, w}));
    Tensor hw = word_rnn->Forward(x, Tensor::FromVector(run, {b * s})).output;  // [B*S, W, 2Hw]
    AttentionPool::Output wa = word_pool->Forward(hw, Tensor::FromVector(word_pad, {b * s, w}));
    Tensor sentences = wa.context.Reshape({b, s, hw.size(2)});
    Tensor hs = sentence_rnn->Forward(sentences, batch.sentence_counts).output;  // [B, S, 2Hs]
    AttentionPool::Output sa = sentence_pool->Forward(hs, Tensor::FromVector(sent_pad, {b, s}));
    out.logits = classifier->Forward(sa.context.Squeeze(1));
    out.word_weights = Mul(wa.weights.Reshape({b, s, w}),
                           Tensor::FromVector(present, {b, s, 1}).To(wa.weights.dtype()));
    out.sentence_weights = sa.weights.Squeeze(1);
    return out;
  }
  const Tensor& words = batch.flat_words;
  ATTEND_CHECK(
      words.defined() && words.dtype() == DType::kI64 && words.dim() == 2 &&
          batch.flat_lengths.defined() && batch.flat_lengths.shape() == Shape({words.size(0)}),
      "DocumentClassifier: flat_words must be i64 [B, L] with flat_lengths [B], got ", words.str());
  const int64_t b = words.size(0), l = words.size(1);
  const std::vector<int64_t> lengths = batch.flat_lengths.ToVector<int64_t>();
  std::vector<bool> pad(b * l);
  for (int64_t i = 0; i < b; ++i) {
    ATTEND_CHECK(lengths[i] >= 1 && lengths[i] <= l, "DocumentClassifier: document ", i, " has ",
                 lengths[i], " words, expected 1..", l);
    for (int64_t t = 0; t < l; ++t) pad[i * l + t] = t >= lengths[i];
  }
  Tensor h = word_rnn->Forward(embed->Forward(words), batch.flat_lengths).output;  // [B, L, 2H]
  if (config_.model == DocumentModelKind::kMean) {
    // The GRU's output is zero at padded steps: the sum over L is the sum over the real words.
    Tensor n = batch.flat_lengths.To(h.dtype()).View({b, 1});
    out.logits = classifier->Forward(Div(Sum(h, {1}), n));
    return out;
  }
  AttentionPool::Output a = word_pool->Forward(h, Tensor::FromVector(pad, {b, l}));
  out.logits = classifier->Forward(a.context.Squeeze(1));
  out.word_weights = a.weights.Squeeze(1);
  return out;
}

// ---- scores and the task ----

DocumentScores ScoreDocuments(const std::vector<int>& truth, const std::vector<int>& predicted,
                              int64_t classes) {
  ATTEND_CHECK(truth.size() == predicted.size() && !truth.empty(),
               "documents: scoring needs as many predictions as labels (", predicted.size(), " vs ",
               truth.size(), ") and at least one");
  DocumentScores s;
  s.predicted = predicted;
  std::vector<int64_t> tp(classes, 0), fp(classes, 0), fn(classes, 0);
  int64_t right = 0;
  for (size_t i = 0; i < truth.size(); ++i) {
    if (truth[i] == predicted[i]) {
      ++right;
      ++tp[truth[i]];
    } else {
      ++fn[truth[i]];
      ++fp[predicted[i]];
    }
  }
  s.accuracy = 100.0 * static_cast<double>(right) / static_cast<double>(truth.size());
  double sum = 0.0;
  int64_t present = 0;
  s.f1.assign(classes, 0.0);
  for (int64_t c = 0; c < classes; ++c) {
    if (tp[c] + fp[c] + fn[c] == 0) continue;
    s.f1[c] =
        100.0 * 2.0 * static_cast<double>(tp[c]) / static_cast<double>(2 * tp[c] + fp[c] + fn[c]);
    sum += s.f1[c];
    ++present;
  }
  s.macro_f1 = sum / static_cast<double>(present);
  return s;
}

DocumentsTask::DocumentsTask(const DocumentsCorpus& corpus, DocumentModelConfig config,
                             uint64_t model_seed, int64_t eval_batch)
    : corpus_(corpus), config_(config), eval_batch_(eval_batch) {
  config_.vocab = static_cast<int64_t>(corpus.vocab.size());
  Generator gen(model_seed);
  model_ = std::make_shared<DocumentClassifier>(config_, gen);
  for (int k = 0; k < 3; ++k)
    for (const Document& d : corpus.splits[k])
      encoded_[k].push_back(EncodeDocument(d, corpus.vocab));
}

Tensor DocumentsTask::Loss(const std::vector<int64_t>& rows) {
  std::vector<const EncodedDocument*> docs;
  for (int64_t r : rows) docs.push_back(&encoded_[0][r]);
  DocumentBatch batch = MakeDocumentBatch(docs);
  return CrossEntropy(model_->Forward(batch).logits, batch.labels);
}

double DocumentsTask::UnitsOf(const std::vector<int64_t>& rows) const {
  double n = 0.0;
  for (int64_t r : rows)
    for (const auto& s : encoded_[0][r].sentences) n += static_cast<double>(s.size());
  return n;
}

DocumentScores DocumentsTask::Score(int split) {
  const bool was_training = model_->training();
  model_->Eval();
  NoGradGuard no_grad;
  const auto& docs = encoded_[split];
  std::vector<int> truth, predicted;
  double loss_sum = 0.0;
  for (size_t start = 0; start < docs.size(); start += static_cast<size_t>(eval_batch_)) {
    std::vector<const EncodedDocument*> batch;
    for (size_t i = start; i < std::min(docs.size(), start + eval_batch_); ++i)
      batch.push_back(&docs[i]);
    const DocumentBatch input = MakeDocumentBatch(batch);
    const Tensor logits = model_->Forward(input).logits.To(DType::kF32);
    loss_sum += CrossEntropy(logits, input.labels).item() * static_cast<double>(batch.size());
    const std::vector<float> l = logits.ToVector<float>();
    const int64_t c = logits.size(1);
    for (size_t i = 0; i < batch.size(); ++i) {
      int best = 0;
      for (int64_t k = 1; k < c; ++k)
        if (l[i * c + k] > l[i * c + best]) best = static_cast<int>(k);
      predicted.push_back(best);
      truth.push_back(batch[i]->label);
    }
  }
  model_->Train(was_training);
  DocumentScores scores = ScoreDocuments(truth, predicted, config_.classes);
  scores.loss = loss_sum / static_cast<double>(truth.size());
  return scores;
}

train::TaskEval DocumentsTask::Evaluate() {
  const DocumentScores s = Score(1);
  train::TaskEval e;
  e.score = s.macro_f1;
  e.loss = s.loss;
  e.text = "acc " + Fixed(s.accuracy, 2) + " | macro-F1 " + Fixed(s.macro_f1, 2);
  return e;
}

std::string DocumentsTask::ConfigJson() const {
  std::ostringstream s;
  s << "{\"model\": " << JsonString(ToString(config_.model))
    << ", \"attention\": " << JsonString(ToString(config_.attention))
    << ", \"vocab\": " << config_.vocab << ", \"embed_dim\": " << config_.embed_dim
    << ", \"word_hidden\": " << config_.word_hidden
    << ", \"sentence_hidden\": " << config_.sentence_hidden
    << ", \"attn_dim\": " << config_.attn_dim << ", \"stacked_layers\": " << config_.stacked_layers
    << ", \"classes\": " << config_.classes << ", \"train_documents\": " << encoded_[0].size()
    << "}";
  return s.str();
}

std::string DocumentsTask::Describe() const {
  std::string what = config_.model == DocumentModelKind::kHan
                         ? "HAN (word and sentence attention)"
                         : (config_.model == DocumentModelKind::kFlat
                                ? "flat BiGRU with one attention over the words"
                                : "flat BiGRU with mean pooling");
  if (config_.model != DocumentModelKind::kMean)
    what +=
        config_.attention == DocumentAttentionKind::kSingle
            ? ", single attention layers"
            : ", stacked latent attention (" + std::to_string(config_.stacked_layers) + " layers)";
  return what + ", " + std::to_string(config_.classes) + " sections, vocabulary " +
         std::to_string(config_.vocab);
}

void DocumentsTask::WriteWeightsHtml(const std::string& path, int split, int64_t count) {
  const bool was_training = model_->training();
  model_->Eval();
  NoGradGuard no_grad;
  const auto& docs = corpus_.splits[split];
  const auto& enc = encoded_[split];
  const int64_t n = std::min<int64_t>(count, static_cast<int64_t>(docs.size()));
  std::ostringstream h;
  h << "<!DOCTYPE html>\n<html><head><meta charset=\"utf-8\"><title>documents: attention "
       "weights</title>\n<style>body{font-family:sans-serif;max-width:70em;margin:1em auto}"
       "div.doc{border-top:1px solid #999;margin-top:1.5em}span.w{padding:0 2px;"
       "margin:0 1px;border-radius:2px}td.s{width:4em;text-align:right;padding-right:.5em;"
       "font-family:monospace}td{vertical-align:top;padding:2px}</style></head><body>\n";
  h << "<h1>Attention weights: " << HtmlEscape(Describe()) << "</h1>\n<p>";
  if (config_.model == DocumentModelKind::kHan)
    h << "Left: each sentence's weight in the document vector (blue, darkest = the largest of "
         "the document). Words: each word's weight within its sentence (red, darkest = the "
         "largest of the sentence).";
  else if (config_.model == DocumentModelKind::kFlat)
    h << "Words: each word's weight over the whole document (red, darkest = the largest of the "
         "document). Left: the sum of the sentence's word weights.";
  else h << "Mean pooling: every word counts the same; no weights to draw.";
  h << " Dotted underline: a word outside the vocabulary (read as &lt;unk&gt;).</p>\n";
  for (int64_t i = 0; i < n; ++i) {
    DocumentClassifier::Output o = model_->Forward(MakeDocumentBatch({&enc[i]}));
    const std::vector<float> logits = o.logits.To(DType::kF32).ToVector<float>();
    const int pred =
        static_cast<int>(std::max_element(logits.begin(), logits.end()) - logits.begin());
    const EncodedDocument& e = enc[i];
    const int64_t s = static_cast<int64_t>(e.sentences.size());
    std::vector<float> ww, sw;
    int64_t w = 0;
    if (o.word_weights.defined()) ww = o.word_weights.To(DType::kF32).ToVector<float>();
    if (o.sentence_weights.defined()) sw = o.sentence_weights.To(DType::kF32).ToVector<float>();
    for (const auto& sent : e.sentences)
      w = std::max<int64_t>(w, static_cast<int64_t>(sent.size()));
    // Per sentence: the word weights and the sentence's weight, in the model's layout.
    std::vector<std::vector<float>> words(s);
    std::vector<float> sentence(s, 0.0f);
    int64_t pos = 0;
    for (int64_t j = 0; j < s; ++j) {
      for (size_t t = 0; t < e.sentences[j].size(); ++t) {
        float v = 0.0f;
        if (config_.model == DocumentModelKind::kHan) v = ww[j * w + t];
        if (config_.model == DocumentModelKind::kFlat) v = ww[pos];
        ++pos;
        words[j].push_back(v);
        if (config_.model == DocumentModelKind::kFlat) sentence[j] += v;
      }
      if (config_.model == DocumentModelKind::kHan) sentence[j] = sw[j];
    }
    float max_sentence = 1e-12f, max_doc_word = 1e-12f;
    for (int64_t j = 0; j < s; ++j) {
      max_sentence = std::max(max_sentence, sentence[j]);
      for (float v : words[j]) max_doc_word = std::max(max_doc_word, v);
    }
    h << "<div class=\"doc\"><h2>" << HtmlEscape(docs[i].name) << "</h2><p>true section "
      << kDocumentSections[e.label] << ", predicted " << kDocumentSections[pred]
      << (pred == e.label ? " (right)" : " (wrong)") << "</p>\n<table>\n";
    for (int64_t j = 0; j < s; ++j) {
      float max_word = max_doc_word;
      if (config_.model == DocumentModelKind::kHan) {
        max_word = 1e-12f;
        for (float v : words[j]) max_word = std::max(max_word, v);
      }
      const double sa =
          config_.model == DocumentModelKind::kMean ? 0.0 : sentence[j] / max_sentence;
      h << "<tr><td class=\"s\" style=\"background:rgba(30,80,220," << Fixed(sa, 3) << ")\">"
        << (config_.model == DocumentModelKind::kMean ? "" : Fixed(sentence[j], 3)) << "</td><td>";
      for (size_t t = 0; t < e.sentences[j].size(); ++t) {
        const int64_t id = e.sentences[j][t];
        const double a = words[j][t] / max_word;
        h << "<span class=\"w\" title=\"" << Fixed(words[j][t], 4)
          << "\" style=\"background:rgba(220,40,30," << Fixed(a, 3) << ");"
          << (id == 1 ? " text-decoration:underline dotted" : "") << "\">"
          << HtmlEscape(docs[i].sentences[j][t]) << "</span>";
      }
      h << "</td></tr>\n";
    }
    h << "</table></div>\n";
  }
  h << "</body></html>\n";
  model_->Train(was_training);
  io::WriteFileAtomic(path, h.str());
}

}  // namespace attend::tasks
