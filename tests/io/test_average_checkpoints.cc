// Checkpoint averaging (io::AverageCheckpoints): the mean of f32/f64 tensors computed in f64 and
// rounded once, i64/bool tensors copied when equal, the output's metadata, and an error naming
// the file and the tensor or key for each way the inputs can fail to hold one model, with nothing
// written.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <cstring>
#include <filesystem>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "attend/checkpoint.h"
#include "attend/nn.h"
#include "attend/optim.h"
#include "support/errors.h"
#include "support/files.h"

namespace attend {
namespace {

namespace fs = std::filesystem;
using attend::testing::ReadFile;
using attend::testing::TempDir;
using attend::testing::ThrownMessage;
using attend::testing::WriteFile;
using io::Metadata;
using io::NamedTensors;
using ::testing::AllOf;
using ::testing::HasSubstr;

const Tensor& Find(const NamedTensors& tensors, const std::string& name) {
  for (const auto& [n, t] : tensors)
    if (n == name) return t;
  static const Tensor none;
  ADD_FAILURE() << "no tensor " << name;
  return none;
}

bool Has(const NamedTensors& tensors, const std::string& name) {
  return std::any_of(tensors.begin(), tensors.end(),
                     [&](const auto& nt) { return nt.first == name; });
}

bool BitEqual(const Tensor& a, const Tensor& b) {
  if (a.dtype() != b.dtype() || a.shape() != b.shape()) return false;
  const Tensor ca = a.Contiguous(), cb = b.Contiguous();
  const size_t n = static_cast<size_t>(ca.numel()) * DTypeSize(ca.dtype());
  return n == 0 || std::memcmp(ca.raw_data(), cb.raw_data(), n) == 0;
}

// A checkpoint as nmt::Train writes one: model tensors of every dtype, optimizer state, the config
// (model and train sections), the vocabulary, the trainer's progress, optimizer and schedule
// metadata. Seeds give different weights; `step` differs in the train section and trainer.step.
struct Checkpoint {
  NamedTensors tensors;
  Metadata metadata;
};

nlohmann::json ModelJson() { return {{"arch", "transformer"}, {"hidden_dim", 16}, {"layers", 2}}; }

Checkpoint MakeCheckpoint(uint64_t seed, int64_t step) {
  Generator gen(seed);
  Checkpoint c;
  c.tensors = {
      {"encoder.weight", Tensor::Randn({64, 33}, gen)},
      {"encoder.bias", Tensor::Randn({33}, gen, DType::kF64)},
      {"decoder.scale", Tensor::Randn({}, gen)},
      {"decoder.empty", Tensor::Zeros({0, 4})},
      {"positions.index", Tensor::FromVector(std::vector<int64_t>{0, 1, int64_t{1} << 40}, {3})},
      {"positions.mask", Tensor::FromVector(std::vector<bool>{true, false, false, true}, {2, 2})},
      // A dropout stream's [seed, position]: the position advances with training.
      {"decoder.dropout.rng_state", Tensor::FromVector(std::vector<int64_t>{7, step * 3}, {2})},
      {"optim.state.0.exp_avg", Tensor::Randn({64, 33}, gen)},
      {"optim.state.0.step", Tensor::FromVector(std::vector<int64_t>{step}, {1})},
  };
  nlohmann::json config = {{"model", ModelJson()}, {"train", {{"max_steps", step}}}};
  c.metadata = {{"attend.format", "checkpoint/1"},
                {"config", config.dump()},
                {"vocab.spm.base64", "dm9jYWJ1bGFyeQ=="},
                {"trainer.step", std::to_string(step)},
                {"trainer.best_bleu", std::to_string(step) + ".5"},
                {"optim.type", "Adam"},
                {"optim.lr", "0.001"},
                {"optim.step_count", std::to_string(step)},
                {"sched.type", "InverseSqrtWarmup"},
                {"sched.last_epoch", std::to_string(step)}};
  return c;
}

void Save(const std::string& path, const Checkpoint& c) {
  io::SaveSafetensors(path, c.tensors, c.metadata);
}

// The files in `dir`, sorted.
std::vector<std::string> Listing(const fs::path& dir) {
  std::vector<std::string> out;
  for (const auto& e : fs::directory_iterator(dir)) out.push_back(e.path().filename().string());
  std::sort(out.begin(), out.end());
  return out;
}

// Three checkpoints a.ckpt, b.ckpt, c.ckpt in `dir` (steps 100, 200, 300), optionally changed.
std::vector<std::string> SaveThree(const TempDir& dir,
                                   void (*change)(size_t, Checkpoint&) = nullptr) {
  std::vector<std::string> paths;
  const char* names[] = {"a.ckpt", "b.ckpt", "c.ckpt"};
  for (size_t i = 0; i < 3; ++i) {
    Checkpoint c = MakeCheckpoint(10 + i, 100 * static_cast<int64_t>(i + 1));
    if (change != nullptr) change(i, c);
    paths.push_back(dir / names[i]);
    Save(paths.back(), c);
  }
  return paths;
}

TEST(AverageCheckpoints, MeanOfThreeInF64RoundedOnce) {
  TempDir dir;
  // The inputs' train sections differ (max_steps), and the third writes its config with other
  // spacing and key order: only the parsed model part is compared.
  const auto paths = SaveThree(dir, [](size_t i, Checkpoint& c) {
    if (i != 2) return;
    nlohmann::json config = nlohmann::json::parse(c.metadata["config"]);
    c.metadata["config"] = "{\"train\": " + config["train"].dump(2) +
                           ", \"model\": {\"layers\": 2, \"hidden_dim\": 16, "
                           "\"arch\": \"transformer\"}}";
  });
  const std::string out = dir / "avg.ckpt";
  io::AverageCheckpoints(paths, out);

  std::vector<io::SafetensorsContents> in;
  for (const std::string& p : paths) in.push_back(io::LoadSafetensors(p, true));
  const io::SafetensorsContents avg = io::LoadSafetensors(out, /*require_checksum=*/true);

  // f32: the sum of the three values in f64 (in input order), divided by 3, rounded to f32.
  const Tensor& w = Find(avg.tensors, "encoder.weight");
  ASSERT_EQ(w.dtype(), DType::kF32);
  ASSERT_EQ(w.shape(), Shape({64, 33}));
  const float* a = Find(in[0].tensors, "encoder.weight").data<float>();
  const float* b = Find(in[1].tensors, "encoder.weight").data<float>();
  const float* c = Find(in[2].tensors, "encoder.weight").data<float>();
  const float* y = w.data<float>();
  int64_t off_naive = 0;  // where an f32 sum would have given another value
  for (int64_t k = 0; k < w.numel(); ++k) {
    const double sum = static_cast<double>(a[k]) + static_cast<double>(b[k]) + c[k];
    const float expected = static_cast<float>(sum / 3.0);
    if (y[k] != expected) {
      ADD_FAILURE() << "encoder.weight[" << k << "] = " << y[k] << ", expected " << expected;
      break;
    }
    if (((a[k] + b[k]) + c[k]) / 3.0f != expected) ++off_naive;
  }
  // The test tells the f64 path from an f32 one: on these values they differ somewhere.
  EXPECT_GT(off_naive, 0);

  // f64: the same in f64.
  const Tensor& bias = Find(avg.tensors, "encoder.bias");
  ASSERT_EQ(bias.dtype(), DType::kF64);
  for (int64_t k = 0; k < bias.numel(); ++k) {
    const double expected = (Find(in[0].tensors, "encoder.bias").data<double>()[k] +
                             Find(in[1].tensors, "encoder.bias").data<double>()[k] +
                             Find(in[2].tensors, "encoder.bias").data<double>()[k]) /
                            3.0;
    EXPECT_EQ(bias.data<double>()[k], expected) << k;
  }
  const Tensor& scale = Find(avg.tensors, "decoder.scale");
  EXPECT_EQ(scale.dim(), 0);
  EXPECT_EQ(scale.item(),
            static_cast<float>((static_cast<double>(Find(in[0].tensors, "decoder.scale").item()) +
                                Find(in[1].tensors, "decoder.scale").item() +
                                Find(in[2].tensors, "decoder.scale").item()) /
                               3.0));
  EXPECT_EQ(Find(avg.tensors, "decoder.empty").shape(), Shape({0, 4}));

  // i64 and bool: copied, dtypes kept; a training stream's state is the last input's.
  EXPECT_TRUE(BitEqual(Find(avg.tensors, "decoder.dropout.rng_state"),
                       Find(in[2].tensors, "decoder.dropout.rng_state")));
  EXPECT_TRUE(
      BitEqual(Find(avg.tensors, "positions.index"), Find(in[0].tensors, "positions.index")));
  EXPECT_TRUE(BitEqual(Find(avg.tensors, "positions.mask"), Find(in[0].tensors, "positions.mask")));

  // No optimizer state; the model tensors in the first input's order.
  std::vector<std::string> names;
  for (const auto& [name, t] : avg.tensors) names.push_back(name);
  EXPECT_EQ(names, (std::vector<std::string>{"encoder.weight", "encoder.bias", "decoder.scale",
                                             "decoder.empty", "positions.index", "positions.mask",
                                             "decoder.dropout.rng_state"}));

  // Metadata: format, the last input's config and trainer entries, the vocabulary, the inputs;
  // nothing of the optimizer or schedule.
  const Metadata& m = avg.metadata;
  EXPECT_EQ(m.at("attend.format"), "checkpoint/1");
  EXPECT_EQ(m.at("config"), in[2].metadata.at("config"));
  EXPECT_EQ(m.at("vocab.spm.base64"), "dm9jYWJ1bGFyeQ==");
  EXPECT_EQ(m.at("trainer.step"), "300");
  EXPECT_EQ(m.at("trainer.best_bleu"), "300.5");
  EXPECT_EQ(nlohmann::json::parse(m.at("attend.averaged_from")), nlohmann::json(paths));
  for (const auto& [key, value] : m) {
    EXPECT_FALSE(key.rfind("optim.", 0) == 0 || key.rfind("sched.", 0) == 0) << key;
  }
  EXPECT_EQ(Listing(dir.path()),
            (std::vector<std::string>{"a.ckpt", "avg.ckpt", "b.ckpt", "c.ckpt"}));
}

// One input: its model tensors bit for bit, without the optimizer; an averaged checkpoint can be
// averaged again (its own averaged_from is replaced).
TEST(AverageCheckpoints, OneInputAndAveragedAgain) {
  TempDir dir;
  const auto paths = SaveThree(dir);
  const std::string one = dir / "one.ckpt", again = dir / "again.ckpt";
  io::AverageCheckpoints({paths[1]}, one);
  const auto in = io::LoadSafetensors(paths[1], true), out = io::LoadSafetensors(one, true);
  for (const auto& [name, t] : in.tensors) {
    if (name.rfind("optim.", 0) == 0) {
      EXPECT_FALSE(Has(out.tensors, name)) << name;
    } else {
      EXPECT_TRUE(BitEqual(Find(out.tensors, name), t)) << name;
    }
  }
  io::AverageCheckpoints({one, one}, again);
  const auto twice = io::LoadSafetensors(again, true);
  EXPECT_TRUE(BitEqual(Find(twice.tensors, "encoder.weight"), Find(in.tensors, "encoder.weight")));
  EXPECT_EQ(nlohmann::json::parse(twice.metadata.at("attend.averaged_from")),
            nlohmann::json({one, one}));
}

// Checkpoints written by SaveCheckpoint (a module, Adam, a schedule) average into one that
// LoadCheckpoint reads into the module without an optimizer; with one it is refused.
TEST(AverageCheckpoints, LoadsIntoTheModel) {
  TempDir dir;
  std::vector<std::string> paths;
  std::vector<std::vector<float>> weights;
  for (uint64_t seed : {1, 2}) {
    Generator gen(seed);
    nn::Linear layer(3, 2, true, gen);
    optim::Adam adam(layer.Parameters(), optim::AdamOptions{.lr = 0.1});
    paths.push_back(dir / ("m" + std::to_string(seed) + ".ckpt"));
    io::SaveCheckpoint(paths.back(), layer, &adam, nullptr, R"({"model": {"in": 3}})",
                       {{"note", "same"}});
    weights.push_back(layer.weight.ToVector<float>());
  }
  const std::string out = dir / "avg.ckpt";
  io::AverageCheckpoints(paths, out);
  Generator gen(99);
  nn::Linear layer(3, 2, true, gen);
  Metadata extra;
  EXPECT_EQ(io::LoadCheckpoint(out, layer, nullptr, nullptr, &extra), R"({"model": {"in": 3}})");
  EXPECT_EQ(extra.at("note"), "same");
  const std::vector<float> got = layer.weight.ToVector<float>();
  ASSERT_EQ(got.size(), weights[0].size());
  for (size_t k = 0; k < got.size(); ++k) {
    EXPECT_EQ(got[k], static_cast<float>((double{weights[0][k]} + weights[1][k]) / 2.0)) << k;
    EXPECT_NE(weights[0][k], weights[1][k]);
  }
  optim::Adam adam(layer.Parameters(), optim::AdamOptions{.lr = 0.1});
  EXPECT_THAT(ThrownMessage([&] { io::LoadCheckpoint(out, layer, &adam); }),
              HasSubstr("no optimizer state"));
}

// Each mismatch throws an error naming the file and what differs, and writes nothing (an output
// that existed before is left as it was).
struct MismatchCase {
  const char* what;
  void (*change)(size_t, Checkpoint&);
  std::vector<std::string> expected;  // substrings of the message
};

TEST(AverageCheckpoints, MismatchesAreErrorsAndWriteNothing) {
  const std::vector<MismatchCase> cases = {
      {"another model",
       [](size_t i, Checkpoint& c) {
         if (i != 2) return;
         nlohmann::json config = nlohmann::json::parse(c.metadata["config"]);
         config["model"]["hidden_dim"] = 32;
         c.metadata["config"] = config.dump();
       },
       {"c.ckpt", "another model than", "a.ckpt", "'model.hidden_dim' is 32 there, 16"}},
      {"another section of the config",
       [](size_t i, Checkpoint& c) {
         if (i != 1) return;
         nlohmann::json config = nlohmann::json::parse(c.metadata["config"]);
         config["features"] = {{"mel_bins", 80}};
         c.metadata["config"] = config.dump();
       },
       {"b.ckpt", "config 'features' is", "absent in", "a.ckpt"}},
      {"another vocabulary",
       [](size_t i, Checkpoint& c) {
         if (i == 1) c.metadata["vocab.spm.base64"] = "b3RoZXI=";
       },
       {"b.ckpt", "'vocab.spm.base64' (the vocabulary) differs from", "a.ckpt"}},
      {"no vocabulary",
       [](size_t i, Checkpoint& c) {
         if (i == 2) c.metadata.erase("vocab.spm.base64");
       },
       {"c.ckpt", "'vocab.spm.base64' (the vocabulary) of", "a.ckpt", "is missing"}},
      {"a missing tensor",
       [](size_t i, Checkpoint& c) {
         if (i == 1) c.tensors.erase(c.tensors.begin() + 1);  // encoder.bias
       },
       {"b.ckpt", "tensor 'encoder.bias'", "a.ckpt", "is missing"}},
      {"an extra tensor",
       [](size_t i, Checkpoint& c) {
         if (i == 2) c.tensors.emplace_back("decoder.extra", Tensor::Zeros({2}));
       },
       {"c.ckpt", "tensor 'decoder.extra'", "is not in", "a.ckpt"}},
      {"a shape",
       [](size_t i, Checkpoint& c) {
         if (i == 1) c.tensors[0].second = Tensor::Zeros({33, 64});
       },
       {"b.ckpt", "tensor 'encoder.weight' is f32[33, 64] there but f32[64, 33] in", "a.ckpt"}},
      {"a dtype",
       [](size_t i, Checkpoint& c) {
         if (i == 1) c.tensors[1].second = Tensor::Zeros({33});
       },
       {"b.ckpt", "tensor 'encoder.bias' is f32[33] there but f64[33] in", "a.ckpt"}},
      {"an i64 tensor differs",
       [](size_t i, Checkpoint& c) {
         if (i == 2) c.tensors[4].second = Tensor::FromVector(std::vector<int64_t>{0, 1, 2}, {3});
       },
       {"c.ckpt", "tensor 'positions.index'", "differs from", "a.ckpt", "must be equal"}},
      {"a bool tensor differs",
       [](size_t i, Checkpoint& c) {
         if (i == 1)
           c.tensors[5].second =
               Tensor::FromVector(std::vector<bool>{true, true, false, true}, {2, 2});
       },
       {"b.ckpt", "tensor 'positions.mask'", "differs from", "a.ckpt", "must be equal"}},
      {"a training stream's state of another shape",
       [](size_t i, Checkpoint& c) {
         if (i == 2) c.tensors[6].second = Tensor::Zeros({3}, DType::kI64);
       },
       {"c.ckpt", "tensor 'decoder.dropout.rng_state' is i64[3] there but i64[2] in", "a.ckpt"}},
      {"not a checkpoint",
       [](size_t i, Checkpoint& c) {
         if (i == 1) c.metadata.erase("attend.format");
       },
       {"b.ckpt", "not an attend checkpoint"}},
      {"no config",
       [](size_t i, Checkpoint& c) {
         if (i == 0) c.metadata.erase("config");
       },
       {"a.ckpt", "no 'config'"}},
      {"only optimizer tensors",
       [](size_t i, Checkpoint& c) {
         if (i == 0) c.tensors.erase(c.tensors.begin(), c.tensors.begin() + 7);
       },
       {"a.ckpt", "holds no model tensor"}},
  };
  for (const MismatchCase& m : cases) {
    SCOPED_TRACE(m.what);
    TempDir dir;
    const auto paths = SaveThree(dir, m.change);
    const std::string out = dir / "avg.ckpt";
    const std::string message = ThrownMessage([&] { io::AverageCheckpoints(paths, out); });
    for (const std::string& s : m.expected) {
      EXPECT_THAT(message, HasSubstr(s));
    }
    EXPECT_EQ(Listing(dir.path()), (std::vector<std::string>{"a.ckpt", "b.ckpt", "c.ckpt"}));
    // An existing output is left as it was.
    WriteFile(out, "previous");
    EXPECT_FALSE(ThrownMessage([&] { io::AverageCheckpoints(paths, out); }).empty());
    EXPECT_EQ(ReadFile(out), "previous");
  }
}

// A byte flipped in a weight: the checksum names the file; a missing file is named too.
TEST(AverageCheckpoints, CorruptOrMissingInput) {
  TempDir dir;
  const auto paths = SaveThree(dir);
  std::string bytes = ReadFile(paths[1]);
  bytes[bytes.size() - 100] ^= 0x10;
  WriteFile(paths[1], bytes);
  const std::string out = dir / "avg.ckpt";
  EXPECT_THAT(ThrownMessage([&] { io::AverageCheckpoints(paths, out); }),
              AllOf(HasSubstr("average: "), HasSubstr("b.ckpt"), HasSubstr("checksum")));
  EXPECT_FALSE(fs::exists(out));
  EXPECT_THAT(ThrownMessage([&] {
                io::AverageCheckpoints({paths[0], dir / "none.ckpt"}, out);
              }),
              HasSubstr("none.ckpt"));
  EXPECT_EQ(Listing(dir.path()), (std::vector<std::string>{"a.ckpt", "b.ckpt", "c.ckpt"}));
}

// The output may not be an input, however spelled; at least one input.
TEST(AverageCheckpoints, OutputIsAnInputOrNoInputs) {
  TempDir dir;
  const auto paths = SaveThree(dir);
  const std::string before = ReadFile(paths[2]);
  EXPECT_THAT(ThrownMessage([&] { io::AverageCheckpoints(paths, paths[2]); }),
              AllOf(HasSubstr("is one of the inputs"), HasSubstr("c.ckpt")));
  const std::string spelled = (dir.path() / "." / "sub" / ".." / "c.ckpt").string();
  fs::create_directory(dir.path() / "sub");
  EXPECT_THAT(ThrownMessage([&] { io::AverageCheckpoints(paths, spelled); }),
              HasSubstr("is one of the inputs"));
  fs::create_hard_link(paths[0], dir / "link.ckpt");
  EXPECT_THAT(ThrownMessage([&] { io::AverageCheckpoints(paths, dir / "link.ckpt"); }),
              HasSubstr("is one of the inputs"));
  EXPECT_EQ(ReadFile(paths[2]), before);
  EXPECT_THAT(ThrownMessage([&] { io::AverageCheckpoints({}, dir / "avg.ckpt"); }),
              HasSubstr("no checkpoint to average"));
  EXPECT_FALSE(fs::exists(dir / "avg.ckpt"));
}

}  // namespace
}  // namespace attend
