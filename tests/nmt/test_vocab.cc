// The subword vocabulary as a reader of untrusted files (vocab.model, the vocabulary stored in a
// checkpoint): SentencePiece's normalization tables are checked before SentencePiece uses them.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <cstring>
#include <fstream>
#include <functional>
#include <random>
#include <sstream>
#include <string>
#include <vector>

#include "attend/error.h"
#include "attend/nmt.h"
#include "support/errors.h"

namespace attend {
namespace {

using attend::testing::ThrownMessage;
using ::testing::AllOf;
using ::testing::HasSubstr;

std::vector<std::string> Sentences() {
  std::vector<std::string> s;
  for (int i = 0; i < 40; ++i) {
    s.push_back("Öffnen Sie die Datei Nummer " + std::to_string(i) + ", bitte.");
    s.push_back("Open file number " + std::to_string(i) + ", please. ＡＢＣ ﬁ");
  }
  return s;
}

// The default normalization (nmt_nfkc) brings a table of ~240 KB: the check accepts it.
TEST(Vocabulary, TrainedModelsWithTheirNormalizerLoad) {
  nmt::VocabularyOptions o;
  o.size = 60;
  const nmt::Vocabulary trained = nmt::Vocabulary::Train(Sentences(), o);
  const nmt::Vocabulary v = nmt::Vocabulary::FromBytes(trained.bytes(), "trained");
  EXPECT_EQ(v.size(), trained.size());
  const std::string text = "Open file number 7, please. ＡＢＣ ﬁ";
  EXPECT_EQ(v.Encode(text), trained.Encode(text));
  EXPECT_EQ(v.Decode(v.Encode("Open file 3")), "Open file 3");
}

std::string SourceFile(const std::string& path) {
  std::ifstream in(std::string(ATTEND_SOURCE_DIR) + "/" + path, std::ios::binary);
  EXPECT_TRUE(in.good()) << path;
  std::ostringstream bytes;
  bytes << in.rdbuf();
  return bytes.str();
}

// The fuzzer's seeds: identity normalization (no table) and a small table of custom rules.
TEST(Vocabulary, SeedModelsLoad) {
  for (const char* name : {"unigram.model", "bpe.model", "rules.model"}) {
    const nmt::Vocabulary v =
        nmt::Vocabulary::FromBytes(SourceFile(std::string("fuzz/corpus/vocab/") + name), name);
    EXPECT_GT(v.size(), 4) << name;
    EXPECT_FALSE(v.Encode("open the file").empty()) << name;
  }
}

// Found by fuzz/fuzz_vocab.cc: a model whose normalization table sends the trie outside itself
// loaded, then SentencePiece's Encode read out of bounds (SEGV). The input is kept in the corpus.
TEST(Vocabulary, CorruptNormalizationTableIsRefused) {
  const std::string bytes =
      SourceFile("fuzz/corpus/vocab/crash-f4734ac62d734dbecb3b5a7b8e1fe68d31fa54bd");
  ASSERT_FALSE(bytes.empty());
  EXPECT_THAT(ThrownMessage([&] { nmt::Vocabulary::FromBytes(bytes, "crash.model"); }),
              HasSubstr("normalization table"));
}

// Found by fuzz/fuzz_vocab.cc: a piece whose text starts with a NUL byte made SentencePiece's
// trie builder throw through a noexcept function (std::terminate). The input is kept in the
// corpus; an empty piece is the same case.
TEST(Vocabulary, EmptyOrNulPiecesAreRefused) {
  const std::string bytes =
      SourceFile("fuzz/corpus/vocab/crash-5c4d5735c4b7cf666ff2e5d50f0ebb128438d705");
  ASSERT_FALSE(bytes.empty());
  EXPECT_THAT(ThrownMessage([&] { nmt::Vocabulary::FromBytes(bytes, "nul.model"); }),
              AllOf(HasSubstr("nul.model"), HasSubstr("is empty or holds a NUL byte")));
  // A trained model with one piece's text emptied: the first piece "<pad>" is field 1 (0x0a) of
  // the model, its text field 1 of the piece ("\x0a\x05<pad>"); an empty text keeps it well formed.
  nmt::VocabularyOptions o;
  o.size = 60;
  std::string good = nmt::Vocabulary::Train(Sentences(), o).bytes();
  const size_t at = good.find(std::string("\x0a\x05<pad>", 7));
  ASSERT_NE(at, std::string::npos);
  std::string empty = good;
  empty.replace(at, 7, std::string("\x0a\x00", 2));
  empty[at - 1] = static_cast<char>(empty[at - 1] - 5);  // the piece message is 5 bytes shorter
  EXPECT_THAT(ThrownMessage([&] { nmt::Vocabulary::FromBytes(empty, "empty.model"); }),
              HasSubstr("piece 0 is empty or holds a NUL byte"));
}

// Damage anywhere in a model (the normalization table is most of it) is refused or loads a
// vocabulary that encodes and decodes; under AddressSanitizer this also proves no read outside.
TEST(Vocabulary, DamagedModelsAreRefusedOrSafe) {
  nmt::VocabularyOptions o;
  o.size = 60;
  const std::string good = nmt::Vocabulary::Train(Sentences(), o).bytes();
  std::mt19937 rng(11);
  int refused = 0;
  for (int trial = 0; trial < 60; ++trial) {
    std::string bad = good;
    const size_t at = std::uniform_int_distribution<size_t>(0, bad.size() - 4)(rng);
    const uint32_t word = trial % 2 == 0 ? 0xffffffffu : static_cast<uint32_t>(rng());
    std::memcpy(bad.data() + at, &word, 4);
    try {
      const nmt::Vocabulary v = nmt::Vocabulary::FromBytes(bad, "damaged");
      for (const std::string& s : {std::string("Open file number 7, please. ＡＢＣ ﬁ"),
                                   std::string("\xe2\x80\x83 Öffnen \x01\x7f")}) {
        try {
          v.Decode(v.Encode(s));
        } catch (const Error&) {
        }
      }
    } catch (const Error&) {
      ++refused;
    }
  }
  EXPECT_GT(refused, 0);
}

}  // namespace
}  // namespace attend
