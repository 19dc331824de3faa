// `attend shortlist` end to end on the synthetic corpus, whose lexicon is known: the file it
// writes loads, belongs to the vocabulary it was given (as a file or inside a checkpoint, the
// same shortlist either way), puts most source words' true translation first, and the summary
// gives the dev figures; a bad call exits non-zero with a message and writes nothing.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <filesystem>
#include <map>
#include <sstream>
#include <string>
#include <vector>

#include "attend/corpus.h"
#include "attend/nmt.h"
#include "attend/shortlist.h"
#include "support/command.h"
#include "support/files.h"

namespace attend {
namespace {

namespace fs = std::filesystem;
using testing::AttendCommand;
using ::testing::HasSubstr;
using testing::Lines;
using testing::ReadFile;
using testing::RunCommand;
using testing::ShellQuote;
using testing::TempDir;

// The corpus and a word vocabulary of both its sides (vocab.model).
nmt::Vocabulary WriteCorpus(const TempDir& dir) {
  const auto r = RunCommand(AttendCommand("corpus synthetic -q -o " + ShellQuote(dir / "data") +
                                          " --seed 5 --train 1500 --dev 40 --test 4"));
  EXPECT_EQ(r.exit_code, 0) << r.output;
  std::vector<std::string> sentences;
  for (const char* f : {"train.src", "train.tgt"})
    for (const std::string& line : data::ReadLines(dir / ("data/" + std::string(f))))
      sentences.push_back(line);
  nmt::VocabularyOptions vo;
  vo.model_type = "word";
  vo.size = 1000;  // more than the words: every word is a piece
  nmt::Vocabulary vocab = nmt::Vocabulary::Train(sentences, vo);
  vocab.Save(dir / "vocab.model");
  return vocab;
}

std::string Shortlist(const TempDir& dir, const std::string& vocab_args, const std::string& out,
                      const std::string& extra = "") {
  return AttendCommand("shortlist " + vocab_args + " --data " + ShellQuote(dir / "data") +
                       " --src src --tgt tgt -o " + ShellQuote(out) + " " + extra);
}

TEST(ShortlistCli, BuildsAShortlistOfTheTrueTranslations) {
  TempDir dir;
  const nmt::Vocabulary vocab = WriteCorpus(dir);
  const std::string out = dir / "sl.txt";
  auto r = RunCommand(
      Shortlist(dir, "-v " + ShellQuote(dir / "vocab.model"), out, "--frequent 5 --per-source 3"));
  ASSERT_EQ(r.exit_code, 0) << r.output;
  EXPECT_THAT(r.output, HasSubstr("1500 training pairs (0 dropped"));
  EXPECT_THAT(r.output, HasSubstr("IBM model 1: 5 EM iterations"));
  EXPECT_THAT(r.output, HasSubstr("dev (40 sentences): batches of 32 score "));
  EXPECT_THAT(r.output, HasSubstr("% of the vocabulary; one sentence alone "));
  EXPECT_THAT(r.output, HasSubstr("dev references: "));
  EXPECT_THAT(r.output, HasSubstr("wrote " + out));

  const nmt::Shortlist sl = nmt::Shortlist::Load(out);
  EXPECT_EQ(sl.vocab_size(), vocab.size());
  EXPECT_NO_THROW(sl.CheckVocabulary(vocab.size(), nmt::VocabularyDigest(vocab.bytes())));
  EXPECT_EQ(sl.frequent().size(), 5u);
  EXPECT_EQ(sl.options().per_source, 3);

  // The lexicon (class<TAB>source<TAB>target): a source word translated by one target word
  // should find it first, unless it is rare.
  std::map<std::string, int> seen;
  for (const std::string& line : data::ReadLines(dir / "data/train.src")) {
    std::istringstream words(line);
    for (std::string w; words >> w;) ++seen[w];
  }
  int checked = 0, first = 0;
  for (const std::string& line : Lines(ReadFile(dir / "data/lexicon.tsv"))) {
    const auto tab1 = line.find('\t'), tab2 = line.rfind('\t');
    const std::string source = line.substr(tab1 + 1, tab2 - tab1 - 1);
    const std::string target = line.substr(tab2 + 1);
    if (source.empty() || target.empty() || target.find(' ') != std::string::npos ||
        seen[source] < 10)
      continue;
    const std::vector<int64_t> s = vocab.Encode(source), t = vocab.Encode(target);
    ASSERT_EQ(s.size(), 1u) << source;
    ASSERT_EQ(t.size(), 1u) << target;
    ++checked;
    const auto& list = sl.candidates(s[0]);
    first += !list.empty() && list.front() == t[0];
  }
  EXPECT_GE(checked, 40);
  EXPECT_GE(first, checked * 19 / 20) << first << " of " << checked;  // 164 of 164 when written

  // From a checkpoint of a model on the same vocabulary: the same shortlist, byte for byte.
  r = RunCommand(
      AttendCommand("train --data " + ShellQuote(dir / "data") + " --src src --tgt tgt --out " +
                    ShellQuote(dir / "model") + " --vocab " + ShellQuote(dir / "vocab.model") +
                    " --embed-dim 8 --hidden-dim 8 --attention-dim 8 --max-tokens 100 --max-steps 1"
                    " --valid-every 1 --valid-sentences 1 --no-progress --threads 1"));
  ASSERT_EQ(r.exit_code, 0) << r.output;
  const std::string from_model = dir / "from_model.txt";
  r = RunCommand(Shortlist(dir, "-m " + ShellQuote(dir / "model/last.ckpt"), from_model,
                           "--frequent 5 --per-source 3"));
  ASSERT_EQ(r.exit_code, 0) << r.output;
  EXPECT_EQ(ReadFile(from_model), ReadFile(out));
}

TEST(ShortlistCli, BadCallsExitNonZeroAndWriteNothing) {
  TempDir dir;
  WriteCorpus(dir);
  const std::string vocab = "-v " + ShellQuote(dir / "vocab.model");
  const std::string out = dir / "bad.txt";
  auto expect_error = [&](const std::string& command, const std::string& expected) {
    SCOPED_TRACE(command);
    const auto r = RunCommand(command);
    EXPECT_EQ(r.exit_code, 1) << r.output;
    EXPECT_EQ(r.output.rfind("attend: error: shortlist: ", 0), 0u) << r.output;
    EXPECT_THAT(r.output, HasSubstr(expected));
    EXPECT_FALSE(fs::exists(out));
  };
  expect_error(AttendCommand("shortlist " + vocab + " --data " + ShellQuote(dir / "nowhere") +
                             " -o " + ShellQuote(out)),
               "the corpus directory " + (dir / "nowhere") + " does not exist");
  expect_error(AttendCommand("shortlist " + vocab + " --data " + ShellQuote(dir / "data") +
                             " --src en --tgt tgt -o " + ShellQuote(out)),
               "train.en");  // no such language
  expect_error(Shortlist(dir, vocab, out, "--per-source -1"), "--per-source must be >= 0, not -1");
  expect_error(Shortlist(dir, vocab, out, "--iterations 0"), "--iterations must be >= 1");
  expect_error(Shortlist(dir, "", out), "give the vocabulary as -m CHECKPOINT or as -v");
  expect_error(Shortlist(dir, vocab + " -m " + ShellQuote(dir / "vocab.model"), out),
               "(one of them)");
  expect_error(Shortlist(dir, "-v " + ShellQuote(dir / "missing.model"), out), "missing.model");
  expect_error(Shortlist(dir, "-m " + ShellQuote(dir / "vocab.model"), out), "vocab.model");
  // Options the command does not know, or no output: command-line errors.
  for (const std::string& extra : {std::string("--bogus 3"), std::string("--frequent x")}) {
    const auto r = RunCommand(Shortlist(dir, vocab, out, extra));
    EXPECT_NE(r.exit_code, 0) << r.output;
    EXPECT_NE(r.exit_code, 1) << r.output;  // CLI11's codes, not a run-time error
    EXPECT_FALSE(fs::exists(out));
  }
  const auto r = RunCommand(AttendCommand("shortlist " + vocab + " --data " +
                                          ShellQuote(dir / "data") + " --src src --tgt tgt"));
  EXPECT_NE(r.exit_code, 0) << r.output;
  EXPECT_THAT(r.output, HasSubstr("--output"));
}

}  // namespace
}  // namespace attend
