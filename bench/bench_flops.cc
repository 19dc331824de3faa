// bench_flops: the FLOPs of training steps of the translation models (bench/train_flops.h) and
// the machine's FMA peak (bench/fma_peak.h), for scripts that turn a training speed into MFU.
//
//   bench_flops [--config JSON] [--vocab-size V] [--batch B] [--src-len S] [--tgt-len T]
//       One step of the model JSON describes (ModelConfig's keys, e.g. '{"arch": "transformer"}';
//       the rest at `attend train`'s defaults; default rnn-attention) on B sentences of S source
//       and T target tokens (T counts tgt_in's bos; defaults 64, 20, 21), part by part.
//   bench_flops --checkpoint CKPT --data DIR --steps N [--src en] [--tgt de] [--vocab FILE]
//               [--max-train N]
//       The first N steps of the `attend train` run that wrote CKPT (its model and training
//       options: max_tokens, max_len, seed), on the same batches in the same order: the corpus
//       DIR/train.SRC, .TGT read, encoded with FILE (default: vocab.model beside CKPT), filtered
//       and batched as nmt::Train does. The PyTorch mirrors (bench/torch_reference/) train on
//       the same batches, so the count holds for both.
//   bench_flops --peak [--threads N]
//       The f32 FMA peak in GFLOP/s on one core and on N threads (default 1).
// Every mode prints one JSON object on stdout.
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <map>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "attend/checkpoint.h"
#include "attend/corpus.h"
#include "attend/error.h"
#include "attend/models.h"
#include "attend/nmt.h"
#include "fma_peak.h"
#include "train_flops.h"

namespace {

using namespace attend;
using nlohmann::json;

json PartsJson(const bench::StepFlops& f) {
  json j;
  for (const bench::FlopPart* p : f.parts())
    j[p->name] = {{"forward", p->forward}, {"backward", p->backward}};
  j["forward"] = f.forward();
  j["backward"] = f.backward();
  j["total"] = f.total();
  return j;
}

void Accumulate(bench::StepFlops& sum, const bench::StepFlops& f) {
  bench::FlopPart* to[] = {&sum.encoder, &sum.decoder, &sum.attention, &sum.output};
  const auto from = f.parts();
  for (size_t i = 0; i < from.size(); ++i) {
    to[i]->forward += from[i]->forward;
    to[i]->backward += from[i]->backward;
  }
  sum.gemm_forward += f.gemm_forward;
  sum.gemm_backward += f.gemm_backward;
}

json OneStep(const std::map<std::string, std::string>& a) {
  auto get = [&](const char* k, const char* d) { return a.count(k) ? a.at(k) : std::string(d); };
  json cfg = json::parse(get("config", "{}"));
  ATTEND_CHECK(cfg.is_object(), "bench_flops: --config must be a JSON object");
  const int64_t vocab = std::stoll(get("vocab-size", "8000"));
  if (!cfg.contains("src_vocab")) cfg["src_vocab"] = vocab;
  if (!cfg.contains("tgt_vocab")) cfg["tgt_vocab"] = vocab;
  const models::ModelConfig config = models::ModelConfig::FromJson(cfg.dump());
  const int64_t b = std::stoll(get("batch", "64")), s = std::stoll(get("src-len", "20")),
                t = std::stoll(get("tgt-len", "21"));
  const bench::StepFlops f = bench::TrainStepFlops(config, bench::UniformShape(b, s, t));
  return {{"model", json::parse(config.ToJson())},
          {"batch", b},
          {"src_len", s},
          {"tgt_len", t},
          {"step", PartsJson(f)}};
}

json Run(const std::map<std::string, std::string>& a) {
  namespace fs = std::filesystem;
  auto get = [&](const char* k, const char* d) { return a.count(k) ? a.at(k) : std::string(d); };
  const std::string ckpt = a.at("checkpoint");
  ATTEND_CHECK(a.count("data") && a.count("steps"),
               "bench_flops: --checkpoint needs --data DIR "
               "and --steps N");
  const io::SafetensorsContents contents = io::LoadSafetensors(ckpt);
  auto it = contents.metadata.find("config");
  ATTEND_CHECK(it != contents.metadata.end(), ckpt, ": no config in the checkpoint");
  const json config = json::parse(it->second);
  const models::ModelConfig model = models::ModelConfig::FromJson(config.at("model").dump());
  const json& train = config.at("train");
  const int64_t max_tokens = train.at("max_tokens"), max_len = train.at("max_len");
  const uint64_t seed = train.at("seed");
  const std::string vocab_path =
      get("vocab", (fs::path(ckpt).parent_path() / "vocab.model").string().c_str());
  const nmt::Vocabulary vocab = nmt::Vocabulary::Load(vocab_path);
  const fs::path dir(a.at("data"));
  const std::string src = get("src", "en"), tgt = get("tgt", "de");
  const auto pairs =
      data::ReadParallelText((dir / ("train." + src)).string(), (dir / ("train." + tgt)).string());
  const int64_t max_train = std::stoll(get("max-train", "0"));
  std::vector<std::pair<std::string, std::string>> text;
  for (const auto& p : pairs) {
    if (max_train > 0 && static_cast<int64_t>(text.size()) >= max_train) break;
    text.emplace_back(p.src, p.tgt);
  }
  const std::vector<nmt::Example> examples = nmt::EncodePairs(vocab, text, max_len);
  ATTEND_CHECK(!examples.empty(), "bench_flops: no training pairs left");
  const int64_t steps = std::stoll(a.at("steps"));
  bench::StepFlops sum;
  double tokens = 0, tgt_tokens = 0, padded = 0;
  int64_t step = 0;
  for (int64_t epoch = 0; step < steps; ++epoch) {
    for (const auto& order : nmt::MakeBatches(examples, max_tokens, seed, epoch)) {
      if (step == steps) break;
      const models::Batch batch = nmt::MakeBatch(examples, order);
      Accumulate(sum, bench::TrainStepFlops(model, bench::ShapeOf(batch)));
      // Source+target tokens as attend's progress line (and the torch mirror) count them.
      tokens += static_cast<double>(batch.src_tokens + batch.tgt_tokens);
      tgt_tokens += static_cast<double>(batch.tgt_tokens);
      padded += static_cast<double>(batch.src.numel() + batch.tgt_in.numel());
      ++step;
    }
  }
  return {{"checkpoint", ckpt},
          {"arch", models::NameOf(model.arch)},
          {"steps", steps},
          {"tokens", tokens},
          {"tgt_tokens", tgt_tokens},
          {"padded_tokens", padded},
          {"flops", sum.total()},
          {"flops_per_step", sum.total() / static_cast<double>(steps)},
          {"flops_per_token", sum.total() / tokens},
          {"parts", PartsJson(sum)}};
}

json Peak(const std::map<std::string, std::string>& a) {
  const int threads = a.count("threads") ? std::stoi(a.at("threads")) : 1;
  const double one = bench::MeasureFmaPeakGflops(1);
  const double all = threads == 1 ? one : bench::MeasureFmaPeakGflops(threads);
  return {{"threads", threads}, {"peak_gflops_per_core", one}, {"peak_gflops_threads", all}};
}

}  // namespace

int main(int argc, char** argv) {
  std::map<std::string, std::string> a;
  for (int i = 1; i < argc; ++i) {
    const std::string arg = argv[i];
    if (arg == "-h" || arg == "--help") {
      std::printf(
          "bench_flops [--config JSON] [--vocab-size V] [--batch B] [--src-len S] [--tgt-len T]\n"
          "bench_flops --checkpoint CKPT --data DIR --steps N [--src L] [--tgt L] [--vocab FILE]"
          " [--max-train N]\n"
          "bench_flops --peak [--threads N]\n(see the top of bench/bench_flops.cc)\n");
      return 0;
    }
    if (arg.rfind("--", 0) != 0) {
      std::fprintf(stderr, "bench_flops: unexpected argument '%s' (see --help)\n", arg.c_str());
      return 2;
    }
    const std::string k(argv[i] + 2);
    if (k == "peak") {
      a.insert_or_assign(k, std::string("1"));
      continue;
    }
    if (i + 1 >= argc) {
      std::fprintf(stderr, "bench_flops: --%s needs a value\n", k.c_str());
      return 2;
    }
    a.insert_or_assign(k, std::string(argv[++i]));
  }
  try {
    const json out = a.count("peak") ? Peak(a) : a.count("checkpoint") ? Run(a) : OneStep(a);
    std::printf("%s\n", out.dump(1).c_str());
  } catch (const std::exception& e) {
    std::fprintf(stderr, "bench_flops: %s\n", e.what());
    return 1;
  }
  return 0;
}
