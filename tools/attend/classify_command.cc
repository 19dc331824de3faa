// Image classification with attention (RA-CNN) on the command line:
// - `attend train --task classify`: the classifier's own options on the train command
//   (AddClassifyTrainOptions) and the run (RunClassifyTraining), over nmt::TrainClassifier;
// - `attend classify`: labels, per-scale probabilities and boxes for image files, pictures of
//   where the crops land, or accuracy and IoU over a listing.
#include <CLI/CLI.hpp>

#include <algorithm>
#include <array>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <memory>
#include <string>
#include <type_traits>
#include <vector>

#include "attend/classify.h"
#include "attend/error.h"
#include "attend/nmt.h"
#include "attend/vision.h"
#include "commands.h"

namespace attend::tools {
namespace {

namespace fs = std::filesystem;

// ---- attend train --task classify ----

// The classifier's options given to `attend train` (one train command per process).
struct ClassifyTrainArgs {
  models::ClassifierConfig config;
  int64_t batch_size = 32;
  bool free_coarser = false;
  const CLI::Option* warmup = nullptr;  // the train command's --warmup: given or not
};

ClassifyTrainArgs& TrainArgs() {
  static ClassifyTrainArgs args;
  return args;
}

// Parses `text` into `value` (an option the train command already has for another task, such as
// --image-size, feeds the classifier too); a bad number is left to that option's own parsing.
template <typename T>
void ParseInto(const std::string& text, T& value) {
  try {
    if constexpr (std::is_same_v<T, int64_t>) value = std::stoll(text);
    else if constexpr (std::is_same_v<T, double>) value = std::stod(text);
    else value = text;
  } catch (const std::exception&) {
  }
}

}  // namespace

void AddClassifyTrainOptions(CLI::App& train, std::function<std::string()> task) {
  ClassifyTrainArgs& a = TrainArgs();
  models::ClassifierConfig::ForEachOption(a.config, [&](const models::OptionInfo& o, auto& value) {
    if (o.help == nullptr) return;
    std::string name = std::string("--") + o.name;
    std::replace(name.begin(), name.end(), '_', '-');
    CLI::Option* existing = train.get_option_no_throw(name);
    if (existing == nullptr) {
      train.add_option(name, value, std::string("Classify: ") + o.help)->capture_default_str();
    } else if constexpr (std::is_same_v<std::decay_t<decltype(value)>, std::string>) {
      // The one string option, --arch: it names the sequence models' architectures; with --task
      // classify it takes the classifier's (cnn | racnn), which the sequence models' parser never
      // sees.
      existing->description(existing->get_description() + " (--task classify: cnn | racnn)");
      existing->transform(
          [&value, task](std::string s) -> std::string {
            const bool classifier = s == "cnn" || s == "racnn";
            if (task() != "classify") {
              ATTEND_CHECK(!classifier, "train: --arch ", s,
                           " is an image classifier: give --task classify");
              return s;
            }
            value = s;
            // Anything else is refused by the classifier's config when the run starts.
            return models::NameOf(models::ModelConfig{}.arch);
          },
          "", "classifier arch");
    } else {
      // Another task's option of the same name (--image-size): its value feeds both.
      existing->each([&value](const std::string& s) { ParseInto(s, value); });
    }
  });
  train.add_option("--batch-size", a.batch_size, "Classify: images per batch")
      ->capture_default_str();
  train.add_flag("--no-hold-coarser", a.free_coarser,
                 "Classify: let the ranking loss's gradient reach the coarser scale too");
  a.warmup = train.get_option_no_throw("--warmup");
}

int RunClassifyTraining(const std::string& data_dir, const std::string& train_tsv,
                        const std::string& dev_tsv, int64_t max_train, const nmt::TrainOptions& t,
                        bool resume) {
  const ClassifyTrainArgs& a = TrainArgs();
  a.config.Validate();
  auto listing = [&](const std::string& given, const char* split) {
    if (!given.empty()) return given;
    ATTEND_CHECK(!data_dir.empty(), "train --task classify: no ", split,
                 " images (give --data DIR with ", split, ".tsv, or --", split, "-tsv)");
    return (fs::path(data_dir) / (std::string(split) + ".tsv")).string();
  };
  // The items' boxes beside a listing (DIR/dev.items.jsonl for DIR/dev.tsv), when present.
  auto items = [](const std::string& tsv) {
    if (tsv.size() <= 4 || !tsv.ends_with(".tsv")) return std::string();
    const std::string p = tsv.substr(0, tsv.size() - 4) + ".items.jsonl";
    return fs::exists(p) ? p : std::string();
  };
  const std::string train_path = listing(train_tsv, "train"), dev_path = listing(dev_tsv, "dev");
  const auto t0 = std::chrono::steady_clock::now();
  std::vector<nmt::LabeledImage> train =
      nmt::LoadLabeledImages(train_path, "", a.config, t.threads);
  if (max_train > 0 && static_cast<int64_t>(train.size()) > max_train) train.resize(max_train);
  const std::vector<nmt::LabeledImage> dev =
      nmt::LoadLabeledImages(dev_path, items(dev_path), a.config, t.threads);
  int64_t boxes = 0;
  for (const auto& im : dev) boxes += im.has_box;
  std::fprintf(stderr, "images: %zu training, %zu dev (%lld with a true box), in %.1f s\n",
               train.size(), dev.size(), (long long)boxes,
               std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count());

  nmt::ClassifyTrainOptions o;
  o.out_dir = t.out_dir;
  o.batch_size = a.batch_size;
  o.lr = t.lr;
  if (a.warmup != nullptr && a.warmup->count() > 0) o.warmup = t.warmup;
  o.clip_norm = t.clip_norm;
  o.max_steps = t.max_steps;
  o.max_epochs = t.max_epochs;
  o.max_minutes = t.max_minutes;
  o.valid_every = t.valid_every;
  o.patience = t.patience;
  o.seed = t.seed;
  o.threads = t.threads;
  o.progress = t.progress;
  o.log_every = t.log_every;
  o.hold_coarser = !a.free_coarser;
  Generator gen(t.seed);
  models::ImageClassifier model(a.config, gen);
  const nmt::ClassifyTrainSummary s = nmt::TrainClassifier(model, train, dev, o, resume);
  std::printf("steps %lld, %.0f s, %.1f images/s, best dev combined accuracy %.2f, checkpoint %s\n",
              (long long)s.steps, s.seconds, s.images_per_second, s.best_accuracy,
              (fs::path(o.out_dir) / "best.ckpt").c_str());
  return 0;
}

// ---- attend classify ----

namespace {

struct ClassifyArgs {
  std::string model_path, tsv, items, png_dir;
  std::vector<std::string> files;
  int64_t batch_size = 64;
  bool json = false;
  int threads = 0;
};

// The colour of scale s's box (s >= 2) and of its crop's frame.
std::array<uint8_t, 3> ScaleColor(size_t s) {
  static const std::array<uint8_t, 3> colors[] = {{230, 40, 40}, {40, 140, 255}, {40, 200, 80}};
  return colors[(s - 2) % 3];
}

// A picture: the input (kZoom pixels per model pixel) with each scale's box drawn, then each
// scale's crop, as large as the input, framed in its box's colour; scale 3's box is also drawn on
// scale 2's crop, where it was proposed.
constexpr int64_t kZoom = 2, kMargin = 8, kLine = 2;

void DrawFrame(vision::Image& img, int64_t x0, int64_t y0, int64_t x1, int64_t y1,
               std::array<uint8_t, 3> color) {
  auto put = [&](int64_t x, int64_t y) {
    if (x < 0 || y < 0 || x >= img.width || y >= img.height) return;
    for (int c = 0; c < 3; ++c)
      img.pixels[static_cast<size_t>((y * img.width + x) * 3 + c)] = color[c];
  };
  for (int64_t k = 0; k < kLine; ++k) {
    for (int64_t x = x0; x <= x1; ++x) {
      put(x, y0 + k);
      put(x, y1 - k);
    }
    for (int64_t y = y0; y <= y1; ++y) {
      put(x0 + k, y);
      put(x1 - k, y);
    }
  }
}

// Copies `chw` ([channels, side, side] in [0, 1]) into `img` at (left, top), `size` pixels a side
// (nearest neighbour).
void Paste(vision::Image& img, const std::vector<float>& chw, int64_t channels, int64_t side,
           int64_t left, int64_t top, int64_t size) {
  for (int64_t y = 0; y < size; ++y)
    for (int64_t x = 0; x < size; ++x) {
      const int64_t sx = x * side / size, sy = y * side / size;
      for (int64_t c = 0; c < 3; ++c) {
        const float v = chw[static_cast<size_t>(((channels == 3 ? c : 0) * side + sy) * side + sx)];
        img.pixels[static_cast<size_t>(((top + y) * img.width + left + x) * 3 + c)] =
            static_cast<uint8_t>(std::lround(std::clamp(v, 0.0f, 1.0f) * 255.0f));
      }
    }
}

void WriteCropsPng(const std::string& path, const std::vector<float>& pixels,
                   const nmt::ClassifiedImage& ci, const models::ClassifierConfig& c) {
  const int64_t size = c.image_size * kZoom;
  const int64_t panels = 1 + static_cast<int64_t>(ci.crops.size());
  vision::Image img;
  img.width = kMargin + panels * (size + kMargin);
  img.height = size + 2 * kMargin;
  img.channels = 3;
  img.pixels.assign(static_cast<size_t>(img.width * img.height * 3), 255);
  Paste(img, pixels, c.channels, c.image_size, kMargin, kMargin, size);
  for (size_t s = 0; s < ci.boxes.size(); ++s) {
    const std::array<float, 4> b = nmt::BoxCorners(ci.boxes[s], c.image_size);
    auto px = [&](float v) { return kMargin + static_cast<int64_t>(std::lround(v * kZoom)); };
    DrawFrame(img, px(b[0]), px(b[1]), px(b[2]) - 1, px(b[3]) - 1, ScaleColor(s + 2));
  }
  for (size_t s = 0; s < ci.crops.size(); ++s) {
    const int64_t left = kMargin + static_cast<int64_t>(s + 1) * (size + kMargin);
    Paste(img, ci.crops[s], c.channels, c.zoom_size, left, kMargin, size);
    DrawFrame(img, left, kMargin, left + size - 1, kMargin + size - 1, ScaleColor(s + 2));
    if (s + 1 < ci.local.size()) {
      // The next scale's box, in this crop's pixels.
      const std::array<float, 4> b = nmt::BoxCorners(ci.local[s + 1], c.zoom_size);
      const double f = static_cast<double>(size) / static_cast<double>(c.zoom_size);
      auto px = [&](float v, int64_t o) { return o + static_cast<int64_t>(std::lround(v * f)); };
      DrawFrame(img, px(b[0], left), px(b[1], kMargin), px(b[2], left) - 1, px(b[3], kMargin) - 1,
                ScaleColor(s + 3));
    }
  }
  vision::WritePng(path, img);
}

int RunClassify(ClassifyArgs& a) {
  if (a.threads > 0) SetNumThreads(a.threads);
  ATTEND_CHECK(a.tsv.empty() != a.files.empty(),
               "classify: give image files or --tsv FILE (one of the two)");
  ATTEND_CHECK(a.items.empty() || !a.tsv.empty(), "classify: --items needs --tsv");
  ATTEND_CHECK(a.batch_size > 0, "classify: --batch-size must be positive");
  const nmt::LoadedClassifier m = nmt::LoadClassifier(a.model_path);
  const models::ClassifierConfig& c = m.model->config();
  ATTEND_CHECK(a.png_dir.empty() || c.NumScales() > 1, "classify: ", a.model_path,
               " is a one-scale cnn: it has no boxes or crops to draw (--crops-png)");
  if (!a.png_dir.empty()) {
    std::error_code ec;
    fs::create_directories(a.png_dir, ec);
    ATTEND_CHECK(!ec, "classify: cannot create ", a.png_dir, ": ", ec.message());
  }
  auto png_name = [&](size_t i) {
    char name[32];
    std::snprintf(name, sizeof(name), "%06zu.png", i);
    return (fs::path(a.png_dir) / name).string();
  };

  if (!a.tsv.empty()) {
    const auto t0 = std::chrono::steady_clock::now();
    const std::vector<nmt::LabeledImage> images =
        nmt::LoadLabeledImages(a.tsv, a.items, c, a.threads, m.labels);
    const nmt::ClassifyEval e = nmt::EvaluateClassifier(*m.model, images, a.batch_size);
    if (!a.png_dir.empty()) {
      std::vector<const std::vector<float>*> pixels;
      for (const auto& im : images) pixels.push_back(&im.pixels);
      const auto out = nmt::ClassifyImages(*m.model, pixels, a.batch_size, true);
      for (size_t i = 0; i < out.size(); ++i)
        WriteCropsPng(png_name(i), images[i].pixels, out[i], c);
    }
    const double seconds =
        std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    if (a.json) {
      std::printf("{\"images\": %lld, \"accuracy\": [", (long long)e.images);
      for (size_t s = 0; s < e.accuracy.size(); ++s)
        std::printf("%s%.4f", s ? ", " : "", e.accuracy[s]);
      std::printf("], \"combined\": %.4f, \"loss\": %.6f, \"boxes\": %lld, \"iou\": [", e.combined,
                  e.loss, (long long)e.boxes);
      for (size_t s = 0; s < e.iou.size(); ++s) std::printf("%s%.4f", s ? ", " : "", e.iou[s]);
      std::printf("], \"iou50\": [");
      for (size_t s = 0; s < e.iou50.size(); ++s) std::printf("%s%.4f", s ? ", " : "", e.iou50[s]);
      std::printf("]}\n");
    } else {
      std::printf("%lld images in %.1f s: %s\n", (long long)e.images, seconds,
                  e.Describe().c_str());
      if (!e.iou.empty() && e.boxes == 0)
        std::printf("(no true boxes: give --items FILE for the IoU)\n");
    }
    return 0;
  }

  // Image files: one line each, in order; an image that cannot be read is reported and gets an
  // empty line, the others keep their places, and the exit code is 1.
  std::vector<std::vector<float>> pixels(a.files.size());
  std::vector<std::array<int64_t, 2>> sizes(a.files.size(), {0, 0});
  std::vector<bool> ok(a.files.size(), false);
  bool failed = false;
  for (size_t i = 0; i < a.files.size(); ++i) {
    try {
      const vision::Image img = vision::ReadImage(a.files[i]);
      sizes[i] = {img.width, img.height};
      pixels[i] = nmt::ClassifierPixels(a.files[i], c);
      ok[i] = true;
    } catch (const Error& e) {
      std::fprintf(stderr, "attend: error: %s\n", e.what());
      failed = true;
    }
  }
  std::vector<const std::vector<float>*> readable;
  for (size_t i = 0; i < pixels.size(); ++i)
    if (ok[i]) readable.push_back(&pixels[i]);
  const auto out = nmt::ClassifyImages(*m.model, readable, a.batch_size, !a.png_dir.empty());
  std::string text;
  size_t k = 0;
  for (size_t i = 0; i < a.files.size(); ++i) {
    if (!ok[i]) {
      text += "\n";
      continue;
    }
    const nmt::ClassifiedImage& ci = out[k++];
    std::string line = m.labels[static_cast<size_t>(ci.label)] + "\t";
    char buf[96];
    for (size_t s = 0; s < ci.per_scale.size(); ++s) {
      std::snprintf(buf, sizeof(buf), "scale%zu %.3f ", s + 1,
                    ci.per_scale[s][static_cast<size_t>(ci.label)]);
      line += buf;
    }
    std::snprintf(buf, sizeof(buf), "combined %.3f",
                  ci.probabilities[static_cast<size_t>(ci.label)]);
    line += buf;
    // Boxes as corners in the file's own pixels.
    const double sx = static_cast<double>(sizes[i][0]) / static_cast<double>(c.image_size);
    const double sy = static_cast<double>(sizes[i][1]) / static_cast<double>(c.image_size);
    for (size_t s = 0; s < ci.boxes.size(); ++s) {
      const std::array<float, 4> b = nmt::BoxCorners(ci.boxes[s], c.image_size);
      std::snprintf(buf, sizeof(buf), "%sbox%zu %.1f %.1f %.1f %.1f", s ? " " : "\t", s + 2,
                    b[0] * sx, b[1] * sy, b[2] * sx, b[3] * sy);
      line += buf;
    }
    text += line + "\n";
    if (!a.png_dir.empty()) WriteCropsPng(png_name(i), pixels[i], ci, c);
  }
  std::fwrite(text.data(), 1, text.size(), stdout);
  return failed ? 1 : 0;
}

}  // namespace

Runner RegisterClassifyCommand(CLI::App& app) {
  auto a = std::make_shared<ClassifyArgs>();
  CLI::App* c = app.add_subcommand("classify", "Classify images with a CNN or RA-CNN classifier");
  c->add_option("-m,--model", a->model_path, "Checkpoint written by attend train --task classify")
      ->required();
  c->add_option("files", a->files, "Image files (PNG, JPEG, ...)");
  c->add_option("--tsv", a->tsv,
                "Labelled images (image<TAB>label): prints accuracy per scale and combined");
  c->add_option("--items", a->items,
                "With --tsv: the items' boxes (<split>.items.jsonl): prints the boxes' mean IoU");
  c->add_option("--crops-png", a->png_dir,
                "Write, per image, the image with each scale's box and the zoomed crops "
                "(NNNNNN.png) here");
  c->add_option("--batch-size", a->batch_size, "Images run together")->capture_default_str();
  c->add_flag("--json", a->json, "With --tsv: the figures as one JSON line");
  c->add_option("--threads", a->threads, "Threads (0 = all cores)");
  return [a]() { return RunClassify(*a); };
}

}  // namespace attend::tools
