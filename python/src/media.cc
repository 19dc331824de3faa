// Speech recognition and image captioning from Python: the speech and image corpora (as `attend
// corpus speech|scenes|cluttered`), transcribing with a speech checkpoint (as `attend
// transcribe`), captioning with a captioning checkpoint (as `attend caption`), and the two scores
// that read other hypotheses than text: the alignment error rate of word alignments and the
// labelled bracket F1 of linearised trees (as `attend score --metrics aer|bracket`). Each function
// calls the library functions the command calls, never the command; heavy work runs without the
// GIL, and bad input is attend.Error (or TypeError for an argument of the wrong kind).
#include <pybind11/numpy.h>
#include <pybind11/stl.h>

#include <algorithm>
#include <array>
#include <cmath>
#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <utility>
#include <variant>
#include <vector>

#include "attend/audio.h"
#include "attend/corpus.h"
#include "attend/error.h"
#include "attend/metrics.h"
#include "attend/models.h"
#include "attend/nmt.h"
#include "attend/vision.h"
#include "bind.h"
#include "loaded.h"
#include "loaded.h"

namespace attend::python {
namespace {

// ---- corpora ----

py::dict ThreeSplits(const int64_t (&v)[3]) {
  py::dict d;
  d["train"] = v[0];
  d["dev"] = v[1];
  d["test"] = v[2];
  return d;
}

// Per Fashion-MNIST class name ("top", "trousers", ...), as stats.json lists them.
py::dict ClassCounts(const std::vector<int64_t>& counts) {
  py::dict d;
  const auto& names = vision::FashionMnistNames();
  for (size_t c = 0; c < counts.size() && c < names.size(); ++c) d[py::str(names[c])] = counts[c];
  return d;
}

py::dict SpeechStatsDict(const data::SpeechCorpusStats& st) {
  const char* splits[3] = {"train", "dev", "test"};
  const char* kinds[2] = {"digits", "phrases"};
  py::dict parts, voices, accents, variants;
  double seconds = 0;
  size_t utterances = 0;
  for (int s = 0; s < 3; ++s) {
    py::dict split;
    for (int k = 0; k < 2; ++k) {
      py::dict part;
      part["utterances"] = st.parts[s][k].utterances;
      part["seconds"] = st.parts[s][k].seconds;
      split[kinds[k]] = part;
      utterances += st.parts[s][k].utterances;
      seconds += st.parts[s][k].seconds;
    }
    parts[splits[s]] = split;
    voices[splits[s]] = st.voices[s];
    accents[splits[s]] = st.accents[s];
    variants[splits[s]] = st.variants[s];
  }
  py::dict texts;
  for (int s = 0; s < 3; ++s) texts[splits[s]] = st.phrase_texts_split[s];
  py::dict d;
  d["utterances"] = utterances;
  d["seconds"] = seconds;
  d["splits"] = parts;
  d["catalog_dir"] = st.catalog_dir;
  d["catalogs_read"] = st.catalogs_read;
  d["catalogs_skipped_names"] = st.catalogs_skipped_names;
  d["packages_missing"] = st.packages_missing;
  d["msgids"] = st.msgids;
  d["phrase_texts"] = st.phrase_texts;
  d["phrase_texts_split"] = texts;
  d["voices"] = voices;
  d["accents"] = accents;
  d["variants"] = variants;
  d["espeak_version"] = st.espeak_version;
  return d;
}

py::dict ScenesStatsDict(const data::ScenesCorpusStats& st) {
  py::dict d;
  d["scenes"] = ThreeSplits(st.scenes);
  d["captions"] = ThreeSplits(st.captions);
  d["items"] = ThreeSplits(st.items);
  d["items_per_class"] = ClassCounts(st.items_per_class);
  d["vocabulary"] = st.vocabulary;
  d["examples"] = st.examples;
  d["bytes"] = st.bytes;
  return d;
}

py::dict ClutteredStatsDict(const data::ClutteredCorpusStats& st) {
  py::dict d;
  d["images"] = ThreeSplits(st.images);
  d["items_per_class"] = ClassCounts(st.items_per_class);
  d["bytes"] = st.bytes;
  return d;
}

void CheckRange(const char* what, const char* name, int64_t v, int64_t lo, int64_t hi) {
  ATTEND_CHECK(v >= lo && v <= hi, what, ": ", name, "=", v, " must be in [", lo, ", ", hi, "]");
}

// The options both image corpora share, checked as the command's flags are.
template <typename Options>
void SetImageCorpusOptions(const char* what, Options& o, const std::string& out_dir, int64_t size,
                           int64_t train, int64_t dev, int64_t test, int64_t clutter, int64_t seed,
                           const std::string& fashion_dir, int64_t threads) {
  ATTEND_CHECK(!out_dir.empty(), what, ": out_dir is empty");
  CheckRange(what, "size", size, 48, 1024);
  CheckRange(what, "train", train, 0, 99999);
  CheckRange(what, "dev", dev, 0, 99999);
  CheckRange(what, "test", test, 0, 99999);
  CheckRange(what, "clutter", clutter, 0, 100);
  CheckRange(what, "threads", threads, 1, 256);
  ATTEND_CHECK(seed >= 0, what, ": seed=", seed, " must be >= 0");
  o.out_dir = out_dir;
  o.size = size;
  o.train = train;
  o.dev = dev;
  o.test = test;
  o.clutter = clutter;
  o.seed = static_cast<uint64_t>(seed);
  o.fashion_dir = fashion_dir;
  o.threads = static_cast<int>(threads);
}

// ---- transcription and captioning ----

// The kind of model a checkpoint holds, for messages.
const char* KindOf(const models::ModelConfig& c) {
  if (c.image()) return "captioning";
  if (c.speech()) return "speech";
  return "translation";
}

// One hypothesis of one input, as translate's Translation has it (text, score, tokens,
// attention, hypotheses); K tells a transcription (0) from a caption (1), which also has the
// boxes of the positions it attended over.
template <int K>
struct Output {
  std::string text;
  double score = 0.0, log_prob = 0.0;
  std::vector<std::string> tokens;
  std::vector<int64_t> token_ids;
  py::object attention = py::none();  // numpy f32 [target tokens + 1 (eos), attended positions]
  py::object boxes = py::none();      // captions: numpy f32 [attended positions, 4]
  std::vector<Output> hypotheses;     // the n-best list (best first) of the input
};
using Transcription = Output<0>;
using Caption = Output<1>;

// The weights [target tokens + eos][positions] as a float32 array.
py::array_t<float> AttentionArray(const std::vector<std::vector<float>>& weights,
                                  const char* what) {
  const size_t rows = weights.size();
  const size_t cols = rows == 0 ? 0 : weights[0].size();
  py::array_t<float> a({rows, cols});
  auto w = a.mutable_unchecked<2>();
  for (size_t r = 0; r < rows; ++r) {
    ATTEND_CHECK(weights[r].size() == cols, what, ": attention row ", r, " has ", weights[r].size(),
                 " weights, row 0 has ", cols);
    for (size_t c = 0; c < cols; ++c) w(r, c) = weights[r][c];
  }
  return a;
}

// The search's hypotheses as Python objects: per input its best hypothesis with the n-best list
// (an input the search returned nothing for gets an empty text and no hypotheses).
template <int K>
std::vector<Output<K>> MakeOutputs(const nmt::LoadedModel& m,
                                   const std::vector<std::vector<nmt::Hypothesis>>& results,
                                   bool attention, const char* what) {
  std::vector<Output<K>> out;
  out.reserve(results.size());
  for (const auto& result : results) {
    std::vector<Output<K>> hyps;
    for (const nmt::Hypothesis& h : result) {
      Output<K> o;
      o.text = m.vocab.Decode(h.tokens);
      o.score = h.score;
      o.log_prob = h.log_prob;
      o.token_ids = h.tokens;
      o.tokens = m.vocab.Pieces(h.tokens);
      if (attention) o.attention = AttentionArray(h.attention, what);
      hyps.push_back(std::move(o));
    }
    Output<K> best;
    if (!hyps.empty()) best = hyps.front();
    best.hypotheses = std::move(hyps);
    out.push_back(std::move(best));
  }
  return out;
}

// The inputs as a list (a str, bytes or a lone array is refused: it would be iterated).
py::sequence InputList(const py::object& inputs, const char* what, const char* kind) {
  if (inputs.is_none() || py::isinstance<py::str>(inputs) || py::isinstance<py::bytes>(inputs) ||
      py::isinstance<py::array>(inputs) || !py::isinstance<py::sequence>(inputs))
    throw py::type_error(std::string(what) + ": inputs must be a list of " + kind + ", not " +
                         py::repr(py::type::of(inputs)).cast<std::string>());
  return py::reinterpret_borrow<py::sequence>(inputs);
}

// A path given as str or os.PathLike; nullopt for anything else.
std::optional<std::string> AsPath(const py::handle& obj) {
  if (py::isinstance<py::str>(obj)) return obj.cast<std::string>();
  if (py::hasattr(obj, "__fspath__")) {
    const py::object p = py::module_::import("os").attr("fspath")(obj);
    if (py::isinstance<py::str>(p)) return p.cast<std::string>();
  }
  return std::nullopt;
}

bool IsFloatArray(const py::array& a) {
  return a.dtype().kind() == 'f' && (a.itemsize() == 4 || a.itemsize() == 8);
}

// One input of transcribe: a WAV file, or samples at a given rate.
using AudioInput = std::variant<std::string, audio::Waveform>;

AudioInput ReadAudioInput(const py::handle& obj, size_t index,
                          const std::optional<int>& sample_rate) {
  if (auto path = AsPath(obj)) return *path;
  if (!py::isinstance<py::array>(obj))
    throw py::type_error("transcribe: inputs[" + std::to_string(index) +
                         "] must be a WAV path or a 1-D NumPy float array, not " +
                         py::repr(py::type::of(obj)).cast<std::string>());
  const py::array raw = py::reinterpret_borrow<py::array>(obj);
  ATTEND_CHECK(
      raw.ndim() == 1, "transcribe: inputs[", index, "] has shape ",
      py::repr(py::tuple(py::cast(std::vector<py::ssize_t>(raw.shape(), raw.shape() + raw.ndim()))))
          .cast<std::string>(),
      ": audio must be a 1-D array of samples (mono)");
  ATTEND_CHECK(IsFloatArray(raw), "transcribe: inputs[", index, "] has dtype ",
               py::str(raw.dtype()).cast<std::string>(),
               ": audio must be float32 or float64 samples in [-1, 1]");
  ATTEND_CHECK(sample_rate.has_value(), "transcribe: inputs[", index,
               "] is an array: give its rate as sample_rate=...");
  ATTEND_CHECK(raw.shape(0) <= audio::kMaxFrames, "transcribe: inputs[", index, "] has ",
               raw.shape(0), " samples, more than ", audio::kMaxFrames);
  audio::Waveform w;
  w.sample_rate = *sample_rate;
  w.samples.resize(static_cast<size_t>(raw.shape(0)));
  // As ReadWav reads float WAV files: a NaN or infinity is an error, the rest clipped to [-1, 1].
  auto take = [&](auto typed) {
    auto v = typed.template unchecked<1>();
    for (py::ssize_t i = 0; i < v.shape(0); ++i) {
      const double x = static_cast<double>(v(i));
      ATTEND_CHECK(std::isfinite(x), "transcribe: inputs[", index, "] sample ", i, " is ", x);
      w.samples[static_cast<size_t>(i)] = static_cast<float>(std::clamp(x, -1.0, 1.0));
    }
  };
  if (raw.itemsize() == 4) {
    take(py::array_t<float>::ensure(raw));
  } else {
    take(py::array_t<double>::ensure(raw));
  }
  return w;
}

class Transcriber {
 public:
  explicit Transcriber(const std::string& path) : path_(path) {
    py::gil_scoped_release release;
    model_ = nmt::LoadModel(path);
    const models::ModelConfig& c = model_.model->config();
    ATTEND_CHECK(c.speech(), "load_transcriber: ", path, " is a ", KindOf(c),
                 " model, not a speech model (", c.image() ? "load_captioner" : "load_translator",
                 " loads it)");
  }

  std::vector<Transcription> Transcribe(const py::object& inputs,
                                        const std::optional<int>& sample_rate, int64_t beam,
                                        int64_t nbest, double length_penalty, double max_len_ratio,
                                        int64_t max_len_extra, int64_t batch_size, bool attention,
                                        int threads) {
    ATTEND_CHECK(beam >= 1, "transcribe: beam=", beam, " must be >= 1");
    ATTEND_CHECK(nbest >= 1, "transcribe: nbest=", nbest, " must be >= 1");
    ATTEND_CHECK(batch_size >= 1, "transcribe: batch_size=", batch_size, " must be >= 1");
    ATTEND_CHECK(max_len_ratio >= 0 && max_len_extra >= 0,
                 "transcribe: max_len_ratio and max_len_extra must be >= 0");
    ATTEND_CHECK(threads >= 0, "transcribe: threads=", threads, " must be >= 0");
    ATTEND_CHECK(!sample_rate || (*sample_rate >= 1 && *sample_rate <= audio::kMaxRate),
                 "transcribe: sample_rate=", sample_rate.value_or(0), " must be in [1, ",
                 audio::kMaxRate, "]");
    const py::sequence seq = InputList(inputs, "transcribe", "WAV paths or 1-D float arrays");
    std::vector<AudioInput> audio_inputs;
    audio_inputs.reserve(py::len(seq));
    for (size_t i = 0; i < py::len(seq); ++i)
      audio_inputs.push_back(ReadAudioInput(seq[i], i, sample_rate));

    nmt::SearchOptions search;
    search.beam = beam;
    search.nbest = std::min(nbest, beam);
    search.length_penalty = length_penalty;
    search.max_len_ratio = max_len_ratio;
    search.max_len_extra = max_len_extra;
    search.batch_size = batch_size;
    search.keep_attention = attention;
    std::vector<std::vector<nmt::Hypothesis>> results;
    {
      py::gil_scoped_release release;
      std::lock_guard<std::mutex> lock(mu_);  // the search switches the model's mode
      if (threads > 0) SetNumThreads(threads);
      std::vector<nmt::Example> examples(audio_inputs.size());
      for (size_t i = 0; i < audio_inputs.size(); ++i) {
        try {
          if (const auto* path = std::get_if<std::string>(&audio_inputs[i])) {
            examples[i] = nmt::SpeechExample(audio::ReadWav(*path), model_.features);
          } else {
            examples[i] =
                nmt::SpeechExample(std::get<audio::Waveform>(audio_inputs[i]), model_.features);
          }
        } catch (const Error& e) {
          throw Error("transcribe: inputs[" + std::to_string(i) + "]: " + e.what());
        }
        examples[i].index = static_cast<int64_t>(i);
      }
      audio_inputs.clear();
      results = nmt::TranslateExamples(*model_.model, examples, search);
    }
    return MakeOutputs<0>(model_, results, attention, "transcribe");
  }

  const std::string& path() const { return path_; }
  const nmt::LoadedModel& loaded() const { return model_; }

 private:
  std::string path_;
  nmt::LoadedModel model_;
  std::mutex mu_;
};

using Box = models::Seq2Seq::Box;

// One image given as an array: uint8 values as they are, floats in [0, 1] scaled to 0..255 and
// rounded (as ToFloatCHW's pixel / 255 inverts); [H, W] is gray, [H, W, C] has C = 1..4 channels.
vision::Image ImageFromArray(const py::array& raw, size_t index) {
  const std::string where = "caption: images[" + std::to_string(index) + "]";
  std::vector<py::ssize_t> shape(raw.shape(), raw.shape() + raw.ndim());
  ATTEND_CHECK(raw.ndim() == 2 || (raw.ndim() == 3 && raw.shape(2) >= 1 && raw.shape(2) <= 4),
               where, " has shape ", py::repr(py::tuple(py::cast(shape))).cast<std::string>(),
               ": an image must be [height, width] or [height, width, channels] with 1-4 channels");
  const bool bytes = raw.dtype().kind() == 'u' && raw.itemsize() == 1;
  ATTEND_CHECK(bytes || IsFloatArray(raw), where, " has dtype ",
               py::str(raw.dtype()).cast<std::string>(),
               ": an image must be uint8 (0-255) or float32/float64 (0-1)");
  for (int d = 0; d < 2; ++d)
    ATTEND_CHECK(shape[d] >= 1 && shape[d] <= vision::kMaxImageSide, where, ": side ", shape[d],
                 " must be in [1, ", vision::kMaxImageSide, "]");
  vision::Image img;
  img.height = shape[0];
  img.width = shape[1];
  img.channels = raw.ndim() == 3 ? shape[2] : 1;
  img.pixels.resize(static_cast<size_t>(img.height * img.width * img.channels));
  if (bytes) {
    const auto a = py::array_t<uint8_t, py::array::c_style | py::array::forcecast>::ensure(raw);
    std::copy(a.data(), a.data() + a.size(), img.pixels.begin());
  } else {
    const auto a = py::array_t<double, py::array::c_style | py::array::forcecast>::ensure(raw);
    const double* p = a.data();
    for (size_t i = 0; i < img.pixels.size(); ++i) {
      ATTEND_CHECK(std::isfinite(p[i]) && p[i] >= 0.0 && p[i] <= 1.0, where, ": value ", p[i],
                   " at flat index ", i, " is outside [0, 1] (float images are 0-1; uint8 0-255)");
      img.pixels[i] = static_cast<uint8_t>(std::lround(p[i] * 255.0));
    }
  }
  return img;
}

using ImageInput = std::variant<std::string, vision::Image>;

// Per image, its boxes [(x0, y0, x1, y1), ...] in the image's own pixels.
std::vector<std::vector<Box>> BoxesArgument(const py::object& boxes, size_t n) {
  if (py::isinstance<py::str>(boxes) || !py::isinstance<py::sequence>(boxes))
    throw py::type_error(
        "caption: boxes must be a list with, per image, a list of (x0, y0, x1, "
        "y1) boxes");
  const py::sequence per_image = py::reinterpret_borrow<py::sequence>(boxes);
  ATTEND_CHECK(py::len(per_image) == n, "caption: ", n, " images but boxes has ",
               py::len(per_image), " entries");
  std::vector<std::vector<Box>> out(n);
  for (size_t i = 0; i < n; ++i) {
    std::vector<std::array<double, 4>> list;
    try {
      list = per_image[i].cast<std::vector<std::array<double, 4>>>();
    } catch (const py::cast_error&) {
      throw py::type_error("caption: boxes[" + std::to_string(i) +
                           "] must be a list of (x0, y0, x1, y1) boxes");
    }
    for (const auto& b : list) {
      ATTEND_CHECK(std::isfinite(b[0]) && std::isfinite(b[1]) && std::isfinite(b[2]) &&
                       std::isfinite(b[3]) && b[0] < b[2] && b[1] < b[3],
                   "caption: boxes[", i, "] has (", b[0], ", ", b[1], ", ", b[2], ", ", b[3],
                   "): a box needs x0 < x1 and y0 < y1");
      out[i].push_back({static_cast<float>(b[0]), static_cast<float>(b[1]),
                        static_cast<float>(b[2]), static_cast<float>(b[3])});
    }
  }
  return out;
}

class Captioner {
 public:
  explicit Captioner(const std::string& path) : path_(path) {
    py::gil_scoped_release release;
    model_ = nmt::LoadModel(path);
    const models::ModelConfig& c = model_.model->config();
    ATTEND_CHECK(c.image(), "load_captioner: ", path, " is a ", KindOf(c),
                 " model, not a captioning model (",
                 c.speech() ? "load_transcriber" : "load_translator", " loads it)");
  }

  bool attends() const {
    const models::ModelConfig& c = model_.model->config();
    return !(c.arch == models::Arch::kShowAttendTell &&
             c.image_attention == models::ImageAttend::kNone);
  }
  bool reads_boxes() const {
    const models::ModelConfig& c = model_.model->config();
    return c.arch == models::Arch::kTopDown && !c.proposals;
  }

  std::vector<Caption> Describe(const py::object& images, int64_t beam, int64_t nbest,
                                double length_penalty, int64_t max_words, int64_t batch_size,
                                int64_t no_repeat_ngram, bool attention, const py::object& boxes,
                                int threads) {
    ATTEND_CHECK(beam >= 1, "caption: beam=", beam, " must be >= 1");
    ATTEND_CHECK(nbest >= 1, "caption: nbest=", nbest, " must be >= 1");
    ATTEND_CHECK(batch_size >= 1, "caption: batch_size=", batch_size, " must be >= 1");
    ATTEND_CHECK(max_words >= 1, "caption: max_words=", max_words, " must be >= 1");
    ATTEND_CHECK(no_repeat_ngram >= 0, "caption: no_repeat_ngram must be >= 0");
    ATTEND_CHECK(threads >= 0, "caption: threads=", threads, " must be >= 0");
    ATTEND_CHECK(!attention || attends(), "caption: ", path_,
                 " does not attend (image_attention none): there is no attention to return");
    const py::sequence seq = InputList(images, "caption", "image paths or NumPy arrays");
    const size_t n = py::len(seq);
    std::vector<ImageInput> inputs;
    inputs.reserve(n);
    for (size_t i = 0; i < n; ++i) {
      const py::handle obj = seq[i];
      if (auto path = AsPath(obj)) {
        inputs.push_back(*path);
      } else if (py::isinstance<py::array>(obj)) {
        inputs.push_back(ImageFromArray(py::reinterpret_borrow<py::array>(obj), i));
      } else {
        throw py::type_error("caption: images[" + std::to_string(i) +
                             "] must be an image path or a NumPy array, not " +
                             py::repr(py::type::of(obj)).cast<std::string>());
      }
    }
    std::vector<std::vector<Box>> given;
    if (reads_boxes()) {
      ATTEND_CHECK(!boxes.is_none(), "caption: ", path_,
                   " reads each image's true boxes (trained with --true-boxes): give boxes=[[(x0, "
                   "y0, x1, y1), ...] per image] in the image's pixels");
      given = BoxesArgument(boxes, n);
    } else {
      ATTEND_CHECK(boxes.is_none(),
                   "caption: boxes= is only for a top-down model trained with "
                   "--true-boxes; ",
                   path_, " finds its own regions");
    }

    nmt::SearchOptions search;
    search.beam = beam;
    search.nbest = std::min(nbest, beam);
    search.length_penalty = length_penalty;
    search.max_len_ratio = 0.0;
    search.max_len_extra = max_words;
    search.batch_size = batch_size;
    search.no_repeat_ngram = no_repeat_ngram;
    search.keep_attention = attention;
    const models::ModelConfig& mc = model_.model->config();
    std::vector<std::vector<nmt::Hypothesis>> results;
    std::vector<std::vector<Box>> positions;
    {
      py::gil_scoped_release release;
      std::lock_guard<std::mutex> lock(mu_);  // the search switches the model's mode
      if (threads > 0) SetNumThreads(threads);
      std::vector<nmt::Example> examples(n);
      for (size_t i = 0; i < n; ++i) {
        const std::vector<Box>* b = given.empty() ? nullptr : &given[i];
        try {
          if (const auto* path = std::get_if<std::string>(&inputs[i])) {
            examples[i] = nmt::ImageExample(vision::ReadImage(*path), mc, b);
          } else {
            examples[i] = nmt::ImageExample(std::get<vision::Image>(inputs[i]), mc, b);
          }
        } catch (const Error& e) {
          throw Error("caption: images[" + std::to_string(i) + "]: " + e.what());
        }
        examples[i].index = static_cast<int64_t>(i);
      }
      inputs.clear();
      results = nmt::TranslateExamples(*model_.model, examples, search);
      if (attention) {
        positions.resize(n);
        for (size_t i = 0; i < n; ++i)
          positions[i] =
              model_.model->AttendedBoxes(nmt::MakeBatch(examples, {static_cast<int64_t>(i)}))[0];
      }
    }
    std::vector<Caption> out = MakeOutputs<1>(model_, results, attention, "caption");
    if (attention) {
      for (size_t i = 0; i < n; ++i) {
        py::array_t<float> a({positions[i].size(), size_t{4}});
        auto w = a.mutable_unchecked<2>();
        for (size_t k = 0; k < positions[i].size(); ++k) {
          const Box& b = positions[i][k];
          w(k, 0) = b.x0;
          w(k, 1) = b.y0;
          w(k, 2) = b.x1;
          w(k, 3) = b.y1;
        }
        out[i].boxes = a;
        for (Caption& h : out[i].hypotheses) h.boxes = a;
      }
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

template <int K>
void BindOutput(py::module_& m, const char* name, const char* doc, const char* text_doc,
                const char* attention_doc) {
  using O = Output<K>;
  auto c = py::class_<O>(m, name, doc)
               .def_readonly("text", &O::text, text_doc)
               .def_readonly("score", &O::score, "Log-probability with the length penalty")
               .def_readonly("log_prob", &O::log_prob, "Sum of the tokens' log-probabilities")
               .def_readonly("tokens", &O::tokens, "The vocabulary's pieces (no bos/eos)")
               .def_readonly("token_ids", &O::token_ids, "The vocabulary's ids (no bos/eos)")
               .def_readonly("attention", &O::attention, attention_doc)
               .def_readonly("hypotheses", &O::hypotheses,
                             "All n-best hypotheses of the input, best first")
               .def("__str__", [](const O& o) { return o.text; })
               .def("__repr__", [name](const O& o) {
                 return std::string(name) + "(" + py::repr(py::str(o.text)).cast<std::string>() +
                        ", score=" + std::to_string(o.score) + ")";
               });
  if (K == 1)
    c.def_readonly("boxes", &O::boxes,
                   "float32 NumPy array [attended positions, 4]: each position's box x0, y0, x1, "
                   "y1 (exclusive) in the model's image_size pixels, or None");
}

// ---- scores ----

// AER with its counts; format() and json() print the P and R parts with the width asked for.
struct AerScore : metrics::Score {
  metrics::AlignmentScore raw;
  explicit AerScore(const metrics::AlignmentScore& s)
      : metrics::Score(metrics::AlignmentScoreLine(s, 2)), raw(s) {}
};

struct BracketsScore : metrics::Score {
  metrics::BracketScore raw;
  explicit BracketsScore(const metrics::BracketScore& s)
      : metrics::Score(metrics::BracketScoreLine(s, 2)), raw(s) {}
};

void CheckWidth(int width) {
  ATTEND_CHECK(width >= 0 && width <= 20, "format: width=", width, " must be in [0, 20]");
}

// format() and json() of a score whose text depends on the width asked for: `line` rebuilds it
// from the raw numbers (S::raw).
template <typename S, typename Raw>
void DefScoreLine(py::class_<S, metrics::Score>& cls, metrics::Score (*line)(const Raw&, int)) {
  cls.def(
         "format",
         [line](const S& s, int width, bool signature, bool short_signature) {
           CheckWidth(width);
           return line(s.raw, width).Format(width, signature, short_signature);
         },
         py::arg("width") = 2, py::arg("signature") = false, py::arg("short") = false,
         "attend score's line (signature=True and width=1: exactly what it prints)")
      .def(
          "json",
          [line](const S& s, int width) {
            CheckWidth(width);
            return line(s.raw, width).Json(width);
          },
          py::arg("width") = 2, "attend score --json's output");
}

// A list argument of a score: a list (or tuple), not a string.
py::sequence ScoreList(const py::object& obj, const char* what, const char* name,
                       const char* kind) {
  if (obj.is_none() || py::isinstance<py::str>(obj) || !py::isinstance<py::sequence>(obj))
    throw py::type_error(std::string(what) + ": " + name + " must be a list of " + kind + ", not " +
                         py::repr(py::type::of(obj)).cast<std::string>());
  return py::reinterpret_borrow<py::sequence>(obj);
}

std::vector<std::string> Strings(const py::sequence& seq, const std::string& what) {
  std::vector<std::string> out;
  out.reserve(py::len(seq));
  for (size_t k = 0; k < py::len(seq); ++k) {
    const py::object item = seq[k];
    if (!py::isinstance<py::str>(item))
      throw py::type_error(what + "[" + std::to_string(k) + "] must be a string, not " +
                           py::repr(py::type::of(item)).cast<std::string>());
    out.push_back(item.cast<std::string>());
  }
  return out;
}

// One sentence's links: a Pharaoh line ("0-0 1-2 2?3": '?' links go to *possible when given;
// for hypotheses, the part after the last "|||" as `attend translate --alignment hard` writes
// it) or a list of (source, target) pairs of non-negative integers.
metrics::AlignmentLinks Links(const py::handle& obj, const std::string& where, bool hypothesis,
                              metrics::AlignmentLinks* possible) {
  if (possible != nullptr) possible->clear();
  if (py::isinstance<py::str>(obj)) {
    std::string line = obj.cast<std::string>();
    if (hypothesis) {
      const size_t bar = line.rfind("|||");
      if (bar != std::string::npos) line.erase(0, bar + 3);
    }
    return metrics::ParsePharaoh(line, where, possible);
  }
  std::vector<std::pair<int64_t, int64_t>> pairs;
  try {
    pairs = obj.cast<std::vector<std::pair<int64_t, int64_t>>>();
  } catch (const py::cast_error&) {
    throw py::type_error(where +
                         ": must be a Pharaoh string (\"0-0 1-2\") or a list of (source, "
                         "target) pairs, not " +
                         py::repr(obj).cast<std::string>());
  }
  for (const auto& [s, t] : pairs)
    ATTEND_CHECK(s >= 0 && t >= 0, where, ": link (", s, ", ", t,
                 ") has a negative position (0-based positions)");
  return pairs;
}

AerScore Aer(const py::object& hypotheses, const py::object& sure, const py::object& possible) {
  const py::sequence hs = ScoreList(hypotheses, "aer", "hypotheses", "alignments");
  const py::sequence ss = ScoreList(sure, "aer", "sure", "alignments");
  const size_t n = py::len(hs);
  ATTEND_CHECK(py::len(ss) == n, "aer: ", n, " hypotheses but ", py::len(ss), " sure alignments");
  std::optional<py::sequence> ps;
  if (!possible.is_none()) {
    ps = ScoreList(possible, "aer", "possible", "alignments");
    ATTEND_CHECK(py::len(*ps) == n, "aer: ", n, " hypotheses but ", py::len(*ps),
                 " possible alignments");
  }
  std::vector<metrics::AlignmentLinks> hyp(n), sur(n), pos(n);
  for (size_t k = 0; k < n; ++k) {
    // (std::string's append: gcc 12 warns falsely about "literal" + string here.)
    const auto where = [k](const char* name) {
      std::string w = "aer: ";
      w.append(name).append("[").append(std::to_string(k)).append("]");
      return w;
    };
    hyp[k] = Links(hs[k], where("hypotheses"), true, nullptr);
    sur[k] = Links(ss[k], where("sure"), false, &pos[k]);
    if (ps) {
      // Every link of `possible` is a possible one, whichever mark it has.
      metrics::AlignmentLinks marked;
      const metrics::AlignmentLinks plain = Links((*ps)[k], where("possible"), false, &marked);
      pos[k].insert(pos[k].end(), plain.begin(), plain.end());
      pos[k].insert(pos[k].end(), marked.begin(), marked.end());
    }
  }
  py::gil_scoped_release release;
  return AerScore(metrics::AlignmentErrorRate(hyp, sur, pos));
}

BracketsScore Brackets(const py::object& hypotheses, const py::object& references) {
  const auto hyps = Strings(ScoreList(hypotheses, "brackets", "hypotheses", "linearised trees"),
                            "brackets: hypotheses");
  const auto refs = Strings(ScoreList(references, "brackets", "references", "linearised trees"),
                            "brackets: references");
  ATTEND_CHECK(hyps.size() == refs.size(), "brackets: ", hyps.size(), " hypotheses but ",
               refs.size(), " references");
  py::gil_scoped_release release;
  try {
    return BracketsScore(metrics::BracketF1(hyps, refs));
  } catch (const Error& e) {
    // Only a reference can be wrong (hypotheses never throw).
    throw Error(std::string("brackets: references: ") + e.what());
  }
}

}  // namespace

void BindMedia(py::module_& m) {
  // ---- corpora ----
  const data::SpeechCorpusOptions sd;
  m.def(
      "build_speech_corpus",
      [](const std::string& out_dir, int64_t seed, int64_t digits, int64_t phrases,
         int64_t dev_digits, int64_t dev_phrases, int64_t test_digits, int64_t test_phrases,
         const std::optional<std::string>& locale_dir, const std::string& catalog_lang,
         int64_t sample_rate, int64_t jobs) {
        const char* what = "build_speech_corpus";
        ATTEND_CHECK(!out_dir.empty(), what, ": out_dir is empty");
        ATTEND_CHECK(seed >= 0, what, ": seed=", seed, " must be >= 0");
        for (const auto& [name, v] : {std::pair<const char*, int64_t>{"digits", digits},
                                      {"phrases", phrases},
                                      {"dev_digits", dev_digits},
                                      {"dev_phrases", dev_phrases},
                                      {"test_digits", test_digits},
                                      {"test_phrases", test_phrases}})
          ATTEND_CHECK(v >= 0, what, ": ", name, "=", v, " must be >= 0");
        CheckRange(what, "sample_rate", sample_rate, 8000, 48000);
        CheckRange(what, "jobs", jobs, 1, 256);
        data::SpeechCorpusOptions o;
        o.out_dir = out_dir;
        o.seed = static_cast<uint64_t>(seed);
        o.train_digits = static_cast<size_t>(digits);
        o.train_phrases = static_cast<size_t>(phrases);
        o.dev_digits = static_cast<size_t>(dev_digits);
        o.dev_phrases = static_cast<size_t>(dev_phrases);
        o.test_digits = static_cast<size_t>(test_digits);
        o.test_phrases = static_cast<size_t>(test_phrases);
        o.locale_dir = locale_dir.value_or("");
        o.catalog_lang = catalog_lang;
        o.sample_rate = static_cast<int>(sample_rate);
        o.jobs = static_cast<int>(jobs);
        data::SpeechCorpusStats st;
        {
          py::gil_scoped_release release;
          st = data::BuildSpeechCorpus(o);
        }
        return SpeechStatsDict(st);
      },
      py::arg("out_dir"), py::kw_only(), py::arg("seed") = static_cast<int64_t>(sd.seed),
      py::arg("digits") = static_cast<int64_t>(sd.train_digits),
      py::arg("phrases") = static_cast<int64_t>(sd.train_phrases),
      py::arg("dev_digits") = static_cast<int64_t>(sd.dev_digits),
      py::arg("dev_phrases") = static_cast<int64_t>(sd.dev_phrases),
      py::arg("test_digits") = static_cast<int64_t>(sd.test_digits),
      py::arg("test_phrases") = static_cast<int64_t>(sd.test_phrases),
      py::arg("locale_dir") = py::none(), py::arg("catalog_lang") = sd.catalog_lang,
      py::arg("sample_rate") = static_cast<int64_t>(sd.sample_rate),
      py::arg("jobs") = static_cast<int64_t>(sd.jobs),
      "Synthesises the speech corpus with espeak-ng under out_dir, as `attend corpus speech`: "
      "digit strings and catalog phrases (wav/<split>/*.wav, train/dev/test.tsv manifests, "
      "test-digits.tsv, test-phrases.tsv, voices.json, stats.json). locale_dir=None reads the "
      "pinned corpus packages' catalogs. Returns its stats as a dict.");

  const data::ScenesCorpusOptions scd;
  m.def(
      "build_scenes_corpus",
      [](const std::string& out_dir, int64_t seed, int64_t size, int64_t train, int64_t dev,
         int64_t test, int64_t captions, int64_t min_items, int64_t max_items, int64_t clutter,
         const std::string& fashion_dir, int64_t threads) {
        const char* what = "build_scenes_corpus";
        data::ScenesCorpusOptions o;
        SetImageCorpusOptions(what, o, out_dir, size, train, dev, test, clutter, seed, fashion_dir,
                              threads);
        CheckRange(what, "captions", captions, 1, 10);
        CheckRange(what, "min_items", min_items, 1, 10);
        CheckRange(what, "max_items", max_items, 1, 10);
        o.captions_per_scene = captions;
        o.min_items = min_items;
        o.max_items = max_items;
        data::ScenesCorpusStats st;
        {
          py::gil_scoped_release release;
          st = data::BuildScenesCorpus(o);
        }
        return ScenesStatsDict(st);
      },
      py::arg("out_dir"), py::kw_only(), py::arg("seed") = static_cast<int64_t>(scd.seed),
      py::arg("size") = scd.size, py::arg("train") = scd.train, py::arg("dev") = scd.dev,
      py::arg("test") = scd.test, py::arg("captions") = scd.captions_per_scene,
      py::arg("min_items") = scd.min_items, py::arg("max_items") = scd.max_items,
      py::arg("clutter") = scd.clutter, py::arg("fashion_dir") = scd.fashion_dir,
      py::arg("threads") = static_cast<int64_t>(scd.threads),
      "Draws the captioned scenes corpus from Fashion-MNIST under out_dir, as `attend corpus "
      "scenes` (images/<split>/*.png, <split>.tsv captions, <split>.items.jsonl boxes, "
      "stats.json). Returns its stats as a dict.");

  const data::ClutteredCorpusOptions cd;
  m.def(
      "build_cluttered_corpus",
      [](const std::string& out_dir, int64_t seed, int64_t size, int64_t train, int64_t dev,
         int64_t test, int64_t min_item, int64_t max_item, int64_t clutter,
         const std::string& fashion_dir, int64_t threads) {
        const char* what = "build_cluttered_corpus";
        data::ClutteredCorpusOptions o;
        SetImageCorpusOptions(what, o, out_dir, size, train, dev, test, clutter, seed, fashion_dir,
                              threads);
        CheckRange(what, "min_item", min_item, 8, 1024);
        CheckRange(what, "max_item", max_item, 8, 1024);
        o.min_item = min_item;
        o.max_item = max_item;
        data::ClutteredCorpusStats st;
        {
          py::gil_scoped_release release;
          st = data::BuildClutteredCorpus(o);
        }
        return ClutteredStatsDict(st);
      },
      py::arg("out_dir"), py::kw_only(), py::arg("seed") = static_cast<int64_t>(cd.seed),
      py::arg("size") = cd.size, py::arg("train") = cd.train, py::arg("dev") = cd.dev,
      py::arg("test") = cd.test, py::arg("min_item") = cd.min_item,
      py::arg("max_item") = cd.max_item, py::arg("clutter") = cd.clutter,
      py::arg("fashion_dir") = cd.fashion_dir,
      py::arg("threads") = static_cast<int64_t>(cd.threads),
      "Draws the cluttered Fashion-MNIST corpus (one small item per image, for classification) "
      "under out_dir, as `attend corpus cluttered` (images/<split>/*.png, <split>.tsv labels, "
      "<split>.items.jsonl, stats.json). Returns its stats as a dict.");

  // ---- transcription ----
  BindOutput<0>(m, "Transcription",
                "One transcription: text, score, tokens; attention [characters + eos, encoder "
                "steps] when asked; hypotheses: the n-best list.",
                "The transcript",
                "float32 NumPy array [target tokens + 1 (eos), encoder steps] (the listener's "
                "reduced time steps: frames_per_step feature frames each), or None");
  DefLoadedModel(py::class_<Transcriber, std::shared_ptr<Transcriber>>(
                     m, "Transcriber",
                     "A speech model loaded from a checkpoint written by attend train --task "
                     "speech."),
                 "Size of the (character) vocabulary")
      .def(py::init<const std::string&>(), py::arg("path"),
           "Loads the speech checkpoint at path (attend.Error for any other kind).")
      .def("transcribe", &Transcriber::Transcribe, py::arg("inputs"), py::kw_only(),
           py::arg("sample_rate") = py::none(), py::arg("beam") = 4, py::arg("nbest") = 1,
           py::arg("length_penalty") = 1.0, py::arg("max_len_ratio") = nmt::kSpeechLengthRatio,
           py::arg("max_len_extra") = nmt::SearchOptions{}.max_len_extra,
           py::arg("batch_size") = nmt::SearchOptions{}.batch_size, py::arg("attention") = false,
           py::arg("threads") = 0,
           "Transcribes a list of WAV paths and/or 1-D float arrays of samples in [-1, 1] (mono; "
           "sample_rate= gives the arrays' rate, resampled as files are) with beam search "
           "(beam=1: greedy), as attend transcribe; returns one Transcription per input.")

      .def_property_readonly(
          "sample_rate", [](const Transcriber& t) { return t.loaded().features.sample_rate; },
          "The rate the model's features are computed at (other rates are resampled)")
      .def_property_readonly(
          "feature_dim", [](const Transcriber& t) { return t.loaded().features.mel_bins; },
          "Log-mel bins per feature frame")
      .def_property_readonly(
          "frames_per_step",
          [](const Transcriber& t) { return t.loaded().model->config().FramesPerStep(); },
          "Feature frames per encoder step (an attention column)");
  m.def(
      "load_transcriber",
      [](const std::string& path) { return std::make_shared<Transcriber>(path); }, py::arg("path"),
      "Loads a speech checkpoint written by attend train --task speech (a Transcriber); "
      "attend.Error for a translation or captioning checkpoint.");

  // ---- captioning ----
  BindOutput<1>(m, "Caption",
                "One caption: text, score, tokens; attention [words + eos, attended positions] "
                "and the positions' boxes when asked; hypotheses: the n-best list.",
                "The caption",
                "float32 NumPy array [target tokens + 1 (eos), attended positions] (the CNN "
                "grid's cells, row by row, or the regions), or None");
  DefLoadedModel(py::class_<Captioner, std::shared_ptr<Captioner>>(
                     m, "Captioner",
                     "A captioning model loaded from a checkpoint written by attend train --task "
                     "caption."),
                 "Size of the word vocabulary")
      .def(py::init<const std::string&>(), py::arg("path"),
           "Loads the captioning checkpoint at path (attend.Error for any other kind).")
      .def("caption", &Captioner::Describe, py::arg("images"), py::kw_only(), py::arg("beam") = 3,
           py::arg("nbest") = 1, py::arg("length_penalty") = 1.0,
           py::arg("max_words") = nmt::kCaptionMaxWords,
           py::arg("batch_size") = nmt::SearchOptions{}.batch_size, py::arg("no_repeat_ngram") = 0,
           py::arg("attention") = false, py::arg("boxes") = py::none(), py::arg("threads") = 0,
           "Describes a list of image paths and/or NumPy arrays (uint8 0-255 or float 0-1, [H, W] "
           "or [H, W, C]) with beam search (beam=1: greedy), as attend caption; boxes: per image "
           "its items' boxes, for a top-down model trained with --true-boxes only. Returns one "
           "Caption per image.")

      .def_property_readonly(
          "image_size", [](const Captioner& c) { return c.loaded().model->config().image_size; },
          "The side images are resized to, in pixels")
      .def_property_readonly(
          "image_channels",
          [](const Captioner& c) { return c.loaded().model->config().image_channels; },
          "1 (gray) or 3 (RGB): what images are converted to")
      .def_property_readonly("attends", &Captioner::attends,
                             "False for show-attend-tell without attention (no weights to return)")
      .def_property_readonly("reads_boxes", &Captioner::reads_boxes,
                             "True for a top-down model trained with --true-boxes (caption needs "
                             "boxes=)");
  m.def(
      "load_captioner", [](const std::string& path) { return std::make_shared<Captioner>(path); },
      py::arg("path"),
      "Loads a captioning checkpoint written by attend train --task caption (a Captioner); "
      "attend.Error for a translation or speech checkpoint.");

  // ---- scores ----
  DefScoreLine(
      py::class_<AerScore, metrics::Score>(
          m, "AERScore",
          "Alignment error rate (Och and Ney): score is 100 * aer; aer, precision and recall are "
          "fractions; the link counts.")
          .def_property_readonly(
              "aer", [](const AerScore& s) { return s.raw.aer; },
              "1 - (|A&S| + |A&P|) / (|A| + |S|)")
          .def_property_readonly(
              "precision", [](const AerScore& s) { return s.raw.precision; }, "|A&P| / |A|")
          .def_property_readonly(
              "recall", [](const AerScore& s) { return s.raw.recall; }, "|A&S| / |S|")
          .def_property_readonly(
              "hypothesis_links", [](const AerScore& s) { return s.raw.counts.hypothesis; }, "|A|")
          .def_property_readonly(
              "sure_links", [](const AerScore& s) { return s.raw.counts.sure; }, "|S|")
          .def_property_readonly(
              "possible_links", [](const AerScore& s) { return s.raw.counts.possible; },
              "|P| (sure links included)")
          .def_property_readonly(
              "hit_sure", [](const AerScore& s) { return s.raw.counts.hit_sure; }, "|A&S|")
          .def_property_readonly(
              "hit_possible", [](const AerScore& s) { return s.raw.counts.hit_possible; }, "|A&P|"),
      &metrics::AlignmentScoreLine);
  DefScoreLine(
      py::class_<BracketsScore, metrics::Score>(
          m, "BracketScore",
          "Labelled bracket scores of linearised trees (evalb's counting): score is 100 * f1; "
          "precision, recall, f1 and exact_match are fractions; the bracket counts.")
          .def_property_readonly(
              "precision", [](const BracketsScore& s) { return s.raw.precision; },
              "matched / hypothesis brackets")
          .def_property_readonly(
              "recall", [](const BracketsScore& s) { return s.raw.recall; },
              "matched / reference brackets")
          .def_property_readonly(
              "f1", [](const BracketsScore& s) { return s.raw.f1; }, "2PR / (P + R)")
          .def_property_readonly(
              "exact_match", [](const BracketsScore& s) { return s.raw.exact_match; },
              "Share of sentences whose brackets all match")
          .def_property_readonly(
              "sentences", [](const BracketsScore& s) { return s.raw.sentences; }, "Sentences")
          .def_property_readonly(
              "exact", [](const BracketsScore& s) { return s.raw.exact; },
              "Exactly right sentences")
          .def_property_readonly(
              "hypothesis_brackets",
              [](const BracketsScore& s) { return s.raw.hypothesis_brackets; },
              "Brackets in the hypotheses")
          .def_property_readonly(
              "reference_brackets", [](const BracketsScore& s) { return s.raw.reference_brackets; },
              "Brackets in the references")
          .def_property_readonly(
              "matched", [](const BracketsScore& s) { return s.raw.matched; }, "Brackets matched")
          .def_property_readonly(
              "ill_formed", [](const BracketsScore& s) { return s.raw.ill_formed; },
              "Hypotheses that are not one well-formed tree"),
      &metrics::BracketScoreLine);
  m.def("aer", &Aer, py::arg("hypotheses"), py::arg("sure"), py::arg("possible") = py::none(),
        "Corpus alignment error rate, as attend score --metrics aer: per sentence a Pharaoh "
        "string (\"0-0 1-2\"; in sure, \"s?t\" marks a possible link; a hypothesis may be an "
        "attend translate --alignment hard line, read after its last \"|||\") or a list of "
        "(source, target) pairs; possible: more possible links per sentence (P = S + possible). "
        "Returns an AERScore.");
  m.def("brackets", &Brackets, py::arg("hypotheses"), py::arg("references"),
        "Labelled bracket precision, recall and F1 of linearised trees (\"(S (NP XX ) (VP XX ) "
        ")\"), as attend score --metrics bracket; an ill-formed hypothesis counts with the "
        "brackets it closes, an ill-formed reference is an attend.Error. Returns a "
        "BracketScore.");
}

}  // namespace attend::python
