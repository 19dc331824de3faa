// `attend corpus debian`: builds the default parallel corpus from the installed gettext
// catalogs (a thin layer over data::BuildDebianCorpus) and prints a short summary.
#include <CLI/CLI.hpp>

#include <cstdio>
#include <memory>

#include "attend/corpus.h"
#include "attend/error.h"
#include "commands.h"

namespace attend::tools {

Runner RegisterCorpusCommand(CLI::App& app) {
  CLI::App* corpus = app.add_subcommand("corpus", "Build parallel corpora");
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

  return [opt, quiet, debian]() -> int {
    ATTEND_CHECK(debian->parsed(),
                 "attend corpus: give a source of data (attend corpus debian ...)");
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
