// Image captioning data for the trainer and the search: images read, converted and resized to
// what a captioner reads, paired with their encoded captions; and the grounding measure.
#include <algorithm>
#include <atomic>
#include <exception>
#include <memory>
#include <mutex>
#include <thread>
#include <vector>

#include "attend/corpus.h"
#include "attend/error.h"
#include "attend/nmt.h"

namespace attend::nmt {

Example ImageExample(const vision::Image& image, const models::ModelConfig& config,
                     const std::vector<models::Seq2Seq::Box>* boxes) {
  ATTEND_CHECK(config.image(), "ImageExample: arch ", models::NameOf(config.arch),
               " is not an image model");
  const int64_t s = config.image_size;
  vision::Image img = vision::ToChannels(image, config.image_channels);
  if (img.width != s || img.height != s) img = vision::Resize(img, s, s);
  Example e;
  e.image = std::make_shared<const std::vector<float>>(vision::ToFloatCHW(img));
  e.feature_dim = s;
  if (config.arch == models::Arch::kTopDown && !config.proposals) {
    ATTEND_CHECK(boxes != nullptr,
                 "this top-down model reads each image's true boxes (it was "
                 "trained with --true-boxes): give the items' boxes");
    const float sx = static_cast<float>(s) / static_cast<float>(image.width);
    const float sy = static_cast<float>(s) / static_cast<float>(image.height);
    std::vector<models::Seq2Seq::Box> scaled;
    for (const auto& b : *boxes) scaled.push_back({b.x0 * sx, b.y0 * sy, b.x1 * sx, b.y1 * sy});
    std::vector<float> flat;
    for (const auto& b : models::FillRegions(scaled, s, config.regions))
      flat.insert(flat.end(), {b.x0, b.y0, b.x1, b.y1});
    e.regions = std::make_shared<const std::vector<float>>(std::move(flat));
  }
  return e;
}

ImageBoxes ItemBoxes(const std::string& items_jsonl) {
  ImageBoxes out;
  for (const auto& [image, items] : data::ReadItemsJsonl(items_jsonl)) {
    auto& boxes = out[image];
    for (const auto& it : items)
      boxes.push_back({static_cast<float>(it.x0), static_cast<float>(it.y0),
                       static_cast<float>(it.x1), static_cast<float>(it.y1)});
  }
  return out;
}

std::vector<Example> LoadCaptionExamples(const std::vector<data::ImageCaption>& images,
                                         const Vocabulary& vocab, const models::ModelConfig& config,
                                         bool all_captions, int64_t max_len, int threads,
                                         int64_t* dropped, const ImageBoxes* boxes) {
  // The pixels, read in parallel (each image once).
  const int64_t n = static_cast<int64_t>(images.size());
  std::vector<Example> pixels(n);
  std::atomic<int64_t> next{0};
  std::exception_ptr error;
  std::mutex error_mutex;
  auto work = [&] {
    for (int64_t i; (i = next++) < n;) {
      try {
        const std::vector<models::Seq2Seq::Box>* given = nullptr;
        if (boxes) {
          auto it = boxes->find(images[i].image);
          ATTEND_CHECK(it != boxes->end(), images[i].image, ": no boxes for this image");
          given = &it->second;
        }
        pixels[i] = ImageExample(vision::ReadImage(images[i].image), config, given);
      } catch (...) {
        std::lock_guard<std::mutex> lock(error_mutex);
        if (!error) error = std::current_exception();
        next = n;
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
  if (error) std::rethrow_exception(error);

  std::vector<Example> out;
  int64_t skipped = 0;
  for (int64_t i = 0; i < n; ++i) {
    const auto& captions = images[i].captions;
    ATTEND_CHECK(!captions.empty(), images[i].image, ": the image has no caption");
    const size_t count = all_captions ? captions.size() : 1;
    for (size_t c = 0; c < count; ++c) {
      Example e = pixels[i];
      e.tgt = vocab.Encode(captions[c]);
      e.index = i;
      if (e.tgt.empty() || (max_len > 0 && static_cast<int64_t>(e.tgt.size()) > max_len)) {
        ++skipped;
        continue;
      }
      out.push_back(std::move(e));
    }
  }
  if (dropped) *dropped = skipped;
  return out;
}

double AttentionMassInBox(const std::vector<float>& weights,
                          const std::vector<models::Seq2Seq::Box>& positions,
                          const models::Seq2Seq::Box& box) {
  ATTEND_CHECK(weights.size() == positions.size(), "AttentionMassInBox: ", weights.size(),
               " weights for ", positions.size(), " positions");
  double mass = 0.0, total = 0.0;
  for (size_t i = 0; i < weights.size(); ++i) {
    const auto& p = positions[i];
    const double area = static_cast<double>(p.x1 - p.x0) * static_cast<double>(p.y1 - p.y0);
    total += weights[i];
    if (area <= 0.0) continue;
    const double w = std::max(0.0f, std::min(p.x1, box.x1) - std::max(p.x0, box.x0));
    const double h = std::max(0.0f, std::min(p.y1, box.y1) - std::max(p.y0, box.y0));
    mass += weights[i] * w * h / area;
  }
  return total > 0.0 ? mass / total : 0.0;
}

}  // namespace attend::nmt
