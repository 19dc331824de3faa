// `attend train`: reads parallel data, trains (or loads) the subword vocabulary, builds the model
// the options describe and runs nmt::Train.
#include <CLI/CLI.hpp>

#include <cstdio>
#include <filesystem>
#include <memory>

#include "attend/corpus.h"
#include "attend/error.h"
#include "attend/models.h"
#include "attend/nmt.h"
#include "commands.h"

namespace attend::tools {
namespace {

struct TrainArgs {
  // Data: a corpus directory (train.SRC, train.TGT, dev.SRC, dev.TGT), or explicit files.
  std::string data_dir, src_lang = "en", tgt_lang = "de";
  std::string train_src, train_tgt, dev_src, dev_tgt, train_tsv, dev_tsv;
  int64_t max_train = 0;  // 0 = all
  std::string vocab_path;
  nmt::VocabularyOptions vocab;
  models::ModelConfig model;
  nmt::TrainOptions train;
  bool resume = false, no_input_feeding = false, post_norm = false, no_share = false,
       no_progress = false;
};

using Pairs = std::vector<std::pair<std::string, std::string>>;

Pairs ToPairs(const std::vector<data::SentencePair>& v, int64_t limit) {
  Pairs out;
  const size_t n = limit > 0 ? std::min<size_t>(v.size(), limit) : v.size();
  out.reserve(n);
  for (size_t i = 0; i < n; ++i) out.emplace_back(v[i].src, v[i].tgt);
  return out;
}

Pairs ReadSplit(const TrainArgs& a, const std::string& split, const std::string& src,
                const std::string& tgt, const std::string& tsv, int64_t limit) {
  data::ReadOptions ro;
  if (!tsv.empty()) return ToPairs(data::ReadTsv(tsv, ro), limit);
  if (!src.empty() || !tgt.empty()) {
    ATTEND_CHECK(!src.empty() && !tgt.empty(), "train: give both --", split, "-src and --", split,
                 "-tgt");
    return ToPairs(data::ReadParallelText(src, tgt, ro), limit);
  }
  ATTEND_CHECK(!a.data_dir.empty(), "train: no ", split, " data (give --data DIR, --", split,
               "-src/--", split, "-tgt or --", split, "-tsv)");
  namespace fs = std::filesystem;
  const fs::path d(a.data_dir);
  return ToPairs(data::ReadParallelText((d / (split + "." + a.src_lang)).string(),
                                        (d / (split + "." + a.tgt_lang)).string(), ro),
                 limit);
}

int Run(TrainArgs& a) {
  a.model.input_feeding = !a.no_input_feeding;
  a.model.pre_norm = !a.post_norm;
  a.model.share_embeddings = !a.no_share;
  a.train.progress = !a.no_progress;
  const Pairs train = ReadSplit(a, "train", a.train_src, a.train_tgt, a.train_tsv, a.max_train);
  const Pairs dev = ReadSplit(a, "dev", a.dev_src, a.dev_tgt, a.dev_tsv, 0);
  ATTEND_CHECK(!train.empty(), "train: the training data is empty");
  ATTEND_CHECK(!dev.empty(), "train: the dev data is empty");
  namespace fs = std::filesystem;
  nmt::Vocabulary vocab;
  const std::string saved_vocab = (fs::path(a.train.out_dir) / "vocab.model").string();
  if (!a.vocab_path.empty()) {
    vocab = nmt::Vocabulary::Load(a.vocab_path);
  } else if (a.resume) {
    vocab = nmt::Vocabulary::Load(saved_vocab);
  } else {
    std::fprintf(stderr, "training a %lld-piece %s vocabulary on %zu pairs\n",
                 (long long)a.vocab.size, a.vocab.model_type.c_str(), train.size());
    std::vector<std::string> text;
    text.reserve(2 * train.size());
    for (const auto& [s, t] : train) {
      text.push_back(s);
      text.push_back(t);
    }
    vocab = nmt::Vocabulary::Train(text, a.vocab);
  }
  int64_t dropped = 0;
  const auto train_ex = nmt::EncodePairs(vocab, train, a.train.max_len, &dropped);
  if (dropped > 0)
    std::fprintf(stderr, "dropped %lld training pairs longer than %lld subwords\n",
                 (long long)dropped, (long long)a.train.max_len);
  const auto dev_ex = nmt::EncodePairs(vocab, dev, a.train.max_len);
  a.model.src_vocab = a.model.tgt_vocab = vocab.size();
  Generator gen(a.train.seed);
  auto model = models::MakeModel(a.model, gen);
  const nmt::TrainSummary s = nmt::Train(*model, vocab, train_ex, dev_ex, dev, a.train, a.resume);
  std::printf("steps %lld, %.0f s, %.0f target tokens/s, best dev BLEU %.2f, checkpoint %s\n",
              (long long)s.steps, s.seconds, s.tokens_per_second, s.best_bleu,
              (fs::path(a.train.out_dir) / "best.ckpt").c_str());
  return 0;
}

}  // namespace

Runner RegisterTrainCommand(CLI::App& app) {
  auto a = std::make_shared<TrainArgs>();
  CLI::App* c = app.add_subcommand("train", "Train a translation model");
  c->add_option("--data", a->data_dir, "Corpus directory with train.SRC/TGT and dev.SRC/TGT");
  c->add_option("--src", a->src_lang, "Source language suffix")->capture_default_str();
  c->add_option("--tgt", a->tgt_lang, "Target language suffix")->capture_default_str();
  c->add_option("--train-src", a->train_src, "Training sources, one sentence per line");
  c->add_option("--train-tgt", a->train_tgt, "Training targets");
  c->add_option("--dev-src", a->dev_src, "Dev sources");
  c->add_option("--dev-tgt", a->dev_tgt, "Dev targets");
  c->add_option("--train-tsv", a->train_tsv, "Training pairs as source<TAB>target");
  c->add_option("--dev-tsv", a->dev_tsv, "Dev pairs as source<TAB>target");
  c->add_option("--max-train", a->max_train, "Use only the first N training pairs (0 = all)");
  c->add_option("-o,--out", a->train.out_dir, "Output directory")->capture_default_str();
  c->add_option("--vocab", a->vocab_path, "A SentencePiece model to use instead of training one");
  c->add_option("--vocab-size", a->vocab.size, "Subword vocabulary size")->capture_default_str();
  c->add_option("--vocab-type", a->vocab.model_type, "unigram or bpe")->capture_default_str();
  auto& m = a->model;
  c->add_option("--arch", m.arch, "rnn | rnn-attention | transformer")->capture_default_str();
  c->add_option("--cell", m.cell, "RNN cell: gru | lstm")->capture_default_str();
  c->add_option("--embed-dim", m.embed_dim, "RNN embedding size")->capture_default_str();
  c->add_option("--hidden-dim", m.hidden_dim, "RNN decoder size (encoder: half per direction)")
      ->capture_default_str();
  c->add_option("--encoder-layers", m.encoder_layers)->capture_default_str();
  c->add_option("--decoder-layers", m.decoder_layers)->capture_default_str();
  c->add_option("--score", m.score, "additive | dot | general | concat | location")
      ->capture_default_str();
  c->add_option("--attention-dim", m.attention_dim, "additive/concat attention size")
      ->capture_default_str();
  c->add_option("--window", m.window, "global | local-m | local-p")->capture_default_str();
  c->add_option("--window-size", m.window_size, "D of the local windows")->capture_default_str();
  c->add_option("--max-source-len", m.max_source_len, "location score's positions")
      ->capture_default_str();
  c->add_flag("--no-input-feeding", a->no_input_feeding, "Do not feed h~ to the next step");
  c->add_option("--teacher-forcing", m.teacher_forcing, "Ratio of reference inputs in training")
      ->capture_default_str();
  c->add_option("--d-model", m.d_model)->capture_default_str();
  c->add_option("--heads", m.heads)->capture_default_str();
  c->add_option("--ff-dim", m.ff_dim)->capture_default_str();
  c->add_option("--layers", m.layers, "Transformer layers per stack")->capture_default_str();
  c->add_flag("--post-norm", a->post_norm, "Transformer: post-norm (default pre-norm)");
  c->add_flag("--no-share-embeddings", a->no_share, "Transformer: separate embeddings");
  c->add_option("--dropout", m.dropout)->capture_default_str();
  auto& t = a->train;
  c->add_option("--max-tokens", t.max_tokens, "Tokens per batch")->capture_default_str();
  c->add_option("--max-len", t.max_len, "Drop training pairs longer than this (subwords)")
      ->capture_default_str();
  c->add_option("--lr", t.lr, "Peak learning rate")->capture_default_str();
  c->add_option("--warmup", t.warmup, "Warm-up steps")->capture_default_str();
  c->add_option("--clip-norm", t.clip_norm)->capture_default_str();
  c->add_option("--label-smoothing", t.label_smoothing)->capture_default_str();
  c->add_option("--max-steps", t.max_steps, "Stop after N steps (0 = no limit)");
  c->add_option("--max-epochs", t.max_epochs, "Stop after N epochs (0 = no limit)");
  c->add_option("--max-minutes", t.max_minutes, "Stop after N minutes (0 = no limit)");
  c->add_option("--valid-every", t.valid_every, "Steps between validations")->capture_default_str();
  c->add_option("--valid-sentences", t.valid_sentences, "Dev sentences translated for BLEU")
      ->capture_default_str();
  c->add_option("--patience", t.patience, "Validations without improvement before stopping")
      ->capture_default_str();
  c->add_option("--seed", t.seed)->capture_default_str();
  c->add_option("--log-every", t.log_every)->capture_default_str();
  c->add_option("--threads", t.threads, "Threads (0 = all cores)")->capture_default_str();
  c->add_flag("--no-progress", a->no_progress, "No progress bar");
  c->add_flag("--resume", a->resume, "Continue OUT/last.ckpt exactly");
  return [a]() { return Run(*a); };
}

}  // namespace attend::tools
