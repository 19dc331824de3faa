// `attend align`: attention measured as word alignment. Each given sentence pair is
// teacher-forced through the model (the reference translation, not a hypothesis); each target
// word is aligned to the source word its attention favours (subword pieces merged into words);
// the alignments are written as Pharaoh lines in input order and, with a gold alignment, scored
// by AER, precision and recall, for one attention head or for every layer and head.
#include <CLI/CLI.hpp>

#include <algorithm>
#include <cstdio>
#include <memory>
#include <string>
#include <vector>

#include "attend/error.h"
#include "attend/files.h"
#include "attend/metrics.h"
#include "attend/nmt.h"
#include "attend/text.h"
#include "commands.h"

namespace attend::tools {
namespace {

struct AlignArgs {
  std::string model_path, src_path, tgt_path, ref_path, output = "-";
  int64_t layer = -1, head = 0, batch_size = 32;
  bool all_heads = false;
  int threads = 0;
  size_t max_line_bytes = 16384;
};

// A sentence pair as the model reads it; `problem` says why a line cannot be aligned.
struct Pair {
  std::vector<int64_t> src, tgt;              // pieces
  std::vector<int64_t> src_words, tgt_words;  // the word of each piece
  std::string problem;
};

std::vector<text::LineReader::Line> ReadAll(const std::string& path, size_t max_bytes) {
  text::LineReader in(path, max_bytes);
  std::vector<text::LineReader::Line> lines;
  text::LineReader::Line line;
  while (in.Next(&line)) lines.push_back(std::move(line));
  return lines;
}

Pair Prepare(const nmt::Vocabulary& vocab, const models::ModelConfig& config,
             const text::LineReader::Line& src, const text::LineReader::Line& tgt,
             const std::string& where) {
  Pair p;
  for (const auto* line : {&src, &tgt}) {
    const char* side = line == &src ? "source" : "target";
    if (line->cropped()) {
      p.problem = std::string("the ") + side + " is " + std::to_string(line->bytes) +
                  " bytes long, more than --max-line-bytes";
      return p;
    }
    if (const size_t bad = text::FirstInvalidUtf8(line->text); bad != std::string::npos) {
      p.problem = std::string("invalid UTF-8 at byte ") + std::to_string(bad) + " of the " + side;
      return p;
    }
  }
  try {
    p.src = vocab.Encode(src.text);
    p.tgt = vocab.Encode(tgt.text);
    p.src_words = nmt::PieceWords(vocab, src.text, where + " (source)");
    p.tgt_words = nmt::PieceWords(vocab, tgt.text, where + " (target)");
  } catch (const Error& e) {
    p.problem = e.what();
    return p;
  }
  if (p.src.empty() || p.tgt.empty()) {
    p.problem = std::string("the ") + (p.src.empty() ? "source" : "target") + " is empty";
  } else if ((config.arch == models::Arch::kTransformer ||
              config.arch == models::Arch::kPervasive) &&
             (static_cast<int64_t>(p.src.size()) > config.max_positions ||
              static_cast<int64_t>(p.tgt.size()) + 1 > config.max_positions)) {
    p.problem = "the pair has " + std::to_string(p.src.size()) + " source and " +
                std::to_string(p.tgt.size()) + " target subwords; the model takes at most " +
                std::to_string(config.max_positions) + " (target with eos)";
  } else if ((config.score == models::Score::kLocation ||
              config.wiring == models::Wiring::kTutorial) &&
             config.arch == models::Arch::kRnnAttention &&
             static_cast<int64_t>(p.src.size()) > config.max_source_len) {
    p.problem =
        "the source has " + std::to_string(p.src.size()) + " subwords; the " +
        (config.wiring == models::Wiring::kTutorial ? "tutorial wiring" : "location score") +
        " takes at most " + std::to_string(config.max_source_len);
  }
  return p;
}

// One attention site read: decoder layer `layer`, head `head` (-1: the mean of its heads).
struct Site {
  int64_t layer = 0, head = 0;
  std::string name;
};

std::string Fixed(double v) {
  char buf[32];
  std::snprintf(buf, sizeof(buf), "%.2f", v);
  return buf;
}

int Run(AlignArgs& a) {
  if (a.threads > 0) SetNumThreads(a.threads);
  ATTEND_CHECK(!a.all_heads || !a.ref_path.empty(),
               "align: --all-heads scores every head against the gold alignment: give --ref");
  ATTEND_CHECK(a.batch_size >= 1, "align: --batch-size must be positive, got ", a.batch_size);
  const nmt::LoadedModel m = nmt::LoadModel(a.model_path);
  const models::ModelConfig& config = m.model->config();
  ATTEND_CHECK(config.token_source(), "align: ", a.model_path,
               " reads speech or images; attend align reads sentence pairs");
  ATTEND_CHECK(config.arch != models::Arch::kRnn, "align: ", a.model_path,
               " is an rnn model without attention (one fixed context vector): nothing to align");
  const int64_t layers = nmt::CrossAttentionLayers(config),
                heads = nmt::CrossAttentionHeads(config);
  std::vector<Site> sites;
  if (a.all_heads) {
    for (int64_t l = 0; l < layers; ++l) {
      for (int64_t h = 0; h < heads; ++h) sites.push_back({l, h, "layer " + std::to_string(l)});
      if (heads > 1) sites.push_back({l, -1, "layer " + std::to_string(l)});
    }
  } else {
    const int64_t layer = a.layer < 0 ? a.layer + layers : a.layer;
    ATTEND_CHECK(layer >= 0 && layer < layers && a.head >= 0 && a.head < heads,
                 "align: --alignment-layer ", a.layer, " --alignment-head ", a.head,
                 " is not one of the model's ", layers, " layers x ", heads, " heads");
    sites.push_back({layer, a.head, "layer " + std::to_string(layer)});
  }

  const auto src = ReadAll(a.src_path, a.max_line_bytes);
  const auto tgt = ReadAll(a.tgt_path, a.max_line_bytes);
  ATTEND_CHECK(src.size() == tgt.size(), "align: ", a.src_path, " has ", src.size(), " lines but ",
               a.tgt_path, " has ", tgt.size(), " (one sentence pair per line)");
  std::vector<nmt::AlignmentLinks> sure, possible;
  if (!a.ref_path.empty()) {
    sure = nmt::ReadAlignments(a.ref_path, &possible);
    ATTEND_CHECK(sure.size() == src.size(), "align: ", a.ref_path, " has ", sure.size(),
                 " lines for ", src.size(), " sentence pairs");
  }

  int status = 0;
  std::vector<Pair> pairs;
  pairs.reserve(src.size());
  for (size_t i = 0; i < src.size(); ++i) {
    const std::string where = a.src_path + ":" + std::to_string(i + 1);
    pairs.push_back(Prepare(m.vocab, config, src[i], tgt[i], where));
    if (!pairs.back().problem.empty()) {
      std::fprintf(stderr, "align: warning: %s / %s line %zu: %s; its alignment is left empty\n",
                   a.src_path.c_str(), a.tgt_path.c_str(), i + 1, pairs.back().problem.c_str());
      status = 1;
    }
  }

  // hyps[site][pair]: each pair's word alignment at each site.
  std::vector<std::vector<nmt::AlignmentLinks>> hyps(
      sites.size(), std::vector<nmt::AlignmentLinks>(pairs.size()));
  std::vector<size_t> good;
  for (size_t i = 0; i < pairs.size(); ++i)
    if (pairs[i].problem.empty()) good.push_back(i);
  // Pairs of similar length share a batch (less padding); the results go back to their lines.
  std::stable_sort(good.begin(), good.end(), [&](size_t x, size_t y) {
    return pairs[x].src.size() + pairs[x].tgt.size() < pairs[y].src.size() + pairs[y].tgt.size();
  });
  const auto chunk = static_cast<size_t>(a.batch_size);
  for (size_t first = 0; first < good.size(); first += chunk) {
    const size_t n = std::min(chunk, good.size() - first);
    std::vector<std::vector<int64_t>> s(n), t(n);
    for (size_t k = 0; k < n; ++k) {
      s[k] = pairs[good[first + k]].src;
      t[k] = pairs[good[first + k]].tgt;
    }
    const auto maps = nmt::CrossAttentionMaps(*m.model, s, t);
    ATTEND_CHECK(static_cast<int64_t>(maps.size()) == layers, "align: the model gave ", maps.size(),
                 " cross-attention sites, expected ", layers);
    for (size_t j = 0; j < sites.size(); ++j) {
      sites[j].name = maps[sites[j].layer].name;
      for (size_t k = 0; k < n; ++k) {
        const Pair& p = pairs[good[first + k]];
        const auto rows = nmt::MapRows(maps[sites[j].layer], static_cast<int64_t>(k), sites[j].head,
                                       static_cast<int64_t>(p.tgt.size()) + 1,
                                       static_cast<int64_t>(p.src.size()));
        hyps[j][good[first + k]] = nmt::WordAlignment(rows, p.src_words, p.tgt_words);
      }
    }
  }

  std::vector<metrics::AlignmentScore> scores;
  size_t chosen = 0;
  if (!sure.empty()) {
    for (size_t j = 0; j < sites.size(); ++j) {
      scores.push_back(metrics::AlignmentErrorRate(hyps[j], sure, possible));
      if (scores[j].aer < scores[chosen].aer) chosen = j;
    }
  }
  std::string out;
  for (const auto& links : hyps[chosen]) out += metrics::FormatPharaoh(links) + "\n";
  if (a.output == "-") {
    ATTEND_CHECK(
        std::fwrite(out.data(), 1, out.size(), stdout) == out.size() && std::fflush(stdout) == 0,
        "align: cannot write to stdout");
  } else {
    io::WriteFileAtomic(a.output, out);
  }
  // The scores go with the alignments when those are in a file, else to stderr.
  FILE* report = a.output == "-" ? stderr : stdout;
  auto head_name = [](int64_t h) {
    return h < 0 ? std::string("mean of heads") : std::to_string(h);
  };
  auto site_name = [](const Site& s) {
    return s.name + (s.head < 0 ? " (mean of heads)" : " head " + std::to_string(s.head));
  };
  if (!a.all_heads && !scores.empty()) {
    std::fprintf(report, "%s: %s\n", site_name(sites[0]).c_str(),
                 metrics::AlignmentScoreLine(scores[0]).Format().c_str());
  } else if (a.all_heads) {
    // Which heads align: AER, precision and recall (percent) of every layer and head.
    std::fprintf(report, "%-16s %5s  %-13s  %6s  %9s  %6s\n", "site", "layer", "head", "AER",
                 "precision", "recall");
    for (size_t j = 0; j < sites.size(); ++j)
      std::fprintf(report, "%-16s %5lld  %-13s  %6s  %9s  %6s\n", sites[j].name.c_str(),
                   static_cast<long long>(sites[j].layer), head_name(sites[j].head).c_str(),
                   Fixed(100 * scores[j].aer).c_str(), Fixed(100 * scores[j].precision).c_str(),
                   Fixed(100 * scores[j].recall).c_str());
    std::fprintf(report, "alignments written from the lowest AER: %s (AER %s)\n",
                 site_name(sites[chosen]).c_str(), Fixed(100 * scores[chosen].aer).c_str());
  }
  std::fflush(report);
  return status;
}

}  // namespace

Runner RegisterAlignCommand(CLI::App& app) {
  auto a = std::make_shared<AlignArgs>();
  CLI::App* c = app.add_subcommand(
      "align", "Word alignments read from a model's attention over given sentence pairs");
  c->add_option("-m,--model", a->model_path, "Checkpoint written by attend train")->required();
  c->add_option("--src", a->src_path, "Source sentences, one per line")->required();
  c->add_option("--tgt", a->tgt_path, "Their translations, one per line")->required();
  c->add_option("--ref", a->ref_path,
                "Gold alignment (Pharaoh s-t, s?t for possible links): print AER, precision, "
                "recall");
  c->add_option("-o,--output", a->output, "Pharaoh output ('-' = stdout)")->capture_default_str();
  CLI::Option* layer = c->add_option("--alignment-layer", a->layer,
                                     "Decoder layer whose cross-attention is read (-1 = last)")
                           ->capture_default_str();
  CLI::Option* head = c->add_option("--alignment-head", a->head, "Its head")->capture_default_str();
  CLI::Option* all =
      c->add_flag("--all-heads", a->all_heads,
                  "Score every layer and head (and each layer's mean of heads) against --ref; "
                  "write the alignments of the best");
  all->excludes(layer);
  all->excludes(head);
  c->add_option("--batch-size", a->batch_size, "Sentence pairs per teacher-forced pass")
      ->capture_default_str();
  c->add_option("--max-line-bytes", a->max_line_bytes, "Longer lines are left unaligned")
      ->capture_default_str();
  c->add_option("--threads", a->threads, "Threads (0 = all cores)");
  return [a]() { return Run(*a); };
}

}  // namespace attend::tools
