// The toolkit from Python: corpora (attend/corpus.h), training a translation model as `attend
// train` does (attend/nmt.h) with progress events, loading a checkpoint and translating with it
// as `attend translate` does, and scoring as `attend score` does (attend/metrics.h). Each
// function calls the same library functions as the command, never the command itself.
#include <pybind11/numpy.h>
#include <pybind11/stl.h>

#include <algorithm>
#include <atomic>
#include <cctype>
#include <chrono>
#include <condition_variable>
#include <cstdio>
#include <cstdlib>
#include <exception>
#include <filesystem>
#include <fstream>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <type_traits>
#include <utility>
#include <vector>

#include "attend/corpus.h"
#include "attend/error.h"
#include "attend/metrics.h"
#include "attend/models.h"
#include "attend/nmt.h"
#include "bind.h"

namespace attend::python {
namespace {

namespace fs = std::filesystem;
using Pairs = std::vector<std::pair<std::string, std::string>>;

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

// `attend train`'s options for a translation model, by the command line's names without dashes.
struct TrainArgs {
  std::string data_dir, src_lang = "en", tgt_lang = "de";
  std::string train_src, train_tgt, dev_src, dev_tgt, train_tsv, dev_tsv;
  int64_t max_train = 0;
  std::string vocab_path;
  nmt::VocabularyOptions vocab;
  models::ModelConfig model;
  nmt::TrainOptions train;
  bool resume = false;
  std::string guided_alignment;
  double guided_alignment_weight = 0.1;
};

template <typename T>
T Cast(const py::handle& value, const std::string& key) {
  try {
    return value.cast<T>();
  } catch (const py::cast_error&) {
    throw py::type_error("train: " + key + "=" + py::repr(value).cast<std::string>() +
                         " has the wrong type");
  }
}

// Sets one option from a keyword argument; false when `key` names no option.
bool SetTrainOption(TrainArgs& a, const std::string& key, const py::handle& value) {
  const std::map<std::string, std::string*> strings = {{"data", &a.data_dir},
                                                       {"src", &a.src_lang},
                                                       {"tgt", &a.tgt_lang},
                                                       {"train_src", &a.train_src},
                                                       {"train_tgt", &a.train_tgt},
                                                       {"dev_src", &a.dev_src},
                                                       {"dev_tgt", &a.dev_tgt},
                                                       {"train_tsv", &a.train_tsv},
                                                       {"dev_tsv", &a.dev_tsv},
                                                       {"out", &a.train.out_dir},
                                                       {"vocab", &a.vocab_path},
                                                       {"vocab_type", &a.vocab.model_type},
                                                       {"guided_alignment", &a.guided_alignment}};
  const std::map<std::string, int64_t*> ints = {{"max_train", &a.max_train},
                                                {"vocab_size", &a.vocab.size},
                                                {"max_tokens", &a.train.max_tokens},
                                                {"max_len", &a.train.max_len},
                                                {"warmup", &a.train.warmup},
                                                {"max_steps", &a.train.max_steps},
                                                {"max_epochs", &a.train.max_epochs},
                                                {"valid_every", &a.train.valid_every},
                                                {"valid_sentences", &a.train.valid_sentences},
                                                {"patience", &a.train.patience},
                                                {"log_every", &a.train.log_every},
                                                {"alignment_layer", &a.train.alignment_layer},
                                                {"alignment_head", &a.train.alignment_head}};
  const std::map<std::string, double*> doubles = {
      {"lr", &a.train.lr},
      {"clip_norm", &a.train.clip_norm},
      {"label_smoothing", &a.train.label_smoothing},
      {"max_minutes", &a.train.max_minutes},
      {"guided_alignment_weight", &a.guided_alignment_weight}};
  if (auto it = strings.find(key); it != strings.end()) {
    *it->second = Cast<std::string>(value, key);
    return true;
  }
  if (auto it = ints.find(key); it != ints.end()) {
    *it->second = Cast<int64_t>(value, key);
    return true;
  }
  if (auto it = doubles.find(key); it != doubles.end()) {
    *it->second = Cast<double>(value, key);
    return true;
  }
  if (key == "seed") {
    const int64_t seed = Cast<int64_t>(value, key);
    ATTEND_CHECK(seed >= 0, "train: seed=", seed, " must be >= 0");
    a.train.seed = static_cast<uint64_t>(seed);
    return true;
  }
  if (key == "threads") {
    const int threads = Cast<int>(value, key);
    ATTEND_CHECK(threads >= 0, "train: threads=", threads, " must be >= 0");
    a.train.threads = threads;
    return true;
  }
  if (key == "resume") {
    a.resume = Cast<bool>(value, key);
    return true;
  }
  if (key == "progress") {  // the progress bar (the command's --no-progress)
    a.train.progress = Cast<bool>(value, key);
    return true;
  }
  bool found = false;
  models::ModelConfig::ForEachOption(a.model, [&](const models::OptionInfo& o, auto& member) {
    if (found || o.help == nullptr) return;
    using T = std::decay_t<decltype(member)>;
    std::string flag = o.flag != nullptr ? std::string(o.flag + 2) : std::string();
    std::replace(flag.begin(), flag.end(), '-', '_');
    if constexpr (std::is_same_v<T, bool>) {
      // A bool by its own name (input_feeding=False), or by the command's flag (no_input_feeding=
      // True flips the default).
      if (key == o.name) {
        member = Cast<bool>(value, key);
        found = true;
      } else if (key == flag) {
        found = true;
        if (Cast<bool>(value, key)) {
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
        member = models::ParseEnum<T>(Cast<std::string>(value, key), key);
      } else {
        member = Cast<T>(value, key);
      }
    }
  });
  return found;
}

Pairs ToPairs(const std::vector<data::SentencePair>& v, int64_t limit) {
  Pairs out;
  const size_t n = limit > 0 ? std::min<size_t>(v.size(), static_cast<size_t>(limit)) : v.size();
  out.reserve(n);
  for (size_t i = 0; i < n; ++i) out.emplace_back(v[i].src, v[i].tgt);
  return out;
}

// One split as `attend train` reads it: a TSV, two files, or DIR/<split>.<lang>.
Pairs ReadSplit(const TrainArgs& a, const std::string& split, const std::string& src,
                const std::string& tgt, const std::string& tsv, int64_t limit) {
  data::ReadOptions ro;
  if (!tsv.empty()) return ToPairs(data::ReadTsv(tsv, ro), limit);
  if (!src.empty() || !tgt.empty()) {
    ATTEND_CHECK(!src.empty() && !tgt.empty(), "train: give both ", split, "_src and ", split,
                 "_tgt");
    return ToPairs(data::ReadParallelText(src, tgt, ro), limit);
  }
  ATTEND_CHECK(!a.data_dir.empty(), "train: no ", split, " data (give data=DIR, ", split, "_src/",
               split, "_tgt or ", split, "_tsv)");
  ATTEND_CHECK(fs::is_directory(a.data_dir), "train: the corpus directory ", a.data_dir,
               " does not exist");
  const fs::path d(a.data_dir);
  return ToPairs(data::ReadParallelText((d / (split + "." + a.src_lang)).string(),
                                        (d / (split + "." + a.tgt_lang)).string(), ro),
                 limit);
}

// What `attend train` does for a translation model, up to nmt::Train. Runs without the GIL;
// `stop` set before training starts skips it.
nmt::TrainSummary RunTraining(TrainArgs& a, const std::atomic<bool>& stop) {
  ATTEND_CHECK(a.train.max_steps >= 0 && a.train.max_epochs >= 0 && a.train.max_minutes >= 0,
               "train: max_steps, max_epochs and max_minutes must be >= 0");
  const Pairs train = ReadSplit(a, "train", a.train_src, a.train_tgt, a.train_tsv, a.max_train);
  const Pairs dev = ReadSplit(a, "dev", a.dev_src, a.dev_tgt, a.dev_tsv, 0);
  ATTEND_CHECK(!train.empty(), "train: the training data is empty");
  ATTEND_CHECK(!dev.empty(), "train: the dev data is empty");
  nmt::Vocabulary vocab;
  if (!a.vocab_path.empty()) {
    vocab = nmt::Vocabulary::Load(a.vocab_path);
  } else if (a.resume) {
    vocab = nmt::Vocabulary::Load((fs::path(a.train.out_dir) / "vocab.model").string());
  } else {
    std::vector<std::string> text;
    text.reserve(2 * train.size());
    for (const auto& [s, t] : train) {
      text.push_back(s);
      text.push_back(t);
    }
    vocab = nmt::Vocabulary::Train(text, a.vocab);
  }
  auto train_ex = nmt::EncodePairs(vocab, train, a.train.max_len);
  if (!a.guided_alignment.empty()) {
    const auto alignments = nmt::ReadAlignments(a.guided_alignment);
    ATTEND_CHECK(
        alignments.size() == train.size() || (a.max_train > 0 && alignments.size() > train.size()),
        "train: ", a.guided_alignment, " has ", alignments.size(), " alignment lines for ",
        train.size(), " training pairs (one line per pair)");
    ATTEND_CHECK(a.guided_alignment_weight >= 0, "train: guided_alignment_weight ",
                 a.guided_alignment_weight, " must be >= 0");
    nmt::AttachAlignments(train_ex, vocab, train, alignments, a.guided_alignment);
    a.train.guided_alignment_weight = a.guided_alignment_weight;
  }
  const auto dev_ex = nmt::EncodePairs(vocab, dev, a.train.max_len);
  a.model.src_vocab = a.model.tgt_vocab = vocab.size();
  Generator gen(a.train.seed);
  auto model = models::MakeModel(a.model, gen);
  nmt::TrainSummary summary;
  if (stop.load()) {
    summary.stop_reason = "interrupted before training";
    return summary;
  }
  a.train.stop_requested = &stop;
  return nmt::Train(*model, vocab, train_ex, dev_ex, dev, a.train, a.resume);
}

// "key value" words of a log line ("loss 5.123", "BLEU 12.34") as numbers in `event`.
void ParseNumbers(const std::string& text, py::dict& event) {
  std::vector<std::string> words;
  size_t i = 0;
  while (i < text.size()) {
    while (i < text.size() && (text[i] == ' ' || text[i] == '|' || text[i] == ':')) ++i;
    size_t j = i;
    while (j < text.size() && text[j] != ' ' && text[j] != '|' && text[j] != ':') ++j;
    if (j > i) words.push_back(text.substr(i, j - i));
    i = j;
  }
  for (size_t k = 0; k + 1 < words.size(); ++k) {
    char* end = nullptr;
    const double v = std::strtod(words[k + 1].c_str(), &end);
    if (end == words[k + 1].c_str() || *end != '\0') continue;
    std::string key = words[k];
    if (k + 2 < words.size() && words[k + 2] == "src+tgt") {
      // "1234 src+tgt tok/s": the number stands before its name.
      continue;
    }
    std::transform(key.begin(), key.end(), key.begin(), [](unsigned char c) {
      return static_cast<char>(std::isalnum(c) ? std::tolower(c) : '_');
    });
    if (key == "step" || key == "epoch") {
      event[py::str(key)] = static_cast<int64_t>(v);
    } else if (key == "dev") {
      continue;
    } else {
      event[py::str(key)] = v;
    }
  }
  // "dev loss 1.23": the validation's loss.
  for (size_t k = 0; k + 1 < words.size(); ++k) {
    if (words[k].find("tok/s") != std::string::npos && k >= 2)
      event["tokens_per_second"] = std::strtod(words[k - 2].c_str(), nullptr);
  }
}

// One line of train.log as an event: {"event": "start" | "step" | "validation" | "stopped",
// "text": line, and the numbers it holds}.
py::dict LogEvent(const std::string& line) {
  py::dict event;
  event["text"] = line;
  if (line.rfind("step ", 0) == 0) {
    event["event"] = "step";
    ParseNumbers(line, event);
  } else if (line.rfind("validation step ", 0) == 0) {
    event["event"] = "validation";
    ParseNumbers(line.substr(std::string("validation ").size()), event);
    event["best"] = line.find("*best*") != std::string::npos;
  } else if (line.rfind("stopped", 0) == 0) {
    event["event"] = "stopped";
  } else {
    event["event"] = "start";
  }
  return event;
}

// Reads the complete lines appended to `path` past *offset.
std::vector<std::string> NewLines(const std::string& path, std::streamoff* offset) {
  std::vector<std::string> lines;
  std::ifstream in(path, std::ios::binary);
  if (!in) return lines;
  in.seekg(0, std::ios::end);
  const std::streamoff size = in.tellg();
  if (size <= *offset) return lines;
  in.seekg(*offset);
  std::string chunk(static_cast<size_t>(size - *offset), '\0');
  in.read(chunk.data(), static_cast<std::streamsize>(chunk.size()));
  chunk.resize(static_cast<size_t>(in.gcount()));
  size_t start = 0;
  for (size_t nl = chunk.find('\n'); nl != std::string::npos; nl = chunk.find('\n', start)) {
    lines.push_back(chunk.substr(start, nl - start));
    start = nl + 1;
  }
  *offset += static_cast<std::streamoff>(start);
  return lines;
}

py::dict Train(const py::object& data, const py::object& on_progress, const py::kwargs& kwargs) {
  auto a = std::make_shared<TrainArgs>();
  a->train.progress = false;  // events go to on_progress; lines still go to stderr
  if (!data.is_none()) a->data_dir = Cast<std::string>(data, "data");
  for (const auto& [k, v] : kwargs) {
    const std::string key = k.cast<std::string>();
    ATTEND_CHECK(key != "task" || Cast<std::string>(v, key) == "translation",
                 "train: from Python only task='translation' is available");
    if (key == "task") continue;
    ATTEND_CHECK(SetTrainOption(*a, key, v), "train: unknown option '", key,
                 "' (the options of `attend train`, without dashes: max_steps=..., arch=...)");
  }
  ATTEND_CHECK(on_progress.is_none() || PyCallable_Check(on_progress.ptr()),
               "train: on_progress must be callable or None");
  const std::string log_path = (fs::path(a->train.out_dir) / "train.log").string();
  std::streamoff offset = 0;
  {
    std::error_code ec;
    if (fs::exists(log_path, ec)) offset = static_cast<std::streamoff>(fs::file_size(log_path, ec));
  }

  // Training runs on a thread of its own without the GIL; this thread follows train.log and
  // calls on_progress with each new line's event, holding the GIL only for the call.
  std::atomic<bool> stop{false}, done{false};
  std::mutex mu;
  std::condition_variable cv;
  nmt::TrainSummary summary;
  std::exception_ptr failure;
  py::object python_error;  // a Python exception from on_progress or Ctrl-C
  std::unique_ptr<py::error_already_set> pending;
  {
    py::gil_scoped_release release;
    std::thread worker([&] {
      try {
        summary = RunTraining(*a, stop);
      } catch (...) {
        failure = std::current_exception();
      }
      {
        std::lock_guard<std::mutex> lock(mu);
        done = true;
      }
      cv.notify_all();
    });
    // Stopping: the trainer checks stop_requested before every step and ends the run after the
    // current one, with its last validation and checkpoints as usual.
    auto request_stop = [&] { stop.store(true); };
    auto deliver = [&](const std::vector<std::string>& lines) {
      py::gil_scoped_acquire acquire;
      if (pending == nullptr && PyErr_CheckSignals() != 0) {
        pending = std::make_unique<py::error_already_set>();
        request_stop();
      }
      for (const std::string& line : lines) {
        if (pending != nullptr || on_progress.is_none()) break;
        try {
          on_progress(LogEvent(line));
        } catch (py::error_already_set& e) {
          pending = std::make_unique<py::error_already_set>(std::move(e));
          request_stop();
        }
      }
    };
    // Whatever goes wrong while following the log (reading it, building an event), the worker
    // is stopped and joined before the error leaves: a joinable thread would terminate.
    std::exception_ptr follow_failure;
    try {
      while (true) {
        bool finished;
        {
          std::unique_lock<std::mutex> lock(mu);
          cv.wait_for(lock, std::chrono::milliseconds(20), [&] { return done.load(); });
          finished = done.load();
        }
        deliver(NewLines(log_path, &offset));
        if (finished) break;
      }
    } catch (...) {
      follow_failure = std::current_exception();
      request_stop();
    }
    worker.join();
    if (follow_failure) std::rethrow_exception(follow_failure);
  }
  if (pending != nullptr) throw std::move(*pending);
  if (failure) std::rethrow_exception(failure);
  py::dict out;
  out["steps"] = summary.steps;
  out["epochs_started"] = summary.epochs_started;
  out["best_bleu"] = summary.best_bleu;
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
  explicit Translator(const std::string& path) : path_(path) {
    py::gil_scoped_release release;
    model_ = nmt::LoadModel(path);
    ATTEND_CHECK(!model_.model->config().speech(), "load_translator: ", path,
                 " is a speech model, not a translation model");
    ATTEND_CHECK(!model_.model->config().image(), "load_translator: ", path,
                 " is a captioning model, not a translation model");
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
        "(step, loss, tokens/s, validation) and returns the summary as a dict.");

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
  py::class_<Translator, std::shared_ptr<Translator>>(
      m, "Translator", "A translation model loaded from a checkpoint written by attend train.")
      .def(py::init<const std::string&>(), py::arg("path"),
           "Loads the checkpoint at path (its model, weights and vocabulary).")
      .def("translate", &Translator::Translate, py::arg("sources"), py::kw_only(),
           py::arg("beam") = 5, py::arg("nbest") = 1, py::arg("length_penalty") = 1.0,
           py::arg("max_len_ratio") = 2.0, py::arg("max_len_extra") = 10,
           py::arg("batch_size") = 32, py::arg("no_repeat_ngram") = 0,
           py::arg("alignments") = false, py::arg("attention") = false, py::arg("threads") = 0,
           "Translates a list of sentences with beam search (beam=1: greedy), as attend "
           "translate; returns one Translation per sentence.")
      .def_property_readonly("path", &Translator::path, "The checkpoint's path")
      .def_property_readonly(
          "arch",
          [](const Translator& t) { return models::NameOf(t.loaded().model->config().arch); },
          "The model's architecture")
      .def_property_readonly(
          "config", [](const Translator& t) { return t.loaded().model->config().ToJson(); },
          "The model's configuration as JSON")
      .def_property_readonly(
          "vocab_size", [](const Translator& t) { return t.loaded().vocab.size(); },
          "Size of the joint subword vocabulary")
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
      "load_translator", [](const std::string& path) { return std::make_shared<Translator>(path); },
      py::arg("path"), "Loads a translation checkpoint written by attend train (a Translator).");

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
