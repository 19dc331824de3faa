// The toolkit from Python: corpora (attend/corpus.h), training a translation model as `attend
// train` does (attend/nmt.h) with progress events, loading a checkpoint and translating with it
// as `attend translate` does, and scoring as `attend score` does (attend/metrics.h). Each
// function calls the same library functions as the command, never the command itself.
#include <pybind11/numpy.h>
#include <pybind11/stl.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <deque>
#include <functional>
#include <cstdio>
#include <exception>
#include <filesystem>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <type_traits>
#include <utility>
#include <variant>
#include <vector>

#include "attend/corpus.h"
#include "attend/error.h"
#include "attend/metrics.h"
#include "attend/models.h"
#include "attend/nmt.h"
#include "attend/shortlist.h"
#include "bind.h"
#include "loaded.h"

namespace attend::python {
namespace {

namespace fs = std::filesystem;

// ---- corpora ----

py::dict SyntheticStatsDict(const data::SyntheticCorpusStats& st) {
  auto splits = [](const int64_t(&v)[3]) {
    py::dict d;
    d["train"] = v[0];
    d["dev"] = v[1];
    d["test"] = v[2];
    return d;
  };
  py::dict d;
  d["sentences"] = splits(st.sentences);
  d["src_words"] = splits(st.src_words);
  d["tgt_words"] = splits(st.tgt_words);
  d["links"] = splits(st.links);
  d["dropped_src"] = splits(st.dropped_src);
  d["inserted_tgt"] = splits(st.inserted_tgt);
  d["longest"] = st.longest;
  d["with_adjective"] = st.with_adjective;
  d["with_verb_moved"] = st.with_verb_moved;
  d["with_relative"] = st.with_relative;
  d["with_compound"] = st.with_compound;
  d["duplicates"] = st.duplicates;
  d["too_long"] = st.too_long;
  d["src_vocabulary"] = st.src_vocabulary;
  d["tgt_vocabulary"] = st.tgt_vocabulary;
  return d;
}

py::dict DebianStatsDict(const data::DebianCorpusStats& st) {
  py::dict d;
  d["catalogs_found"] = st.catalogs_found;
  d["catalogs_read"] = st.catalogs_read;
  d["catalogs_latin1"] = st.catalogs_latin1;
  d["catalogs_skipped_charset"] = st.catalogs_skipped_charset;
  d["catalogs_skipped_corrupt"] = st.catalogs_skipped_corrupt;
  d["catalogs_skipped_no_source"] = st.catalogs_skipped_no_source;
  d["catalogs_skipped_name"] = st.catalogs_skipped_name;
  d["skipped"] = st.skipped;
  d["raw_entries"] = st.raw_entries;
  d["dropped"] = st.dropped;
  d["plural_singular_kept"] = st.plural_singular_kept;
  d["accelerators_stripped"] = st.accelerators_stripped;
  d["pairs_before_split"] = st.pairs_before_split;
  d["train"] = st.train;
  d["dev"] = st.dev;
  d["test"] = st.test;
  return d;
}

// ---- training ----

template <typename T>
T CastArg(const py::handle& value, const std::string& key, const char* what) {
  try {
    return value.cast<T>();
  } catch (const py::cast_error&) {
    throw py::type_error(std::string(what) + ": " + key + "=" +
                         py::repr(value).cast<std::string>() + " has the wrong type");
  }
}

template <typename T>
T Cast(const py::handle& value, const std::string& key) {
  return CastArg<T>(value, key, "train");
}

// Sets one option of `attend train` from a keyword argument (the command's name with
// underscores for dashes); false when `key` names no option.
bool SetTrainOption(nmt::TrainRun& a, const std::string& key, const py::handle& value) {
  if (key == "progress") {  // the progress bar (the command's --no-progress)
    a.no_progress = !Cast<bool>(value, key);
    return true;
  }
  for (const nmt::TrainRunOption& o : nmt::TrainRunOptions(a)) {
    std::string name = o.name;
    std::replace(name.begin(), name.end(), '-', '_');
    if (name != key) continue;
    std::visit(
        [&](auto* member) {
          using T = std::remove_pointer_t<decltype(member)>;
          if constexpr (std::is_same_v<T, uint64_t>) {  // the seed: no negative numbers
            const int64_t v = Cast<int64_t>(value, key);
            ATTEND_CHECK(v >= 0, "train: ", key, "=", v, " must be >= 0");
            *member = static_cast<uint64_t>(v);
          } else if constexpr (std::is_same_v<T, int>) {
            const int v = Cast<int>(value, key);
            ATTEND_CHECK(v >= 0, "train: ", key, "=", v, " must be >= 0");
            *member = v;
          } else {
            *member = Cast<T>(value, key);
          }
        },
        o.value);
    return true;
  }
  return SetModelOption(a.model, key, value, "train");
}

}  // namespace

bool SetModelOption(models::ModelConfig& c, const std::string& key, const py::handle& value,
                    const char* what) {
  bool found = false;
  models::ModelConfig::ForEachOption(c, [&](const models::OptionInfo& o, auto& member) {
    if (found || o.help == nullptr) return;
    using T = std::decay_t<decltype(member)>;
    std::string flag = o.flag != nullptr ? std::string(o.flag + 2) : std::string();
    std::replace(flag.begin(), flag.end(), '-', '_');
    if constexpr (std::is_same_v<T, bool>) {
      // A bool by its own name (input_feeding=False), or by the command's flag (no_input_feeding=
      // True flips the default).
      if (key == o.name) {
        member = CastArg<bool>(value, key, what);
        found = true;
      } else if (key == flag) {
        found = true;
        if (CastArg<bool>(value, key, what)) {
          models::ModelConfig defaults;
          bool def = false;
          models::ModelConfig::ForEachOption(defaults, [&](const models::OptionInfo& d, auto& v) {
            if constexpr (std::is_same_v<std::decay_t<decltype(v)>, bool>)
              if (std::string(d.name) == o.name) def = v;
          });
          member = !def;
        }
      }
    } else if (key == o.name) {
      found = true;
      if constexpr (std::is_enum_v<T>) {
        member = models::ParseEnum<T>(CastArg<std::string>(value, key, what), key);
      } else {
        member = CastArg<T>(value, key, what);
      }
    }
  });
  return found;
}

namespace {

// A trainer's event as Python sees it: a dict of its numbers.
py::dict EventDict(const nmt::TrainEvent& e, bool speech) {
  py::dict d;
  using K = nmt::TrainEvent::Kind;
  d["event"] = e.kind == K::kStart        ? "start"
               : e.kind == K::kStep       ? "step"
               : e.kind == K::kValidation ? "validation"
                                          : "stopped";
  d["text"] = e.text;
  d["step"] = e.step;
  d["epoch"] = e.epoch;
  d["seconds"] = e.seconds;
  if (e.kind == K::kStep) {
    d["loss"] = e.loss;
    d["tokens_per_second"] = e.tokens_per_second;
    d["lr"] = e.lr;
    if (e.align_loss >= 0) d["align_loss"] = e.align_loss;
  } else if (e.kind == K::kValidation) {
    d["dev_loss"] = e.dev_loss;
    if (speech) {
      d["wer"] = e.wer;
      d["cer"] = e.cer;
    } else {
      d["bleu"] = e.bleu;
      d["chrf"] = e.chrf;
    }
    d["best"] = e.best;
  } else if (e.kind == K::kStopped) {
    d["stop_reason"] = e.stop_reason;
  }
  return d;
}

py::dict Train(const py::object& data, const py::object& on_progress, const py::kwargs& kwargs) {
  auto a = std::make_shared<nmt::TrainRun>();
  a->no_progress = true;  // events go to on_progress; log lines still go to stderr
  if (!data.is_none()) a->data_dir = Cast<std::string>(data, "data");
  for (const auto& [k, v] : kwargs) {
    const std::string key = k.cast<std::string>();
    ATTEND_CHECK(SetTrainOption(*a, key, v), "train: unknown option '", key,
                 "' (the options of `attend train`, without dashes: max_steps=..., arch=...)");
  }
  ATTEND_CHECK(a->task != "classify",
               "train: task='classify' is not available from Python (translation, speech or "
               "caption are)");
  ATTEND_CHECK(on_progress.is_none() || PyCallable_Check(on_progress.ptr()),
               "train: on_progress must be callable or None");
  const bool speech = a->task == "speech";

  // Training runs on a thread of its own without the GIL; its events wait in a queue that this
  // thread empties, calling on_progress with the GIL held, and checking for Ctrl-C meanwhile.
  std::atomic<bool> stop{false};
  std::mutex mu;
  std::condition_variable cv;
  std::deque<nmt::TrainEvent> queue;
  bool done = false;
  nmt::TrainSummary summary;
  std::exception_ptr failure;
  std::unique_ptr<py::error_already_set> pending;  // from on_progress, or Ctrl-C
  if (!on_progress.is_none()) {
    a->train.on_event = [&](const nmt::TrainEvent& e) {
      {
        std::lock_guard<std::mutex> lock(mu);
        queue.push_back(e);
      }
      cv.notify_all();
    };
  }
  {
    py::gil_scoped_release release;
    std::thread worker([&] {
      try {
        summary = nmt::RunTraining(*a, &stop);
      } catch (...) {
        failure = std::current_exception();
      }
      {
        std::lock_guard<std::mutex> lock(mu);
        done = true;
      }
      cv.notify_all();
    });
    // Stopping: the trainer checks `stop` before every step and ends the run after the current
    // one, with its last validation and checkpoints as usual. Whatever goes wrong here, the
    // worker is stopped and joined before the error leaves: a joinable thread would terminate.
    std::exception_ptr follow_failure;
    try {
      while (true) {
        std::deque<nmt::TrainEvent> events;
        bool finished;
        {
          std::unique_lock<std::mutex> lock(mu);
          cv.wait_for(lock, std::chrono::milliseconds(50), [&] { return done || !queue.empty(); });
          events.swap(queue);
          finished = done;
        }
        py::gil_scoped_acquire acquire;
        if (pending == nullptr && PyErr_CheckSignals() != 0) {
          pending = std::make_unique<py::error_already_set>();
          stop.store(true);
        }
        for (const nmt::TrainEvent& e : events) {
          if (pending != nullptr) break;
          try {
            on_progress(EventDict(e, speech));
          } catch (py::error_already_set& err) {
            pending = std::make_unique<py::error_already_set>(std::move(err));
            stop.store(true);
          }
        }
        if (finished) break;
      }
    } catch (...) {
      follow_failure = std::current_exception();
      stop.store(true);
    }
    worker.join();
    if (follow_failure) std::rethrow_exception(follow_failure);
  }
  if (pending != nullptr) throw std::move(*pending);
  if (failure) std::rethrow_exception(failure);
  py::dict out;
  out["steps"] = summary.steps;
  out["epochs_started"] = summary.epochs_started;
  if (speech) {
    out["best_wer"] = -summary.best_bleu;
  } else {
    out["best_bleu"] = summary.best_bleu;
  }
  out["last_dev_loss"] = summary.last_dev_loss;
  out["seconds"] = summary.seconds;
  out["tokens_per_second"] = summary.tokens_per_second;
  out["stop_reason"] = summary.stop_reason;
  out["checkpoint"] = (fs::path(a->train.out_dir) / "best.ckpt").string();
  out["last_checkpoint"] = (fs::path(a->train.out_dir) / "last.ckpt").string();
  return out;
}

// ---- translation ----

// One hypothesis of one input, as Python sees it.
struct Translation {
  std::string text;
  double score = 0.0, log_prob = 0.0;
  std::vector<std::string> tokens;
  std::vector<int64_t> token_ids;
  py::object alignment = py::none();    // [(src, tgt), ...] when asked
  py::object attention = py::none();    // numpy f32 [target tokens + 1 (eos), source tokens]
  std::vector<Translation> hypotheses;  // the n-best list (best first) of the input
};

// The longest source a model takes, in subwords (as `attend translate` crops).
int64_t SourceLimit(const models::ModelConfig& c) {
  if (c.arch == models::Arch::kTransformer || c.arch == models::Arch::kPervasive)
    return c.max_positions;
  if (c.arch == models::Arch::kRnnAttention &&
      (c.score == models::Score::kLocation || c.wiring == models::Wiring::kTutorial))
    return c.max_source_len;
  return int64_t{1} << 40;
}

class Translator {
 public:
  Translator(const std::string& path, const std::string& precision, const std::string& shortlist)
      : path_(path) {
    py::gil_scoped_release release;
    model_ = nmt::LoadModel(path);
    ATTEND_CHECK(!model_.model->config().speech(), "load_translator: ", path,
                 " is a speech model, not a translation model");
    ATTEND_CHECK(!model_.model->config().image(), "load_translator: ", path,
                 " is a captioning model, not a translation model");
    // Packed (and quantized) per translate() batch, not once: Translator.model shares the
    // weights, which the caller may change between calls.
    if (!precision.empty()) model_.model->SetDecodePrecision(nn::ParsePrecision(precision));
    if (!shortlist.empty()) {
      output_ids_ = nmt::LoadOutputIds(shortlist, model_.vocab);
    }
  }

  std::vector<Translation> Translate(const std::vector<std::string>& inputs, int64_t beam,
                                     int64_t nbest, double length_penalty, double max_len_ratio,
                                     int64_t max_len_extra, int64_t batch_size,
                                     int64_t no_repeat_ngram, bool alignments, bool attention,
                                     int threads) {
    ATTEND_CHECK(beam >= 1, "translate: beam=", beam, " must be >= 1");
    ATTEND_CHECK(nbest >= 1, "translate: nbest=", nbest, " must be >= 1");
    ATTEND_CHECK(batch_size >= 1, "translate: batch_size=", batch_size, " must be >= 1");
    ATTEND_CHECK(max_len_ratio >= 0 && max_len_extra >= 0,
                 "translate: max_len_ratio and max_len_extra must be >= 0");
    ATTEND_CHECK(no_repeat_ngram >= 0, "translate: no_repeat_ngram must be >= 0");
    ATTEND_CHECK(threads >= 0, "translate: threads=", threads, " must be >= 0");
    nmt::SearchOptions search;
    search.beam = beam;
    search.nbest = std::min(nbest, beam);
    search.length_penalty = length_penalty;
    search.max_len_ratio = max_len_ratio;
    search.max_len_extra = max_len_extra;
    search.batch_size = batch_size;
    search.no_repeat_ngram = no_repeat_ngram;
    search.keep_attention = alignments || attention;
    search.output_ids = output_ids_;
    ATTEND_CHECK(!search.keep_attention || model_.model->config().arch != models::Arch::kRnn,
                 "translate: ", path_,
                 " is an rnn model without attention: alignments and attention need "
                 "rnn-attention, transformer or pervasive");
    std::vector<std::vector<int64_t>> sources(inputs.size());
    std::vector<std::vector<nmt::Hypothesis>> results;
    {
      py::gil_scoped_release release;
      std::lock_guard<std::mutex> lock(mu_);  // the search switches the model's mode
      if (threads > 0) SetNumThreads(threads);
      const int64_t limit = SourceLimit(model_.model->config());
      for (size_t i = 0; i < inputs.size(); ++i) {
        sources[i] = model_.vocab.Encode(inputs[i]);
        if (static_cast<int64_t>(sources[i].size()) > limit)
          sources[i].resize(static_cast<size_t>(limit));
      }
      results = nmt::Translate(*model_.model, sources, search);
    }
    std::vector<Translation> out;
    out.reserve(results.size());
    for (size_t i = 0; i < results.size(); ++i) {
      std::vector<Translation> hyps;
      for (const nmt::Hypothesis& h : results[i]) {
        Translation t;
        t.text = model_.vocab.Decode(h.tokens);
        t.score = h.score;
        t.log_prob = h.log_prob;
        t.token_ids = h.tokens;
        t.tokens = model_.vocab.Pieces(h.tokens);
        if (alignments) {
          py::list pairs;
          for (const auto& [s, tg] :
               metrics::ParsePharaoh(nmt::HardAlignment(h.attention), "alignment"))
            pairs.append(py::make_tuple(s, tg));
          t.alignment = pairs;
        }
        if (attention) {
          const size_t rows = h.attention.size();
          const size_t cols = sources[i].size();
          py::array_t<float> a({rows, cols});
          auto w = a.mutable_unchecked<2>();
          for (size_t r = 0; r < rows; ++r) {
            ATTEND_CHECK(h.attention[r].size() == cols, "translate: attention row ", r, " has ",
                         h.attention[r].size(), " weights for ", cols, " source tokens");
            for (size_t c = 0; c < cols; ++c) w(r, c) = h.attention[r][c];
          }
          t.attention = a;
        }
        hyps.push_back(std::move(t));
      }
      Translation best;
      if (!hyps.empty()) best = hyps.front();
      best.hypotheses = std::move(hyps);
      out.push_back(std::move(best));
    }
    return out;
  }

  const std::string& path() const { return path_; }
  const nmt::LoadedModel& loaded() const { return model_; }

 private:
  std::string path_;
  nmt::LoadedModel model_;
  std::mutex mu_;
  std::function<std::vector<int64_t>(const std::vector<std::vector<int64_t>>&)> output_ids_;
};

// ---- scoring ----

// References as sacreBLEU takes them: one stream (a list of strings, one per hypothesis) or
// several (a list of such lists).
std::vector<metrics::Stream> Streams(const py::handle& references, size_t n, const char* what) {
  ATTEND_CHECK(!references.is_none(), what, ": references is None");
  ATTEND_CHECK(!py::isinstance<py::str>(references), what,
               ": references must be a list of strings or a list of lists of strings, not a "
               "string");
  std::vector<metrics::Stream> streams;
  const py::sequence seq = py::reinterpret_borrow<py::sequence>(references);
  if (py::len(seq) > 0 && py::isinstance<py::str>(seq[0])) {
    streams.push_back(references.cast<metrics::Stream>());
  } else {
    streams = references.cast<std::vector<metrics::Stream>>();
  }
  ATTEND_CHECK(!streams.empty(), what, ": no references");
  for (size_t k = 0; k < streams.size(); ++k)
    ATTEND_CHECK(streams[k].size() == n, what, ": ", n, " hypotheses but reference stream ", k,
                 " has ", streams[k].size(), " lines");
  return streams;
}

void CheckHypotheses(const py::handle& hypotheses, const char* what) {
  ATTEND_CHECK(!hypotheses.is_none(), what, ": hypotheses is None");
  ATTEND_CHECK(!py::isinstance<py::str>(hypotheses), what,
               ": hypotheses must be a list of strings, not a string");
}

py::dict SignatureDict(const metrics::Signature& s) {
  py::dict d;
  for (const auto& f : s.fields) d[py::str(f.key)] = f.value;
  return d;
}

}  // namespace

void BindToolkit(py::module_& m) {
  // ---- corpora ----
  m.def(
      "build_synthetic_corpus",
      [](const std::string& out_dir, int64_t seed, int64_t train, int64_t dev, int64_t test,
         int64_t max_words, int64_t max_depth) {
        ATTEND_CHECK(!out_dir.empty(), "build_synthetic_corpus: out_dir is empty");
        ATTEND_CHECK(seed >= 0, "build_synthetic_corpus: seed=", seed, " must be >= 0");
        ATTEND_CHECK(train >= 0 && dev >= 0 && test >= 0,
                     "build_synthetic_corpus: train, dev and test must be >= 0");
        data::SyntheticCorpusOptions o;
        o.out_dir = out_dir;
        o.seed = static_cast<uint64_t>(seed);
        o.train = train;
        o.dev = dev;
        o.test = test;
        o.max_words = max_words;
        o.max_depth = max_depth;
        data::SyntheticCorpusStats st;
        {
          py::gil_scoped_release release;
          st = data::BuildSyntheticCorpus(o);
        }
        return SyntheticStatsDict(st);
      },
      py::arg("out_dir"), py::kw_only(), py::arg("seed") = 1, py::arg("train") = 20000,
      py::arg("dev") = 500, py::arg("test") = 1000, py::arg("max_words") = 30,
      py::arg("max_depth") = 3,
      "Writes the synthetic language pair (<split>.src/.tgt/.align/.tree, lexicon.tsv, "
      "stats.json) under out_dir, as `attend corpus synthetic`; returns its stats as a dict.");
  m.def(
      "build_debian_corpus",
      [](const std::string& out_dir, const std::string& src, const std::string& tgt,
         const std::string& locale_dir, int64_t max_bytes, int64_t dev_per_mille,
         int64_t test_per_mille, bool drop_identical) {
        ATTEND_CHECK(!out_dir.empty(), "build_debian_corpus: out_dir is empty");
        ATTEND_CHECK(max_bytes >= 1 && max_bytes <= (1 << 20),
                     "build_debian_corpus: max_bytes=", max_bytes, " must be in [1, 1048576]");
        ATTEND_CHECK(dev_per_mille >= 0 && dev_per_mille <= 1000 && test_per_mille >= 0 &&
                         test_per_mille <= 1000,
                     "build_debian_corpus: dev_per_mille and test_per_mille must be in [0, 1000]");
        data::DebianCorpusOptions o;
        o.out_dir = out_dir;
        o.src = src;
        o.tgt = tgt;
        o.locale_dir = locale_dir;
        o.max_bytes = static_cast<size_t>(max_bytes);
        o.dev_per_mille = static_cast<uint32_t>(dev_per_mille);
        o.test_per_mille = static_cast<uint32_t>(test_per_mille);
        o.drop_identical_train = drop_identical;
        data::DebianCorpusStats st;
        {
          py::gil_scoped_release release;
          st = data::BuildDebianCorpus(o);
        }
        return DebianStatsDict(st);
      },
      py::arg("out_dir"), py::kw_only(), py::arg("src") = "en", py::arg("tgt") = "de",
      py::arg("locale_dir") = "/usr/share/locale", py::arg("max_bytes") = 400,
      py::arg("dev_per_mille") = 15, py::arg("test_per_mille") = 15,
      py::arg("drop_identical") = false,
      "Builds the parallel corpus from the installed gettext catalogs (train/dev/test.<lang>, "
      "stats.json) under out_dir, as `attend corpus debian`; returns its stats as a dict.");

  // ---- training ----
  m.def("train", &Train, py::arg("data") = py::none(), py::kw_only(),
        py::arg("on_progress") = py::none(),
        "Trains a translation model as `attend train` does, options named as its flags without "
        "dashes (max_steps=..., arch=..., out=...); calls on_progress(event) for each log line "
        "(start, step, validation, stopped: a dict of numbers) and returns the summary as a dict.");

  // ---- translation ----
  py::class_<Translation>(m, "Translation",
                          "One translation: text, score, tokens; alignment and attention "
                          "[target + eos, source] when asked; hypotheses: the n-best list.")
      .def_readonly("text", &Translation::text, "The detokenised translation")
      .def_readonly("score", &Translation::score, "Log-probability with the length penalty")
      .def_readonly("log_prob", &Translation::log_prob, "Sum of the tokens' log-probabilities")
      .def_readonly("tokens", &Translation::tokens, "The subword pieces (no bos/eos)")
      .def_readonly("token_ids", &Translation::token_ids, "The subword ids (no bos/eos)")
      .def_readonly("alignment", &Translation::alignment,
                    "Hard alignment [(source, target), ...] (0-based subwords), or None")
      .def_readonly("attention", &Translation::attention,
                    "float32 NumPy array [target tokens + 1 (eos), source tokens], or None")
      .def_readonly("hypotheses", &Translation::hypotheses,
                    "All n-best hypotheses of the input, best first")
      .def("__str__", [](const Translation& t) { return t.text; })
      .def("__repr__", [](const Translation& t) {
        return "Translation(" + py::repr(py::str(t.text)).cast<std::string>() +
               ", score=" + std::to_string(t.score) + ")";
      });
  DefLoadedModel(
      py::class_<Translator, std::shared_ptr<Translator>>(
          m, "Translator", "A translation model loaded from a checkpoint written by attend train."),
      "Size of the joint subword vocabulary")
      .def(py::init([](const std::string& path, const std::optional<std::string>& precision,
                       const std::optional<std::string>& shortlist) {
             return std::make_shared<Translator>(path, precision.value_or(""),
                                                 shortlist.value_or(""));
           }),
           py::arg("path"), py::kw_only(), py::arg("precision") = py::none(),
           py::arg("shortlist") = py::none(),
           "Loads the checkpoint at path (its model, weights and vocabulary); precision and "
           "shortlist as load_translator's.")
      .def("translate", &Translator::Translate, py::arg("sources"), py::kw_only(),
           py::arg("beam") = 5, py::arg("nbest") = 1, py::arg("length_penalty") = 1.0,
           py::arg("max_len_ratio") = 2.0, py::arg("max_len_extra") = 10,
           py::arg("batch_size") = 32, py::arg("no_repeat_ngram") = 0,
           py::arg("alignments") = false, py::arg("attention") = false, py::arg("threads") = 0,
           "Translates a list of sentences with beam search (beam=1: greedy), as attend "
           "translate; returns one Translation per sentence.")

      .def(
          "encode",
          [](const Translator& t, const std::string& s) { return t.loaded().vocab.Encode(s); },
          py::arg("text"), "The subword ids of a sentence")
      .def(
          "decode",
          [](const Translator& t, const std::vector<int64_t>& ids) {
            return t.loaded().vocab.Decode(ids);
          },
          py::arg("ids"), "The sentence of subword ids");
  m.def(
      "load_translator",
      [](const std::string& path, const std::optional<std::string>& precision,
         const std::optional<std::string>& shortlist) {
        return std::make_shared<Translator>(path, precision.value_or(""), shortlist.value_or(""));
      },
      py::arg("path"), py::kw_only(), py::arg("precision") = py::none(),
      py::arg("shortlist") = py::none(),
      "Loads a translation checkpoint written by attend train or attend quantize (a "
      "Translator). precision: the decoder's arithmetic, 'f32', 'bf16' or 'int8' (default: the "
      "checkpoint's); shortlist: a file written by attend shortlist, so that only the target "
      "subwords it lists for each batch's source subwords are scored.");

  // ---- scores ----
  py::class_<metrics::Score>(m, "Score",
                             "A score as sacreBLEU gives it: name, score, verbose part, "
                             "signature.")
      .def_readonly("name", &metrics::Score::name, "\"BLEU\", \"chrF2\", \"WER\", ...")
      .def_readonly("score", &metrics::Score::score, "The score (percent)")
      .def_readonly("verbose", &metrics::Score::verbose, "BLEU's n-gram precisions and BP, ...")
      .def_property_readonly(
          "signature", [](const metrics::Score& s) { return s.signature.Format(); },
          "sacreBLEU's signature string (nrefs:1|case:mixed|...)")
      .def_property_readonly(
          "signature_fields", [](const metrics::Score& s) { return SignatureDict(s.signature); },
          "The signature's fields as a dict")
      .def("format", &metrics::Score::Format, py::arg("width") = 2, py::arg("signature") = false,
           py::arg("short") = false, "sacreBLEU's score line (Score.format)")
      .def("json", &metrics::Score::Json, py::arg("width") = 2, "sacreBLEU's JSON for the score")
      .def("__float__", [](const metrics::Score& s) { return s.score; })
      .def("__str__", [](const metrics::Score& s) { return s.Format(); })
      .def("__repr__", [](const metrics::Score& s) { return s.Format(); });
  py::class_<metrics::BleuScore, metrics::Score>(m, "BLEUScore", "Corpus BLEU and its parts.")
      .def_readonly("counts", &metrics::BleuScore::counts, "Matched n-grams per order")
      .def_readonly("totals", &metrics::BleuScore::totals, "Hypothesis n-grams per order")
      .def_readonly("precisions", &metrics::BleuScore::precisions, "Precisions per order (%)")
      .def_readonly("bp", &metrics::BleuScore::bp, "Brevity penalty")
      .def_readonly("ratio", &metrics::BleuScore::ratio, "hyp_len / ref_len")
      .def_readonly("sys_len", &metrics::BleuScore::sys_len, "Hypothesis length (tokens)")
      .def_readonly("ref_len", &metrics::BleuScore::ref_len, "Reference length (tokens)");
  py::class_<metrics::ChrfScore, metrics::Score>(m, "CHRFScore", "Corpus chrF / chrF++.")
      .def_readonly("char_order", &metrics::ChrfScore::char_order, "Character n-gram order")
      .def_readonly("word_order", &metrics::ChrfScore::word_order, "Word n-gram order")
      .def_readonly("beta", &metrics::ChrfScore::beta, "Recall weight")
      .def_readonly("stats", &metrics::ChrfScore::stats,
                    "Per order: hypothesis n-grams, reference n-grams, matches");
  py::class_<metrics::ErrorRateScore, metrics::Score>(m, "ErrorRateScore",
                                                      "WER or CER with its edit counts.")
      .def_property_readonly(
          "substitutions", [](const metrics::ErrorRateScore& s) { return s.counts.substitutions; },
          "S")
      .def_property_readonly(
          "deletions", [](const metrics::ErrorRateScore& s) { return s.counts.deletions; }, "D")
      .def_property_readonly(
          "insertions", [](const metrics::ErrorRateScore& s) { return s.counts.insertions; }, "I")
      .def_property_readonly(
          "hits", [](const metrics::ErrorRateScore& s) { return s.counts.hits; }, "H")
      .def_property_readonly(
          "ref_len", [](const metrics::ErrorRateScore& s) { return s.counts.ref_len; }, "N")
      .def_property_readonly(
          "hyp_len", [](const metrics::ErrorRateScore& s) { return s.counts.hyp_len; },
          "Hypothesis units")
      .def_property_readonly(
          "errors", [](const metrics::ErrorRateScore& s) { return s.counts.errors(); },
          "S + D + I");

  auto bleu_options = [](const std::string& tokenize, bool lowercase,
                         const std::string& smooth_method, const py::object& smooth_value,
                         int max_ngram_order, bool effective_order) {
    ATTEND_CHECK(max_ngram_order >= 1 && max_ngram_order <= 100,
                 "bleu: max_ngram_order=", max_ngram_order, " must be in [1, 100]");
    metrics::BleuOptions o;
    o.tokenize = metrics::ParseTokenizer(tokenize);
    o.lowercase = lowercase;
    o.smooth_method = metrics::ParseSmoothing(smooth_method);
    if (!smooth_value.is_none()) o.smooth_value = smooth_value.cast<double>();
    o.max_ngram_order = max_ngram_order;
    o.effective_order = effective_order;
    return o;
  };
  m.def(
      "bleu",
      [bleu_options](const py::object& hypotheses, const py::object& references,
                     const std::string& tokenize, bool lowercase, const std::string& smooth_method,
                     const py::object& smooth_value, int max_ngram_order, bool effective_order) {
        CheckHypotheses(hypotheses, "bleu");
        const auto hyps = hypotheses.cast<std::vector<std::string>>();
        const auto refs = Streams(references, hyps.size(), "bleu");
        const auto o = bleu_options(tokenize, lowercase, smooth_method, smooth_value,
                                    max_ngram_order, effective_order);
        py::gil_scoped_release release;
        return metrics::CorpusBleu(hyps, refs, o);
      },
      py::arg("hypotheses"), py::arg("references"), py::kw_only(), py::arg("tokenize") = "13a",
      py::arg("lowercase") = false, py::arg("smooth_method") = "exp",
      py::arg("smooth_value") = py::none(), py::arg("max_ngram_order") = 4,
      py::arg("effective_order") = false,
      "Corpus BLEU as sacreBLEU computes it; references: one list of strings or a list of "
      "reference streams. Returns a BLEUScore.");
  m.def(
      "sentence_bleu",
      [bleu_options](const std::string& hypothesis, const py::object& references,
                     const std::string& tokenize, bool lowercase, const std::string& smooth_method,
                     const py::object& smooth_value, int max_ngram_order, bool effective_order) {
        ATTEND_CHECK(!references.is_none() && !py::isinstance<py::str>(references),
                     "sentence_bleu: references must be a list of strings");
        const auto refs = references.cast<std::vector<std::string>>();
        ATTEND_CHECK(!refs.empty(), "sentence_bleu: no references");
        const auto o = bleu_options(tokenize, lowercase, smooth_method, smooth_value,
                                    max_ngram_order, effective_order);
        return metrics::SentenceBleu(hypothesis, refs, o);
      },
      py::arg("hypothesis"), py::arg("references"), py::kw_only(), py::arg("tokenize") = "13a",
      py::arg("lowercase") = false, py::arg("smooth_method") = "exp",
      py::arg("smooth_value") = py::none(), py::arg("max_ngram_order") = 4,
      py::arg("effective_order") = true,
      "Sentence BLEU (sacreBLEU's sentence_score) of one hypothesis against its references.");
  auto chrf_options = [](int char_order, int word_order, int beta, bool lowercase, bool whitespace,
                         bool eps_smoothing) {
    ATTEND_CHECK(char_order >= 0 && word_order >= 0 && char_order + word_order >= 1,
                 "chrf: char_order and word_order must be >= 0, not both 0");
    ATTEND_CHECK(beta >= 0, "chrf: beta=", beta, " must be >= 0");
    metrics::ChrfOptions o;
    o.char_order = char_order;
    o.word_order = word_order;
    o.beta = beta;
    o.lowercase = lowercase;
    o.whitespace = whitespace;
    o.eps_smoothing = eps_smoothing;
    return o;
  };
  m.def(
      "chrf",
      [chrf_options](const py::object& hypotheses, const py::object& references, int char_order,
                     int word_order, int beta, bool lowercase, bool whitespace,
                     bool eps_smoothing) {
        CheckHypotheses(hypotheses, "chrf");
        const auto hyps = hypotheses.cast<std::vector<std::string>>();
        const auto refs = Streams(references, hyps.size(), "chrf");
        const auto o =
            chrf_options(char_order, word_order, beta, lowercase, whitespace, eps_smoothing);
        py::gil_scoped_release release;
        return metrics::CorpusChrf(hyps, refs, o);
      },
      py::arg("hypotheses"), py::arg("references"), py::kw_only(), py::arg("char_order") = 6,
      py::arg("word_order") = 0, py::arg("beta") = 2, py::arg("lowercase") = false,
      py::arg("whitespace") = false, py::arg("eps_smoothing") = false,
      "Corpus chrF (word_order=2: chrF++) as sacreBLEU computes it. Returns a CHRFScore.");
  m.def(
      "sentence_chrf",
      [chrf_options](const std::string& hypothesis, const py::object& references, int char_order,
                     int word_order, int beta, bool lowercase, bool whitespace,
                     bool eps_smoothing) {
        ATTEND_CHECK(!references.is_none() && !py::isinstance<py::str>(references),
                     "sentence_chrf: references must be a list of strings");
        const auto refs = references.cast<std::vector<std::string>>();
        ATTEND_CHECK(!refs.empty(), "sentence_chrf: no references");
        return metrics::SentenceChrf(
            hypothesis, refs,
            chrf_options(char_order, word_order, beta, lowercase, whitespace, eps_smoothing));
      },
      py::arg("hypothesis"), py::arg("references"), py::kw_only(), py::arg("char_order") = 6,
      py::arg("word_order") = 0, py::arg("beta") = 2, py::arg("lowercase") = false,
      py::arg("whitespace") = false, py::arg("eps_smoothing") = false,
      "Sentence chrF of one hypothesis against its references.");
  for (const bool words : {true, false}) {
    const char* name = words ? "wer" : "cer";
    m.def(
        name,
        [words, name](const py::object& hypotheses, const py::object& references, bool lowercase) {
          CheckHypotheses(hypotheses, name);
          const auto hyps = hypotheses.cast<std::vector<std::string>>();
          const auto refs = Streams(references, hyps.size(), name);
          ATTEND_CHECK(refs.size() == 1, name, ": takes one reference stream, got ", refs.size());
          metrics::ErrorRateOptions o;
          o.lowercase = lowercase;
          py::gil_scoped_release release;
          return words ? metrics::WordErrorRate(hyps, refs[0], o)
                       : metrics::CharErrorRate(hyps, refs[0], o);
        },
        py::arg("hypotheses"), py::arg("references"), py::kw_only(), py::arg("lowercase") = false,
        words ? "Word error rate (percent) with its S, D, I, H counts, as sclite and jiwer count."
              : "Character error rate (percent) with its S, D, I, H counts, as jiwer's cer.");
  }
}

}  // namespace attend::python
