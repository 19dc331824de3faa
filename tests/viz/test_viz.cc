// Attention heatmaps: the PNG decodes to the laid-out size, cells darken with their weight, labels
// are drawn, bad shapes and a missing font are refused; the SVG variant.
#include <gtest/gtest.h>
#include <stb/stb_image.h>
#include <unistd.h>

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <functional>
#include <fstream>
#include <string>
#include <vector>

#include "attend/error.h"
#include "attend/viz.h"

namespace attend::viz {
namespace {

class Heatmap : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = std::filesystem::temp_directory_path() /
           ("attend_viz_test_" + std::to_string(::getpid()) + "_" +
            ::testing::UnitTest::GetInstance()->current_test_info()->name());
    std::filesystem::create_directories(dir_);
  }
  void TearDown() override { std::filesystem::remove_all(dir_); }

  struct Decoded {
    int w = 0, h = 0;
    std::vector<unsigned char> rgb;
    const unsigned char* At(int x, int y) const {
      return &rgb[(static_cast<size_t>(y) * w + x) * 3];
    }
  };
  Decoded Load(const std::string& path) {
    Decoded d;
    int channels = 0;
    unsigned char* data = stbi_load(path.c_str(), &d.w, &d.h, &channels, 3);
    EXPECT_NE(data, nullptr) << stbi_failure_reason();
    if (data != nullptr) {
      d.rgb.assign(data, data + static_cast<size_t>(d.w) * d.h * 3);
      stbi_image_free(data);
    }
    return d;
  }
  // Non-white pixels in a rectangle.
  static int Ink(const Decoded& d, int x0, int y0, int x1, int y1) {
    int n = 0;
    for (int y = std::max(0, y0); y < std::min(d.h, y1); ++y) {
      for (int x = std::max(0, x0); x < std::min(d.w, x1); ++x) n += d.At(x, y)[0] < 200;
    }
    return n;
  }

  std::filesystem::path dir_;
};

TEST_F(Heatmap, PngSizeCellsAndLabels) {
  const std::vector<std::string> src = {"▁Der", "▁Hund", "▁bellt", "."};
  const std::vector<std::string> tgt = {"▁The", "▁dog", "▁barks"};
  // [T=3, S=4]: each row a distribution.
  const std::vector<float> w = {0.7f, 0.2f,  0.1f, 0.0f,  //
                                0.1f, 0.8f,  0.1f, 0.0f,  //
                                0.0f, 0.25f, 0.5f, 0.25f};
  const std::string path = (dir_ / "attn.png").string();
  HeatmapOptions o;
  const HeatmapLayout layout = WriteAttentionHeatmap(path, src, tgt, w, o);
  const Decoded d = Load(path);
  ASSERT_EQ(d.w, layout.width);
  ASSERT_EQ(d.h, layout.height);
  EXPECT_EQ(layout.width, layout.grid_x + 4 * o.cell_size + o.margin);
  EXPECT_EQ(layout.height, layout.grid_y + 3 * o.cell_size + o.margin);
  // Room was made for the labels: wider than the margin and gap alone.
  EXPECT_GT(layout.grid_x, o.margin + 6 + 10);
  EXPECT_GT(layout.grid_y, o.margin + 6 + 10);
  // Grey scale: a cell is 255 * (1 - weight), darker where the weight is larger.
  for (int t = 0; t < 3; ++t) {
    for (int s = 0; s < 4; ++s) {
      const unsigned char* p = d.At(layout.grid_x + s * o.cell_size + o.cell_size / 2,
                                    layout.grid_y + t * o.cell_size + o.cell_size / 2);
      const int expected = static_cast<int>(std::lround(255.0 * (1.0 - w[t * 4 + s])));
      EXPECT_EQ(p[0], expected) << t << "," << s;
      EXPECT_EQ(p[0], p[1]);
      EXPECT_EQ(p[1], p[2]);
    }
  }
  const auto cell = [&](int t, int s) {
    return d.At(layout.grid_x + s * o.cell_size + 3, layout.grid_y + t * o.cell_size + 3)[0];
  };
  EXPECT_LT(cell(1, 1), cell(0, 0));  // 0.8 darker than 0.7
  EXPECT_LT(cell(0, 0), cell(2, 2));  // 0.7 darker than 0.5
  EXPECT_EQ(cell(0, 3), 255);         // 0 stays white
  // Each target row has ink left of the grid; each source column has ink above it.
  for (int t = 0; t < 3; ++t) {
    EXPECT_GT(Ink(d, 0, layout.grid_y + t * o.cell_size, layout.grid_x,
                  layout.grid_y + (t + 1) * o.cell_size),
              5)
        << "row label " << t;
  }
  for (int s = 0; s < 4; ++s) {
    EXPECT_GT(Ink(d, layout.grid_x + s * o.cell_size, 0, layout.grid_x + (s + 1) * o.cell_size,
                  layout.grid_y),
              3)
        << "column label " << s;
  }
  // Source labels are vertical: "▁bellt" stands taller above the grid than it is wide.
  int top = layout.grid_y;
  for (int y = 0; y < layout.grid_y; ++y) {
    if (Ink(d, layout.grid_x + 2 * o.cell_size, y, layout.grid_x + 3 * o.cell_size, y + 1) > 0) {
      top = y;
      break;
    }
  }
  EXPECT_GT(layout.grid_y - top, o.cell_size);
  // No temporary file is left behind.
  int files = 0;
  for (const auto& entry : std::filesystem::directory_iterator(dir_))
    files += entry.is_regular_file();
  EXPECT_EQ(files, 1);
}

TEST_F(Heatmap, ColourScaleAndMaxWeight) {
  const std::string path = (dir_ / "c.png").string();
  HeatmapOptions o;
  o.color = true;
  o.max_weight = 2.0f;
  const HeatmapLayout layout =
      WriteAttentionHeatmap(path, {"a", "b"}, {"x"}, std::vector<float>{2.0f, 1.0f}, o);
  const Decoded d = Load(path);
  const unsigned char* full =
      d.At(layout.grid_x + o.cell_size / 2, layout.grid_y + o.cell_size / 2);
  const unsigned char* half =
      d.At(layout.grid_x + o.cell_size + o.cell_size / 2, layout.grid_y + o.cell_size / 2);
  EXPECT_EQ(full[0], 8);  // the ramp's dark blue end (8, 48, 107)
  EXPECT_EQ(full[1], 48);
  EXPECT_EQ(full[2], 107);
  EXPECT_GT(half[0], full[0]);
  EXPECT_GT(half[2], half[0]);  // bluish
}

TEST_F(Heatmap, Errors) {
  const std::string path = (dir_ / "e.png").string();
  auto message = [](const std::function<void()>& f) -> std::string {
    try {
      f();
    } catch (const Error& e) {
      return e.what();
    }
    return "";
  };
  const std::vector<float> six(6, 0.1f);
  EXPECT_NE(message([&] {
              WriteAttentionHeatmap(path, {"a", "b"}, {"x", "y"}, six);
            }).find("weights have 6 values but [T, S] = [2, 2] needs 4"),
            std::string::npos);
  EXPECT_NE(message([&] {
              WriteAttentionHeatmap(path, {}, {"x"}, std::vector<float>{});
            }).find("at least one source and one target"),
            std::string::npos);
  EXPECT_NE(message([&] {
              WriteAttentionHeatmap(path, {"a", "b"}, {"x"}, std::vector<float>{0.5f, -0.1f});
            }).find("weight [0, 1] is -0.1"),
            std::string::npos);
  EXPECT_NE(message([&] {
              WriteAttentionHeatmap(path, {"a"}, {"x"}, std::vector<float>{NAN});
            }).find("finite"),
            std::string::npos);
  EXPECT_NE(message([&] {
              WriteAttentionHeatmap(path, {"a\xff"}, {"x"}, std::vector<float>{0.5f});
            }).find("source token 0: invalid UTF-8"),
            std::string::npos);
  HeatmapOptions no_font;
  no_font.font_path = (dir_ / "missing.ttf").string();
  const std::string m = message(
      [&] { WriteAttentionHeatmap(path, {"a"}, {"x"}, std::vector<float>{0.5f}, no_font); });
  EXPECT_NE(m.find("font file '" + no_font.font_path + "' not found"), std::string::npos) << m;
  EXPECT_NE(m.find("fonts-dejavu-core"), std::string::npos) << m;
  HeatmapOptions not_font;
  not_font.font_path = (dir_ / "not_a_font.ttf").string();
  std::ofstream(not_font.font_path) << "hello";
  EXPECT_NE(message([&] {
              WriteAttentionHeatmap(path, {"a"}, {"x"}, std::vector<float>{0.5f}, not_font);
            }).find("is not a TrueType font"),
            std::string::npos);
  // A directory that does not exist: nothing written, a clear error.
  EXPECT_NE(message([&] {
              WriteAttentionHeatmap((dir_ / "no" / "x.png").string(), {"a"}, {"x"},
                                    std::vector<float>{0.5f});
            }).find("cannot create a temporary file"),
            std::string::npos);
  EXPECT_FALSE(std::filesystem::exists(path));
}

TEST_F(Heatmap, Svg) {
  const std::string path = (dir_ / "a.svg").string();
  WriteAttentionSvg(path, {"<s>", "b&c"}, {"x"}, std::vector<float>{1.0f, 0.0f});
  std::ifstream in(path);
  const std::string svg((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  EXPECT_EQ(svg.rfind("<svg ", 0), 0u);
  EXPECT_NE(svg.find("fill=\"#000000\""), std::string::npos);
  EXPECT_NE(svg.find("fill=\"#ffffff\"><title>0</title>"), std::string::npos);
  EXPECT_NE(svg.find("&lt;s&gt;"), std::string::npos);
  EXPECT_NE(svg.find("b&amp;c"), std::string::npos);
  EXPECT_NE(svg.find("rotate(-90)"), std::string::npos);
  EXPECT_THROW(WriteAttentionSvg(path, {"a"}, {"x"}, std::vector<float>{1.0f, 0.0f}), Error);
}

}  // namespace
}  // namespace attend::viz
