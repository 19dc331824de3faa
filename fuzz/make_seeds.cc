// Writes the seed corpora of the fuzz targets that need attend's own writers: safetensors files,
// checkpoints written by nmt::Train (one step each of the three architectures, with a small
// vocabulary), model configs, SentencePiece vocabularies and a WAV file from audio::WriteWav.
// fuzz/make_seeds.sh calls it and adds the text-based seeds (catalogs from msgfmt, plural
// expressions, text files, metrics inputs) and WAV files of the other encodings.
//   make_fuzz_seeds OUT_DIR   writes OUT_DIR/<target>/<seed>
#include <sentencepiece_trainer.h>

#include <cmath>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <sstream>

#include "attend/audio.h"
#include "attend/checkpoint.h"
#include "attend/corpus.h"
#include "attend/models.h"
#include "attend/nmt.h"

namespace fs = std::filesystem;
using namespace attend;

namespace {

void WriteSeed(const fs::path& dir, const std::string& name, const std::string& bytes) {
  fs::create_directories(dir);
  io::WriteFileAtomic((dir / name).string(), bytes);
  std::printf("%8zu  %s\n", bytes.size(), (dir / name).c_str());
}

std::string ReadFile(const fs::path& path) {
  std::ifstream in(path, std::ios::binary);
  std::ostringstream s;
  s << in.rdbuf();
  return s.str();
}

const std::vector<std::pair<std::string, std::string>> kPairs = {
    {"open the file", "die Datei öffnen"},         {"save the file", "die Datei speichern"},
    {"close the window", "das Fenster schließen"}, {"open a window", "ein Fenster öffnen"},
    {"print the page", "die Seite drucken"},       {"the file is open", "die Datei ist offen"},
};

// A small SentencePiece model with attend's reserved ids. The identity normalization keeps the
// model a few hundred bytes (nmt_nfkc's table alone is ~240 KB); `rules` (a TSV of code point
// mappings) gives a small normalizer table of its own instead.
std::string TrainVocabulary(const std::string& model_type, int size, const std::string& rules) {
  std::vector<std::string> sentences;
  for (const auto& [src, tgt] : kPairs) {
    sentences.push_back(src);
    sentences.push_back(tgt);
  }
  std::ostringstream args;
  args << "--model_type=" << model_type << " --vocab_size=" << size
       << " --character_coverage=1.0 --pad_id=0 --unk_id=1 --bos_id=2 --eos_id=3"
       << " --hard_vocab_limit=false --num_threads=1 --minloglevel=2";
  if (rules.empty()) {
    args << " --normalization_rule_name=identity";
  } else {
    args << " --normalization_rule_tsv=" << rules;
  }
  std::string proto;
  struct Iterator : sentencepiece::SentenceIterator {
    explicit Iterator(const std::vector<std::string>& s) : s_(s) {}
    bool done() const override { return i_ >= s_.size(); }
    void Next() override { ++i_; }
    const std::string& value() const override { return s_[i_]; }
    sentencepiece::util::Status status() const override { return {}; }
    const std::vector<std::string>& s_;
    size_t i_ = 0;
  } it(sentences);
  const auto status = sentencepiece::SentencePieceTrainer::Train(args.str(), &it, &proto);
  ATTEND_CHECK(status.ok(), "SentencePiece: ", status.ToString());
  return proto;
}

models::ModelConfig TinyConfig(const std::string& arch, int64_t vocab) {
  models::ModelConfig c;
  c.arch = models::ParseEnum<models::Arch>(arch, "arch");
  c.src_vocab = c.tgt_vocab = vocab;
  c.dropout = 0.0;
  c.cell = arch == "rnn" ? models::Cell::kLstm : models::Cell::kGru;
  c.embed_dim = c.hidden_dim = c.attention_dim = 4;
  c.max_source_len = 40;
  c.d_model = 4;
  c.heads = 2;
  c.ff_dim = 8;
  c.layers = 1;
  c.max_positions = 40;
  return c;
}

// A checkpoint as `attend train` writes it: one training step, then last.ckpt.
std::string TrainCheckpoint(const std::string& arch, const nmt::Vocabulary& vocab,
                            const fs::path& work) {
  const models::ModelConfig config = TinyConfig(arch, vocab.size());
  Generator gen(1);
  std::shared_ptr<models::Seq2Seq> model = models::MakeModel(config, gen);
  const std::vector<nmt::Example> examples = nmt::EncodePairs(vocab, kPairs, 32);
  nmt::TrainOptions o;
  o.out_dir = (work / arch).string();
  o.max_tokens = 64;
  o.max_steps = 1;
  o.valid_every = 1;
  o.valid_sentences = 2;
  o.warmup = 1;
  o.progress = false;
  o.threads = 1;
  nmt::Train(*model, vocab, examples, examples, kPairs, o, /*resume=*/false);
  return ReadFile(work / arch / "last.ckpt");
}

// A safetensors file from another writer: no checksum, fields in another order, no padding.
std::string ForeignSafetensors() {
  const std::string header =
      R"({"b":{"shape":[2],"dtype":"I64","data_offsets":[8,24]},)"
      R"("a":{"data_offsets":[0,8],"dtype":"F64","shape":[]},"__metadata__":{"format":"pt"}})";
  std::string out(8, '\0');
  const uint64_t n = header.size();
  for (int i = 0; i < 8; ++i) out[i] = static_cast<char>((n >> (8 * i)) & 0xff);
  out += header;
  const double a = 1.5;
  const int64_t b[2] = {-7, 1LL << 40};
  out.append(reinterpret_cast<const char*>(&a), 8);
  out.append(reinterpret_cast<const char*>(b), 16);
  return out;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc != 2) {
    std::fprintf(stderr, "usage: %s OUT_DIR\n", argv[0]);
    return 2;
  }
  const fs::path out = argv[1];
  const fs::path work = out / ".work";
  try {
    fs::create_directories(work);

    // safetensors
    Generator gen(7);
    io::Metadata meta = {{"note", "seed"}};
    WriteSeed(out / "safetensors", "f32.safetensors",
              io::SerializeSafetensors({{"w", Tensor::Randn({2, 3}, gen)}}, meta));
    WriteSeed(out / "safetensors", "dtypes.safetensors",
              io::SerializeSafetensors({{"d", Tensor::Randn({3}, gen, DType::kF64)},
                                        {"i", Tensor::Zeros({2, 1}, DType::kI64)},
                                        {"m", Tensor::Ones({2, 2}, DType::kBool)},
                                        {"s", Tensor::Ones({}, DType::kF32)},
                                        {"z", Tensor::Zeros({0, 3}, DType::kF32)}}));
    WriteSeed(out / "safetensors", "foreign.safetensors", ForeignSafetensors());

    // vocabularies
    const fs::path rules = work / "rules.tsv";
    std::ofstream(rules) << "41\t61\n42\t62\nFF21\t41\n2003\t20\n";
    const std::string unigram = TrainVocabulary("unigram", 36, "");
    WriteSeed(out / "vocab", "unigram.model", unigram);
    WriteSeed(out / "vocab", "bpe.model", TrainVocabulary("bpe", 40, ""));
    WriteSeed(out / "vocab", "rules.model", TrainVocabulary("unigram", 36, rules.string()));

    // checkpoints and their configs
    const nmt::Vocabulary vocab = nmt::Vocabulary::FromBytes(unigram, "seed");
    for (const char* arch : {"rnn-attention", "rnn", "transformer"}) {
      WriteSeed(out / "checkpoint", std::string(arch) + ".ckpt",
                TrainCheckpoint(arch, vocab, work));
      WriteSeed(out / "model_config", std::string(arch) + ".json",
                TinyConfig(arch, vocab.size()).ToJson());
    }
    models::ModelConfig defaults;
    defaults.src_vocab = defaults.tgt_vocab = 8000;
    WriteSeed(out / "model_config", "defaults.json", defaults.ToJson());

    // a WAV file as attend writes them: 16-bit mono, 50 ms of a 440 Hz tone at 16 kHz
    audio::Waveform tone;
    tone.sample_rate = 16000;
    for (int i = 0; i < 800; ++i)
      tone.samples.push_back(
          static_cast<float>(0.5 * std::sin(2 * 3.14159265358979 * 440 * i / 16000)));
    audio::WriteWav((work / "tone.wav").string(), tone);
    WriteSeed(out / "wav", "pcm16-mono.wav", ReadFile(work / "tone.wav"));
    fs::remove_all(work);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "make_fuzz_seeds: %s\n", e.what());
    return 1;
  }
  return 0;
}
