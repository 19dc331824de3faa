// `attend corpus debian`: builds the default parallel corpus from the installed gettext
// catalogs (a thin layer over data::BuildDebianCorpus) and prints a short summary.
// `attend corpus speech`: the speech corpus synthesised with espeak-ng (data::BuildSpeechCorpus).
// `attend corpus synthetic`: the made-up language pair with known alignments and parses
// (data::BuildSyntheticCorpus).
// `attend corpus scenes` and `cluttered` (the image corpora) are in corpus_images.cc.
#include <CLI/CLI.hpp>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <memory>
#include <string>
#include <vector>

#include "attend/corpus.h"
#include "attend/error.h"
#include "commands.h"

namespace attend::tools {
namespace {

std::string Join(const std::vector<std::string>& words) {
  std::string out;
  for (const std::string& w : words) out += (out.empty() ? "" : " ") + w;
  return out;
}

// `attend corpus speech`; the corpus command's runner calls this one when `debian` was not given.
Runner RegisterSpeechCorpus(CLI::App& corpus) {
  CLI::App* speech = corpus.add_subcommand(
      "speech", "Speech corpus: digit strings and catalog phrases spoken by espeak-ng voices");
  auto opt = std::make_shared<data::SpeechCorpusOptions>();
  auto quiet = std::make_shared<bool>(false);
  speech
      ->add_option("--out", opt->out_dir,
                   "Output directory (wav/, train/dev/test.tsv, test-digits.tsv, "
                   "test-phrases.tsv, voices.json, stats.json)")
      ->required();
  speech->add_option("--digits", opt->train_digits, "Training utterances of digit strings")
      ->capture_default_str();
  speech->add_option("--phrases", opt->train_phrases, "Training utterances of phrases")
      ->capture_default_str();
  speech->add_option("--dev-digits", opt->dev_digits, "Dev utterances of digit strings")
      ->capture_default_str();
  speech->add_option("--dev-phrases", opt->dev_phrases, "Dev utterances of phrases")
      ->capture_default_str();
  speech->add_option("--test-digits", opt->test_digits, "Test utterances of digit strings")
      ->capture_default_str();
  speech->add_option("--test-phrases", opt->test_phrases, "Test utterances of phrases")
      ->capture_default_str();
  speech->add_option("--seed", opt->seed, "Draws texts, voices, rates and pitches")
      ->capture_default_str();
  speech->add_option("--locale-dir", opt->locale_dir,
                     "Phrases from every <dir>/<catalog-lang>/LC_MESSAGES/*.mo (default: the "
                     "pinned corpus packages' catalogs under /usr/share/locale)");
  speech
      ->add_option("--catalog-lang", opt->catalog_lang, "Whose catalogs give the (English) msgids")
      ->capture_default_str();
  speech->add_option("--sample-rate", opt->sample_rate, "Of the WAV files, in Hz")
      ->capture_default_str()
      ->check(CLI::Range(8000, 48000));
  speech->add_option("--jobs", opt->jobs, "Synthesiser processes at once")
      ->capture_default_str()
      ->check(CLI::Range(1, 256));
  speech->add_flag("-q,--quiet", *quiet, "Print nothing on success");

  return [opt, quiet, speech]() -> int {
    ATTEND_CHECK(speech->parsed(),
                 "attend corpus: give a source of data (attend corpus debian|speech ...)");
    // Progress on a terminal only: logs get the summary.
    if (!*quiet && ::isatty(2)) {
      opt->progress = [](size_t done, size_t total) {
        std::fprintf(stderr, "\r  synthesised %zu/%zu utterances", done, total);
        if (done == total) std::fprintf(stderr, "\n");
      };
    }
    const auto start = std::chrono::steady_clock::now();
    const data::SpeechCorpusStats st = data::BuildSpeechCorpus(*opt);
    const double took =
        std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    if (*quiet) return 0;
    size_t utterances = 0;
    double seconds = 0;
    for (const auto& split : st.parts)
      for (const auto& part : split) {
        utterances += part.utterances;
        seconds += part.seconds;
      }
    std::printf("attend corpus speech: %zu utterances, %.2f h at %d Hz in %.1f s -> %s\n",
                utterances, seconds / 3600, opt->sample_rate, took, opt->out_dir.c_str());
    if (st.phrase_texts > 0) {
      std::printf(
          "  phrases: %zu unique from %zu catalogs in %s (%zu lists of names skipped); texts "
          "train %zu, dev %zu, test %zu (no dev or test text is spoken in train)\n",
          st.phrase_texts, st.catalogs_read, st.catalog_dir.c_str(), st.catalogs_skipped_names,
          st.phrase_texts_split[0], st.phrase_texts_split[1], st.phrase_texts_split[2]);
      if (!st.packages_missing.empty())
        std::printf("  pinned packages without catalogs: %s\n", Join(st.packages_missing).c_str());
    }
    const char* splits[3] = {"train", "dev", "test"};
    const char* kinds[2] = {"digits", "phrases"};
    std::printf("  %-6s %-8s %10s %8s\n", "split", "kind", "utterances", "hours");
    for (int s = 0; s < 3; ++s)
      for (int k = 0; k < 2; ++k)
        std::printf("  %-6s %-8s %10zu %8.3f\n", splits[s], kinds[k], st.parts[s][k].utterances,
                    st.parts[s][k].seconds / 3600);
    std::printf("  voices (accent+variant, espeak-ng %s), all in voices.json:\n",
                st.espeak_version.c_str());
    std::printf("    train %zu: accents %s x variants %s\n", st.voices[0].size(),
                Join(st.accents[0]).c_str(), Join(st.variants[0]).c_str());
    std::printf(
        "    dev %zu: accent %s with any variant but test's; variants %s with any accent "
        "but test's\n",
        st.voices[1].size(), Join(st.accents[1]).c_str(), Join(st.variants[1]).c_str());
    std::printf("    test %zu: accent %s with any variant; variants %s with any accent\n",
                st.voices[2].size(), Join(st.accents[2]).c_str(), Join(st.variants[2]).c_str());
    return 0;
  };
}

// `attend corpus synthetic`.
Runner RegisterSyntheticCorpus(CLI::App& corpus) {
  CLI::App* cmd = corpus.add_subcommand(
      "synthetic",
      "Made-up language pair from a grammar, with the true word alignments and source parses");
  auto opt = std::make_shared<data::SyntheticCorpusOptions>();
  auto quiet = std::make_shared<bool>(false);
  cmd->add_option("-o,--out", opt->out_dir,
                  "Output directory (<split>.src/.tgt/.align/.tree, lexicon.tsv, README.txt, "
                  "stats.json)")
      ->required();
  cmd->add_option("--seed", opt->seed, "Draws the sentences (the language is the same for all)")
      ->capture_default_str();
  cmd->add_option("--train", opt->train, "Training sentence pairs")->capture_default_str();
  cmd->add_option("--dev", opt->dev, "Dev sentence pairs")->capture_default_str();
  cmd->add_option("--test", opt->test, "Test sentence pairs")->capture_default_str();
  cmd->add_option("--max-words", opt->max_words, "Longest source sentence, in words")
      ->capture_default_str();
  cmd->add_option("--max-depth", opt->max_depth,
                  "Deepest nesting of prepositional phrases and relative clauses")
      ->capture_default_str();
  cmd->add_flag("-q,--quiet", *quiet, "Print nothing on success");
  return [opt, quiet]() -> int {
    const data::SyntheticCorpusStats st = data::BuildSyntheticCorpus(*opt);
    if (*quiet) return 0;
    const int64_t total = st.sentences[0] + st.sentences[1] + st.sentences[2];
    std::printf(
        "attend corpus synthetic: train %lld, dev %lld, test %lld sentence pairs (seed %llu) -> "
        "%s\n",
        static_cast<long long>(st.sentences[0]), static_cast<long long>(st.sentences[1]),
        static_cast<long long>(st.sentences[2]), static_cast<unsigned long long>(opt->seed),
        opt->out_dir.c_str());
    const char* splits[3] = {"train", "dev", "test"};
    std::printf("  %-6s %10s %10s %10s %8s %9s\n", "split", "src words", "tgt words", "links",
                "dropped", "inserted");
    for (int s = 0; s < 3; ++s) {
      std::printf("  %-6s %10lld %10lld %10lld %8lld %9lld\n", splits[s],
                  static_cast<long long>(st.src_words[s]), static_cast<long long>(st.tgt_words[s]),
                  static_cast<long long>(st.links[s]), static_cast<long long>(st.dropped_src[s]),
                  static_cast<long long>(st.inserted_tgt[s]));
    }
    auto share = [total](int64_t n) { return total > 0 ? 100.0 * n / total : 0.0; };
    std::printf(
        "  sentences with an adjective after its noun %.1f%%, a verb moved to the end %.1f%%, a "
        "relative clause %.1f%%, a two-word noun %.1f%%; longest %lld words\n",
        share(st.with_adjective), share(st.with_verb_moved), share(st.with_relative),
        share(st.with_compound), static_cast<long long>(st.longest));
    std::printf(
        "  lexicon: %lld source, %lld target words; draws rejected: %lld repeats, %lld too "
        "long\n",
        static_cast<long long>(st.src_vocabulary), static_cast<long long>(st.tgt_vocabulary),
        static_cast<long long>(st.duplicates), static_cast<long long>(st.too_long));
    return 0;
  };
}

}  // namespace

Runner RegisterCorpusCommand(CLI::App& app) {
  CLI::App* corpus = app.add_subcommand(
      "corpus", "Build corpora (parallel text, speech, images, a synthetic language pair)");
  corpus->require_subcommand(1);
  CLI::App* debian = corpus->add_subcommand(
      "debian", "Parallel corpus from the gettext catalogs (.mo) under a locale directory");
  auto opt = std::make_shared<data::DebianCorpusOptions>();
  auto quiet = std::make_shared<bool>(false);
  debian->add_option("--src", opt->src, "Source language (en: the msgids)")->capture_default_str();
  debian->add_option("--tgt", opt->tgt, "Target language directory (de, fr, pt_BR, ...)")
      ->capture_default_str();
  debian->add_option("--out", opt->out_dir, "Output directory (train/dev/test.<lang>, stats.json)")
      ->required();
  debian->add_option("--locale-dir", opt->locale_dir, "Where <lang>/LC_MESSAGES/*.mo live")
      ->capture_default_str();
  debian->add_option("--max-bytes", opt->max_bytes, "Drop pairs with a side longer than this")
      ->capture_default_str()
      ->check(CLI::Range(1, 1 << 20));
  debian->add_option("--dev-per-mille", opt->dev_per_mille, "Share of sources (per 1000) for dev")
      ->capture_default_str()
      ->check(CLI::Range(0, 1000));
  debian
      ->add_option("--test-per-mille", opt->test_per_mille, "Share of sources (per 1000) for test")
      ->capture_default_str()
      ->check(CLI::Range(0, 1000));
  debian->add_flag("--drop-identical", opt->drop_identical_train,
                   "Drop pairs with identical sides from train too (always from dev and test)");
  debian->add_flag("-q,--quiet", *quiet, "Print nothing on success");

  Runner speech = RegisterSpeechCorpus(*corpus);
  Runner scenes = RegisterScenesCorpus(*corpus), cluttered = RegisterClutteredCorpus(*corpus);
  Runner synthetic = RegisterSyntheticCorpus(*corpus);
  return [opt, quiet, corpus, debian, speech, scenes, cluttered, synthetic]() -> int {
    if (corpus->got_subcommand("synthetic")) return synthetic();
    if (corpus->got_subcommand("scenes")) return scenes();
    if (corpus->got_subcommand("cluttered")) return cluttered();
    if (!debian->parsed()) return speech();
    const data::DebianCorpusStats st = data::BuildDebianCorpus(*opt);
    if (*quiet) return 0;
    std::printf("attend corpus debian: %s-%s from %zu catalogs in %s/%s/LC_MESSAGES\n",
                opt->src.c_str(), opt->tgt.c_str(), st.catalogs_found, opt->locale_dir.c_str(),
                opt->tgt.c_str());
    std::printf(
        "  catalogs: %zu read (%zu converted from ISO-8859-1), %zu skipped (charset %zu, "
        "corrupt %zu, no %s catalog %zu, file name not UTF-8 %zu)\n",
        st.catalogs_read, st.catalogs_latin1,
        st.catalogs_skipped_charset + st.catalogs_skipped_corrupt + st.catalogs_skipped_no_source +
            st.catalogs_skipped_name,
        st.catalogs_skipped_charset, st.catalogs_skipped_corrupt, opt->src.c_str(),
        st.catalogs_skipped_no_source, st.catalogs_skipped_name);
    std::printf("  entries: %zu raw;", st.raw_entries);
    for (const auto& [rule, n] : st.dropped)
      if (n > 0) std::printf(" %s -%zu", rule.c_str(), n);
    std::printf("\n  pairs: %zu unique; train %zu, dev %zu, test %zu -> %s (stats.json)\n",
                st.pairs_before_split, st.train, st.dev, st.test, opt->out_dir.c_str());
    return 0;
  };
}

}  // namespace attend::tools
