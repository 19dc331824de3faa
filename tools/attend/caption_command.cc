// `attend caption`: loads a captioning checkpoint written by `attend train --task caption` and
// describes images (given on the command line or in a captions TSV) with greedy or beam search:
// one caption per line in input order. Optionally, per image, the picture of where the model
// looked for each word; for a TSV, BLEU-4 against its reference captions, and with the items'
// boxes, grounding: the share of attention inside the box of the item a word names.
#include <CLI/CLI.hpp>

#include <algorithm>
#include <array>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <map>
#include <memory>
#include <set>
#include <string>
#include <vector>

#include "attend/attend.h"
#include "attend/corpus.h"
#include "attend/error.h"
#include "attend/files.h"
#include "attend/metrics.h"
#include "attend/nmt.h"
#include "attend/vision.h"
#include "attend/viz.h"
#include "commands.h"

namespace attend::tools {
namespace {

struct CaptionArgs {
  std::string model_path, tsv, items, output = "-", png_dir;
  std::vector<std::string> files;
  nmt::SearchOptions search;
  bool greedy = false, json = false;
  int threads = 0;
};

using Box = models::Seq2Seq::Box;

// A piece of a word vocabulary without SentencePiece's word-start mark.
std::string Word(const std::string& piece) {
  const std::string mark = "\xe2\x96\x81";  // U+2581
  return piece.rfind(mark, 0) == 0 ? piece.substr(mark.size()) : piece;
}

struct Grounding {
  double mass = 0.0, chance = 0.0;
  int64_t words = 0;
};

// Which items a caption names: its words that are some item's label (of any image), as a set,
// against the image's own items' labels.
struct Naming {
  int64_t named = 0, right = 0, present = 0;
  void Add(const std::vector<std::string>& words, const std::set<std::string>& labels,
           const std::vector<data::ItemBox>& items) {
    std::set<std::string> said, truth;
    for (const auto& w : words)
      if (labels.count(w)) said.insert(w);
    for (const auto& it : items) truth.insert(it.label);
    named += static_cast<int64_t>(said.size());
    present += static_cast<int64_t>(truth.size());
    for (const auto& w : said) right += truth.count(w);
  }
};

int Run(CaptionArgs& a) {
  namespace fs = std::filesystem;
  if (a.threads > 0) SetNumThreads(a.threads);
  if (a.greedy) a.search.beam = 1;
  a.search.nbest = 1;
  ATTEND_CHECK(a.tsv.empty() != a.files.empty(),
               "caption: give image files or --tsv FILE (one of the two)");
  ATTEND_CHECK(a.items.empty() || !a.tsv.empty(), "caption: --items needs --tsv");
  ATTEND_CHECK(!a.json || (!a.tsv.empty() && a.output != "-"),
               "caption: --json needs --tsv and the captions in a file (-o FILE)");
  const nmt::LoadedModel m = nmt::LoadModel(a.model_path);
  const models::ModelConfig& mc = m.model->config();
  ATTEND_CHECK(mc.image(), "caption: ", a.model_path, " is not a captioning model (arch ",
               models::NameOf(mc.arch), ")");
  const bool attends = !(mc.arch == models::Arch::kShowAttendTell &&
                         mc.image_attention == models::ImageAttend::kNone);
  ATTEND_CHECK(attends || a.png_dir.empty(), "caption: ", a.model_path,
               " does not attend (image_attention none): there is no attention to draw");
  a.search.keep_attention = attends && (!a.png_dir.empty() || !a.items.empty());

  std::vector<data::ImageCaption> inputs;
  if (!a.tsv.empty()) inputs = data::ReadCaptionsTsv(a.tsv);
  else
    for (const auto& f : a.files) inputs.push_back({f, {}});
  std::map<std::string, std::vector<data::ItemBox>> items;
  if (!a.items.empty())
    for (auto& [image, boxes] : data::ReadItemsJsonl(a.items)) items[image] = std::move(boxes);
  const bool true_boxes = mc.arch == models::Arch::kTopDown && !mc.proposals;
  ATTEND_CHECK(!true_boxes || !a.items.empty(), "caption: ", a.model_path,
               " reads each image's true boxes (trained with --true-boxes): give --tsv and "
               "--items");
  const nmt::ImageBoxes given = true_boxes ? nmt::ItemBoxes(a.items) : nmt::ImageBoxes();
  std::set<std::string> labels;
  for (const auto& [image, boxes] : items)
    for (const auto& b : boxes) labels.insert(b.label);

  // An image that cannot be read is reported and gets an empty line: the others keep their
  // places, and the exit code is 1.
  const auto t0 = std::chrono::steady_clock::now();
  std::vector<nmt::Example> examples(inputs.size());
  std::vector<std::array<int64_t, 2>> sizes(inputs.size(), {0, 0});
  bool failed = false;
  for (size_t i = 0; i < inputs.size(); ++i) {
    try {
      const vision::Image img = vision::ReadImage(inputs[i].image);
      sizes[i] = {img.width, img.height};
      const std::vector<Box>* boxes = nullptr;
      if (true_boxes) {
        auto it = given.find(inputs[i].image);
        ATTEND_CHECK(it != given.end(), inputs[i].image, ": no boxes for this image in ", a.items);
        boxes = &it->second;
      }
      examples[i] = nmt::ImageExample(img, mc, boxes);
    } catch (const Error& e) {
      std::fprintf(stderr, "attend: error: %s\n", e.what());
      failed = true;
      examples[i].feature_dim = mc.image_size;  // no pixels: captioned as ""
    }
    examples[i].index = static_cast<int64_t>(i);
  }
  a.search.max_len_ratio = 0.0;
  a.search.max_len_extra = nmt::kCaptionMaxWords;
  const auto results = nmt::TranslateExamples(*m.model, examples, a.search);
  const double seconds =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();

  std::string out;
  std::vector<std::string> hyps;
  Grounding ground;
  Naming naming;
  const int64_t s = mc.image_size;
  for (size_t i = 0; i < results.size(); ++i) {
    const nmt::Hypothesis* h = results[i].empty() ? nullptr : &results[i][0];
    const std::string text = h ? m.vocab.Decode(h->tokens) : "";
    out += text + "\n";
    hyps.push_back(text);
    if (!items.empty()) {
      auto it = items.find(inputs[i].image);
      if (it != items.end()) {
        std::vector<std::string> said;
        if (h)
          for (const std::string& piece : m.vocab.Pieces(h->tokens)) said.push_back(Word(piece));
        naming.Add(said, labels, it->second);
      }
    }
    if (!h || examples[i].source_length() == 0 || !a.search.keep_attention) continue;
    const std::vector<Box> positions =
        m.model->AttendedBoxes(nmt::MakeBatch(examples, {static_cast<int64_t>(i)}))[0];
    std::vector<std::string> words;
    for (const std::string& piece : m.vocab.Pieces(h->tokens)) words.push_back(Word(piece));
    if (!a.png_dir.empty()) {
      std::error_code ec;
      fs::create_directories(a.png_dir, ec);
      ATTEND_CHECK(!ec, "caption: cannot create ", a.png_dir, ": ", ec.message());
      std::vector<std::array<float, 4>> boxes;
      for (const Box& b : positions) boxes.push_back({b.x0, b.y0, b.x1, b.y1});
      std::vector<std::vector<float>> weights(h->attention.begin(),
                                              h->attention.begin() + words.size());
      char name[32];
      std::snprintf(name, sizeof(name), "%06zu.png", i);
      if (!words.empty())
        viz::WriteImageAttention((fs::path(a.png_dir) / name).string(), examples[i].values(),
                                 mc.image_channels, s, words, weights, boxes);
    }
    auto it = items.find(inputs[i].image);
    if (it == items.end()) continue;
    // The items' boxes in the model's pixels (the image was resized to image_size).
    const double sx = static_cast<double>(s) / static_cast<double>(sizes[i][0]);
    const double sy = static_cast<double>(s) / static_cast<double>(sizes[i][1]);
    for (size_t t = 0; t < words.size(); ++t)
      for (const data::ItemBox& item : it->second) {
        if (item.label != words[t]) continue;
        const Box box{static_cast<float>(item.x0 * sx), static_cast<float>(item.y0 * sy),
                      static_cast<float>(item.x1 * sx), static_cast<float>(item.y1 * sy)};
        ground.mass += nmt::AttentionMassInBox(h->attention[t], positions, box);
        ground.chance +=
            static_cast<double>(box.x1 - box.x0) * (box.y1 - box.y0) / static_cast<double>(s * s);
        ++ground.words;
      }
  }
  if (a.output == "-") std::fwrite(out.data(), 1, out.size(), stdout);
  else io::WriteFileAtomic(a.output, out);

  if (!a.tsv.empty()) {
    // References as streams: stream k holds each image's k-th caption (its last one when it has
    // fewer than k + 1).
    size_t k = 0;
    for (const auto& in : inputs) k = std::max(k, in.captions.size());
    std::vector<metrics::Stream> refs(k);
    for (size_t r = 0; r < k; ++r)
      for (const auto& in : inputs)
        refs[r].push_back(in.captions[std::min(r, in.captions.size() - 1)]);
    const auto bleu = metrics::CorpusBleu(hyps, refs);
    char line[512];
    std::snprintf(line, sizeof(line), "%zu images in %.1f s; BLEU-4 %.2f (%zu references)",
                  inputs.size(), seconds, bleu.score, k);
    std::string summary = line;
    if (!a.items.empty()) {
      std::snprintf(line, sizeof(line), "; items named: precision %.1f%%, recall %.1f%%",
                    100.0 * naming.right / std::max<int64_t>(1, naming.named),
                    100.0 * naming.right / std::max<int64_t>(1, naming.present));
      summary += line;
    }
    if (!a.items.empty() && a.search.keep_attention) {
      const double n = static_cast<double>(std::max<int64_t>(1, ground.words));
      std::snprintf(line, sizeof(line),
                    "; grounding %.3f of the attention inside the named item's box (chance %.3f) "
                    "over %lld item words",
                    ground.mass / n, ground.chance / n, (long long)ground.words);
      summary += line;
    }
    std::fprintf(stderr, "%s\n", summary.c_str());
    if (a.json) {
      std::printf("{\"images\": %zu, \"bleu\": %.4f, \"references\": %zu", inputs.size(),
                  bleu.score, k);
      if (!a.items.empty())
        std::printf(", \"item_precision\": %.4f, \"item_recall\": %.4f",
                    static_cast<double>(naming.right) / std::max<int64_t>(1, naming.named),
                    static_cast<double>(naming.right) / std::max<int64_t>(1, naming.present));
      if (!a.items.empty() && a.search.keep_attention) {
        const double n = static_cast<double>(std::max<int64_t>(1, ground.words));
        std::printf(", \"grounding\": %.4f, \"chance\": %.4f, \"item_words\": %lld",
                    ground.mass / n, ground.chance / n, (long long)ground.words);
      }
      std::printf("}\n");
    }
  }
  return failed ? 1 : 0;
}

}  // namespace

Runner RegisterCaptionCommand(CLI::App& app) {
  auto a = std::make_shared<CaptionArgs>();
  a->search.beam = 3;
  CLI::App* c = app.add_subcommand("caption", "Describe images with a captioning model");
  c->add_option("-m,--model", a->model_path, "Checkpoint written by attend train --task caption")
      ->required();
  c->add_option("files", a->files, "Image files (PNG, JPEG, ...)");
  c->add_option("--tsv", a->tsv,
                "Images with reference captions (image<TAB>caption): prints BLEU-4 on stderr");
  c->add_option("--items", a->items,
                "With --tsv: the items' boxes (<split>.items.jsonl): prints grounding");
  c->add_option("-o,--output", a->output, "Captions file ('-' = stdout)")->capture_default_str();
  c->add_option("-b,--beam", a->search.beam, "Beam size")->capture_default_str();
  c->add_flag("--greedy", a->greedy, "Greedy search (beam 1)");
  c->add_option("--length-penalty", a->search.length_penalty, "GNMT alpha (0 = none)")
      ->capture_default_str();
  c->add_option("--batch-size", a->search.batch_size, "Images decoded together")
      ->capture_default_str();
  c->add_option("--attention-png", a->png_dir,
                "Write, per image, where the model looked for each word (NNNNNN.png) here");
  c->add_flag("--json", a->json, "With --tsv: the scores as one JSON line on stdout");
  c->add_option("--threads", a->threads, "Threads (0 = all cores)");
  return [a]() { return Run(*a); };
}

}  // namespace attend::tools
