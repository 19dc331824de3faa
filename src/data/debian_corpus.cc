// The default parallel corpus: every gettext catalog of the target language under a locale
// directory, cleaned by the rules listed in BuildDebianCorpus, de-duplicated and split
// train/dev/test by a hash of the source sentence.
#include <algorithm>
#include <cctype>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <map>
#include <set>
#include <tuple>
#include <unordered_map>
#include <unordered_set>

#include <nlohmann/json.hpp>

#include "attend/corpus.h"
#include "attend/error.h"
#include "text/unicode.h"

namespace attend::data {
namespace fs = std::filesystem;
namespace {

// The drop rules, in the order they are applied; stats.json lists them in this order.
constexpr const char* kRules[] = {
    "no_source_entry",       // src != en: the source catalog lacks the msgid
    "plural_index_unknown",  // a plural entry whose Plural-Forms does not give the n=1 form
    "empty",                 // an empty msgstr (untranslated) or msgid
    "fuzzy_conflict",        // msgcat's "#-#-#-#-#" conflict marker: a fuzzy entry compiled in
    "invalid_utf8",
    "format_only",            // no letter outside printf directives, digits and punctuation
    "too_long",               // a side over max_bytes after cleaning
    "duplicate",              // the same (source, target) pair again
    "identical_in_dev_test",  // source == target, not allowed in dev and test
    "identical_in_train",     // the same in train, only with drop_identical_train
};

bool IsAsciiAlnum(unsigned char c) { return std::isalnum(c) != 0; }

// Non-ASCII code points that are punctuation or symbols rather than letters: Latin-1's
// symbols, general punctuation (… – “ ”), arrows, math and box drawing, shapes, CJK
// punctuation. Everything else above ASCII counts as a letter.
bool IsNonAsciiSymbol(uint32_t cp) {
  return (cp >= 0xA0 && cp <= 0xBF) || cp == 0xD7 || cp == 0xF7 || (cp >= 0x2000 && cp <= 0x206F) ||
         (cp >= 0x2190 && cp <= 0x27BF) || (cp >= 0x3000 && cp <= 0x303F) ||
         (cp >= 0xFE10 && cp <= 0xFE6F) || (cp >= 0xFF00 && cp <= 0xFF20);
}

// Length of the printf directive at s[i] == '%' ("%s", "%-10.3lf", "%1$s", "%'d", "%zu"),
// or 0 when it is not one.
size_t PrintfDirectiveLength(std::string_view s, size_t i) {
  size_t j = i + 1;
  auto digits = [&] {
    while (j < s.size() && std::isdigit(static_cast<unsigned char>(s[j]))) ++j;
  };
  const size_t arg_start = j;
  digits();
  if (j < s.size() && s[j] == '$' && j > arg_start) {
    ++j;
  } else {
    j = arg_start;
  }
  while (j < s.size() && std::strchr("-+ #0'I", s[j]) != nullptr && s[j] != '\0') ++j;
  if (j < s.size() && s[j] == '*') ++j;
  else digits();
  if (j < s.size() && s[j] == '.') {
    ++j;
    if (j < s.size() && s[j] == '*') ++j;
    else digits();
  }
  while (j < s.size() && std::strchr("hlLqjzt", s[j]) != nullptr && s[j] != '\0') ++j;
  if (j < s.size() && std::strchr("diouxXeEfFgGaAcspnm", s[j]) != nullptr && s[j] != '\0')
    return j + 1 - i;
  return 0;
}

struct Candidate {
  std::string src, tgt;
};

std::string JoinPath(const std::string& a, const std::string& b) {
  return (fs::path(a) / b).string();
}

// `s` with each byte that is not part of valid UTF-8 written as \xNN: file names, charset names
// and error messages go into stats.json, which is UTF-8 (the JSON writer refuses anything else).
std::string Printable(std::string_view s) {
  std::string out;
  while (!s.empty()) {
    const size_t bad = text::FirstInvalidUtf8(s);
    if (bad == std::string_view::npos) {
      out += s;
      break;
    }
    char hex[8];
    std::snprintf(hex, sizeof(hex), "\\x%02x", static_cast<unsigned char>(s[bad]));
    out += s.substr(0, bad);
    out += hex;
    s.remove_prefix(bad + 1);
  }
  return out;
}

// Entries of a catalog keyed by (context, msgid), for pairing two languages' msgstrs.
using EntryKey = std::tuple<bool, std::string, std::string>;

}  // namespace

uint64_t Fnv1a64(std::string_view bytes) {
  uint64_t h = 0xcbf29ce484222325ull;
  for (unsigned char c : bytes) {
    h ^= c;
    h *= 0x100000001b3ull;
  }
  return h;
}

std::string NormalizeWhitespace(std::string_view text) {
  std::string out;
  out.reserve(text.size());
  bool pending_space = false;
  for (char ch : text) {
    const auto c = static_cast<unsigned char>(ch);
    // Catalog strings hold real newlines and tabs (msgfmt has already undone the escapes);
    // every control character is a word break here.
    if (c <= 0x20 || c == 0x7F) {
      pending_space = !out.empty();
      continue;
    }
    if (pending_space) out.push_back(' ');
    pending_space = false;
    out.push_back(ch);
  }
  return out;
}

bool IsFormatOnly(std::string_view s) {
  size_t i = 0;
  while (i < s.size()) {
    const auto c = static_cast<unsigned char>(s[i]);
    if (c == '%') {
      if (i + 1 < s.size() && s[i + 1] == '%') {
        i += 2;
        continue;
      }
      const size_t n = PrintfDirectiveLength(s, i);
      i += n > 0 ? n : 1;
      continue;
    }
    if (c == '{') {
      // A brace field ({0}, {name}, {}): short and without spaces.
      const size_t close = s.find('}', i);
      if (close != std::string_view::npos && close - i <= 32 &&
          s.substr(i, close - i).find(' ') == std::string_view::npos) {
        i = close + 1;
        continue;
      }
      ++i;
      continue;
    }
    if (c < 0x80) {
      if (std::isalpha(c)) return false;
      ++i;
      continue;
    }
    size_t len;
    const uint32_t cp = text::DecodeAt(s, i, &len);
    if (!IsNonAsciiSymbol(cp)) return false;
    i += len;
  }
  return true;
}

namespace {

// Removes "(_F)" / "(&F)" (a mnemonic that CJK translations append) from `s`.
bool StripParenthesisedMnemonic(std::string& s, char marker) {
  bool changed = false;
  for (size_t i = 0; i + 3 < s.size();) {
    if (s[i] == '(' && s[i + 1] == marker && IsAsciiAlnum(static_cast<unsigned char>(s[i + 2])) &&
        s[i + 3] == ')') {
      s.erase(i, 4);
      changed = true;
    } else {
      ++i;
    }
  }
  return changed;
}

// Position of the one accelerator marker in `s`, or npos: exactly one `marker` byte, followed
// by a letter or digit (a UTF-8 lead byte counts: _Öffnen), not an HTML entity for '&'.
size_t AcceleratorPosition(const std::string& s, char marker) {
  const size_t pos = s.find(marker);
  if (pos == std::string::npos || s.find(marker, pos + 1) != std::string::npos)
    return std::string::npos;
  if (pos + 1 >= s.size()) return std::string::npos;
  const auto next = static_cast<unsigned char>(s[pos + 1]);
  if (!IsAsciiAlnum(next) && next < 0xC2) return std::string::npos;
  if (marker == '&') {
    size_t j = pos + 1;
    while (j < s.size() && (IsAsciiAlnum(static_cast<unsigned char>(s[j])) || s[j] == '#')) ++j;
    if (j < s.size() && s[j] == ';') return std::string::npos;  // &amp; &#169;
  }
  return pos;
}

// The word around s[pos]: the run of non-space bytes, without the punctuation at its ends
// ("(_File):" gives "_File"), the marker itself excepted.
std::string_view WordAround(const std::string& s, size_t pos) {
  size_t b = pos, e = pos;
  while (b > 0 && s[b - 1] != ' ') --b;
  while (e < s.size() && s[e] != ' ') ++e;
  auto trim = [&](size_t i) {
    const auto c = static_cast<unsigned char>(s[i]);
    return i != pos && c < 0x80 && std::ispunct(c);
  };
  while (b < pos && trim(b)) ++b;
  while (e > pos + 1 && trim(e - 1)) --e;
  return std::string_view(s).substr(b, e - b);
}

// True when `word` occurs in `s` as a whole word: no letter or digit right before or after it.
bool ContainsWord(const std::string& s, std::string_view word) {
  auto is_word_byte = [](char ch) {
    const auto c = static_cast<unsigned char>(ch);
    return IsAsciiAlnum(c) || c >= 0x80;
  };
  for (size_t at = s.find(word); at != std::string::npos; at = s.find(word, at + 1)) {
    const size_t end = at + word.size();
    if ((at == 0 || !is_word_byte(s[at - 1])) && (end == s.size() || !is_word_byte(s[end])))
      return true;
  }
  return false;
}

bool AtWordStart(const std::string& s, size_t pos) {
  return pos == 0 || !IsAsciiAlnum(static_cast<unsigned char>(s[pos - 1]));
}

}  // namespace

bool StripAccelerators(std::string& src, std::string& tgt) {
  bool changed = false;
  for (const char marker : {'_', '&'}) {
    changed |= StripParenthesisedMnemonic(src, marker);
    changed |= StripParenthesisedMnemonic(tgt, marker);
    const size_t ps = AcceleratorPosition(src, marker);
    const size_t pt = AcceleratorPosition(tgt, marker);
    // A marker that opens the string is a mnemonic (GTK labels: "_Horizontal:", even when the
    // label is the same in both languages). Elsewhere, a word copied verbatim to the other side
    // is an identifier (LC_ALL, dev_unlock, AT&T), not a mnemonic.
    const bool src_ok =
        ps != std::string::npos && (ps == 0 || !ContainsWord(tgt, WordAround(src, ps)));
    const bool tgt_ok =
        pt != std::string::npos && (pt == 0 || !ContainsWord(src, WordAround(tgt, pt)));
    // A marker inside a word (Sa_ve) is only taken for a mnemonic when the other side has one
    // too; alone it may be part of a name (file_name).
    const bool src_strip = src_ok && (tgt_ok || AtWordStart(src, ps));
    const bool tgt_strip = tgt_ok && (src_ok || AtWordStart(tgt, pt));
    if (src_strip) src.erase(ps, 1);
    if (tgt_strip) tgt.erase(pt, 1);
    changed |= src_strip || tgt_strip;
  }
  return changed;
}

DebianCorpusStats BuildDebianCorpus(const DebianCorpusOptions& opt) {
  auto valid_lang = [](const std::string& l) {
    return !l.empty() && l.find('/') == std::string::npos && l != "." && l != "..";
  };
  ATTEND_CHECK(valid_lang(opt.src), "attend corpus debian: --src \"", opt.src,
               "\" is not a language directory name (e.g. en, de, pt_BR)");
  ATTEND_CHECK(valid_lang(opt.tgt), "attend corpus debian: --tgt \"", opt.tgt,
               "\" is not a language directory name (e.g. de, fr, pt_BR)");
  ATTEND_CHECK(opt.src != opt.tgt, "attend corpus debian: --src and --tgt are both ", opt.src);
  ATTEND_CHECK(!opt.out_dir.empty(), "attend corpus debian: --out is required");
  ATTEND_CHECK(opt.dev_per_mille + opt.test_per_mille <= 1000,
               "attend corpus debian: dev and test take more than 1000 per mille");
  std::error_code ec;
  ATTEND_CHECK(fs::is_directory(opt.locale_dir, ec), "attend corpus debian: --locale-dir ",
               opt.locale_dir, ": no such directory");
  const std::string tgt_dir = JoinPath(JoinPath(opt.locale_dir, opt.tgt), "LC_MESSAGES");
  ATTEND_CHECK(fs::is_directory(tgt_dir, ec), "attend corpus debian: no catalogs for language '",
               opt.tgt, "': ", tgt_dir, " is not a directory");
  const bool src_is_msgid = opt.src == "en";
  const std::string src_dir = JoinPath(JoinPath(opt.locale_dir, opt.src), "LC_MESSAGES");

  // Catalog names sorted, so the result does not depend on the directory's order.
  std::vector<std::string> names;
  for (const fs::directory_entry& e : fs::directory_iterator(tgt_dir, ec)) {
    const fs::path& p = e.path();
    if (p.extension() == ".mo" && e.is_regular_file(ec)) names.push_back(p.filename().string());
  }
  ATTEND_CHECK(!ec, "attend corpus debian: cannot list ", tgt_dir, ": ", ec.message());
  std::sort(names.begin(), names.end());
  ATTEND_CHECK(!names.empty(), "attend corpus debian: no .mo catalogs in ", tgt_dir);

  DebianCorpusStats st;
  for (const char* rule : kRules) st.dropped[rule] = 0;
  st.catalogs_found = names.size();
  std::vector<Candidate> candidates;
  for (const std::string& name : names) {
    if (!text::IsValidUtf8(name)) {
      ++st.catalogs_skipped_name;
      st.skipped.push_back(Printable(name) + ": the file name is not valid UTF-8");
      continue;
    }
    MoCatalog tgt_cat, src_cat;
    try {
      tgt_cat = ReadMoCatalog(JoinPath(tgt_dir, name));
    } catch (const Error& e) {
      ++st.catalogs_skipped_corrupt;
      st.skipped.push_back(name + ": " + Printable(e.what()));
      continue;
    }
    if (!tgt_cat.charset_supported) {
      ++st.catalogs_skipped_charset;
      st.skipped.push_back(name + ": charset " + Printable(tgt_cat.charset) +
                           " (neither UTF-8 nor ISO-8859-1)");
      continue;
    }
    std::map<EntryKey, const MoEntry*> src_entries;
    int src_singular = 0;
    if (!src_is_msgid) {
      const std::string src_path = JoinPath(src_dir, name);
      if (!fs::is_regular_file(src_path, ec)) {
        ++st.catalogs_skipped_no_source;
        st.skipped.push_back(name + ": no " + opt.src + " catalog of that name");
        continue;
      }
      try {
        src_cat = ReadMoCatalog(src_path);
      } catch (const Error& e) {
        ++st.catalogs_skipped_corrupt;
        st.skipped.push_back(name + " (" + opt.src + "): " + Printable(e.what()));
        continue;
      }
      if (!src_cat.charset_supported) {
        ++st.catalogs_skipped_charset;
        st.skipped.push_back(name + " (" + opt.src + "): charset " + Printable(src_cat.charset) +
                             " (neither UTF-8 nor ISO-8859-1)");
        continue;
      }
      for (const MoEntry& e : src_cat.entries)
        src_entries[{e.has_context, e.context, e.msgid}] = &e;
      src_singular = SingularPluralIndex(src_cat);
    }
    ++st.catalogs_read;
    if (tgt_cat.converted_from_latin1) ++st.catalogs_latin1;
    const int tgt_singular = SingularPluralIndex(tgt_cat);

    for (const MoEntry& e : tgt_cat.entries) {
      ++st.raw_entries;
      // The msgstr that translates the singular msgid; -1 when it cannot be known.
      auto singular_form = [](const MoEntry& entry, int index) -> const std::string* {
        const int i = entry.is_plural ? index : 0;
        if (i < 0 || static_cast<size_t>(i) >= entry.msgstr.size()) return nullptr;
        return &entry.msgstr[static_cast<size_t>(i)];
      };
      const std::string* source = &e.msgid;
      bool plural = e.is_plural;
      if (!src_is_msgid) {
        const auto it = src_entries.find({e.has_context, e.context, e.msgid});
        if (it == src_entries.end()) {
          ++st.dropped["no_source_entry"];
          continue;
        }
        source = singular_form(*it->second, src_singular);
        plural = plural || it->second->is_plural;
      }
      const std::string* target = singular_form(e, tgt_singular);
      if (source == nullptr || target == nullptr) {
        ++st.dropped["plural_index_unknown"];
        continue;
      }
      if (source->empty() || target->empty() || e.msgid.empty()) {
        ++st.dropped["empty"];
        continue;
      }
      if (target->find("#-#-#-#-#") != std::string::npos ||
          source->find("#-#-#-#-#") != std::string::npos) {
        ++st.dropped["fuzzy_conflict"];
        continue;
      }
      if (!text::IsValidUtf8(*source) || !text::IsValidUtf8(*target)) {
        ++st.dropped["invalid_utf8"];
        continue;
      }
      Candidate c{NormalizeWhitespace(*source), NormalizeWhitespace(*target)};
      if (StripAccelerators(c.src, c.tgt)) {
        ++st.accelerators_stripped;
        c.src = NormalizeWhitespace(c.src);
        c.tgt = NormalizeWhitespace(c.tgt);
      }
      if (c.src.empty() || c.tgt.empty()) {
        ++st.dropped["empty"];
        continue;
      }
      if (IsFormatOnly(c.src) || IsFormatOnly(c.tgt)) {
        ++st.dropped["format_only"];
        continue;
      }
      if (c.src.size() > opt.max_bytes || c.tgt.size() > opt.max_bytes) {
        ++st.dropped["too_long"];
        continue;
      }
      if (plural) ++st.plural_singular_kept;
      candidates.push_back(std::move(c));
    }
  }
  ATTEND_CHECK(st.catalogs_read > 0, "attend corpus debian: none of the ", st.catalogs_found,
               " catalogs in ", tgt_dir, " could be read (first: ",
               st.skipped.empty() ? std::string("?") : st.skipped.front(), ")");

  // De-duplicate, split by the source's hash, and order each split by (hash, source, target):
  // a fixed pseudo-random order that mixes the catalogs and owes nothing to the input order.
  struct Keyed {
    uint64_t hash;
    const Candidate* c;
  };
  std::set<std::pair<std::string_view, std::string_view>> seen;
  std::vector<Keyed> splits[3];  // train, dev, test
  for (const Candidate& c : candidates) {
    if (!seen.insert({c.src, c.tgt}).second) {
      ++st.dropped["duplicate"];
      continue;
    }
    ++st.pairs_before_split;
    const uint64_t h = Fnv1a64(c.src);
    const uint64_t bucket = h % 1000;
    const int split = bucket < opt.dev_per_mille                        ? 1
                      : bucket < opt.dev_per_mille + opt.test_per_mille ? 2
                                                                        : 0;
    if (c.src == c.tgt && (split != 0 || opt.drop_identical_train)) {
      ++st.dropped[split != 0 ? "identical_in_dev_test" : "identical_in_train"];
      continue;
    }
    splits[split].push_back({h, &c});
  }
  const char* kSplitNames[3] = {"train", "dev", "test"};
  std::vector<std::string> lines[3][2];  // [split][source, target]
  for (int s = 0; s < 3; ++s) {
    std::vector<Keyed>& v = splits[s];
    std::sort(v.begin(), v.end(), [](const Keyed& a, const Keyed& b) {
      return std::tie(a.hash, a.c->src, a.c->tgt) < std::tie(b.hash, b.c->src, b.c->tgt);
    });
    for (const Keyed& k : v) {
      lines[s][0].push_back(k.c->src);
      lines[s][1].push_back(k.c->tgt);
    }
  }
  st.train = splits[0].size();
  st.dev = splits[1].size();
  st.test = splits[2].size();

  nlohmann::ordered_json j;
  j["src"] = Printable(opt.src);
  j["tgt"] = Printable(opt.tgt);
  j["locale_dir"] = Printable(opt.locale_dir);
  j["options"] = {{"max_bytes", opt.max_bytes},
                  {"dev_per_mille", opt.dev_per_mille},
                  {"test_per_mille", opt.test_per_mille},
                  {"drop_identical_train", opt.drop_identical_train},
                  {"split_hash", "fnv1a64(source) % 1000"}};
  j["catalogs"] = {{"found", st.catalogs_found},
                   {"read", st.catalogs_read},
                   {"converted_from_latin1", st.catalogs_latin1},
                   {"skipped_charset", st.catalogs_skipped_charset},
                   {"skipped_corrupt", st.catalogs_skipped_corrupt},
                   {"skipped_no_source_catalog", st.catalogs_skipped_no_source},
                   {"skipped_name", st.catalogs_skipped_name},
                   {"skipped", [&] {
                      std::vector<std::string> v;  // --src may be any bytes
                      for (const std::string& m : st.skipped) v.push_back(Printable(m));
                      return v;
                    }()}};
  nlohmann::ordered_json dropped = nlohmann::ordered_json::object();
  for (const char* rule : kRules) dropped[rule] = st.dropped[rule];
  j["entries"] = {{"raw", st.raw_entries},
                  {"dropped", dropped},
                  {"plural_singular_kept", st.plural_singular_kept},
                  {"accelerators_stripped", st.accelerators_stripped},
                  {"unique_pairs", st.pairs_before_split}};
  j["splits"] = {{"train", st.train}, {"dev", st.dev}, {"test", st.test}};
  const std::string stats = j.dump(2) + "\n";

  // Everything is known before the first byte is written. The seven files are staged beside
  // their names and renamed into place together, stats.json last: an error on the way leaves
  // the output directory as it was, never a new train.* beside an old stats.json.
  fs::create_directories(opt.out_dir, ec);
  ATTEND_CHECK(fs::is_directory(opt.out_dir), "attend corpus debian: cannot create --out ",
               opt.out_dir, ": ", ec.message());
  io::StagedFiles out;
  for (int s = 0; s < 3; ++s) {
    const std::string stem = JoinPath(opt.out_dir, kSplitNames[s]);
    out.AddLines(stem + "." + opt.src, lines[s][0]);
    out.AddLines(stem + "." + opt.tgt, lines[s][1]);
  }
  out.Add(JoinPath(opt.out_dir, "stats.json"), stats);
  out.Commit();
  return st;
}

}  // namespace attend::data
