// `attend shortlist`: a lexical shortlist (nmt::Shortlist) from a corpus's training pairs, encoded
// with a model's vocabulary, for `attend translate --shortlist`; prints what it holds and what
// share of the vocabulary decoding the dev set would still score.
#include <CLI/CLI.hpp>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <limits>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "attend/corpus.h"
#include "attend/error.h"
#include "attend/nmt.h"
#include "attend/shortlist.h"
#include "commands.h"

namespace attend::tools {
namespace {

namespace fs = std::filesystem;

struct ShortlistArgs {
  std::string model_path, vocab_path, data_dir, src_lang = "en", tgt_lang = "de", output;
  nmt::ShortlistOptions options;
  int64_t max_train = 0, max_len = 100, batch_size = 32;
};

double SecondsSince(std::chrono::steady_clock::time_point t0) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
}

int Run(const ShortlistArgs& a) {
  ATTEND_CHECK(a.model_path.empty() != a.vocab_path.empty(),
               "give the vocabulary as -m CHECKPOINT or as -v VOCAB.model (one of them)");
  ATTEND_CHECK(a.options.frequent >= 0, "--frequent must be >= 0, not ", a.options.frequent);
  ATTEND_CHECK(a.options.per_source >= 0, "--per-source must be >= 0, not ", a.options.per_source);
  ATTEND_CHECK(a.options.iterations >= 1, "--iterations must be >= 1, not ", a.options.iterations);
  ATTEND_CHECK(a.max_train >= 0, "--max-train must be >= 0, not ", a.max_train);
  ATTEND_CHECK(a.max_len >= 0, "--max-len must be >= 0, not ", a.max_len);
  ATTEND_CHECK(a.batch_size >= 1, "--batch-size must be >= 1, not ", a.batch_size);
  ATTEND_CHECK(fs::is_directory(a.data_dir), "the corpus directory ", a.data_dir,
               " does not exist");
  const fs::path dir(a.data_dir);
  auto file = [&](const char* split, const std::string& lang) {
    return (dir / (std::string(split) + "." + lang)).string();
  };

  const auto t0 = std::chrono::steady_clock::now();
  const nmt::Vocabulary vocab = a.model_path.empty() ? nmt::Vocabulary::Load(a.vocab_path)
                                                     : nmt::LoadModel(a.model_path).vocab;
  const std::string digest = nmt::VocabularyDigest(vocab.bytes());

  // The training pairs as `attend train` reads and filters them.
  std::vector<data::SentencePair> read =
      data::ReadParallelText(file("train", a.src_lang), file("train", a.tgt_lang));
  if (a.max_train > 0 && static_cast<int64_t>(read.size()) > a.max_train)
    read.resize(static_cast<size_t>(a.max_train));
  ATTEND_CHECK(!read.empty(), "the training data ", file("train", a.src_lang), " is empty");
  std::vector<std::pair<std::string, std::string>> pairs;
  pairs.reserve(read.size());
  for (data::SentencePair& p : read) pairs.emplace_back(std::move(p.src), std::move(p.tgt));
  read.clear();
  int64_t dropped = 0;
  std::vector<nmt::Example> examples = nmt::EncodePairs(
      vocab, pairs, a.max_len > 0 ? a.max_len : std::numeric_limits<int64_t>::max(), &dropped);
  pairs.clear();
  ATTEND_CHECK(!examples.empty(), "no training pair left (each has an empty side or more than ",
               a.max_len, " subwords)");
  std::vector<std::vector<int64_t>> sources, targets;
  int64_t target_tokens = 0;
  for (nmt::Example& e : examples) {
    target_tokens += static_cast<int64_t>(e.tgt.size());
    sources.push_back(std::move(e.src));
    targets.push_back(std::move(e.tgt));
  }
  examples.clear();
  const double read_seconds = SecondsSince(t0);

  const auto t1 = std::chrono::steady_clock::now();
  std::vector<double> log_likelihood;
  const nmt::Shortlist shortlist =
      nmt::Shortlist::Build(sources, targets, vocab.size(), digest, a.options, &log_likelihood);
  const double build_seconds = SecondsSince(t1);
  shortlist.Save(a.output);

  std::printf(
      "%zu training pairs (%lld dropped: an empty side or more than %lld subwords), "
      "vocabulary of %lld pieces (digest %s); read and encoded in %.1f s\n",
      sources.size(), static_cast<long long>(dropped), static_cast<long long>(a.max_len),
      static_cast<long long>(vocab.size()), digest.c_str(), read_seconds);
  const double per_token = 1.0 / static_cast<double>(std::max<int64_t>(target_tokens, 1));
  std::printf(
      "IBM model 1: %lld EM iterations in %.2f s, log-likelihood per target token "
      "%.4f -> %.4f\n",
      static_cast<long long>(a.options.iterations), build_seconds,
      log_likelihood.front() * per_token, log_likelihood.back() * per_token);
  int64_t listed = 0;
  for (int64_t s : shortlist.sources())
    listed += static_cast<int64_t>(shortlist.candidates(s).size());
  const size_t with = shortlist.sources().size();
  std::printf(
      "%zu source ids with candidates, %.1f per source id on average (at most %lld); "
      "%zu frequent target ids\n",
      with, with > 0 ? static_cast<double>(listed) / static_cast<double>(with) : 0.0,
      static_cast<long long>(a.options.per_source), shortlist.frequent().size());

  // What decoding the dev set would score.
  const std::string dev_src = file("dev", a.src_lang), dev_tgt = file("dev", a.tgt_lang);
  if (fs::exists(dev_src)) {
    std::vector<std::vector<int64_t>> dev, refs;
    if (fs::exists(dev_tgt)) {
      for (const data::SentencePair& p : data::ReadParallelText(dev_src, dev_tgt)) {
        dev.push_back(vocab.Encode(p.src));
        refs.push_back(vocab.Encode(p.tgt));
      }
    } else {
      for (const std::string& line : data::ReadLines(dev_src)) dev.push_back(vocab.Encode(line));
    }
    const nmt::ShortlistCoverage batched = nmt::MeasureCoverage(shortlist, dev, refs, a.batch_size);
    const nmt::ShortlistCoverage alone = nmt::MeasureCoverage(shortlist, dev, refs, 1);
    std::printf(
        "dev (%lld sentences): batches of %lld score %.1f target ids on average, "
        "%.2f%% of the vocabulary; one sentence alone %.1f, %.2f%%\n",
        static_cast<long long>(batched.sentences), static_cast<long long>(a.batch_size),
        batched.mean_targets, 100.0 * batched.mean_share, alone.mean_targets,
        100.0 * alone.mean_share);
    if (alone.reference_recall >= 0.0)
      std::printf(
          "dev references: %.2f%% of their tokens in their batch's shortlist, %.2f%% in "
          "their sentence's\n",
          100.0 * batched.reference_recall, 100.0 * alone.reference_recall);
  } else {
    std::printf("no %s: no dev figures\n", dev_src.c_str());
  }
  std::printf("wrote %s\n", a.output.c_str());
  return 0;
}

}  // namespace

Runner RegisterShortlistCommand(CLI::App& app) {
  auto a = std::make_shared<ShortlistArgs>();
  CLI::App* c = app.add_subcommand(
      "shortlist",
      "Build a lexical shortlist (IBM model 1 over the training pairs) for translate --shortlist");
  c->add_option("-m,--model", a->model_path, "Checkpoint whose vocabulary to use");
  c->add_option("-v,--vocab", a->vocab_path, "A SentencePiece model (vocab.model) instead of -m");
  c->add_option("--data", a->data_dir, "Corpus directory with train.SRC/TGT (and dev.SRC/TGT)")
      ->required();
  c->add_option("--src", a->src_lang, "Source language suffix")->capture_default_str();
  c->add_option("--tgt", a->tgt_lang, "Target language suffix")->capture_default_str();
  c->add_option("-o,--output", a->output, "The shortlist file (written atomically)")->required();
  c->add_option("--frequent", a->options.frequent, "The most frequent target ids, always scored")
      ->capture_default_str();
  c->add_option("--per-source", a->options.per_source,
                "Target ids kept per source id, best p(t | s) first")
      ->capture_default_str();
  c->add_option("--iterations", a->options.iterations, "EM iterations of IBM model 1")
      ->capture_default_str();
  c->add_option("--max-train", a->max_train, "Use only the first N training pairs (0 = all)");
  c->add_option("--max-len", a->max_len,
                "Drop training pairs longer than this (subwords), as train does (0 = none)")
      ->capture_default_str();
  c->add_option("--batch-size", a->batch_size,
                "Dev sentences per batch for the share of the vocabulary scored (as translate's)")
      ->capture_default_str();
  return [a]() {
    try {
      return Run(*a);
    } catch (const Error& e) {
      throw Error(std::string("shortlist: ") + e.what());
    }
  };
}

}  // namespace attend::tools
