// Tests of the .mo reader (round trips in both byte orders, truncation and corruption), the
// corpus rules of `attend corpus debian` on a small fake locale directory, the readers of users'
// parallel data with each of their errors, and the command line.
#include <gtest/gtest.h>
#include <sys/resource.h>
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <iterator>
#include <random>
#include <sstream>
#include <string>
#include <vector>

#include "attend/corpus.h"
#include "attend/error.h"
#include "support/command.h"
#include "support/errors.h"
#include "support/files.h"

namespace attend::data {
using namespace attend::io;    // the atomic writers (attend/files.h)
using namespace attend::text;  // UTF-8 checks
namespace {

namespace fs = std::filesystem;
using Strings = std::vector<std::string>;
using attend::testing::ReadFile;
using attend::testing::TempDir;
using attend::testing::ThrownMessage;
using attend::testing::WriteFile;

// ---- helpers ----

// A .mo file from (original, translation) byte strings, in the layout msgfmt writes: header,
// the two string tables, no hash table, then every string NUL-terminated. Words are written in
// the chosen byte order. A minor revision of 1 gets the 48-byte header with empty
// system-dependent tables.
std::string MakeMo(const std::vector<std::pair<std::string, std::string>>& entries, bool big_endian,
                   uint32_t revision = 0) {
  std::string out;
  auto put = [&](uint32_t v) {
    for (int i = 0; i < 4; ++i) {
      const int shift = big_endian ? 24 - 8 * i : 8 * i;
      out.push_back(static_cast<char>((v >> shift) & 0xff));
    }
  };
  const auto n = static_cast<uint32_t>(entries.size());
  const uint32_t header = (revision & 0xffff) != 0 ? 48 : 28;
  const uint32_t orig_table = header, trans_table = header + 8 * n, strings = header + 16 * n;
  put(0x950412de);
  put(revision);
  put(n);
  put(orig_table);
  put(trans_table);
  put(0);        // hash table size
  put(strings);  // hash table offset (empty table)
  if (header == 48) {
    for (int i = 0; i < 5; ++i) put(i % 2 == 0 ? 0 : header);  // counts 0, offsets in range
  }
  std::string blob;
  std::vector<std::pair<uint32_t, uint32_t>> orig, trans;
  for (const auto& [o, t] : entries) {
    orig.push_back({static_cast<uint32_t>(o.size()), strings + static_cast<uint32_t>(blob.size())});
    blob += o;
    blob.push_back('\0');
  }
  for (const auto& [o, t] : entries) {
    trans.push_back(
        {static_cast<uint32_t>(t.size()), strings + static_cast<uint32_t>(blob.size())});
    blob += t;
    blob.push_back('\0');
  }
  for (auto [len, off] : orig) {
    put(len);
    put(off);
  }
  for (auto [len, off] : trans) {
    put(len);
    put(off);
  }
  return out + blob;
}

std::string Header(const std::string& charset,
                   const std::string& plural_forms = "nplurals=2; plural=(n != 1);") {
  return "Project-Id-Version: test 1.0\nMIME-Version: 1.0\nContent-Type: text/plain; charset=" +
         charset + "\nContent-Transfer-Encoding: 8bit\nPlural-Forms: " + plural_forms + "\n";
}

std::string S(const char* bytes, size_t n) { return std::string(bytes, n); }

Strings FileLines(const std::string& path) {
  Strings lines;
  std::ifstream in(path, std::ios::binary);
  for (std::string l; std::getline(in, l);) lines.push_back(l);
  return lines;
}

// ---- the .mo reader ----

std::vector<std::pair<std::string, std::string>> SampleEntries() {
  return {
      {"", Header("UTF-8")},
      {"%d file" + S("\0", 1) + "%d files", "%d Datei" + S("\0", 1) + "%d Dateien"},
      {"Open", "Öffnen"},
      {"menu\x04"
       "File",
       "Datei"},
      {"Line one\nline two", "Zeile eins\nZeile zwei"},
  };
}

void ExpectSample(const MoCatalog& cat) {
  EXPECT_EQ(cat.charset, "utf-8");
  EXPECT_TRUE(cat.charset_supported);
  EXPECT_FALSE(cat.converted_from_latin1);
  EXPECT_EQ(cat.plural_forms, "nplurals=2; plural=(n != 1);");
  ASSERT_EQ(cat.entries.size(), 4u);  // the header is not an entry
  const MoEntry& plural = cat.entries[0];
  EXPECT_TRUE(plural.is_plural);
  EXPECT_EQ(plural.msgid, "%d file");
  EXPECT_EQ(plural.msgid_plural, "%d files");
  EXPECT_EQ(plural.msgstr, (Strings{"%d Datei", "%d Dateien"}));
  EXPECT_FALSE(cat.entries[1].has_context);
  EXPECT_EQ(cat.entries[1].msgid, "Open");
  EXPECT_EQ(cat.entries[1].msgstr, Strings{"Öffnen"});
  EXPECT_TRUE(cat.entries[2].has_context);
  EXPECT_EQ(cat.entries[2].context, "menu");
  EXPECT_EQ(cat.entries[2].msgid, "File");
  EXPECT_EQ(cat.entries[2].msgstr, Strings{"Datei"});
  EXPECT_EQ(cat.entries[3].msgstr, Strings{"Zeile eins\nZeile zwei"});
  EXPECT_EQ(SingularPluralIndex(cat), 0);
}

TEST(MoCatalog, RoundTripInBothByteOrders) {
  const MoCatalog le = ParseMoCatalog(MakeMo(SampleEntries(), false), "le.mo");
  EXPECT_FALSE(le.big_endian);
  ExpectSample(le);
  const MoCatalog be = ParseMoCatalog(MakeMo(SampleEntries(), true), "be.mo");
  EXPECT_TRUE(be.big_endian);
  ExpectSample(be);
}

TEST(MoCatalog, Latin1IsConvertedToUtf8) {
  const std::string mo = MakeMo({{"", Header("ISO-8859-1")},
                                 {"Open",
                                  "\xD6"
                                  "ffnen"},
                                 {"size",
                                  "Gr\xF6\xDF"
                                  "e"}},
                                false);
  const MoCatalog cat = ParseMoCatalog(mo, "latin1.mo");
  EXPECT_EQ(cat.charset, "iso-8859-1");
  EXPECT_TRUE(cat.converted_from_latin1);
  ASSERT_EQ(cat.entries.size(), 2u);
  EXPECT_EQ(cat.entries[0].msgstr[0], "Öffnen");
  EXPECT_EQ(cat.entries[1].msgstr[0], "Größe");
  EXPECT_TRUE(IsValidUtf8(cat.entries[1].msgstr[0]));
}

TEST(MoCatalog, OtherCharsetsAreNotDecoded) {
  const MoCatalog cat =
      ParseMoCatalog(MakeMo({{"", Header("KOI8-R")}, {"Open", "\xef\xd4\xcb"}}, false), "koi.mo");
  EXPECT_EQ(cat.charset, "koi8-r");
  EXPECT_FALSE(cat.charset_supported);
  EXPECT_TRUE(cat.entries.empty());
}

TEST(MoCatalog, Revision01HeaderIsRead) {
  // Revision 0.1 adds five header words (system-dependent segments and strings).
  const std::string mo = MakeMo({{"", Header("UTF-8")}, {"Open", "Öffnen"}}, true, 1);
  const MoCatalog cat = ParseMoCatalog(mo, "rev01.mo");
  EXPECT_EQ(cat.revision, 1u);
  EXPECT_EQ(cat.system_dependent_strings, 0u);
  ASSERT_EQ(cat.entries.size(), 1u);
  EXPECT_EQ(cat.entries[0].msgstr, Strings{"Öffnen"});
  // The same words pointing past the end of the file are caught.
  std::string bad = mo;
  bad[36] = '\x7f';  // 0x7f000000 system-dependent strings
  EXPECT_NE(ThrownMessage([&] { ParseMoCatalog(bad, "rev01.mo"); }).find("system-dependent"),
            std::string::npos);
}

TEST(MoCatalog, MsgfmtCatalogWithContextPluralAndFuzzy) {
  if (!fs::exists("/usr/bin/msgfmt"))
    GTEST_SKIP() << "msgfmt missing (scripts/setup.sh installs gettext)";
  TempDir dir;
  const std::string po = R"(msgid ""
msgstr ""
"Content-Type: text/plain; charset=UTF-8\n"
"Plural-Forms: nplurals=2; plural=(n != 1);\n"

msgctxt "menu"
msgid "_File"
msgstr "_Datei"

msgid "%d file"
msgid_plural "%d files"
msgstr[0] "%d Datei"
msgstr[1] "%d Dateien"

#, fuzzy
msgid "Guess"
msgstr "Vermutung"

msgid "Tab\there"
msgstr "Tab\thier"
)";
  WriteFile(dir / "x.po", po);
  const std::string cmd = "/usr/bin/msgfmt -o '" + (dir / "x.mo") + "' '" + (dir / "x.po") + "'";
  ASSERT_EQ(std::system(cmd.c_str()), 0) << cmd;
  for (const std::string endian : {"little", "big"}) {
    const std::string cmd2 = "/usr/bin/msgfmt --endianness=" + endian + " -o '" + (dir / "y.mo") +
                             "' '" + (dir / "x.po") + "'";
    ASSERT_EQ(std::system(cmd2.c_str()), 0) << cmd2;
    const MoCatalog cat = ReadMoCatalog(dir / "y.mo");
    EXPECT_EQ(cat.big_endian, endian == "big");
    ASSERT_EQ(cat.entries.size(), 3u);  // msgfmt leaves the fuzzy entry out
    bool saw_context = false, saw_plural = false, saw_tab = false;
    for (const MoEntry& e : cat.entries) {
      EXPECT_NE(e.msgid, "Guess");
      if (e.has_context) {
        saw_context = true;
        EXPECT_EQ(e.context, "menu");
        EXPECT_EQ(e.msgid, "_File");
        EXPECT_EQ(e.msgstr, Strings{"_Datei"});
      }
      if (e.is_plural) {
        saw_plural = true;
        EXPECT_EQ(e.msgstr, (Strings{"%d Datei", "%d Dateien"}));
      }
      if (e.msgid == "Tab\there") {
        saw_tab = true;  // msgfmt has turned the escape into a real tab
        EXPECT_EQ(e.msgstr, Strings{"Tab\thier"});
      }
    }
    EXPECT_TRUE(saw_context && saw_plural && saw_tab);
  }
}

TEST(MoCatalog, HeaderErrorsNameTheFileAndTheProblem) {
  EXPECT_NE(
      ThrownMessage([] { ParseMoCatalog("abc", "tiny.mo"); }).find("tiny.mo: the file is 3 bytes"),
      std::string::npos);
  std::string mo = MakeMo(SampleEntries(), false);
  std::string bad = mo;
  bad[0] = 'X';
  EXPECT_NE(ThrownMessage([&] { ParseMoCatalog(bad, "m.mo"); }).find("not a .mo file"),
            std::string::npos);
  bad = mo;
  bad[6] = 2;  // revision 2.0
  EXPECT_NE(
      ThrownMessage([&] { ParseMoCatalog(bad, "m.mo"); }).find("unsupported major revision 2"),
      std::string::npos);
  bad = mo;
  bad[8] = bad[9] = bad[10] = bad[11] = '\xff';  // 2^32 - 1 strings
  EXPECT_NE(
      ThrownMessage([&] { ParseMoCatalog(bad, "m.mo"); }).find("runs past the end of the file"),
      std::string::npos);
  bad = mo;
  // The first original string's offset (word at 28 + 4) far beyond the file.
  bad[32] = bad[33] = bad[34] = bad[35] = '\xff';
  const std::string msg = ThrownMessage([&] { ParseMoCatalog(bad, "m.mo"); });
  EXPECT_NE(msg.find("string 0 of the original table: offset 4294967295"), std::string::npos)
      << msg;
  // A string whose NUL terminator was overwritten.
  bad = mo;
  const size_t nul = bad.find(std::string("Open") + '\0');
  ASSERT_NE(nul, std::string::npos);
  bad[nul + 4] = 'X';
  EXPECT_NE(ThrownMessage([&] { ParseMoCatalog(bad, "m.mo"); }).find("is not NUL-terminated"),
            std::string::npos);
  EXPECT_NE(
      ThrownMessage([] { ReadMoCatalog("/nonexistent/dir/x.mo"); }).find("/nonexistent/dir/x.mo"),
      std::string::npos);
}

// Peak resident memory of this process so far, in bytes.
uint64_t PeakRss() {
  struct rusage u;
  ::getrusage(RUSAGE_SELF, &u);
  return static_cast<uint64_t>(u.ru_maxrss) * 1024;
}

// Issue 11: the whole file used to be read before its 28-byte header was looked at (a sparse
// 1 GiB .mo took 2 GB). The header is checked against the file's size first, and files over
// 64 MiB are refused unread.
TEST(MoCatalog, LargeFilesAreJudgedByTheirHeaderFirst) {
  TempDir dir;
  const uint64_t gib = uint64_t{1} << 30;
  auto sparse = [&](const std::string& name, const std::string& start) {
    const std::string path = dir / name;
    WriteFile(path, start);
    fs::resize_file(path, gib);  // a hole: no disk, no memory until read
    return path;
  };
  const uint64_t rss_before = PeakRss();
  const std::string zeros = sparse("zeros.mo", "");
  std::string msg = ThrownMessage([&] { ReadMoCatalog(zeros); });
  EXPECT_NE(msg.find(zeros + ": not a .mo file"), std::string::npos) << msg;
  // A valid header and tables, then a gigabyte of nothing.
  const std::string valid = sparse("valid.mo", MakeMo(SampleEntries(), false));
  msg = ThrownMessage([&] { ReadMoCatalog(valid); });
  EXPECT_NE(msg.find(valid + ": the file is 1073741824 bytes, over the 67108864"),
            std::string::npos)
      << msg;
  // Tables that reach past the end of the file are found from the header alone.
  std::string mo = MakeMo(SampleEntries(), false);
  mo[16] = mo[17] = mo[18] = '\xff';  // translation table offset
  const std::string past = sparse("past.mo", mo);
  fs::resize_file(past, 100000);
  msg = ThrownMessage([&] { ReadMoCatalog(past); });
  EXPECT_NE(
      msg.find("translations at offset 16777215 runs past the end of the file (100000 bytes)"),
      std::string::npos)
      << msg;
  EXPECT_LT(PeakRss() - rss_before, uint64_t{256} << 20);
  // The files themselves still read as before; a directory is not a catalog.
  WriteFile(dir / "ok.mo", MakeMo(SampleEntries(), true));
  ExpectSample(ReadMoCatalog(dir / "ok.mo"));
  EXPECT_NE(ThrownMessage([&] { ReadMoCatalog(dir.path().string()); }).find("not a regular file"),
            std::string::npos);
}

TEST(MoCatalog, EveryTruncationIsRejected) {
  for (bool big : {false, true}) {
    const std::string mo = MakeMo(SampleEntries(), big);
    // The last byte of the file is the last string's NUL, so every shorter file is invalid.
    for (size_t len = 0; len < mo.size(); ++len) {
      const std::string msg = ThrownMessage([&] { ParseMoCatalog(mo.substr(0, len), "cut.mo"); });
      EXPECT_NE(msg.find("cut.mo"), std::string::npos) << "length " << len << ": " << msg;
    }
  }
}

TEST(MoCatalog, RandomCorruptionIsRejectedOrReadSafely) {
  const std::string mo = MakeMo(SampleEntries(), false);
  std::mt19937 rng(1234);
  int rejected = 0, read = 0;
  for (int trial = 0; trial < 5000; ++trial) {
    std::string bad = mo;
    const int flips = 1 + static_cast<int>(rng() % 4);
    for (int f = 0; f < flips; ++f) {
      // Half the flips hit the header and tables, where they matter most.
      const size_t pos = (rng() % 2 == 0) ? rng() % (28 + 16 * 5) : rng() % bad.size();
      bad[pos] = static_cast<char>(rng() & 0xff);
    }
    try {
      const MoCatalog cat = ParseMoCatalog(bad, "flip.mo");
      EXPECT_LE(cat.entries.size(), 5u);
      for (const MoEntry& e : cat.entries)
        for (const std::string& s : e.msgstr) EXPECT_LE(s.size(), bad.size());
      ++read;
    } catch (const Error& e) {
      EXPECT_NE(std::string(e.what()).find("flip.mo"), std::string::npos) << e.what();
      ++rejected;
    }
  }
  EXPECT_GT(rejected, 100);
  EXPECT_GT(read, 100);
}

TEST(MoCatalog, PluralExpressions) {
  EXPECT_EQ(EvaluatePluralExpression("(n != 1)", 1), 0u);
  EXPECT_EQ(EvaluatePluralExpression("(n != 1)", 2), 1u);
  EXPECT_EQ(EvaluatePluralExpression("n>1", 0), 0u);
  const char* ru =
      "(n%10==1 && n%100!=11 ? 0 : n%10>=2 && n%10<=4 && (n%100<10 || n%100>=20) ? 1 : 2)";
  EXPECT_EQ(EvaluatePluralExpression(ru, 1), 0u);
  EXPECT_EQ(EvaluatePluralExpression(ru, 3), 1u);
  EXPECT_EQ(EvaluatePluralExpression(ru, 11), 2u);
  EXPECT_EQ(EvaluatePluralExpression(ru, 21), 0u);
  EXPECT_EQ(EvaluatePluralExpression("n==0 ? 0 : n==1 ? 1 : 2", 1), 1u);
  EXPECT_EQ(EvaluatePluralExpression("!(n == 1) + 2 * 3 - 6", 1), 0u);
  // A division by zero in the branch not taken is not an error; in the taken one it is.
  EXPECT_EQ(EvaluatePluralExpression("n == 0 ? 0 : 5 / n", 0), 0u);
  EXPECT_NE(ThrownMessage([] { EvaluatePluralExpression("5 / n", 0); }).find("division by zero"),
            std::string::npos);
  EXPECT_NE(ThrownMessage([] { EvaluatePluralExpression("(n", 1); }).find("expected ')'"),
            std::string::npos);
  EXPECT_NE(ThrownMessage([] { EvaluatePluralExpression("n ! 1", 1); }).find("unexpected"),
            std::string::npos);
  EXPECT_NE(ThrownMessage([] {
              EvaluatePluralExpression(std::string(10000, '(') + "n", 1);
            }).find("nesting too deep"),
            std::string::npos);

  MoCatalog cat;
  cat.plural_forms = "nplurals=3; plural=n==0 ? 0 : n==1 ? 1 : 2;";
  EXPECT_EQ(SingularPluralIndex(cat), 1);
  cat.plural_forms = "nplurals=1; plural=5;";
  EXPECT_EQ(SingularPluralIndex(cat), -1);  // past nplurals
  cat.plural_forms = "nplurals=2; plural=n +;";
  EXPECT_EQ(SingularPluralIndex(cat), -1);
  cat.plural_forms = "";
  EXPECT_EQ(SingularPluralIndex(cat), 0);
}

// ---- cleaning rules ----

TEST(CorpusRules, WhitespaceFormatOnlyAndHash) {
  EXPECT_EQ(NormalizeWhitespace("  Line one\n\tline  two \r\n"), "Line one line two");
  EXPECT_EQ(NormalizeWhitespace("\n\n"), "");
  for (const char* s : {"%s", "%s: %s", "%d%%", "%1$s (%2$d)", "{0}", "--", "%-10.3lf …", "12:34",
                        "%s → %s", "{name}: {value}"})
    EXPECT_TRUE(IsFormatOnly(s)) << s;
  for (const char* s : {"%d files", "Open", "%s: not found", "Größe", "ファイル", "{0} items", "B"})
    EXPECT_FALSE(IsFormatOnly(s)) << s;
  EXPECT_EQ(Fnv1a64(""), 0xcbf29ce484222325ull);
  EXPECT_EQ(Fnv1a64("a"), 0xaf63dc4c8601ec8cull);
  EXPECT_EQ(Fnv1a64("foobar"), 0x85944171f73967e8ull);
}

TEST(CorpusRules, AcceleratorsAreStrippedOnlyWhenSafe) {
  struct Case {
    const char *src, *tgt, *want_src, *want_tgt;
  };
  const Case cases[] = {
      {"_Open", "Ö_ffnen", "Open", "Öffnen"},
      {"Sa_ve", "_Speichern", "Save", "Speichern"},
      {"_Save", "Speichern", "Save", "Speichern"},  // a mnemonic at the start of a word
      {"&Quit", "&Beenden", "Quit", "Beenden"},
      {"_File", "ファイル(_F)", "File", "ファイル"},
      {"LC_ALL is set", "LC_ALL ist gesetzt", "LC_ALL is set", "LC_ALL ist gesetzt"},
      {"file_name", "Dateiname", "file_name", "Dateiname"},  // inside a word, alone: a name
      {"AT&T modem", "AT&T-Modem", "AT&T modem", "AT&T-Modem"},
      {"Tom &amp; Jerry", "Tom &amp; Jerry", "Tom &amp; Jerry", "Tom &amp; Jerry"},
      {"a __b", "a __b", "a __b", "a __b"},
      {"x & y", "x & y", "x & y", "x & y"},
      {"_one _two", "_eins", "_one _two", "eins"},  // two markers: not a mnemonic
      // The verbatim test is by whole word: "_Text" is not the word "_Textdatei".
      {"Import _Text File...", "_Textdatei importieren …", "Import Text File...",
       "Textdatei importieren …"},
      {"&Sort order...", "&Sortierreihenfolge...", "Sort order...", "Sortierreihenfolge..."},
      {"_Horizontal:", "_Horizontal:", "Horizontal:", "Horizontal:"},  // opens the label
      {"P_ause", "P_ause", "P_ause", "P_ause"},  // inside a copied word: could be a name
      {"dev_unlock failed", "dev_unlock schlug fehl", "dev_unlock failed",
       "dev_unlock schlug fehl"},
  };
  for (const Case& c : cases) {
    std::string s = c.src, t = c.tgt;
    const bool changed = StripAccelerators(s, t);
    EXPECT_EQ(s, c.want_src) << c.src << " | " << c.tgt;
    EXPECT_EQ(t, c.want_tgt) << c.src << " | " << c.tgt;
    EXPECT_EQ(changed, s != c.src || t != c.tgt) << c.src;
  }
}

// ---- the corpus on a fake locale directory ----

std::string Sentence(const char* word, int i) {
  return std::string(word) + " " + std::to_string(i);
}

// Catalogs whose every rule has a known count. Identical pairs and translations come in
// numbered families so that each split gets some.
void WriteFakeLocale(const fs::path& root, bool reverse_creation_order) {
  std::vector<std::pair<std::string, std::string>> a = {
      {"", Header("UTF-8")},
      {"Open", "Öffnen"},
      {"_Save", "_Speichern"},
      {"%s", "%s"},  // format_only
      {"Line one\nline two", "Zeile eins\tZeile zwei"},
      {"Untranslated", ""},  // empty
      {"%d file" + S("\0", 1) + "%d files", "%d Datei" + S("\0", 1) + "%d Dateien"},
      {"Conflict", "#-#-#-#-#  a.po  #-#-#-#-#\nKonflikt"},  // fuzzy_conflict
      {"Long", std::string(500, 'x')},                       // too_long
      {"Broken", "\xff\xfe"},                                // invalid_utf8
  };
  for (int i = 0; i < 200; ++i) a.push_back({Sentence("Message", i), Sentence("Nachricht", i)});
  std::vector<std::pair<std::string, std::string>> b = {
      {"", Header("ISO-8859-1")},
      {"Open",
       "\xD6"
       "ffnen"},  // the same pair as in a.mo once converted: duplicate
  };
  for (int i = 0; i < 200; ++i) b.push_back({Sentence("Szeged", i), Sentence("Szeged", i)});
  std::vector<std::pair<std::string, std::string>> files[] = {
      a, b, {{"", Header("KOI8-R")}, {"Open", "\xef"}}};
  const char* names[] = {"a.mo", "b.mo", "c.mo"};
  const fs::path dir = root / "de" / "LC_MESSAGES";
  fs::create_directories(dir);
  std::vector<int> order = {0, 1, 2, 3};
  if (reverse_creation_order) std::reverse(order.begin(), order.end());
  for (int k : order) {
    if (k == 3) {
      WriteFile((dir / "d.mo").string(), "this is not a catalog at all, just text");  // corrupt
    } else {
      WriteFile((dir / names[k]).string(), MakeMo(files[k], k == 1));
    }
  }
  WriteFile((dir / "README").string(), "not a catalog: ignored");
}

DebianCorpusOptions FakeOptions(const std::string& locale, const std::string& out) {
  DebianCorpusOptions o;
  o.locale_dir = locale;
  o.out_dir = out;
  o.dev_per_mille = 250;  // large shares so that the small corpus has every split filled
  o.test_per_mille = 250;
  return o;
}

TEST(DebianCorpus, RulesOnAFakeLocaleDirectory) {
  TempDir dir;
  WriteFakeLocale(dir.path() / "locale", false);
  const DebianCorpusStats st = BuildDebianCorpus(FakeOptions(dir / "locale", dir / "out"));
  EXPECT_EQ(st.catalogs_found, 4u);
  EXPECT_EQ(st.catalogs_read, 2u);
  EXPECT_EQ(st.catalogs_latin1, 1u);
  EXPECT_EQ(st.catalogs_skipped_charset, 1u);
  EXPECT_EQ(st.catalogs_skipped_corrupt, 1u);
  ASSERT_EQ(st.skipped.size(), 2u);
  EXPECT_NE(st.skipped[0].find("c.mo: charset koi8-r"), std::string::npos) << st.skipped[0];
  EXPECT_NE(st.skipped[1].find("d.mo"), std::string::npos) << st.skipped[1];
  EXPECT_EQ(st.raw_entries, 9u + 200u + 1u + 200u);
  EXPECT_EQ(st.dropped.at("format_only"), 1u);
  EXPECT_EQ(st.dropped.at("empty"), 1u);
  EXPECT_EQ(st.dropped.at("fuzzy_conflict"), 1u);
  EXPECT_EQ(st.dropped.at("too_long"), 1u);
  EXPECT_EQ(st.dropped.at("invalid_utf8"), 1u);
  EXPECT_EQ(st.dropped.at("duplicate"), 1u);
  EXPECT_EQ(st.plural_singular_kept, 1u);
  EXPECT_EQ(st.accelerators_stripped, 1u);
  EXPECT_EQ(st.pairs_before_split, 4u + 200u + 200u);

  const Strings train_en = FileLines(dir / "out/train.en"),
                train_de = FileLines(dir / "out/train.de");
  const Strings dev_en = FileLines(dir / "out/dev.en"), dev_de = FileLines(dir / "out/dev.de");
  const Strings test_en = FileLines(dir / "out/test.en"), test_de = FileLines(dir / "out/test.de");
  ASSERT_EQ(train_en.size(), train_de.size());
  ASSERT_EQ(dev_en.size(), dev_de.size());
  ASSERT_EQ(test_en.size(), test_de.size());
  EXPECT_EQ(st.train, train_en.size());
  EXPECT_EQ(st.dev, dev_en.size());
  EXPECT_EQ(st.test, test_en.size());
  EXPECT_GT(st.dev, 20u);
  EXPECT_GT(st.test, 20u);
  EXPECT_GT(st.dropped.at("identical_in_dev_test"), 20u);
  EXPECT_EQ(st.train + st.dev + st.test + st.dropped.at("identical_in_dev_test"),
            st.pairs_before_split);

  // Each split holds exactly the sources whose hash falls in its range; no identical pair
  // outside train; every identical pair in train is still there.
  auto bucket = [](const std::string& s) { return Fnv1a64(s) % 1000; };
  size_t identical_in_train = 0, identical_expected_in_train = 0;
  for (int i = 0; i < 200; ++i)
    if (bucket(Sentence("Szeged", i)) >= 500) ++identical_expected_in_train;
  std::vector<std::pair<std::string, std::string>> all;
  for (size_t i = 0; i < train_en.size(); ++i) {
    EXPECT_GE(bucket(train_en[i]), 500u) << train_en[i];
    identical_in_train += train_en[i] == train_de[i];
    all.push_back({train_en[i], train_de[i]});
  }
  EXPECT_EQ(identical_in_train, identical_expected_in_train);
  for (size_t i = 0; i < dev_en.size(); ++i) {
    EXPECT_LT(bucket(dev_en[i]), 250u) << dev_en[i];
    EXPECT_NE(dev_en[i], dev_de[i]);
    all.push_back({dev_en[i], dev_de[i]});
  }
  for (size_t i = 0; i < test_en.size(); ++i) {
    EXPECT_GE(bucket(test_en[i]), 250u);
    EXPECT_LT(bucket(test_en[i]), 500u);
    EXPECT_NE(test_en[i], test_de[i]);
    all.push_back({test_en[i], test_de[i]});
  }
  auto has = [&](const std::string& s, const std::string& t) {
    return std::count(all.begin(), all.end(), std::make_pair(s, t));
  };
  EXPECT_EQ(has("Open", "Öffnen"), 1);
  EXPECT_EQ(has("Save", "Speichern"), 1);
  EXPECT_EQ(has("Line one line two", "Zeile eins Zeile zwei"), 1);
  EXPECT_EQ(has("%d file", "%d Datei"), 1);
  EXPECT_EQ(has(Sentence("Message", 7), Sentence("Nachricht", 7)), 1);

  const std::string stats = ReadFile(dir / "out/stats.json");
  EXPECT_NE(stats.find("\"identical_in_dev_test\": " +
                       std::to_string(st.dropped.at("identical_in_dev_test"))),
            std::string::npos)
      << stats;
  EXPECT_NE(stats.find("\"train\": " + std::to_string(st.train)), std::string::npos);

  // With drop_identical_train the identical pairs leave train too.
  DebianCorpusOptions o = FakeOptions(dir / "locale", dir / "out2");
  o.drop_identical_train = true;
  const DebianCorpusStats st2 = BuildDebianCorpus(o);
  EXPECT_EQ(st2.dropped.at("identical_in_train"), identical_expected_in_train);
  EXPECT_EQ(st2.train, st.train - identical_expected_in_train);
}

TEST(DebianCorpus, DeterministicAndIndependentOfDirectoryOrder) {
  TempDir dir;
  WriteFakeLocale(dir.path() / "l1", false);
  WriteFakeLocale(dir.path() / "l2", true);  // the same catalogs, created in the reverse order
  BuildDebianCorpus(FakeOptions(dir / "l1", dir / "o1"));
  BuildDebianCorpus(FakeOptions(dir / "l1", dir / "o2"));
  BuildDebianCorpus(FakeOptions(dir / "l2", dir / "o3"));
  for (const char* f : {"train.en", "train.de", "dev.en", "dev.de", "test.en", "test.de"}) {
    const std::string a = ReadFile(dir / (std::string("o1/") + f));
    EXPECT_FALSE(a.empty()) << f;
    EXPECT_EQ(a, ReadFile(dir / (std::string("o2/") + f))) << f;
    EXPECT_EQ(a, ReadFile(dir / (std::string("o3/") + f))) << f;
  }
  // stats.json names the locale directory (and the corrupt catalog's path), so only its entry
  // and split counts are compared.
  const std::string s1 = ReadFile(dir / "o1/stats.json"), s3 = ReadFile(dir / "o3/stats.json");
  EXPECT_EQ(s1.substr(s1.find("\"entries\"")), s3.substr(s3.find("\"entries\"")));
  // Nothing temporary is left beside the outputs.
  for (const auto& e : fs::directory_iterator(dir.path() / "o1"))
    EXPECT_EQ(e.path().filename().string().find(".tmp"), std::string::npos) << e.path();
}

TEST(DebianCorpus, TwoTranslatedLanguagesPairThroughTheMsgid) {
  TempDir dir;
  const fs::path root = dir.path() / "locale";
  WriteFile((root / "de/LC_MESSAGES/app.mo").string(), MakeMo({{"", Header("UTF-8")},
                                                               {"Open", "Öffnen"},
                                                               {"Close", "Schließen"},
                                                               {"menu\x04"
                                                                "Quit",
                                                                "Beenden"}},
                                                              false));
  WriteFile((root / "fr/LC_MESSAGES/app.mo").string(),
            MakeMo({{"", Header("UTF-8", "nplurals=2; plural=(n > 1);")},
                    {"Open", "Ouvrir"},
                    {"menu\x04"
                     "Quit",
                     "Quitter"}},
                   true));
  WriteFile((root / "de/LC_MESSAGES/other.mo").string(),
            MakeMo({{"", Header("UTF-8")}, {"Yes", "Ja"}}, false));
  DebianCorpusOptions o = FakeOptions(root.string(), dir / "out");
  o.src = "fr";
  o.dev_per_mille = o.test_per_mille = 0;
  const DebianCorpusStats st = BuildDebianCorpus(o);
  EXPECT_EQ(st.catalogs_read, 1u);
  EXPECT_EQ(st.catalogs_skipped_no_source, 1u);
  EXPECT_EQ(st.dropped.at("no_source_entry"), 1u);  // "Close" has no French translation
  Strings fr = FileLines(dir / "out/train.fr"), de = FileLines(dir / "out/train.de");
  ASSERT_EQ(fr.size(), 2u);
  std::vector<std::pair<std::string, std::string>> pairs = {{fr[0], de[0]}, {fr[1], de[1]}};
  std::sort(pairs.begin(), pairs.end());
  EXPECT_EQ(pairs[0], std::make_pair(std::string("Ouvrir"), std::string("Öffnen")));
  EXPECT_EQ(pairs[1], std::make_pair(std::string("Quitter"), std::string("Beenden")));
}

TEST(DebianCorpus, MissingDirectoriesAreErrors) {
  TempDir dir;
  EXPECT_NE(ThrownMessage([&] {
              BuildDebianCorpus(FakeOptions(dir / "nowhere", dir / "out"));
            }).find("--locale-dir " + (dir / "nowhere") + ": no such directory"),
            std::string::npos);
  fs::create_directories(dir.path() / "locale/fr/LC_MESSAGES");
  EXPECT_NE(ThrownMessage([&] {
              BuildDebianCorpus(FakeOptions(dir / "locale", dir / "out"));
            }).find("no catalogs for language 'de'"),
            std::string::npos);
  fs::create_directories(dir.path() / "locale/de/LC_MESSAGES");
  EXPECT_NE(ThrownMessage([&] {
              BuildDebianCorpus(FakeOptions(dir / "locale", dir / "out"));
            }).find("no .mo catalogs in"),
            std::string::npos);
}

// Issue 11: a catalog whose file name or charset name is not UTF-8 stopped the build with
// nlohmann's type_error 316 after train/dev/test were written and before stats.json. They are
// skipped and counted, and the output files are written as a set or not at all.
TEST(DebianCorpus, NonUtf8NamesAreSkippedAndTheOutputIsNeverHalfWritten) {
  TempDir dir;
  const fs::path root = dir.path() / "locale";
  WriteFakeLocale(root, false);
  const fs::path de = root / "de" / "LC_MESSAGES";
  WriteFile((de / "bad\xff\xfe.mo").string(),
            MakeMo({{"", Header("UTF-8")}, {"Yes", "Ja"}}, false));
  WriteFile((de / "e.mo").string(), MakeMo({{"", Header("x\xe9\xff-8")}, {"No", "Nein"}}, false));
  const DebianCorpusStats st = BuildDebianCorpus(FakeOptions(root.string(), dir / "out"));
  EXPECT_EQ(st.catalogs_found, 6u);
  EXPECT_EQ(st.catalogs_read, 2u);
  EXPECT_EQ(st.catalogs_skipped_name, 1u);
  EXPECT_EQ(st.catalogs_skipped_charset, 2u);  // c.mo (KOI8-R) and e.mo
  const std::string stats = ReadFile(dir / "out/stats.json");
  EXPECT_NE(stats.find("bad\\\\xff\\\\xfe.mo: the file name is not valid UTF-8"), std::string::npos)
      << stats;
  EXPECT_NE(stats.find("e.mo: charset x\\\\xe9\\\\xff-8"), std::string::npos) << stats;
  EXPECT_NE(stats.find("\"skipped_name\": 1"), std::string::npos) << stats;
  EXPECT_TRUE(IsValidUtf8(stats));

  // A build that fails at its last step (stats.json cannot be replaced: it is a directory)
  // changes nothing: the older train/dev/test stay, and no temporary file is left.
  const fs::path small = dir.path() / "small";
  WriteFile((small / "de/LC_MESSAGES/app.mo").string(),
            MakeMo({{"", Header("UTF-8")}, {"Open", "Öffnen"}, {"Close", "Schließen"}}, false));
  DebianCorpusOptions o = FakeOptions(small.string(), dir / "out2");
  o.dev_per_mille = o.test_per_mille = 0;
  BuildDebianCorpus(o);
  const std::string train_before = ReadFile(dir / "out2/train.en");
  ASSERT_EQ(train_before.empty(), false);
  fs::remove(dir / "out2/stats.json");
  fs::create_directories(dir / "out2/stats.json");
  const std::string msg =
      ThrownMessage([&] { BuildDebianCorpus(FakeOptions(root.string(), dir / "out2")); });
  EXPECT_NE(msg.find("stats.json"), std::string::npos) << msg;
  EXPECT_EQ(ReadFile(dir / "out2/train.en"), train_before);
  EXPECT_FALSE(fs::exists(dir / "out2/dev.de") && fs::file_size(dir / "out2/dev.de") > 0);
  for (const auto& e : fs::directory_iterator(dir.path() / "out2"))
    EXPECT_EQ(e.path().filename().string().find(".tmp"), std::string::npos) << e.path();
}

// ---- users' parallel data ----

TEST(ParallelText, ReadsLinesPairsAndTsv) {
  TempDir dir;
  WriteFile(dir / "a.en", "\xEF\xBB\xBFHello\r\nWorld\n");
  WriteFile(dir / "a.de", "Hallo\nWelt");  // no final newline
  const std::vector<SentencePair> p = ReadParallelText(dir / "a.en", dir / "a.de");
  ASSERT_EQ(p.size(), 2u);
  EXPECT_EQ(p[0].src, "Hello");  // BOM and \r gone
  EXPECT_EQ(p[1].src, "World");
  EXPECT_EQ(p[1].tgt, "Welt");
  WriteFile(dir / "a.tsv", "Hello\tHallo\r\nGood night\tGute Nacht\n");
  const std::vector<SentencePair> t = ReadTsv(dir / "a.tsv");
  ASSERT_EQ(t.size(), 2u);
  EXPECT_EQ(t[1].src, "Good night");
  EXPECT_EQ(t[1].tgt, "Gute Nacht");
  EXPECT_EQ(ReadLines(dir / "a.de"), (Strings{"Hallo", "Welt"}));
}

TEST(ParallelText, ReadsStdin) {
  TempDir dir;
  WriteFile(dir / "in.txt", "one\ntwo\n");
  ASSERT_NE(std::freopen((dir / "in.txt").c_str(), "r", stdin), nullptr);
  std::cin.clear();
  EXPECT_EQ(ReadLines("-"), (Strings{"one", "two"}));
  std::cin.clear();
}

TEST(ParallelText, ErrorsNameFileAndLine) {
  TempDir dir;
  const std::string missing = dir / "missing.txt";
  EXPECT_NE(ThrownMessage([&] { ReadLines(missing); }).find(missing + ": no such file"),
            std::string::npos);
  EXPECT_NE(ThrownMessage([&] { ReadLines(dir.path().string()); }).find("is a directory"),
            std::string::npos);

  WriteFile(dir / "three", "a\nb\nc\n");
  WriteFile(dir / "two", "a\nb\n");
  const std::string counts = ThrownMessage([&] { ReadParallelText(dir / "three", dir / "two"); });
  EXPECT_NE(counts.find("has 3 lines but " + (dir / "two") + " has 2"), std::string::npos)
      << counts;

  WriteFile(dir / "empty", "a\n\nc\n");
  EXPECT_NE(ThrownMessage([&] { ReadLines(dir / "empty"); }).find(dir / "empty" + ":2: empty line"),
            std::string::npos);
  ReadOptions skip;
  skip.skip_empty = true;
  EXPECT_EQ(ReadLines(dir / "empty", skip), (Strings{"a", "c"}));
  EXPECT_NE(ThrownMessage([&] {
              ReadParallelText(dir / "three", dir / "empty");
            }).find(dir / "empty" + ":2: empty line"),
            std::string::npos);
  const std::vector<SentencePair> kept = ReadParallelText(dir / "three", dir / "empty", skip);
  ASSERT_EQ(kept.size(), 2u);
  EXPECT_EQ(kept[1].src, "c");  // the pair with the empty side is gone, alignment kept
  EXPECT_EQ(kept[1].tgt, "c");

  WriteFile(dir / "utf8", "fine\nab\xC3(x\n");
  const std::string utf8 = ThrownMessage([&] { ReadLines(dir / "utf8"); });
  EXPECT_NE(
      utf8.find(dir / "utf8" + ":2: invalid UTF-8 at byte 2 of the line (byte 7 of the file)"),
      std::string::npos)
      << utf8;

  WriteFile(dir / "long", "short\n" + std::string(3000, 'x') + "\n");
  const std::string lng = ThrownMessage([&] { ReadLines(dir / "long"); });
  EXPECT_NE(lng.find(dir / "long" + ":2: the line is 3000 bytes long, over the limit of 2048"),
            std::string::npos)
      << lng;
  ReadOptions big;
  big.max_bytes = 4000;
  EXPECT_EQ(ReadLines(dir / "long", big).size(), 2u);

  WriteFile(dir / "tsv", "a\tb\nno tab here\n");
  EXPECT_NE(ThrownMessage([&] {
              ReadTsv(dir / "tsv");
            }).find(dir / "tsv" + ":2: expected exactly one tab (source<TAB>target), found 0"),
            std::string::npos);
  WriteFile(dir / "tsv2", "a\tb\tc\n");
  EXPECT_NE(ThrownMessage([&] { ReadTsv(dir / "tsv2"); }).find(":1: expected exactly one tab"),
            std::string::npos);
  WriteFile(dir / "tsv3", "a\t\n");
  EXPECT_NE(ThrownMessage([&] { ReadTsv(dir / "tsv3"); }).find(":1: empty target"),
            std::string::npos);
  WriteFile(dir / "tsv4", "a\t" + std::string(2100, 'y') + "\n");
  EXPECT_NE(ThrownMessage([&] { ReadTsv(dir / "tsv4"); }).find(":1: the target is 2100 bytes long"),
            std::string::npos);
}

TEST(ParallelText, Utf8Validation) {
  EXPECT_TRUE(IsValidUtf8(""));
  EXPECT_TRUE(IsValidUtf8("Grüße € 𝄞"));
  EXPECT_FALSE(IsValidUtf8("\xC0\x80"));          // overlong NUL
  EXPECT_FALSE(IsValidUtf8("\xE0\x80\xAF"));      // overlong '/'
  EXPECT_FALSE(IsValidUtf8("\xED\xA0\x80"));      // a surrogate
  EXPECT_FALSE(IsValidUtf8("\xF4\x90\x80\x80"));  // above U+10FFFF
  EXPECT_FALSE(IsValidUtf8("\xE2\x82"));          // truncated
  EXPECT_FALSE(IsValidUtf8("\x80"));              // a lone continuation byte
  EXPECT_EQ(FirstInvalidUtf8("ab€\xFF"), 5u);
  EXPECT_EQ(FirstInvalidUtf8("ab€"), std::string_view::npos);
}

TEST(ParallelText, WriteLinesAtomicRoundTrip) {
  TempDir dir;
  const Strings lines = {"eins", "zwei", "", "drei"};
  WriteLinesAtomic(dir / "out.txt", lines);
  EXPECT_EQ(ReadFile(dir / "out.txt"), "eins\nzwei\n\ndrei\n");
  WriteLinesAtomic(dir / "out.txt", {"neu"});  // replaces the file
  EXPECT_EQ(ReadFile(dir / "out.txt"), "neu\n");
  EXPECT_NE(ThrownMessage([&] {
              WriteLinesAtomic(dir / "bad.txt", {"a\nb"});
            }).find("contains a newline"),
            std::string::npos);
  EXPECT_NE(ThrownMessage([&] {
              WriteLinesAtomic(dir / "no/such/dir/x.txt", {"a"});
            }).find("cannot create a temporary file"),
            std::string::npos);
  size_t files = 0;
  for ([[maybe_unused]] const auto& e : fs::directory_iterator(dir.path())) ++files;
  EXPECT_EQ(files, 1u);  // no temporary file left behind
}

// ---- the command line ----

// The exit status and the output (stdout and stderr) of a shell command.
std::pair<int, std::string> RunShell(const std::string& cmd) {
  const attend::testing::CommandResult r = attend::testing::RunCommand(cmd);
  return {r.exit_code, r.output};
}

TEST(CorpusCli, BadLocaleDirExitsNonZeroWithAMessage) {
  TempDir dir;
  const auto [code, out] =
      RunShell(std::string(ATTEND_CLI_PATH) + " corpus debian --src en --tgt de" +
               " --locale-dir '" + (dir / "nowhere") + "' --out '" + (dir / "out") + "'");
  EXPECT_EQ(code, 1) << out;
  EXPECT_NE(out.find("attend: error: attend corpus debian: --locale-dir " + (dir / "nowhere") +
                     ": no such directory"),
            std::string::npos)
      << out;
  const auto [code2, out2] = RunShell(std::string(ATTEND_CLI_PATH) + " corpus");
  EXPECT_NE(code2, 0) << out2;
}

TEST(CorpusCli, BuildsTheFakeCorpus) {
  TempDir dir;
  WriteFakeLocale(dir.path() / "locale", false);
  const auto [code, out] = RunShell(
      std::string(ATTEND_CLI_PATH) + " corpus debian --tgt de --locale-dir '" + (dir / "locale") +
      "' --out '" + (dir / "out") + "' --dev-per-mille 250 --test-per-mille 250");
  EXPECT_EQ(code, 0) << out;
  EXPECT_NE(out.find("4 catalogs"), std::string::npos) << out;
  EXPECT_NE(out.find("duplicate -1"), std::string::npos) << out;
  EXPECT_EQ(FileLines(dir / "out/train.en").size(), FileLines(dir / "out/train.de").size());
  EXPECT_TRUE(fs::exists(dir / "out/stats.json"));
}

}  // namespace
}  // namespace attend::data
