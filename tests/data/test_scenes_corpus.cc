// Tests of the image corpora (`attend corpus scenes` and `cluttered`) on small builds:
// byte-identical rebuilds whatever the thread count; items inside the canvas, apart from one
// another, with tight boxes of their drawn pixels, drawn exactly from the recorded Fashion-MNIST
// source (test scenes from t10k only); captions that name exactly the scene's items with their
// attributes and only true spatial relations; the readers' grouping, path resolution and errors
// (file:line); and the command line.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <map>
#include <set>
#include <sstream>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "attend/corpus.h"
#include "attend/error.h"
#include "attend/vision.h"
#include "support/command.h"
#include "support/errors.h"
#include "support/files.h"

namespace attend::data {
namespace {

namespace fs = std::filesystem;
using attend::testing::AttendCommand;
using attend::testing::ReadFile;
using attend::testing::RunCommand;
using attend::testing::ShellQuote;
using attend::testing::TempDir;
using attend::testing::ThrownMessage;
using attend::testing::WriteFile;
using ::testing::HasSubstr;

constexpr const char* kSplits[3] = {"train", "dev", "test"};

bool HaveFashionMnist() {
  return fs::exists(std::string(vision::kFashionMnistDir) + "/t10k-images-idx3-ubyte.gz") &&
         fs::exists(std::string(vision::kFashionMnistDir) + "/train-images-idx3-ubyte.gz");
}

#define REQUIRE_FASHION_MNIST() \
  if (!HaveFashionMnist()) GTEST_SKIP() << "dataset-fashion-mnist is not installed"

ScenesCorpusOptions SmallScenes(const std::string& out) {
  ScenesCorpusOptions o;
  o.out_dir = out;
  o.train = 20;
  o.dev = 5;
  o.test = 5;
  return o;
}

// Every file under `root` (relative path -> bytes).
std::map<std::string, std::string> Tree(const fs::path& root) {
  std::map<std::string, std::string> files;
  for (const auto& e : fs::recursive_directory_iterator(root))
    if (e.is_regular_file())
      files[fs::relative(e.path(), root).string()] = ReadFile(e.path().string());
  return files;
}

std::vector<std::string> Words(const std::string& s) {
  std::istringstream in(s);
  std::vector<std::string> w;
  for (std::string x; in >> x;) w.push_back(x);
  return w;
}

struct Scene {
  std::string image;
  std::vector<nlohmann::json> items;  // as written in items.jsonl
  std::vector<std::string> captions;
};

// The scenes of one split: items.jsonl read raw (every key), captions through ReadCaptionsTsv.
std::vector<Scene> ReadSplit(const std::string& dir, const std::string& split) {
  std::vector<Scene> scenes;
  std::istringstream lines(ReadFile(dir + "/" + split + ".items.jsonl"));
  for (std::string line; std::getline(lines, line);) {
    const nlohmann::json j = nlohmann::json::parse(line);
    scenes.push_back({dir + "/" + j["image"].get<std::string>(),
                      j["items"].get<std::vector<nlohmann::json>>(),
                      {}});
  }
  const std::vector<ImageCaption> captions = ReadCaptionsTsv(dir + "/" + split + ".tsv");
  EXPECT_EQ(captions.size(), scenes.size());
  for (size_t i = 0; i < std::min(captions.size(), scenes.size()); ++i) {
    EXPECT_EQ(captions[i].image, scenes[i].image);
    scenes[i].captions = captions[i].captions;
  }
  return scenes;
}

TEST(ScenesCorpus, RebuildsAreByteIdenticalWhateverTheThreads) {
  REQUIRE_FASHION_MNIST();
  TempDir dir;
  ScenesCorpusOptions a = SmallScenes(dir / "a"), b = SmallScenes(dir / "b");
  a.threads = 1;
  b.threads = 2;
  const ScenesCorpusStats st = BuildScenesCorpus(a);
  BuildScenesCorpus(b);
  EXPECT_EQ(st.scenes[0], 20);
  EXPECT_EQ(st.captions[1], 25);
  const auto ta = Tree(dir.path() / "a"), tb = Tree(dir.path() / "b");
  EXPECT_EQ(ta.size(), 30u + 7u);  // 30 PNGs, 3 tsv, 3 jsonl, stats.json
  EXPECT_TRUE(ta == tb);
  // A rebuild into the same directory replaces it, with nothing left over.
  BuildScenesCorpus(a);
  EXPECT_TRUE(Tree(dir.path() / "a") == ta);
  // Another seed draws other scenes.
  ScenesCorpusOptions c = SmallScenes(dir / "c");
  c.seed = 2;
  BuildScenesCorpus(c);
  EXPECT_NE(Tree(dir.path() / "c").at("images/train/00000.png"), ta.at("images/train/00000.png"));
}

TEST(ScenesCorpus, ItemsAreApartInsideTheCanvasAndDrawnFromTheirSource) {
  REQUIRE_FASHION_MNIST();
  TempDir dir;
  BuildScenesCorpus(SmallScenes(dir / "s"));
  const vision::FashionMnist train = vision::LoadFashionMnist(vision::kFashionMnistDir, false);
  const vision::FashionMnist test = vision::LoadFashionMnist(vision::kFashionMnistDir, true);
  for (int s = 0; s < 3; ++s) {
    const std::vector<Scene> scenes = ReadSplit(dir / "s", kSplits[s]);
    ASSERT_EQ(scenes.size(), s == 0 ? 20u : 5u);
    const std::vector<std::pair<std::string, std::vector<ItemBox>>> boxes =
        ReadItemsJsonl(dir / "s" + "/" + kSplits[s] + ".items.jsonl");
    ASSERT_EQ(boxes.size(), scenes.size());
    for (size_t i = 0; i < scenes.size(); ++i) {
      const Scene& scene = scenes[i];
      SCOPED_TRACE(scene.image);
      EXPECT_EQ(boxes[i].first, scene.image);
      const vision::Image canvas = vision::ReadImage(scene.image);
      ASSERT_EQ(canvas.width, 96);
      ASSERT_EQ(canvas.height, 96);
      ASSERT_EQ(canvas.channels, 1);
      ASSERT_GE(scene.items.size(), 2u);
      ASSERT_LE(scene.items.size(), 4u);
      std::set<int> classes;
      for (size_t k = 0; k < scene.items.size(); ++k) {
        const nlohmann::json& it = scene.items[k];
        const ItemBox& box = boxes[i].second[k];
        const int cls = it["class"].get<int>();
        EXPECT_TRUE(classes.insert(cls).second) << "class " << cls << " twice";
        EXPECT_EQ(box.label, vision::FashionMnistNames()[cls]);
        EXPECT_EQ(box.cls, cls);
        ASSERT_TRUE(0 <= box.x0 && box.x0 < box.x1 && box.x1 <= 96 && 0 <= box.y0 &&
                    box.y0 < box.y1 && box.y1 <= 96);
        for (size_t m = 0; m < k; ++m) {
          const ItemBox& o = boxes[i].second[m];
          EXPECT_TRUE(box.x1 <= o.x0 || o.x1 <= box.x0 || box.y1 <= o.y0 || o.y1 <= box.y0)
              << "items " << m << " and " << k << " overlap";
        }
        // The item as drawn: its source scaled to `side`, times the shade, cropped to its nonzero
        // pixels, is exactly the canvas inside the box (the box is tight, nothing else is there).
        const int64_t source = it["source"].get<int64_t>();
        const vision::FashionMnist& set = s == 2 ? test : train;
        EXPECT_TRUE(s == 0 ? source < 55000 : s == 1 ? source >= 55000 : source < 10000) << source;
        ASSERT_LT(source, set.images.count);
        EXPECT_EQ(set.labels[static_cast<size_t>(source)], cls);
        const int64_t side = it["side"].get<int64_t>();
        const bool large = it["size"] == "large", dark = it["shade"] == "dark";
        EXPECT_TRUE(large ? side >= 36 && side <= 40 : side >= 19 && side <= 23) << side;
        vision::Image item = set.images.image(source);
        if (side != 28) item = vision::Resize(item, side, side);
        int64_t lx = side, ly = side, hx = -1, hy = -1;
        for (uint8_t& p : item.pixels) p = static_cast<uint8_t>(std::lround(p * (dark ? 0.45 : 1)));
        for (int64_t y = 0; y < side; ++y)
          for (int64_t x = 0; x < side; ++x)
            if (item.at(x, y) != 0)
              lx = std::min(lx, x), hx = std::max(hx, x), ly = std::min(ly, y),
              hy = std::max(hy, y);
        ASSERT_EQ(hx - lx + 1, box.x1 - box.x0);
        ASSERT_EQ(hy - ly + 1, box.y1 - box.y0);
        int64_t mismatches = 0;
        for (int64_t y = box.y0; y < box.y1; ++y)
          for (int64_t x = box.x0; x < box.x1; ++x)
            mismatches += canvas.at(x, y) != item.at(x - box.x0 + lx, y - box.y0 + ly);
        EXPECT_EQ(mismatches, 0) << "item " << k << " is not its source " << source;
      }
    }
  }
}

// The relation a caption word claims, from the boxes' centres.
bool Holds(const std::string& rel, const ItemBox& a, const ItemBox& b) {
  const double ax = (a.x0 + a.x1) / 2.0, ay = (a.y0 + a.y1) / 2.0;
  const double bx = (b.x0 + b.x1) / 2.0, by = (b.y0 + b.y1) / 2.0;
  if (rel == "above" || rel == "over") return ay < by;
  if (rel == "below" || rel == "under") return ay > by;
  if (rel == "left") return ax < bx;
  if (rel == "right") return ax > bx;
  ADD_FAILURE() << "unknown relation " << rel;
  return false;
}

TEST(ScenesCorpus, CaptionsNameTheItemsAndTrueRelations) {
  REQUIRE_FASHION_MNIST();
  TempDir dir;
  BuildScenesCorpus(SmallScenes(dir / "s"));
  const std::set<std::string> grammar = {"a",     "the",   "there", "is",   "and",   "small",
                                         "large", "dark",  "above", "over", "below", "under",
                                         "left",  "right", "of",    "to"};
  std::set<std::string> relations_seen;
  for (const char* split : kSplits) {
    const std::vector<Scene> scenes = ReadSplit(dir / "s", split);
    const auto boxes = ReadItemsJsonl(dir / "s" + "/" + split + ".items.jsonl");
    for (size_t i = 0; i < scenes.size(); ++i) {
      const Scene& scene = scenes[i];
      std::map<std::string, size_t> by_noun;
      for (size_t k = 0; k < scene.items.size(); ++k)
        by_noun[scene.items[k]["label"].get<std::string>()] = k;
      ASSERT_EQ(scene.captions.size(), 5u);
      EXPECT_EQ(std::set<std::string>(scene.captions.begin(), scene.captions.end()).size(), 5u)
          << "captions repeat";
      for (const std::string& caption : scene.captions) {
        SCOPED_TRACE(scene.image + ": " + caption);
        EXPECT_EQ(caption, [&] {
          std::string joined;
          for (const std::string& w : Words(caption)) joined += (joined.empty() ? "" : " ") + w;
          return joined;
        }()) << "not single-spaced";
        const std::vector<std::string> w = Words(caption);
        std::set<std::string> named;
        std::vector<size_t> noun_at(w.size(), SIZE_MAX);  // item of each noun position
        for (size_t p = 0; p < w.size(); ++p) {
          const auto it = by_noun.find(w[p]);
          if (it != by_noun.end()) {
            named.insert(w[p]);
            noun_at[p] = it->second;
            // Its attributes: "a <size> [dark] noun" at first mention, "the noun" after.
            const nlohmann::json& item = scene.items[it->second];
            size_t q = p;
            bool dark = false;
            if (q > 0 && w[q - 1] == "dark") dark = true, --q;
            ASSERT_GT(q, 0u);
            if (w[q - 1] == "the") {
              EXPECT_FALSE(dark);
            } else {
              ASSERT_GE(q, 2u);
              EXPECT_EQ(w[q - 1], item["size"].get<std::string>());
              EXPECT_EQ(w[q - 2], "a");
              EXPECT_EQ(dark, item["shade"] == "dark");
            }
          } else {
            EXPECT_TRUE(grammar.count(w[p])) << "word " << w[p] << " is neither noun nor grammar";
            EXPECT_EQ(vision::FashionMnistNames().end(),
                      std::find(vision::FashionMnistNames().begin(),
                                vision::FashionMnistNames().end(), w[p]))
                << w[p] << " names an item the scene does not have";
          }
        }
        EXPECT_EQ(named.size(), scene.items.size()) << "not every item is named";
        // Each relation word relates the nearest noun before it to the nearest noun after it.
        for (size_t p = 0; p < w.size(); ++p) {
          if (!std::set<std::string>{"above", "over", "below", "under", "left", "right"}.count(
                  w[p]))
            continue;
          relations_seen.insert(w[p]);
          size_t before = SIZE_MAX, after = SIZE_MAX;
          for (size_t q = p; q-- > 0;)
            if (noun_at[q] != SIZE_MAX) {
              before = noun_at[q];
              break;
            }
          for (size_t q = p + 1; q < w.size(); ++q)
            if (noun_at[q] != SIZE_MAX) {
              after = noun_at[q];
              break;
            }
          ASSERT_NE(before, SIZE_MAX);
          ASSERT_NE(after, SIZE_MAX);
          ASSERT_NE(before, after);
          EXPECT_TRUE(Holds(w[p], boxes[i].second[before], boxes[i].second[after]))
              << w[p] << " does not hold between " << boxes[i].second[before].label << " and "
              << boxes[i].second[after].label;
        }
      }
    }
  }
  EXPECT_EQ(relations_seen.size(), 6u);  // every relation word occurs in 30 scenes
}

TEST(ClutteredCorpus, OneItemPerImageFromItsSplit) {
  REQUIRE_FASHION_MNIST();
  TempDir dir;
  ClutteredCorpusOptions o;
  o.out_dir = dir / "c";
  o.train = 12;
  o.dev = 3;
  o.test = 4;
  const ClutteredCorpusStats st = BuildClutteredCorpus(o);
  EXPECT_EQ(st.images[2], 4);
  const auto first = Tree(dir.path() / "c");
  o.threads = 1;
  BuildClutteredCorpus(o);
  EXPECT_TRUE(Tree(dir.path() / "c") == first);
  for (const char* split : kSplits) {
    const std::vector<ImageCaption> labels = ReadCaptionsTsv(dir / "c" + "/" + split + ".tsv");
    const auto items = ReadItemsJsonl(dir / "c" + "/" + split + ".items.jsonl");
    ASSERT_EQ(labels.size(), items.size());
    for (size_t i = 0; i < labels.size(); ++i) {
      ASSERT_EQ(labels[i].captions.size(), 1u);
      ASSERT_EQ(items[i].second.size(), 1u);
      const ItemBox& b = items[i].second[0];
      EXPECT_EQ(labels[i].captions[0], b.label);
      EXPECT_EQ(labels[i].image, items[i].first);
      EXPECT_LE(std::max(b.x1 - b.x0, b.y1 - b.y0), 28);
      EXPECT_TRUE(b.x0 >= 0 && b.x1 <= 96 && b.y0 >= 0 && b.y1 <= 96);
      const vision::Image img = vision::ReadImage(items[i].first);
      int64_t ink = 0;
      for (int64_t y = b.y0; y < b.y1; ++y)
        for (int64_t x = b.x0; x < b.x1; ++x) ink += img.at(x, y) > 0;
      EXPECT_GT(ink, 0);
    }
  }
  // Test images come from t10k: sources below 10000 (train's dev pool starts at 55000).
  std::istringstream lines(ReadFile(dir / "c" + "/dev.items.jsonl"));
  for (std::string line; std::getline(lines, line);)
    EXPECT_GE(nlohmann::json::parse(line)["items"][0]["source"].get<int64_t>(), 55000);
}

TEST(ScenesCorpus, RefusesBadOptions) {
  TempDir dir;
  ScenesCorpusOptions o = SmallScenes(dir / "x");
  o.captions_per_scene = 11;
  EXPECT_THAT(ThrownMessage([&] { BuildScenesCorpus(o); }), HasSubstr("--captions 11"));
  o = SmallScenes(dir / "x");
  o.min_items = 3;
  o.max_items = 2;
  EXPECT_THAT(ThrownMessage([&] { BuildScenesCorpus(o); }), HasSubstr("items per scene 3-2"));
  o = SmallScenes(dir / "x");
  o.fashion_dir = dir / "nowhere";
  EXPECT_THAT(ThrownMessage([&] { BuildScenesCorpus(o); }), HasSubstr("dataset-fashion-mnist"));
}

TEST(ScenesCorpus, ReadCaptionsTsvGroupsAndResolves) {
  TempDir dir;
  WriteFile(dir / "d/caps.tsv",
            "a.png\ta bag\nb.png\ta boot\na.png\ta small bag\n/abs/c.png\tthe coat\n");
  const std::vector<ImageCaption> caps = ReadCaptionsTsv(dir / "d/caps.tsv");
  ASSERT_EQ(caps.size(), 3u);
  EXPECT_EQ(caps[0].image, dir / "d/a.png");
  EXPECT_EQ(caps[0].captions, (std::vector<std::string>{"a bag", "a small bag"}));
  EXPECT_EQ(caps[1].image, dir / "d/b.png");
  EXPECT_EQ(caps[2].image, "/abs/c.png");
}

TEST(ScenesCorpus, ReadCaptionsTsvErrorsNameFileAndLine) {
  TempDir dir;
  const std::string path = dir / "bad.tsv";
  WriteFile(path, "a.png\tok\nno tab here\n");
  EXPECT_THAT(ThrownMessage([&] { ReadCaptionsTsv(path); }),
              HasSubstr(path + ":2: expected exactly one tab"));
  WriteFile(path, "a.png\tok\tand more\n");
  EXPECT_THAT(ThrownMessage([&] { ReadCaptionsTsv(path); }), HasSubstr(path + ":1: expected"));
  WriteFile(path, "a.png\tok\nb.png\tfine\nc.png\t\n");
  EXPECT_THAT(ThrownMessage([&] { ReadCaptionsTsv(path); }), HasSubstr(path + ":3: empty caption"));
  WriteFile(path, "\tcaption\n");
  EXPECT_THAT(ThrownMessage([&] { ReadCaptionsTsv(path); }),
              HasSubstr(path + ":1: empty image path"));
  WriteFile(path, "a.png\tok\na.png\tbad \xff byte\n");
  EXPECT_THAT(ThrownMessage([&] { ReadCaptionsTsv(path); }), HasSubstr(path + ":2: invalid UTF-8"));
  WriteFile(path, "");
  EXPECT_THAT(ThrownMessage([&] { ReadCaptionsTsv(path); }), HasSubstr(path + ": no lines"));
  EXPECT_THAT(ThrownMessage([&] { ReadCaptionsTsv(dir / "missing.tsv"); }),
              HasSubstr("missing.tsv: no such file"));
}

TEST(ScenesCorpus, ReadItemsJsonlErrorsNameFileAndLine) {
  TempDir dir;
  const std::string path = dir / "items.jsonl";
  const std::string good =
      R"({"image": "x.png", "items": [{"label": "bag", "class": 8, "box": [1, 2, 3, 4]}]})";
  WriteFile(path, good + "\n");
  const auto items = ReadItemsJsonl(path);
  ASSERT_EQ(items.size(), 1u);
  EXPECT_EQ(items[0].first, dir / "x.png");
  ASSERT_EQ(items[0].second.size(), 1u);
  EXPECT_EQ(items[0].second[0].label, "bag");
  EXPECT_EQ(items[0].second[0].y1, 4);
  const std::vector<std::pair<std::string, std::string>> bad = {
      {"{not json", ":2: not valid JSON"},
      {"[1, 2]", ":2: expected a JSON object"},
      {R"({"items": []})", ":2: \"image\" must be"},
      {R"({"image": "y.png", "items": [{"label": "bag", "class": 8}]})",
       ":2: item 0: \"box\" must be"},
      {R"({"image": "y.png", "items": [{"label": "bag", "class": "8", "box": [0, 0, 1, 1]}]})",
       ":2: item 0: \"class\" must be an integer"},
      {R"({"image": "y.png", "items": [{"label": "bag", "class": 8, "box": [5, 0, 1, 1]}]})",
       ":2: item 0: box [5, 0, 1, 1] is not a box"},
      {R"({"image": "y.png", "items": [{"label": "bag", "class": 8, "box": [0, 0, 1.5, 1]}]})",
       ":2: item 0: box coordinate 2"},
      {std::string(100, '[') + std::string(100, ']'), ":2: JSON nested deeper"}};
  for (const auto& [line, want] : bad) {
    WriteFile(path, good + "\n" + line + "\n");
    EXPECT_THAT(ThrownMessage([&] { ReadItemsJsonl(path); }), HasSubstr(path + want)) << line;
  }
}

TEST(ScenesCorpus, CommandLineBuildsBothCorpora) {
  REQUIRE_FASHION_MNIST();
  TempDir dir;
  const auto scenes =
      RunCommand(AttendCommand("corpus scenes --out " + ShellQuote(dir / "s") +
                               " --train 4 --dev 1 --test 2 --captions 3 --seed 7"));
  ASSERT_EQ(scenes.exit_code, 0) << scenes.output;
  EXPECT_THAT(scenes.output, HasSubstr("attend corpus scenes: 4/1/2 scenes (train/dev/test), 21 "
                                       "captions"));
  EXPECT_EQ(ReadCaptionsTsv(dir / "s/test.tsv").size(), 2u);
  const auto cluttered = RunCommand(AttendCommand(
      "corpus cluttered --out " + ShellQuote(dir / "c") + " --train 3 --dev 1 --test 1 -q"));
  ASSERT_EQ(cluttered.exit_code, 0) << cluttered.output;
  EXPECT_EQ(cluttered.output, "");
  EXPECT_TRUE(fs::exists(dir / "c/images/dev/00000.png"));
  const auto bad = RunCommand(AttendCommand("corpus scenes --out " + ShellQuote(dir / "x") +
                                            " --fashion-dir " + ShellQuote(dir / "none")));
  EXPECT_NE(bad.exit_code, 0);
  EXPECT_THAT(bad.output, HasSubstr("dataset-fashion-mnist"));
}

}  // namespace
}  // namespace attend::data
