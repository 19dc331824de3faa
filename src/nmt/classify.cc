// Image classification with attention (attend/classify.h): labelled images, prediction and
// evaluation, the trainer of `attend train --task classify` (the design of trainer.cc: best/last
// checkpoints, exact resume, train.log, a progress bar) and loading a trained classifier.
#include "attend/classify.h"

#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <exception>
#include <filesystem>
#include <fstream>
#include <limits>
#include <map>
#include <mutex>
#include <nlohmann/json.hpp>
#include <numeric>
#include <sstream>
#include <thread>
#include <utility>

#include "attend/autograd.h"
#include "attend/checkpoint.h"
#include "attend/corpus.h"
#include "attend/error.h"
#include "attend/nn.h"
#include "attend/ops.h"
#include "attend/optim.h"
#include "attend/vision.h"
#include "io/untrusted_json.h"
#include "nmt/trainer_internal.h"

namespace attend::nmt {

using detail::FormatDuration;
using detail::Logger;

namespace {

const std::vector<std::string>& LabelsOr(const std::vector<std::string>& labels) {
  return labels.empty() ? vision::FashionMnistNames() : labels;
}

std::string JoinNames(const std::vector<std::string>& names) {
  std::string out;
  for (size_t i = 0; i < names.size() && i < 12; ++i) out += (i ? ", " : "") + names[i];
  if (names.size() > 12) out += ", ...";
  return out;
}

// `image` as written in `listing`: absolute paths stay, relative ones are taken from the listing's
// directory (as data::ReadItemsJsonl resolves them, so the two files' paths match).
std::string Resolve(const std::string& listing, const std::string& image) {
  const std::filesystem::path p(image);
  if (p.is_absolute()) return image;
  const std::filesystem::path dir = std::filesystem::path(listing).parent_path();
  return dir.empty() ? image : (dir / p).string();
}

using train::ShuffledBatches;

// Where the loop stands; stored in every checkpoint so a resumed run continues exactly.
struct LoopState {
  int64_t step = 0, epoch = 0, batch_in_epoch = 0, bad_validations = 0;
  double best = -1.0;  // the best dev combined accuracy; -1 before the first validation
  double seconds = 0.0, images = 0.0;
  io::Metadata ToMetadata() const {
    return {{"trainer.step", std::to_string(step)},
            {"trainer.epoch", std::to_string(epoch)},
            {"trainer.batch_in_epoch", std::to_string(batch_in_epoch)},
            {"trainer.bad_validations", std::to_string(bad_validations)},
            {"trainer.best_accuracy", detail::ExactNumber(best)},
            {"trainer.seconds", detail::ExactNumber(seconds)},
            {"trainer.images", detail::ExactNumber(images)}};
  }
  static LoopState FromMetadata(const io::Metadata& m, const std::string& source) {
    auto get = [&](const char* key) -> const std::string& {
      auto it = m.find(key);
      ATTEND_CHECK(it != m.end(), source, ": not a classifier's training checkpoint (no '", key,
                   "')");
      return it->second;
    };
    LoopState p;
    try {
      p.step = std::stoll(get("trainer.step"));
      p.epoch = std::stoll(get("trainer.epoch"));
      p.batch_in_epoch = std::stoll(get("trainer.batch_in_epoch"));
      p.bad_validations = std::stoll(get("trainer.bad_validations"));
      p.best = std::stod(get("trainer.best_accuracy"));
      p.seconds = std::stod(get("trainer.seconds"));
      p.images = std::stod(get("trainer.images"));
    } catch (const std::logic_error&) {
      ATTEND_CHECK(false, source, ": a trainer.* entry is not a number");
    }
    ATTEND_CHECK(p.step >= 0 && p.epoch >= 0 && p.batch_in_epoch >= 0, source,
                 ": a trainer.* entry is negative");
    return p;
  }
};

nlohmann::json TrainOptionsJson(const ClassifyTrainOptions& o) {
  return {{"batch_size", o.batch_size},
          {"lr", o.lr},
          {"warmup", o.warmup},
          {"clip_norm", o.clip_norm},
          {"max_steps", o.max_steps},
          {"max_epochs", o.max_epochs},
          {"max_minutes", o.max_minutes},
          {"valid_every", o.valid_every},
          {"patience", o.patience},
          {"seed", o.seed},
          {"hold_coarser", o.hold_coarser}};
}

// The images `rows` of `images` as one f32 [B, C, H, W] tensor, and their labels.
Tensor StackPixels(const std::vector<const std::vector<float>*>& images,
                   const std::vector<int64_t>& rows, const models::ClassifierConfig& c) {
  const int64_t per = c.channels * c.image_size * c.image_size;
  std::vector<float> x(static_cast<size_t>(per) * rows.size());
  for (size_t r = 0; r < rows.size(); ++r) {
    const std::vector<float>& p = *images[static_cast<size_t>(rows[r])];
    ATTEND_CHECK(static_cast<int64_t>(p.size()) == per, "classifier: image ", rows[r], " has ",
                 p.size(), " values, the model reads ", per, " (", c.channels, " x ", c.image_size,
                 " x ", c.image_size, ")");
    std::copy(p.begin(), p.end(), x.begin() + static_cast<int64_t>(r) * per);
  }
  return Tensor::FromVector(
      x, Shape{static_cast<int64_t>(rows.size()), c.channels, c.image_size, c.image_size});
}

std::vector<const std::vector<float>*> PixelsOf(const std::vector<LabeledImage>& images) {
  std::vector<const std::vector<float>*> out;
  out.reserve(images.size());
  for (const auto& im : images) out.push_back(&im.pixels);
  return out;
}

Tensor LabelsOf(const std::vector<LabeledImage>& images, const std::vector<int64_t>& rows) {
  std::vector<int64_t> v;
  v.reserve(rows.size());
  for (int64_t r : rows) v.push_back(images[static_cast<size_t>(r)].label);
  return Tensor::FromVector(v, Shape{static_cast<int64_t>(rows.size())});
}

}  // namespace

// ---- data ------------------------------------------------------------------------------------

namespace {
// The pixels as the classifier reads them, and the file's own size.
std::vector<float> ReadPixels(const std::string& image_path, const models::ClassifierConfig& config,
                              int64_t* width, int64_t* height) {
  vision::Image img = vision::ToChannels(vision::ReadImage(image_path), config.channels);
  *width = img.width;
  *height = img.height;
  if (img.width != config.image_size || img.height != config.image_size)
    img = vision::Resize(img, config.image_size, config.image_size);
  return vision::ToFloatCHW(img);
}
}  // namespace

std::vector<float> ClassifierPixels(const std::string& image_path,
                                    const models::ClassifierConfig& config) {
  int64_t w = 0, h = 0;
  return ReadPixels(image_path, config, &w, &h);
}

std::vector<LabeledImage> LoadLabeledImages(const std::string& tsv, const std::string& items_jsonl,
                                            const models::ClassifierConfig& config, int threads,
                                            const std::vector<std::string>& label_list) {
  config.Validate();
  const std::vector<std::string>& names = LabelsOr(label_list);
  ATTEND_CHECK(static_cast<int64_t>(names.size()) == config.classes, tsv, ": ", names.size(),
               " label names for a classifier of ", config.classes, " classes");
  std::map<std::string, int64_t> label_of;
  for (size_t i = 0; i < names.size(); ++i) label_of.emplace(names[i], static_cast<int64_t>(i));
  data::ReadOptions ro;
  ro.max_bytes = 4096;
  const std::vector<std::string> lines = data::ReadLines(tsv, ro);
  ATTEND_CHECK(!lines.empty(), tsv, ": no lines");
  std::vector<LabeledImage> out(lines.size());
  std::vector<std::string> where(lines.size());
  std::vector<std::array<int64_t, 2>> sizes(lines.size(), {0, 0});
  for (size_t i = 0; i < lines.size(); ++i) {
    where[i] = tsv + ":" + std::to_string(i + 1);
    const std::string& line = lines[i];
    const size_t tabs = static_cast<size_t>(std::count(line.begin(), line.end(), '\t'));
    ATTEND_CHECK(tabs == 1, where[i], ": expected exactly one tab (image<TAB>label), found ", tabs);
    const size_t tab = line.find('\t');
    const std::string image = line.substr(0, tab), name = line.substr(tab + 1);
    ATTEND_CHECK(!image.empty(), where[i], ": empty image path");
    auto it = label_of.find(name);
    ATTEND_CHECK(it != label_of.end(), where[i], ": unknown label '", io::Excerpt(name),
                 "' (the labels are ", JoinNames(names), ")");
    out[i].label = it->second;
    out[i].path = Resolve(tsv, image);
  }

  // The pixels, read in parallel; the first failure (in listing order) is reported.
  const int64_t n = static_cast<int64_t>(out.size());
  std::atomic<int64_t> next{0};
  std::mutex error_mutex;
  int64_t error_at = n;
  std::string error;
  auto work = [&] {
    for (int64_t i; (i = next++) < n;) {
      try {
        out[i].pixels = ReadPixels(out[i].path, config, &sizes[i][0], &sizes[i][1]);
      } catch (const std::exception& e) {
        std::lock_guard<std::mutex> lock(error_mutex);
        if (i < error_at) {
          error_at = i;
          error = e.what();
        }
      }
    }
  };
  const int t = std::max(
      1,
      std::min<int>(threads > 0 ? threads : static_cast<int>(std::thread::hardware_concurrency()),
                    static_cast<int>(std::max<int64_t>(1, n))));
  std::vector<std::thread> pool;
  for (int i = 1; i < t; ++i) pool.emplace_back(work);
  work();
  for (auto& th : pool) th.join();
  ATTEND_CHECK(error_at == n, where[static_cast<size_t>(std::min(error_at, n - 1))], ": ", error);

  if (!items_jsonl.empty()) {
    std::map<std::string, std::vector<data::ItemBox>> items;
    for (auto& [image, boxes] : data::ReadItemsJsonl(items_jsonl))
      items.emplace(image, std::move(boxes));
    for (size_t i = 0; i < out.size(); ++i) {
      LabeledImage& im = out[i];
      auto it = items.find(im.path);
      if (it == items.end() || it->second.empty()) continue;
      const data::ItemBox* chosen = &it->second.front();
      for (const data::ItemBox& b : it->second)
        if (b.label == names[static_cast<size_t>(im.label)]) {
          chosen = &b;
          break;
        }
      // The box in the file's pixels, scaled to the model's: the file's side is the image's.
      const double sx = static_cast<double>(config.image_size) / static_cast<double>(sizes[i][0]);
      const double sy = static_cast<double>(config.image_size) / static_cast<double>(sizes[i][1]);
      im.has_box = true;
      im.box[0] = static_cast<float>(static_cast<double>(chosen->x0) * sx);
      im.box[1] = static_cast<float>(static_cast<double>(chosen->y0) * sy);
      im.box[2] = static_cast<float>(static_cast<double>(chosen->x1) * sx);
      im.box[3] = static_cast<float>(static_cast<double>(chosen->y1) * sy);
    }
  }
  return out;
}

// ---- prediction and evaluation ---------------------------------------------------------------

std::vector<ClassifiedImage> ClassifyImages(models::ImageClassifier& model,
                                            const std::vector<const std::vector<float>*>& images,
                                            int64_t batch_size, bool keep_crops) {
  ATTEND_CHECK(batch_size > 0, "ClassifyImages: batch_size must be positive, got ", batch_size);
  const models::ClassifierConfig& c = model.config();
  const int64_t n = static_cast<int64_t>(images.size());
  std::vector<ClassifiedImage> out(images.size());
  const bool was_training = model.training();
  model.Eval();
  NoGradGuard no_grad;
  auto floats = [](const Tensor& t) { return t.To(DType::kF32).ToVector<float>(); };
  for (int64_t b = 0; b < n; b += batch_size) {
    const int64_t m = std::min(batch_size, n - b);
    std::vector<int64_t> rows(static_cast<size_t>(m));
    std::iota(rows.begin(), rows.end(), b);
    const models::ClassifierOutput o =
        model.Forward(StackPixels(images, rows, c).To(model.dtype()));
    const std::vector<float> combined = floats(o.Probabilities());
    std::vector<std::vector<float>> scales, boxes, local, crops;
    for (const Tensor& l : o.logits) scales.push_back(floats(Softmax(l, 1)));
    for (const Tensor& t : o.boxes) boxes.push_back(floats(t));
    for (const Tensor& t : o.local_boxes) local.push_back(floats(t));
    if (keep_crops)
      for (const Tensor& t : o.crops) crops.push_back(floats(t));
    const int64_t k = c.classes;
    const int64_t crop = c.channels * c.zoom_size * c.zoom_size;
    for (int64_t r = 0; r < m; ++r) {
      ClassifiedImage& ci = out[static_cast<size_t>(b + r)];
      ci.probabilities.assign(combined.begin() + r * k, combined.begin() + (r + 1) * k);
      ci.label = std::max_element(ci.probabilities.begin(), ci.probabilities.end()) -
                 ci.probabilities.begin();
      for (const auto& s : scales)
        ci.per_scale.emplace_back(s.begin() + r * k, s.begin() + (r + 1) * k);
      for (const auto& t : boxes) ci.boxes.push_back({t[r * 3], t[r * 3 + 1], t[r * 3 + 2]});
      for (const auto& t : local) ci.local.push_back({t[r * 3], t[r * 3 + 1], t[r * 3 + 2]});
      for (const auto& t : crops)
        ci.crops.emplace_back(t.begin() + r * crop, t.begin() + (r + 1) * crop);
    }
  }
  model.Train(was_training);
  return out;
}

std::array<float, 4> BoxCorners(const std::array<float, 3>& box, int64_t side) {
  const float s = static_cast<float>(side);
  auto clip = [s](float v) { return std::min(s, std::max(0.0f, v)); };
  return {clip(box[0] - box[2]), clip(box[1] - box[2]), clip(box[0] + box[2]),
          clip(box[1] + box[2])};
}

double BoxIoU(const std::array<float, 4>& a, const std::array<float, 4>& b) {
  auto area = [](const std::array<float, 4>& r) {
    return std::max(0.0, static_cast<double>(r[2]) - r[0]) *
           std::max(0.0, static_cast<double>(r[3]) - r[1]);
  };
  const double w = std::max(0.0, static_cast<double>(std::min(a[2], b[2])) - std::max(a[0], b[0]));
  const double h = std::max(0.0, static_cast<double>(std::min(a[3], b[3])) - std::max(a[1], b[1]));
  const double inter = w * h, uni = area(a) + area(b) - inter;
  return uni > 0.0 ? inter / uni : 0.0;
}

std::string ClassifyEval::Describe() const {
  std::ostringstream s;
  char buf[64];
  s << "acc";
  for (size_t i = 0; i < accuracy.size(); ++i) {
    std::snprintf(buf, sizeof(buf), " scale%zu %.2f", i + 1, accuracy[i]);
    s << buf;
  }
  std::snprintf(buf, sizeof(buf), " combined %.2f", combined);
  s << buf;
  if (!iou.empty() && boxes > 0) {
    s << " | IoU";
    for (size_t i = 0; i < iou.size(); ++i) {
      std::snprintf(buf, sizeof(buf), " scale%zu %.3f (%.2f >= 0.5)", i + 2, iou[i], iou50[i]);
      s << buf;
    }
  }
  return s.str();
}

ClassifyEval EvaluateClassifier(models::ImageClassifier& model,
                                const std::vector<LabeledImage>& images, int64_t batch_size) {
  ATTEND_CHECK(batch_size > 0, "EvaluateClassifier: batch_size must be positive, got ", batch_size);
  const models::ClassifierConfig& c = model.config();
  ClassifyEval e;
  const int64_t n = static_cast<int64_t>(images.size());
  const int64_t scales = c.NumScales();
  e.images = n;
  e.accuracy.assign(static_cast<size_t>(scales), 0.0);
  e.iou.assign(static_cast<size_t>(scales - 1), 0.0);
  e.iou50.assign(static_cast<size_t>(scales - 1), 0.0);
  if (n == 0) return e;
  const auto pixels = PixelsOf(images);
  const bool was_training = model.training();
  model.Eval();
  double loss = 0.0;
  {
    NoGradGuard no_grad;
    for (int64_t b = 0; b < n; b += batch_size) {
      std::vector<int64_t> rows(static_cast<size_t>(std::min(batch_size, n - b)));
      std::iota(rows.begin(), rows.end(), b);
      const auto o = model.Forward(StackPixels(pixels, rows, c).To(model.dtype()));
      loss += model.Loss(o, LabelsOf(images, rows)).item() * static_cast<double>(rows.size());
    }
  }
  model.Train(was_training);
  e.loss = loss / static_cast<double>(n);
  const std::vector<ClassifiedImage> out = ClassifyImages(model, pixels, batch_size);
  for (int64_t i = 0; i < n; ++i) {
    const ClassifiedImage& ci = out[static_cast<size_t>(i)];
    const LabeledImage& im = images[static_cast<size_t>(i)];
    for (int64_t s = 0; s < scales; ++s) {
      const auto& p = ci.per_scale[static_cast<size_t>(s)];
      e.accuracy[static_cast<size_t>(s)] +=
          (std::max_element(p.begin(), p.end()) - p.begin()) == im.label;
    }
    e.combined += ci.label == im.label;
    if (!im.has_box) continue;
    ++e.boxes;
    const std::array<float, 4> truth{im.box[0], im.box[1], im.box[2], im.box[3]};
    for (size_t s = 0; s < ci.boxes.size(); ++s) {
      const double iou = BoxIoU(BoxCorners(ci.boxes[s], c.image_size), truth);
      e.iou[s] += iou;
      e.iou50[s] += iou >= 0.5;
    }
  }
  for (double& a : e.accuracy) a *= 100.0 / static_cast<double>(n);
  e.combined *= 100.0 / static_cast<double>(n);
  if (e.boxes > 0)
    for (size_t s = 0; s < e.iou.size(); ++s) {
      e.iou[s] /= static_cast<double>(e.boxes);
      e.iou50[s] /= static_cast<double>(e.boxes);
    }
  return e;
}

// ---- training --------------------------------------------------------------------------------

ClassifyTrainSummary TrainClassifier(models::ImageClassifier& model,
                                     const std::vector<LabeledImage>& train,
                                     const std::vector<LabeledImage>& dev,
                                     const ClassifyTrainOptions& o, bool resume) {
  ATTEND_CHECK(!train.empty(), "train: no training images");
  ATTEND_CHECK(!dev.empty(), "train: no dev images");
  ATTEND_CHECK(o.max_steps > 0 || o.max_epochs > 0 || o.max_minutes > 0,
               "train: set a stop condition (steps, epochs or minutes)");
  ATTEND_CHECK(o.batch_size > 0 && o.valid_every > 0 && o.log_every > 0 && o.lr > 0,
               "train: batch_size, valid_every, log_every and lr must be positive");
  const models::ClassifierConfig& mc = model.config();
  const std::vector<std::string>& labels = LabelsOr(o.labels);
  ATTEND_CHECK(static_cast<int64_t>(labels.size()) == mc.classes, "train: ", labels.size(),
               " label names for a classifier of ", mc.classes, " classes");
  for (const auto* set : {&train, &dev})
    for (const LabeledImage& im : *set)
      ATTEND_CHECK(im.label >= 0 && im.label < mc.classes, "train: ", im.path, ": label ", im.label,
                   " is not in 0..", mc.classes - 1);
  if (o.threads > 0) SetNumThreads(o.threads);
  namespace fs = std::filesystem;
  std::error_code ec;
  fs::create_directories(o.out_dir, ec);
  ATTEND_CHECK(!ec && fs::is_directory(o.out_dir), "train: cannot create the output directory ",
               o.out_dir, ec ? ": " + ec.message() : "");
  const std::string last_path = (fs::path(o.out_dir) / "last.ckpt").string();
  const std::string best_path = (fs::path(o.out_dir) / "best.ckpt").string();
  // A run killed while writing a checkpoint leaves its temporary beside it: remove those.
  for (const auto& entry : fs::directory_iterator(o.out_dir, ec)) {
    const std::string name = entry.path().filename().string();
    for (const std::string base : {"last.ckpt.tmp", "best.ckpt.tmp"})
      if (name == base || name.rfind(base + ".", 0) == 0) fs::remove(entry.path(), ec);
  }

  optim::Adam adam(model.Parameters(), optim::AdamOptions{.lr = o.lr});
  optim::InverseSqrtWarmup schedule(
      adam,
      optim::InverseSqrtWarmup::Peak{.lr_peak = o.lr, .warmup = std::max<int64_t>(1, o.warmup)});
  nlohmann::json config;
  config["classifier"] = nlohmann::json::parse(mc.ToJson());
  config["train"] = TrainOptionsJson(o);
  config["labels"] = labels;
  const std::string config_json = config.dump();

  LoopState p;
  if (resume) {
    io::Metadata extra;
    const std::string saved = io::LoadCheckpoint(last_path, model, &adam, &schedule, &extra);
    p = LoopState::FromMetadata(extra, last_path);
    const nlohmann::json j = io::ParseUntrustedJson(saved, last_path + ": the config");
    ATTEND_CHECK(
        j.is_object() && j.contains("classifier") && j.at("classifier") == config.at("classifier"),
        "train --resume: ", last_path, " was trained with another classifier config (",
        j.is_object() && j.contains("classifier") ? io::JsonExcerpt(j.at("classifier"), 300)
                                                  : std::string("none"),
        ")");
    ATTEND_CHECK(j.contains("labels") && j.at("labels") == config.at("labels"),
                 "train --resume: ", last_path, " was trained with other label names");
  }
  Logger log((fs::path(o.out_dir) / "train.log").string(), o.progress);
  auto save = [&](const std::string& path) {
    io::SaveCheckpoint(path, model, &adam, &schedule, config_json, p.ToMetadata());
  };
  {
    std::ostringstream s;
    s << (resume ? "resuming at step " + std::to_string(p.step) : std::string("training")) << ": "
      << mc.arch << " (" << mc.NumScales() << (mc.NumScales() == 1 ? " scale" : " scales") << "), "
      << model.NumParameters() << " parameters, " << train.size() << " training images, "
      << dev.size() << " dev images, " << mc.classes << " classes";
    log.Line(s.str());
  }

  ClassifyTrainSummary summary;
  const auto t0 = std::chrono::steady_clock::now();
  const double seconds_before = p.seconds, images_before = p.images;
  auto elapsed = [&] {
    return seconds_before +
           std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  };
  double train_seconds = 0.0;  // training steps only
  const int64_t first_step = p.step;
  double window_loss = 0.0, window_rank = 0.0, window_images = 0.0;
  std::vector<double> window_ce(static_cast<size_t>(mc.NumScales()), 0.0);
  auto t_window = std::chrono::steady_clock::now();
  int64_t last_validated = resume ? p.step : -1;
  std::string stop;
  auto validate = [&]() {
    const ClassifyEval v = EvaluateClassifier(model, dev);
    summary.last = v;
    const bool better = v.combined > p.best;
    if (better) {
      p.best = v.combined;
      p.bad_validations = 0;
    } else {
      ++p.bad_validations;
    }
    p.seconds = elapsed();
    char buf[96];
    std::snprintf(buf, sizeof(buf), "validation step %lld: dev loss %.4f ", (long long)p.step,
                  v.loss);
    log.Line(buf + v.Describe() + (better ? " *best*" : "") + " (" + FormatDuration(p.seconds) +
             ")");
    // best before last: a run killed between the two resumes from the previous last.ckpt and
    // redoes this validation, so best.ckpt always matches the best accuracy last.ckpt records.
    if (better) save(best_path);
    save(last_path);
    last_validated = p.step;
    if (o.patience > 0 && p.bad_validations >= o.patience)
      stop = "early stopping (" + std::to_string(o.patience) +
             " validations without a better combined accuracy)";
  };

  const auto pixels = PixelsOf(train);
  model.Train();
  const std::vector<Tensor> params = model.Parameters();
  const int64_t n = static_cast<int64_t>(train.size());
  while (stop.empty()) {
    if (o.max_epochs > 0 && p.epoch >= o.max_epochs) {
      stop = "epochs";
      break;
    }
    const auto batches = ShuffledBatches(n, o.batch_size, o.seed, p.epoch);
    summary.epochs_started = p.epoch + 1;
    for (; p.batch_in_epoch < static_cast<int64_t>(batches.size()) && stop.empty();
         ++p.batch_in_epoch) {
      if (o.max_steps > 0 && p.step >= o.max_steps) {
        stop = "steps";
        break;
      }
      if (o.max_minutes > 0 && elapsed() >= o.max_minutes * 60.0) {
        stop = "minutes";
        break;
      }
      const auto step_start = std::chrono::steady_clock::now();
      const std::vector<int64_t>& rows = batches[static_cast<size_t>(p.batch_in_epoch)];
      const auto out = model.Forward(StackPixels(pixels, rows, mc).To(model.dtype()));
      models::ClassifierLossTerms terms;
      Tensor loss = model.Loss(out, LabelsOf(train, rows), &terms, o.hold_coarser);
      const double loss_value = loss.item();
      ATTEND_CHECK(std::isfinite(loss_value), "train: the loss became ", loss_value, " at step ",
                   p.step + 1, " (try a lower learning rate)");
      loss.Backward();
      if (o.clip_norm > 0) optim::ClipGradNorm(params, o.clip_norm);
      adam.Step();
      schedule.Step();
      adam.ZeroGrad();
      ++p.step;
      train_seconds +=
          std::chrono::duration<double>(std::chrono::steady_clock::now() - step_start).count();
      const double b = static_cast<double>(rows.size());
      p.images += b;
      window_loss += loss_value * b;
      window_rank += terms.ranking * b;
      for (size_t s = 0; s < window_ce.size() && s < terms.cross_entropy.size(); ++s)
        window_ce[s] += terms.cross_entropy[s] * b;
      window_images += b;
      const double now = elapsed();
      double eta = INFINITY;
      const double per_step = train_seconds / std::max<double>(1.0, p.step - first_step);
      if (o.max_steps > 0)
        eta = std::min(eta, per_step * static_cast<double>(o.max_steps - p.step));
      if (o.max_minutes > 0) eta = std::min(eta, o.max_minutes * 60.0 - now);
      if (o.max_epochs > 0)
        eta =
            std::min(eta, per_step * static_cast<double>((o.max_epochs - p.epoch) *
                                                             static_cast<int64_t>(batches.size()) -
                                                         p.batch_in_epoch - 1));
      const double window_seconds =
          std::chrono::duration<double>(std::chrono::steady_clock::now() - t_window).count();
      std::string terms_text;
      char part[64];
      for (size_t s = 0; s < window_ce.size(); ++s) {
        std::snprintf(part, sizeof(part), "%sce%zu %.3f", s ? " " : "", s + 1,
                      window_ce[s] / window_images);
        terms_text += part;
      }
      if (mc.NumScales() > 1) {
        std::snprintf(part, sizeof(part), " rank %.3f", window_rank / window_images);
        terms_text += part;
      }
      char bar[320];
      std::snprintf(bar, sizeof(bar),
                    "step %lld | epoch %lld | loss %.3f (%s) | %.1f img/s | lr %.2e | ETA %s",
                    (long long)p.step, (long long)p.epoch + 1, window_loss / window_images,
                    terms_text.c_str(), window_images / std::max(1e-9, window_seconds), adam.lr(),
                    FormatDuration(eta).c_str());
      log.Bar(bar);
      if (p.step % o.log_every == 0) {
        log.Line(bar);
        window_loss = window_rank = window_images = 0.0;
        std::fill(window_ce.begin(), window_ce.end(), 0.0);
        t_window = std::chrono::steady_clock::now();
      }
      if (p.step % o.valid_every == 0) {
        p.batch_in_epoch += 1;  // the checkpoint continues after this batch
        validate();
        p.batch_in_epoch -= 1;
        t_window = std::chrono::steady_clock::now();
      }
    }
    if (!stop.empty()) break;
    ++p.epoch;
    p.batch_in_epoch = 0;
  }
  if (last_validated != p.step) validate();
  log.ClearBar();
  summary.steps = p.step;
  summary.best_accuracy = p.best;
  summary.seconds = elapsed();
  summary.images_per_second = (p.images - images_before) / std::max(1e-9, train_seconds);
  summary.stop_reason = stop;
  char buf[256];
  std::snprintf(buf, sizeof(buf),
                "stopped (%s) after %lld steps, %s; best dev combined accuracy %.2f", stop.c_str(),
                (long long)p.step, FormatDuration(summary.seconds).c_str(), p.best);
  log.Line(buf);
  return summary;
}

LoadedClassifier LoadClassifier(const std::string& path) {
  io::SafetensorsContents contents = io::LoadSafetensors(path, /*require_checksum=*/true);
  auto it = contents.metadata.find("config");
  ATTEND_CHECK(it != contents.metadata.end(), path, ": not a model checkpoint (no config)");
  const nlohmann::json config =
      io::ParseUntrustedJson(it->second, path + ": the checkpoint's config");
  ATTEND_CHECK(config.is_object(), path, ": the checkpoint's config is not a JSON object");
  ATTEND_CHECK(!config.contains("model") || config.contains("classifier"), path,
               ": a translation, speech or captioning model's checkpoint, not an image "
               "classifier's (attend translate, transcribe or caption read it)");
  ATTEND_CHECK(config.contains("classifier"), path,
               ": the checkpoint's config has no classifier section");
  models::ClassifierConfig mc;
  try {
    mc = models::ClassifierConfig::FromJson(config.at("classifier").dump());
  } catch (const Error& e) {
    ATTEND_CHECK(false, path, ": ", e.what());
  }
  LoadedClassifier out;
  if (config.contains("labels")) {
    const nlohmann::json& l = config.at("labels");
    ATTEND_CHECK(l.is_array() && static_cast<int64_t>(l.size()) == mc.classes, path,
                 ": the checkpoint's labels must be ", mc.classes, " names");
    for (const auto& name : l) {
      ATTEND_CHECK(name.is_string(), path,
                   ": a label name is not a string: ", io::JsonExcerpt(name));
      out.labels.push_back(name.get<std::string>());
    }
  } else {
    for (int64_t i = 0; i < mc.classes; ++i) out.labels.push_back(std::to_string(i));
  }
  out.train_json = config.contains("train") ? config.at("train").dump() : "{}";
  // Building is capped by the file's tensors (as nmt::LoadModel), so a config claiming a far
  // larger model fails here instead of allocating gigabytes.
  uint64_t file_bytes = 0;
  for (const auto& [name, t] : contents.tensors)
    file_bytes += static_cast<uint64_t>(t.numel()) * DTypeSize(t.dtype());
  const uint64_t cap = models::kModelBuildFactor * file_bytes + (uint64_t{16} << 20);
  Generator gen(0);
  {
    AllocationLimitGuard limit(cap, path +
                                        ": the config describes a larger model than the file's " +
                                        std::to_string(file_bytes) + " bytes of tensors");
    nn::init::SkipRandomInit no_draws;  // LoadCheckpoint overwrites every tensor
    out.model = std::make_shared<models::ImageClassifier>(mc, gen);
  }
  io::LoadCheckpoint(std::move(contents), path, *out.model);  // read once, as nmt::LoadModel
  out.model->Eval();
  return out;
}

}  // namespace attend::nmt
