// Tests of the speech corpus (`attend corpus speech`): the phrase filter, and tiny corpora built
// from a fake catalog: byte-identical rebuilds (whatever the number of worker processes),
// splits by voice and by phrase text, transcripts of the right kind, readable 16 kHz WAV files,
// rebuilds into the same directory, the errors for missing catalogs, and the command line.
#include <gtest/gtest.h>

#include <algorithm>
#include <cstdint>
#include <filesystem>
#include <map>
#include <set>
#include <sstream>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "attend/audio.h"
#include "attend/corpus.h"
#include "attend/error.h"
#include "support/command.h"
#include "support/errors.h"
#include "support/files.h"

namespace attend::data {
namespace {

namespace fs = std::filesystem;
using Strings = std::vector<std::string>;
using attend::testing::ReadFile;
using attend::testing::TempDir;
using attend::testing::ThrownMessage;
using attend::testing::WriteFile;

// A little-endian .mo file (revision 0, no hash table) holding `msgids`, each translated "x".
std::string MoWithMsgids(Strings msgids) {
  msgids.insert(msgids.begin(), "");  // the header entry
  std::sort(msgids.begin(), msgids.end());
  const auto n = static_cast<uint32_t>(msgids.size());
  std::string out;
  auto put = [&](uint32_t v) {
    for (int i = 0; i < 4; ++i) out.push_back(static_cast<char>((v >> (8 * i)) & 0xff));
  };
  const uint32_t strings = 28 + 16 * n;
  std::string blob;
  std::vector<std::pair<uint32_t, uint32_t>> orig, trans;
  for (const std::string& m : msgids) {
    orig.push_back({static_cast<uint32_t>(m.size()), strings + static_cast<uint32_t>(blob.size())});
    blob += m + '\0';
  }
  for (const std::string& m : msgids) {
    const std::string t = m.empty() ? "Content-Type: text/plain; charset=UTF-8\n" : "x";
    trans.push_back(
        {static_cast<uint32_t>(t.size()), strings + static_cast<uint32_t>(blob.size())});
    blob += t + '\0';
  }
  for (uint32_t v : {0x950412deu, 0u, n, 28u, 28 + 8 * n, 0u, strings}) put(v);
  for (const auto* table : {&orig, &trans}) {
    for (auto [len, off] : *table) {
      put(len);
      put(off);
    }
  }
  return out + blob;
}

// Phrases the filter keeps (as it gives them), and msgids it must drop.
const Strings kKept = {
    "open file",       "save as",          "don't save",        "close the window",
    "print document",  "quit the program", "show hidden files", "select all",
    "new folder",      "delete selection", "rename the file",   "copy the link",
    "paste text here", "undo last change", "redo last change",  "zoom in",
    "zoom out",        "go back",          "go forward",        "reload the page",
    "find next match", "replace all",      "move to trash",     "empty the trash",
    "sort by name",    "sort by date",     "show the toolbar",  "hide the sidebar",
    "check spelling",  "insert a picture", "add a bookmark",    "remove this entry",
    "stop loading",    "open recent",      "export as text",    "import settings",
    "keep both files", "skip this file",   "try again later",   "connect to server",
};
const Strings kMsgidsOfKept = {
    "_Open File",      "Save _As...",      "Don’t Save",        "Close the window.",
    "Print Document",  "Quit the program", "Show Hidden Files", "Select _All",
    "New Folder",      "Delete Selection", "Rename the file",   "Copy the link",
    "Paste text here", "Undo last change", "Redo last change",  "Zoom In",
    "Zoom Out",        "Go Back",          "Go Forward",        "Reload the page",
    "Find next match", "Replace All",      "Move to Trash",     "Empty the Trash",
    "Sort by Name",    "Sort by Date",     "Show the toolbar",  "Hide the sidebar",
    "Check Spelling",  "Insert a Picture", "Add a Bookmark",    "Remove this entry?",
    "Stop Loading",    "Open Recent",      "Export as text",    "Import settings:",
    "Keep both files", "Skip this file",   "Try again later!",  "Connect to  server",
};
const Strings kDropped = {
    "Open",  // one word
    "one two three four five six seven",
    "%s files",
    "Eject USB drive",
    "Start PackageKit now",
    "Import the gpg key",
    "Yes, delete it",
    "Press x to quit",
    "rock 'n' roll",
    "",
};

TEST(SpeechPhrase, KeepsShortPlainPhrasesAndDropsTheRest) {
  ASSERT_EQ(kKept.size(), kMsgidsOfKept.size());
  for (size_t i = 0; i < kKept.size(); ++i) EXPECT_EQ(SpeechPhrase(kMsgidsOfKept[i]), kKept[i]);
  for (const std::string& m : kDropped) EXPECT_EQ(SpeechPhrase(m), "") << m;
  EXPECT_EQ(SpeechPhrase("I agree"), "i agree");
  EXPECT_EQ(SpeechPhrase("a b"), "");  // a lone "b" is a name, not a word
}

// A locale directory whose de catalog holds every msgid above.
void WriteFakeLocale(const fs::path& root) {
  Strings msgids = kMsgidsOfKept;
  msgids.insert(msgids.end(), kDropped.begin(), kDropped.end() - 1);
  WriteFile((root / "de/LC_MESSAGES/fake.mo").string(), MoWithMsgids(msgids));
}

SpeechCorpusOptions TinyOptions(const std::string& locale, const std::string& out) {
  SpeechCorpusOptions o;
  o.out_dir = out;
  o.locale_dir = locale;
  o.train_digits = 30;
  o.train_phrases = 30;
  o.dev_digits = o.dev_phrases = 4;
  o.test_digits = o.test_phrases = 8;  // 84 utterances: two processes' worth
  o.dev_phrase_share = o.test_phrase_share = 0.1;
  o.seed = 7;
  return o;
}

struct Line {
  std::string path, text;
};
std::vector<Line> Manifest(const std::string& path) {
  std::vector<Line> lines;
  std::istringstream in(ReadFile(path));
  for (std::string l; std::getline(in, l);) {
    const size_t tab = l.find('\t');
    EXPECT_NE(tab, std::string::npos) << path << ": " << l;
    lines.push_back({l.substr(0, tab), l.substr(tab + 1)});
  }
  return lines;
}

bool IsDigitString(const std::string& text) {
  static const std::set<std::string> kWords = {"oh",   "zero", "one",   "two",   "three", "four",
                                               "five", "six",  "seven", "eight", "nine"};
  std::istringstream in(text);
  size_t n = 0;
  for (std::string w; in >> w; ++n)
    if (kWords.count(w) == 0) return false;
  return n >= 1 && n <= 7;
}

// Every file under `dir`, by path relative to it, with its bytes.
std::map<std::string, std::string> Tree(const fs::path& dir) {
  std::map<std::string, std::string> files;
  for (const auto& e : fs::recursive_directory_iterator(dir))
    if (e.is_regular_file()) files[fs::relative(e.path(), dir).string()] = ReadFile(e.path());
  return files;
}

TEST(SpeechCorpus, TinyCorpusIsDeterministicAndSplitByVoiceAndText) {
  TempDir dir;
  WriteFakeLocale(dir.path() / "locale");
  SpeechCorpusOptions o = TinyOptions(dir / "locale", dir / "a");
  const SpeechCorpusStats st = BuildSpeechCorpus(o);
  o.out_dir = dir / "b";
  o.jobs = 1;  // another process layout, the same corpus
  BuildSpeechCorpus(o);

  // Byte for byte, stats.json included (it names the same locale directory).
  const auto a = Tree(dir.path() / "a"), b = Tree(dir.path() / "b");
  ASSERT_EQ(a.size(), b.size());
  for (const auto& [name, bytes] : a) {
    ASSERT_EQ(b.count(name), 1u) << name;
    EXPECT_TRUE(b.at(name) == bytes) << name << " differs between two builds";
  }
  EXPECT_EQ(a.size(), 84u + 8u);  // the WAVs, 6 manifests, voices.json, stats.json

  // The voices of the splits are disjoint, and each utterance speaks with one of its split's.
  const nlohmann::json voices = nlohmann::json::parse(a.at("voices.json"));
  std::map<std::string, std::string> split_of_voice;
  for (const char* split : {"train", "dev", "test"}) {
    ASSERT_FALSE(voices[split]["voices"].empty()) << split;
    for (const std::string v : voices[split]["voices"])
      EXPECT_TRUE(split_of_voice.emplace(v, split).second) << v << " is in two splits";
  }
  EXPECT_EQ(voices["test"]["accents_held_out"], nlohmann::json::array({"en-gb-scotland"}));
  std::istringstream details(a.at("utterances.tsv"));
  std::string line;
  std::getline(details, line);  // the header
  size_t rows = 0;
  for (; std::getline(details, line); ++rows) {
    const std::string split = line.substr(4, line.find('/', 4) - 4);  // wav/<split>/...
    std::vector<std::string> cols;
    std::istringstream l(line);
    for (std::string c; std::getline(l, c, '\t');) cols.push_back(c);
    ASSERT_EQ(cols.size(), 9u) << line;
    EXPECT_EQ(split_of_voice[cols[2]], split) << line;
  }
  EXPECT_EQ(rows, 84u);

  // Transcripts of the right kind; no dev or test phrase spoken in train.
  const auto train = Manifest(dir / "a/train.tsv"), dev = Manifest(dir / "a/dev.tsv"),
             test = Manifest(dir / "a/test.tsv");
  const auto test_digits = Manifest(dir / "a/test-digits.tsv"),
             test_phrases = Manifest(dir / "a/test-phrases.tsv");
  EXPECT_EQ(train.size(), 60u);
  EXPECT_EQ(dev.size(), 8u);
  EXPECT_EQ(test.size(), 16u);
  EXPECT_EQ(test_digits.size(), 8u);
  EXPECT_EQ(test_phrases.size(), 8u);
  const std::set<std::string> phrases(kKept.begin(), kKept.end());
  std::set<std::string> train_texts;
  size_t train_digits = 0;
  for (const Line& l : train) {
    train_texts.insert(l.text);
    if (IsDigitString(l.text)) ++train_digits;
    else EXPECT_EQ(phrases.count(l.text), 1u) << l.text;
  }
  EXPECT_EQ(train_digits, 30u);
  for (const Line& l : test_digits) EXPECT_TRUE(IsDigitString(l.text)) << l.text;
  for (const auto* held_out : {&dev, &test_phrases}) {
    for (const Line& l : *held_out) {
      if (IsDigitString(l.text)) continue;
      EXPECT_EQ(phrases.count(l.text), 1u) << l.text;
      EXPECT_EQ(train_texts.count(l.text), 0u) << l.text << " is spoken in train too";
    }
  }
  for (const Line& l : test_phrases) EXPECT_FALSE(IsDigitString(l.text)) << l.text;
  EXPECT_EQ(st.phrase_texts, kKept.size());
  EXPECT_EQ(st.phrase_texts_split[1], 4u);
  EXPECT_EQ(st.phrase_texts_split[2], 4u);

  // Readable 16 kHz WAVs of plausible length, matching the seconds counted.
  double seconds = 0;
  for (const auto* m : {&train, &dev, &test}) {
    for (const Line& l : *m) {
      const audio::Waveform w = audio::ReadWav(dir / ("a/" + l.path));
      EXPECT_EQ(w.sample_rate, 16000) << l.path;
      EXPECT_GT(w.seconds(), 0.3) << l.path << " \"" << l.text << "\"";
      EXPECT_LT(w.seconds(), 10.0) << l.path;
      seconds += w.seconds();
    }
  }
  double counted = 0;
  for (const auto& split : st.parts)
    for (const auto& part : split) counted += part.seconds;
  EXPECT_NEAR(seconds, counted, 1e-6);
}

TEST(SpeechCorpus, RebuildReplacesEverything) {
  TempDir dir;
  WriteFakeLocale(dir.path() / "locale");
  SpeechCorpusOptions o = TinyOptions(dir / "locale", dir / "out");
  BuildSpeechCorpus(o);
  o.train_digits = 5;
  o.train_phrases = 3;
  o.seed = 8;
  BuildSpeechCorpus(o);
  const auto train = Manifest(dir / "out/train.tsv");
  ASSERT_EQ(train.size(), 8u);
  size_t wavs = 0;
  for (const auto& e : fs::directory_iterator(dir.path() / "out/wav/train")) {
    (void)e;
    ++wavs;
  }
  EXPECT_EQ(wavs, 8u);  // none left over from the bigger build
  for (const Line& l : train) EXPECT_TRUE(fs::exists(dir.path() / "out" / l.path)) << l.path;
  std::set<std::string> top;
  for (const auto& e : fs::directory_iterator(dir.path() / "out"))
    top.insert(e.path().filename().string());
  EXPECT_EQ(top, (std::set<std::string>{"wav", "train.tsv", "dev.tsv", "test.tsv",
                                        "test-digits.tsv", "test-phrases.tsv", "utterances.tsv",
                                        "voices.json", "stats.json"}));
  const nlohmann::json stats = nlohmann::json::parse(ReadFile(dir / "out/stats.json"));
  EXPECT_EQ(stats["seed"], 8);
  EXPECT_EQ(stats["splits"]["train"]["digits"]["utterances"], 5);
}

TEST(SpeechCorpus, MissingCatalogsAreErrorsNamingTheDirectory) {
  TempDir dir;
  EXPECT_NE(ThrownMessage([&] {
              BuildSpeechCorpus(TinyOptions(dir / "nowhere", dir / "out"));
            }).find("--locale-dir " + (dir / "nowhere") + ": no such directory"),
            std::string::npos);
  fs::create_directories(dir.path() / "locale/fr/LC_MESSAGES");
  EXPECT_NE(ThrownMessage([&] {
              BuildSpeechCorpus(TinyOptions(dir / "locale", dir / "out"));
            }).find("no catalogs in " + (dir / "locale/de/LC_MESSAGES")),
            std::string::npos);
  fs::create_directories(dir.path() / "locale/de/LC_MESSAGES");
  EXPECT_NE(ThrownMessage([&] {
              BuildSpeechCorpus(TinyOptions(dir / "locale", dir / "out"));
            }).find("no .mo catalogs in " + (dir / "locale/de/LC_MESSAGES")),
            std::string::npos);
  // Too few phrases to split three ways.
  WriteFile(dir / "locale/de/LC_MESSAGES/a.mo", MoWithMsgids({"Open File", "Save All"}));
  EXPECT_NE(ThrownMessage([&] {
              BuildSpeechCorpus(TinyOptions(dir / "locale", dir / "out"));
            }).find("only 2 phrases"),
            std::string::npos);
  EXPECT_FALSE(fs::exists(dir.path() / "out/stats.json"));
  // Digits alone need no catalog.
  SpeechCorpusOptions o = TinyOptions(dir / "nowhere", dir / "out");
  o.train_phrases = o.dev_phrases = o.test_phrases = 0;
  o.train_digits = 3;
  o.dev_digits = o.test_digits = 1;
  EXPECT_EQ(BuildSpeechCorpus(o).parts[0][0].utterances, 3u);
}

TEST(SpeechCorpusCli, BuildsAndPrintsASummary) {
  TempDir dir;
  WriteFakeLocale(dir.path() / "locale");
  using attend::testing::AttendCommand;
  using attend::testing::RunCommand;
  using attend::testing::ShellQuote;
  const auto r = RunCommand(AttendCommand(
      "corpus speech --digits 4 --phrases 4 --dev-digits 1 --dev-phrases 1 --test-digits 2 "
      "--test-phrases 2 --seed 3 --locale-dir " +
      ShellQuote(dir / "locale") + " --out " + ShellQuote(dir / "out")));
  ASSERT_EQ(r.exit_code, 0) << r.output;
  EXPECT_NE(r.output.find("attend corpus speech: 14 utterances"), std::string::npos) << r.output;
  EXPECT_NE(r.output.find("test   phrases"), std::string::npos) << r.output;
  EXPECT_NE(r.output.find("en-gb-scotland"), std::string::npos) << r.output;
  EXPECT_EQ(Manifest(dir / "out/test-phrases.tsv").size(), 2u);

  const auto bad =
      RunCommand(AttendCommand("corpus speech --locale-dir " + ShellQuote(dir / "nowhere") +
                               " --out " + ShellQuote(dir / "out2")));
  EXPECT_NE(bad.exit_code, 0);
  EXPECT_NE(bad.output.find("--locale-dir " + (dir / "nowhere") + ": no such directory"),
            std::string::npos)
      << bad.output;
}

}  // namespace
}  // namespace attend::data
