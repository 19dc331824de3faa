// The image corpora built from Fashion-MNIST: scenes of 2-4 items with captions (`attend corpus
// scenes`) and single cluttered items for classification (`attend corpus cluttered`). Each image is
// drawn from a random stream of its own (seed, corpus, split, index), so worker threads may draw
// and encode them in any order and the files come out byte-identical.
#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <exception>
#include <filesystem>
#include <fstream>
#include <map>
#include <set>
#include <sstream>
#include <thread>

#include <nlohmann/json.hpp>

#include "attend/corpus.h"
#include "attend/error.h"
#include "attend/vision.h"
#include "data/internal.h"

namespace attend::data {
namespace fs = std::filesystem;
namespace {

using detail::SplitMix64;
using detail::StreamSeed;

constexpr const char* kSplitNames[3] = {"train", "dev", "test"};
constexpr int kTest = 2;
constexpr int kClasses = 10;
// Fashion-MNIST train images [0, kDevStart) feed train, [kDevStart, 60000) dev; t10k feeds test.
constexpr int64_t kDevStart = 55000;
// Stream keys of the two corpora.
constexpr uint64_t kScenesKey = 1, kClutteredKey = 2;
// Free pixels kept between two items' boxes, and between an item's box and clutter.
constexpr int64_t kItemGap = 2, kClutterGap = 2;
// The dark shade's factor on the item's intensities.
constexpr double kDark = 0.45;

// Where a split's images come from.
struct Pool {
  const vision::FashionMnist* set = nullptr;
  const char* file = "";  // "train" or "t10k"
  int64_t begin = 0, end = 0;
  std::vector<int64_t> by_class[kClasses];
};

Pool MakePool(const vision::FashionMnist& set, const char* file, int64_t begin, int64_t end) {
  ATTEND_CHECK(set.images.count >= end, "Fashion-MNIST's ", file, " images: ", set.images.count,
               " found, ", end, " needed");
  Pool p;
  p.set = &set;
  p.file = file;
  p.begin = begin;
  p.end = end;
  for (int64_t i = begin; i < end; ++i) p.by_class[set.labels[static_cast<size_t>(i)]].push_back(i);
  for (int c = 0; c < kClasses; ++c)
    ATTEND_CHECK(!p.by_class[c].empty(), "Fashion-MNIST's ", file, " images ", begin, "-", end - 1,
                 " hold no item of class ", c);
  return p;
}

struct Box {
  int64_t x0 = 0, y0 = 0, x1 = 0, y1 = 0;  // exclusive
};

// True when `a` and `b` are at least `gap` pixels apart on some axis.
bool Apart(const Box& a, const Box& b, int64_t gap) {
  return a.x1 + gap <= b.x0 || b.x1 + gap <= a.x0 || a.y1 + gap <= b.y0 || b.y1 + gap <= a.y0;
}

// Gray pixels cropped to the bounding box of the nonzero ones (w == 0: none).
struct Sprite {
  int64_t w = 0, h = 0;
  std::vector<uint8_t> px;
};

// `image` (gray) scaled by `gain`, cropped to its nonzero pixels.
Sprite Crop(const vision::Image& image, int64_t x, int64_t y, int64_t w, int64_t h, double gain) {
  std::vector<uint8_t> px(static_cast<size_t>(w * h));
  int64_t lx = w, ly = h, hx = -1, hy = -1;
  for (int64_t j = 0; j < h; ++j)
    for (int64_t i = 0; i < w; ++i) {
      const auto v = static_cast<uint8_t>(std::lround(image.at(x + i, y + j) * gain));
      px[static_cast<size_t>(j * w + i)] = v;
      if (v == 0) continue;
      lx = std::min(lx, i), hx = std::max(hx, i), ly = std::min(ly, j), hy = std::max(hy, j);
    }
  Sprite s;
  if (hx < 0) return s;
  s.w = hx - lx + 1;
  s.h = hy - ly + 1;
  s.px.resize(static_cast<size_t>(s.w * s.h));
  for (int64_t j = 0; j < s.h; ++j)
    for (int64_t i = 0; i < s.w; ++i)
      s.px[static_cast<size_t>(j * s.w + i)] = px[static_cast<size_t>((j + ly) * w + i + lx)];
  return s;
}

struct Item {
  int cls = 0;
  int64_t source = 0;  // index in the Fashion-MNIST file
  int64_t side = 0;    // the 28 x 28 source scaled to side x side
  bool large = false, dark = false;
  Box box;  // of its nonzero pixels on the canvas
  Sprite sprite;
};

// A canvas being drawn: items never touch, clutter keeps clear of items.
class Canvas {
 public:
  Canvas(int64_t size, const Pool& pool) : size_(size), pool_(pool) {
    image_.width = image_.height = size;
    image_.channels = 1;
    image_.pixels.assign(static_cast<size_t>(size * size), 0);
  }

  // Item of class `cls` scaled to `side` with `gain`, from a random source of the pool.
  Item MakeItem(SplitMix64& rng, int cls, int64_t side, double gain) const {
    const std::vector<int64_t>& sources = pool_.by_class[cls];
    Item item;
    item.cls = cls;
    item.side = side;
    for (int attempt = 0; attempt < 16 && item.sprite.w == 0; ++attempt) {
      item.source = sources[rng.Below(sources.size())];
      vision::Image img = pool_.set->images.image(item.source);
      if (side != img.width) img = vision::Resize(img, side, side);
      item.sprite = Crop(img, 0, 0, side, side, gain);
    }
    ATTEND_CHECK(item.sprite.w > 0, "Fashion-MNIST's ", pool_.file, " images of class ", cls,
                 " kept coming out blank");
    return item;
  }

  // Finds a place for `item` apart from `placed`; false after `attempts` tries.
  bool Place(SplitMix64& rng, Item& item, const std::vector<Item>& placed, int attempts) const {
    const Sprite& s = item.sprite;
    if (s.w > size_ || s.h > size_) return false;
    for (int a = 0; a < attempts; ++a) {
      const auto x = static_cast<int64_t>(rng.Below(static_cast<size_t>(size_ - s.w + 1)));
      const auto y = static_cast<int64_t>(rng.Below(static_cast<size_t>(size_ - s.h + 1)));
      const Box box{x, y, x + s.w, y + s.h};
      bool ok = true;
      for (const Item& other : placed) ok = ok && Apart(box, other.box, kItemGap);
      if (ok) {
        item.box = box;
        return true;
      }
    }
    return false;
  }

  void Draw(const Sprite& s, int64_t x, int64_t y) {
    for (int64_t j = 0; j < s.h; ++j)
      for (int64_t i = 0; i < s.w; ++i) {
        uint8_t& p = image_.pixels[static_cast<size_t>((y + j) * size_ + x + i)];
        p = std::max(p, s.px[static_cast<size_t>(j * s.w + i)]);
      }
  }

  // `count` fragments of random pool images: a k x k patch (k in [lo, hi]) holding enough ink,
  // dimmed to 40-70 %, cropped to its nonzero pixels and put where it keeps clear of every item.
  void DrawClutter(SplitMix64& rng, int64_t count, const std::vector<Item>& items) {
    const int64_t lo = std::max<int64_t>(3, std::lround(6.0 * size_ / 96)),
                  hi = std::max<int64_t>(lo, std::min<int64_t>(27, std::lround(9.0 * size_ / 96)));
    for (int64_t n = 0; n < count; ++n) {
      Sprite frag;
      for (int attempt = 0; attempt < 16 && frag.w == 0; ++attempt) {
        const int64_t src =
            pool_.begin +
            static_cast<int64_t>(rng.Below(static_cast<size_t>(pool_.end - pool_.begin)));
        const int64_t k = rng.Between(lo, hi);
        const int64_t x = rng.Between(0, 28 - k), y = rng.Between(0, 28 - k);
        const double gain = 0.4 + 0.3 * rng.Uniform();
        const vision::Image img = pool_.set->images.image(src);
        int64_t ink = 0;
        for (int64_t j = 0; j < k; ++j)
          for (int64_t i = 0; i < k; ++i) ink += img.at(x + i, y + j) * gain >= 0.5 ? 1 : 0;
        if (ink * 3 < k * k) continue;  // mostly background: not a visible fragment
        frag = Crop(img, x, y, k, k, gain);
      }
      if (frag.w == 0) continue;
      for (int attempt = 0; attempt < 32; ++attempt) {
        const int64_t x = rng.Between(0, size_ - frag.w), y = rng.Between(0, size_ - frag.h);
        const Box box{x, y, x + frag.w, y + frag.h};
        bool ok = true;
        for (const Item& item : items) ok = ok && Apart(box, item.box, kClutterGap);
        if (!ok) continue;
        Draw(frag, x, y);
        break;
      }
    }
  }

  const vision::Image& image() const { return image_; }

 private:
  int64_t size_;
  const Pool& pool_;
  vision::Image image_;
};

// ---- captions ----

enum Relation { kAbove, kBelow, kLeft, kRight };
// The words of each relation, "A <words> B".
const std::vector<std::vector<std::string>> kRelationWords = {{"above", "over"},
                                                              {"below", "under"},
                                                              {"left of", "to the left of"},
                                                              {"right of", "to the right of"}};

// The relations that hold between a's box centre and b's: an axis counts when the centres are at
// least `margin` apart along it and that is at least half their distance along the other axis;
// when neither axis does, the axis of the larger distance (boxes that do not intersect are apart
// along one axis, so the relation is still strictly true).
std::vector<Relation> Relations(const Item& a, const Item& b, double margin) {
  const double dx = (a.box.x0 + a.box.x1 - b.box.x0 - b.box.x1) / 2.0;
  const double dy = (a.box.y0 + a.box.y1 - b.box.y0 - b.box.y1) / 2.0;
  std::vector<Relation> out;
  if (std::fabs(dy) >= margin && std::fabs(dy) >= 0.5 * std::fabs(dx))
    out.push_back(dy < 0 ? kAbove : kBelow);
  if (std::fabs(dx) >= margin && std::fabs(dx) >= 0.5 * std::fabs(dy))
    out.push_back(dx < 0 ? kLeft : kRight);
  if (out.empty())
    out.push_back(std::fabs(dy) >= std::fabs(dx) ? (dy < 0 ? kAbove : kBelow)
                                                 : (dx < 0 ? kLeft : kRight));
  return out;
}

std::string NounPhrase(const Item& item) {
  return std::string("a ") + (item.large ? "large " : "small ") + (item.dark ? "dark " : "") +
         vision::FashionMnistNames()[static_cast<size_t>(item.cls)];
}

// One caption: the items in a random order, the first two joined by a relation, every further one
// attached by "and" to a random item named before it (docs/cli.md, "Image corpora").
std::string Caption(SplitMix64& rng, const std::vector<Item>& items, double margin) {
  std::vector<size_t> order(items.size());
  for (size_t i = 0; i < order.size(); ++i) order[i] = i;
  for (size_t i = order.size(); i > 1; --i) std::swap(order[i - 1], order[rng.Below(i)]);
  auto words = [&](size_t a, size_t b) {
    const std::vector<Relation> rel = Relations(items[a], items[b], margin);
    const std::vector<std::string>& w = kRelationWords[rel[rng.Below(rel.size())]];
    return w[rng.Below(w.size())];
  };
  auto noun = [&](size_t i) { return vision::FashionMnistNames()[items[i].cls]; };
  if (items.size() == 1) return NounPhrase(items[order[0]]);
  const size_t form = rng.Below(3);
  std::string c = form == 1 ? "there is " : "";
  c += NounPhrase(items[order[0]]) + (form == 2 ? " is " : " ") + words(order[0], order[1]) + " " +
       NounPhrase(items[order[1]]);
  for (size_t k = 2; k < order.size(); ++k) {
    const size_t j = order[rng.Below(k)], n = order[k];
    if (rng.Below(2) == 0)
      c += " and " + NounPhrase(items[n]) + " " + words(n, j) + " the " + noun(j);
    else c += " and the " + noun(j) + " is " + words(j, n) + " " + NounPhrase(items[n]);
  }
  return c;
}

// ---- output ----

std::string ImagePath(int split, int64_t index) {
  char name[32];
  std::snprintf(name, sizeof(name), "%05lld.png", static_cast<long long>(index));
  return std::string("images/") + kSplitNames[split] + "/" + name;
}

// A file of the staging directory (no one reads it before the directory is synced and renamed).
void WriteStaged(const fs::path& path, const std::string& bytes) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  ATTEND_CHECK(out.good(), path.string(), ": cannot create the file: ", ErrnoText());
  out.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
  out.close();
  ATTEND_CHECK(out.good(), path.string(), ": write error: ", ErrnoText());
}

nlohmann::ordered_json ItemJson(const Item& item, const char* size) {
  return {{"label", vision::FashionMnistNames()[static_cast<size_t>(item.cls)]},
          {"class", item.cls},
          {"box", {item.box.x0, item.box.y0, item.box.x1, item.box.y1}},
          {"size", size},
          {"shade", item.dark ? "dark" : "normal"},
          {"side", item.side},
          {"source", item.source}};
}

// Runs draw(split, index) for every image of every split on `threads` threads; the first error
// (by split and index) is rethrown once all have stopped.
template <typename F>
void ForEachImage(const int64_t (&counts)[3], int threads, F&& draw) {
  std::vector<std::pair<int, int64_t>> jobs;
  for (int s = 0; s < 3; ++s)
    for (int64_t i = 0; i < counts[s]; ++i) jobs.push_back({s, i});
  const size_t n = static_cast<size_t>(std::max(1, threads));
  std::vector<std::exception_ptr> errors(n);
  std::vector<size_t> failed_at(n, jobs.size());
  std::vector<std::thread> pool;
  for (size_t t = 0; t < n; ++t)
    pool.emplace_back([&, t] {
      for (size_t j = t; j < jobs.size(); j += n) {
        try {
          draw(jobs[j].first, jobs[j].second);
        } catch (...) {
          errors[t] = std::current_exception();
          failed_at[t] = j;
          return;
        }
      }
    });
  for (std::thread& th : pool) th.join();
  size_t first = n;
  for (size_t t = 0; t < n; ++t)
    if (errors[t] && (first == n || failed_at[t] < failed_at[first])) first = t;
  if (first < n) std::rethrow_exception(errors[first]);
}

// The images/ directory built in a staging directory beside it, synced once and swapped in with
// the staged text files (a per-file fsync costs ~5 ms: minutes for a corpus of 23,000 PNGs).
class ImageTree {
 public:
  ImageTree(const std::string& out_dir, const char* what) : what_(what) {
    std::error_code ec;
    out_ = fs::path(out_dir);
    fs::create_directories(out_, ec);
    ATTEND_CHECK(fs::is_directory(out_, ec), what_, ": cannot create --out ", out_dir, ": ",
                 ec.message());
    fresh_ = out_ / ".images.new";
    old_ = out_ / ".images.old";
    fs::remove_all(fresh_, ec);  // left by a build that was killed
    fs::remove_all(old_, ec);
    for (const char* s : kSplitNames) {
      fs::create_directories(fresh_ / "images" / s, ec);
      ATTEND_CHECK(!ec, what_, ": cannot create ", (fresh_ / "images" / s).string(), ": ",
                   ec.message());
    }
  }
  ~ImageTree() {
    std::error_code ec;
    fs::remove_all(fresh_, ec);
    fs::remove_all(old_, ec);
  }
  ImageTree(const ImageTree&) = delete;
  ImageTree& operator=(const ImageTree&) = delete;

  const fs::path& out() const { return out_; }
  fs::path Staged(const std::string& relative) const { return fresh_ / relative; }

  // Syncs the images, moves them into place and commits `staged` (whose last file says the set is
  // complete).
  void Commit(io::StagedFiles& staged) {
    const int fd = ::open(fresh_.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    ATTEND_CHECK(fd >= 0 && ::syncfs(fd) == 0, what_, ": cannot sync ", fresh_.string(), ": ",
                 ErrnoText());
    ::close(fd);
    std::error_code ec;
    const fs::path images = out_ / "images";
    if (fs::exists(images, ec)) {
      fs::rename(images, old_, ec);
      ATTEND_CHECK(!ec, what_, ": cannot move the old ", images.string(), " aside: ", ec.message());
    }
    fs::rename(fresh_ / "images", images, ec);
    ATTEND_CHECK(!ec, what_, ": cannot move ", (fresh_ / "images").string(), " to ",
                 images.string(), ": ", ec.message());
    staged.Commit();
  }

 private:
  const char* what_;
  fs::path out_, fresh_, old_;
};

void CheckCommon(const char* what, const std::string& out_dir, int64_t size,
                 const int64_t (&counts)[3], int64_t clutter, int threads) {
  ATTEND_CHECK(!out_dir.empty(), what, ": --out is required");
  ATTEND_CHECK(size >= 48 && size <= 1024, what, ": --size ", size, " is outside 48-1024 pixels");
  for (int s = 0; s < 3; ++s)
    ATTEND_CHECK(counts[s] >= 0 && counts[s] <= 99999, what, ": --", kSplitNames[s], " ", counts[s],
                 " is outside 0-99999 images");
  ATTEND_CHECK(counts[0] + counts[1] + counts[2] > 0, what, ": every split is empty");
  ATTEND_CHECK(clutter >= 0 && clutter <= 100, what, ": --clutter ", clutter,
               " is outside 0-100 fragments");
  ATTEND_CHECK(threads >= 1 && threads <= 256, what, ": threads ", threads, " is outside 1-256");
}

// The Fashion-MNIST files a corpus needs, and the pool of each split.
struct Sources {
  vision::FashionMnist train, test;
  Pool pools[3];
};

void LoadSources(const std::string& dir, const int64_t (&counts)[3], Sources& src) {
  if (counts[0] + counts[1] > 0) {
    src.train = vision::LoadFashionMnist(dir, false);
    src.pools[0] = MakePool(src.train, "train", 0, kDevStart);
    src.pools[1] = MakePool(src.train, "train", kDevStart, src.train.images.count);
  }
  if (counts[kTest] > 0) {
    src.test = vision::LoadFashionMnist(dir, true);
    src.pools[kTest] = MakePool(src.test, "t10k", 0, src.test.images.count);
  }
}

nlohmann::ordered_json ClassCounts(const std::vector<int64_t>& counts) {
  nlohmann::ordered_json j = nlohmann::ordered_json::object();
  for (int c = 0; c < kClasses; ++c) j[vision::FashionMnistNames()[c]] = counts[c];
  return j;
}

nlohmann::ordered_json SourcesJson() {
  return {{"train", "Fashion-MNIST train images 0-54999"},
          {"dev", "Fashion-MNIST train images 55000-59999"},
          {"test", "Fashion-MNIST t10k images (the test set) only"}};
}

}  // namespace

ScenesCorpusStats BuildScenesCorpus(const ScenesCorpusOptions& opt) {
  constexpr const char* kWhat = "attend corpus scenes";
  const int64_t counts[3] = {opt.train, opt.dev, opt.test};
  CheckCommon(kWhat, opt.out_dir, opt.size, counts, opt.clutter, opt.threads);
  ATTEND_CHECK(1 <= opt.min_items && opt.min_items <= opt.max_items && opt.max_items <= kClasses,
               kWhat, ": items per scene ", opt.min_items, "-", opt.max_items,
               ": need 1 <= min <= max <= ", kClasses, " (the items' classes are distinct)");
  ATTEND_CHECK(opt.captions_per_scene >= 1 && opt.captions_per_scene <= 10, kWhat, ": --captions ",
               opt.captions_per_scene, " is outside 1-10");
  Sources src;
  LoadSources(opt.fashion_dir, counts, src);
  ImageTree tree(opt.out_dir, kWhat);

  // Item sides: small ~0.75 x 28 and large ~1.35 x 28 pixels on the 96-pixel canvas (21 and 38),
  // in proportion on others, each drawn within +-jitter.
  const int64_t small = std::lround(opt.size * 21.0 / 96),
                large = std::lround(opt.size * 38.0 / 96);
  const int64_t jitter = std::max<int64_t>(1, std::lround(opt.size * 2.0 / 96));
  const double margin = std::max(2.0, static_cast<double>(opt.size) / 24);

  struct Scene {
    std::vector<Item> items;
    std::vector<std::string> captions;
    int64_t bytes = 0;
  };
  std::vector<Scene> scenes[3];
  for (int s = 0; s < 3; ++s) scenes[s].resize(static_cast<size_t>(counts[s]));
  ForEachImage(counts, opt.threads, [&](int s, int64_t index) {
    SplitMix64 rng(
        StreamSeed(opt.seed, {kScenesKey, static_cast<uint64_t>(s), static_cast<uint64_t>(index)}));
    const Pool& pool = src.pools[s];
    Canvas canvas(opt.size, pool);
    std::vector<Item> items;
    // A layout that does not fit is drawn again from scratch (rare: the items cover a third of
    // the canvas at most).
    for (int layout = 0; layout < 64 && items.empty(); ++layout) {
      const int64_t n = rng.Between(opt.min_items, opt.max_items);
      std::vector<int> classes(kClasses);
      for (int c = 0; c < kClasses; ++c) classes[c] = c;
      for (size_t i = classes.size(); i > 1; --i) std::swap(classes[i - 1], classes[rng.Below(i)]);
      bool fits = true;
      for (int64_t k = 0; k < n && fits; ++k) {
        const bool is_large = rng.Below(2) == 1, is_dark = rng.Below(3) == 0;
        const int64_t side = (is_large ? large : small) + rng.Between(-jitter, jitter);
        Item item =
            canvas.MakeItem(rng, classes[static_cast<size_t>(k)], side, is_dark ? kDark : 1.0);
        item.large = is_large;
        item.dark = is_dark;
        fits = canvas.Place(rng, item, items, 200);
        items.push_back(std::move(item));
      }
      if (!fits) items.clear();
    }
    ATTEND_CHECK(!items.empty(), kWhat, ": ", kSplitNames[s], " scene ", index,
                 ": found no layout of its items on a ", opt.size,
                 "-pixel canvas (fewer items "
                 "or a larger --size)");
    for (const Item& item : items) canvas.Draw(item.sprite, item.box.x0, item.box.y0);
    canvas.DrawClutter(rng, opt.clutter, items);

    Scene& scene = scenes[s][static_cast<size_t>(index)];
    std::set<std::string> seen;
    for (int attempt = 0;
         attempt < 10000 && static_cast<int64_t>(scene.captions.size()) < opt.captions_per_scene;
         ++attempt) {
      std::string c = Caption(rng, items, margin);
      if (seen.insert(c).second) scene.captions.push_back(std::move(c));
    }
    const std::string png = vision::EncodePng(canvas.image());
    WriteStaged(tree.Staged(ImagePath(s, index)), png);
    scene.bytes = static_cast<int64_t>(png.size());
    for (Item& item : items) item.sprite = Sprite();
    scene.items = std::move(items);
  });

  ScenesCorpusStats st;
  st.items_per_class.assign(kClasses, 0);
  std::map<std::string, int64_t> vocabulary;
  std::vector<int64_t> sizes(2, 0), shades(2, 0);
  nlohmann::ordered_json splits = nlohmann::ordered_json::object();
  io::StagedFiles staged;
  for (int s = 0; s < 3; ++s) {
    std::vector<std::string> tsv, jsonl;
    std::vector<int64_t> per_class(kClasses, 0);
    for (size_t i = 0; i < scenes[s].size(); ++i) {
      const Scene& scene = scenes[s][i];
      const std::string path = ImagePath(s, static_cast<int64_t>(i));
      for (const std::string& c : scene.captions) {
        tsv.push_back(path + "\t" + c);
        std::istringstream words(c);
        for (std::string w; words >> w;) ++vocabulary[w];
      }
      nlohmann::ordered_json items = nlohmann::ordered_json::array();
      for (const Item& item : scene.items) {
        items.push_back(ItemJson(item, item.large ? "large" : "small"));
        ++per_class[item.cls];
        ++sizes[item.large ? 1 : 0];
        ++shades[item.dark ? 1 : 0];
      }
      jsonl.push_back(nlohmann::ordered_json{{"image", path}, {"items", items}}.dump());
      st.scenes[s] += 1;
      st.captions[s] += static_cast<int64_t>(scene.captions.size());
      st.items[s] += static_cast<int64_t>(scene.items.size());
      st.bytes += scene.bytes;
    }
    for (int c = 0; c < kClasses; ++c) st.items_per_class[c] += per_class[c];
    splits[kSplitNames[s]] = {{"scenes", st.scenes[s]},
                              {"captions", st.captions[s]},
                              {"items", st.items[s]},
                              {"items_per_class", ClassCounts(per_class)}};
    staged.AddLines((tree.out() / (std::string(kSplitNames[s]) + ".tsv")).string(), tsv);
    staged.AddLines((tree.out() / (std::string(kSplitNames[s]) + ".items.jsonl")).string(), jsonl);
  }
  st.vocabulary = vocabulary.size();
  for (int s = 0; s < 3 && st.examples.empty(); ++s)
    if (!scenes[s].empty()) st.examples = scenes[s][0].captions;

  nlohmann::ordered_json sj;
  sj["corpus"] = "scenes";
  sj["options"] = {{"size", opt.size},
                   {"train", opt.train},
                   {"dev", opt.dev},
                   {"test", opt.test},
                   {"min_items", opt.min_items},
                   {"max_items", opt.max_items},
                   {"captions_per_scene", opt.captions_per_scene},
                   {"clutter", opt.clutter},
                   {"seed", opt.seed},
                   {"fashion_dir", opt.fashion_dir}};
  sj["splits"] = splits;
  sj["items_per_class"] = ClassCounts(st.items_per_class);
  sj["sizes"] = {{"small", sizes[0]}, {"large", sizes[1]}};
  sj["shades"] = {{"normal", shades[0]}, {"dark", shades[1]}};
  sj["drawing"] = {{"small_side_px", {small - jitter, small + jitter}},
                   {"large_side_px", {large - jitter, large + jitter}},
                   {"dark_gain", kDark},
                   {"gap_between_items_px", kItemGap},
                   {"relation_margin_px", margin}};
  sj["sources"] = SourcesJson();
  sj["png_bytes"] = st.bytes;
  sj["vocabulary"] = vocabulary;
  staged.Add((tree.out() / "stats.json").string(), sj.dump(2) + "\n");
  tree.Commit(staged);
  return st;
}

ClutteredCorpusStats BuildClutteredCorpus(const ClutteredCorpusOptions& opt) {
  constexpr const char* kWhat = "attend corpus cluttered";
  const int64_t counts[3] = {opt.train, opt.dev, opt.test};
  CheckCommon(kWhat, opt.out_dir, opt.size, counts, opt.clutter, opt.threads);
  ATTEND_CHECK(8 <= opt.min_item && opt.min_item <= opt.max_item && opt.max_item <= opt.size, kWhat,
               ": item sides ", opt.min_item, "-", opt.max_item,
               ": need 8 <= min <= max <= ", opt.size, " (--size)");
  Sources src;
  LoadSources(opt.fashion_dir, counts, src);
  ImageTree tree(opt.out_dir, kWhat);

  struct Picture {
    Item item;
    int64_t bytes = 0;
  };
  std::vector<Picture> pictures[3];
  for (int s = 0; s < 3; ++s) pictures[s].resize(static_cast<size_t>(counts[s]));
  ForEachImage(counts, opt.threads, [&](int s, int64_t index) {
    SplitMix64 rng(StreamSeed(
        opt.seed, {kClutteredKey, static_cast<uint64_t>(s), static_cast<uint64_t>(index)}));
    Canvas canvas(opt.size, src.pools[s]);
    const int cls = static_cast<int>(rng.Below(kClasses));
    Item item = canvas.MakeItem(rng, cls, rng.Between(opt.min_item, opt.max_item), 1.0);
    ATTEND_CHECK(canvas.Place(rng, item, {}, 1), kWhat, ": an item of ", item.sprite.w, " x ",
                 item.sprite.h, " pixels does not fit the canvas");
    canvas.Draw(item.sprite, item.box.x0, item.box.y0);
    canvas.DrawClutter(rng, opt.clutter, {item});
    const std::string png = vision::EncodePng(canvas.image());
    WriteStaged(tree.Staged(ImagePath(s, index)), png);
    item.sprite = Sprite();
    pictures[s][static_cast<size_t>(index)] = {std::move(item), static_cast<int64_t>(png.size())};
  });

  ClutteredCorpusStats st;
  st.items_per_class.assign(kClasses, 0);
  nlohmann::ordered_json splits = nlohmann::ordered_json::object();
  io::StagedFiles staged;
  for (int s = 0; s < 3; ++s) {
    std::vector<std::string> tsv, jsonl;
    std::vector<int64_t> per_class(kClasses, 0);
    for (size_t i = 0; i < pictures[s].size(); ++i) {
      const Item& item = pictures[s][i].item;
      const std::string path = ImagePath(s, static_cast<int64_t>(i));
      tsv.push_back(path + "\t" + vision::FashionMnistNames()[static_cast<size_t>(item.cls)]);
      nlohmann::ordered_json items = nlohmann::ordered_json::array();
      items.push_back(ItemJson(item, "small"));
      jsonl.push_back(nlohmann::ordered_json{{"image", path}, {"items", items}}.dump());
      ++per_class[item.cls];
      st.images[s] += 1;
      st.bytes += pictures[s][i].bytes;
    }
    for (int c = 0; c < kClasses; ++c) st.items_per_class[c] += per_class[c];
    splits[kSplitNames[s]] = {{"images", st.images[s]},
                              {"items_per_class", ClassCounts(per_class)}};
    staged.AddLines((tree.out() / (std::string(kSplitNames[s]) + ".tsv")).string(), tsv);
    staged.AddLines((tree.out() / (std::string(kSplitNames[s]) + ".items.jsonl")).string(), jsonl);
  }
  nlohmann::ordered_json sj;
  sj["corpus"] = "cluttered";
  sj["options"] = {
      {"size", opt.size},       {"train", opt.train},       {"dev", opt.dev},
      {"test", opt.test},       {"min_item", opt.min_item}, {"max_item", opt.max_item},
      {"clutter", opt.clutter}, {"seed", opt.seed},         {"fashion_dir", opt.fashion_dir}};
  sj["splits"] = splits;
  sj["items_per_class"] = ClassCounts(st.items_per_class);
  sj["sources"] = SourcesJson();
  sj["png_bytes"] = st.bytes;
  staged.Add((tree.out() / "stats.json").string(), sj.dump(2) + "\n");
  tree.Commit(staged);
  return st;
}

}  // namespace attend::data
