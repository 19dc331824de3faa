// Tests of the vision module: PNG and JPEG files read back, the errors for missing, garbage,
// truncated and oversized files, channel conversion, resizing (constants stay constant, shrinking
// averages by area, growing interpolates), the float CHW layout, and the IDX reader on small
// gzip'ed files written here (good, wrong magic, truncated, trailing bytes) and on Fashion-MNIST.
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <stb/stb_image_write.h>
#include <zlib.h>

#include <cstdint>
#include <filesystem>
#include <string>
#include <vector>

#include "attend/error.h"
#include "attend/vision.h"
#include "support/errors.h"
#include "support/files.h"

namespace attend::vision {
namespace {

using attend::testing::ReadFile;
using attend::testing::TempDir;
using attend::testing::ThrownMessage;
using attend::testing::WriteFile;
using ::testing::HasSubstr;

Image MakeImage(int64_t w, int64_t h, int64_t c, uint8_t (*f)(int64_t, int64_t, int64_t)) {
  Image img;
  img.width = w;
  img.height = h;
  img.channels = c;
  for (int64_t y = 0; y < h; ++y)
    for (int64_t x = 0; x < w; ++x)
      for (int64_t ch = 0; ch < c; ++ch) img.pixels.push_back(f(x, y, ch));
  return img;
}

uint8_t Pattern(int64_t x, int64_t y, int64_t c) {
  return static_cast<uint8_t>((x * 37 + y * 11 + c * 71) % 256);
}

TEST(Vision, PngRoundTripsEveryChannelCount) {
  TempDir dir;
  for (int64_t c = 1; c <= 4; ++c) {
    const Image img = MakeImage(13, 7, c, Pattern);
    const std::string path = dir / ("img" + std::to_string(c) + ".png");
    WritePng(path, img);
    const Image back = ReadImage(path);
    EXPECT_EQ(back.width, 13);
    EXPECT_EQ(back.height, 7);
    EXPECT_EQ(back.channels, c);
    EXPECT_EQ(back.pixels, img.pixels);
    const Image mem = DecodeImage(ReadFile(path), "upload");
    EXPECT_EQ(mem.pixels, img.pixels);
    EXPECT_EQ(EncodePng(img), ReadFile(path));  // the same bytes every time
  }
}

TEST(Vision, ReadsJpeg) {
  TempDir dir;
  const std::string path = dir / "smooth.jpg";
  // A smooth colour gradient: JPEG keeps it within a few levels.
  const Image img = MakeImage(32, 16, 3, [](int64_t x, int64_t y, int64_t c) {
    return static_cast<uint8_t>(40 + x * 4 + y * 2 + c * 20);
  });
  ASSERT_NE(stbi_write_jpg(path.c_str(), 32, 16, 3, img.pixels.data(), 95), 0);
  const Image back = ReadImage(path);
  ASSERT_EQ(back.width, 32);
  ASSERT_EQ(back.height, 16);
  ASSERT_EQ(back.channels, 3);
  for (size_t i = 0; i < img.pixels.size(); ++i)
    EXPECT_NEAR(back.pixels[i], img.pixels[i], 8) << "byte " << i;
}

TEST(Vision, BadFilesNameTheFile) {
  TempDir dir;
  const std::string missing = dir / "missing.png";
  EXPECT_THAT(ThrownMessage([&] { ReadImage(missing); }), HasSubstr(missing + ": no such file"));

  const std::string garbage = dir / "garbage.png";
  WriteFile(garbage, "this is not an image at all, just text");
  EXPECT_THAT(ThrownMessage([&] { ReadImage(garbage); }),
              HasSubstr(garbage + ": not an image stb_image can read"));

  const std::string empty = dir / "empty.png";
  WriteFile(empty, "");
  EXPECT_THAT(ThrownMessage([&] { ReadImage(empty); }), HasSubstr(empty + ": empty file"));

  EXPECT_THAT(ThrownMessage([&] { ReadImage(dir.path().string()); }), HasSubstr("is a directory"));

  // A PNG cut in the middle of its pixel data.
  const std::string png = EncodePng(MakeImage(64, 64, 3, Pattern));
  const std::string truncated = dir / "truncated.png";
  WriteFile(truncated, png.substr(0, png.size() / 2));
  const std::string message = ThrownMessage([&] { ReadImage(truncated); });
  EXPECT_THAT(message, HasSubstr(truncated + ": cannot decode the image ("));
  EXPECT_THAT(message, HasSubstr("corrupt or truncated"));
  EXPECT_THAT(ThrownMessage([&] { DecodeImage(png.substr(0, 40), "upload.png"); }),
              HasSubstr("upload.png: "));
}

TEST(Vision, RefusesAbsurdSizesFromTheHeader) {
  // The IHDR width (bytes 16-19) patched to 20000: refused before any decoding (stb_image does
  // not check the CRC).
  std::string png = EncodePng(MakeImage(4, 4, 1, Pattern));
  png[16] = 0, png[17] = 0, png[18] = static_cast<char>(20000 >> 8), png[19] = 20000 & 0xff;
  EXPECT_THAT(ThrownMessage([&] { DecodeImage(png, "huge.png"); }),
              HasSubstr("huge.png: image of 20000 x 4 pixels is refused"));
}

TEST(Vision, ConvertsChannels) {
  Image rgb;
  rgb.width = 2;
  rgb.height = 1;
  rgb.channels = 3;
  rgb.pixels = {255, 0, 0, 10, 200, 30};
  const Image gray = ToChannels(rgb, 1);
  ASSERT_EQ(gray.channels, 1);
  EXPECT_EQ(gray.pixels, (std::vector<uint8_t>{76, 124}));  // round(.299*255), round(luma)

  const Image back = ToChannels(gray, 3);
  EXPECT_EQ(back.pixels, (std::vector<uint8_t>{76, 76, 76, 124, 124, 124}));

  Image rgba = MakeImage(3, 2, 4, Pattern);
  const Image dropped = ToChannels(rgba, 3);
  for (int64_t i = 0; i < 6; ++i)
    for (int64_t c = 0; c < 3; ++c) EXPECT_EQ(dropped.pixels[i * 3 + c], rgba.pixels[i * 4 + c]);

  const Image ga = ToChannels(gray, 2);
  EXPECT_EQ(ga.pixels, (std::vector<uint8_t>{76, 255, 124, 255}));
  EXPECT_EQ(ToChannels(ga, 1).pixels, gray.pixels);
  EXPECT_THAT(ThrownMessage([&] { ToChannels(gray, 5); }), HasSubstr("ToChannels"));
}

TEST(Vision, ResizeKeepsConstantsConstant) {
  for (int64_t c : {1, 3}) {
    const Image flat = MakeImage(
        7, 5, c, [](int64_t, int64_t, int64_t ch) { return static_cast<uint8_t>(200 - 50 * ch); });
    for (auto [w, h] : {std::pair<int64_t, int64_t>{3, 11}, {7, 5}, {20, 20}, {1, 1}, {6, 2}}) {
      const Image r = Resize(flat, w, h);
      ASSERT_EQ(r.width, w);
      ASSERT_EQ(r.height, h);
      for (size_t i = 0; i < r.pixels.size(); ++i)
        ASSERT_EQ(r.pixels[i], 200 - 50 * static_cast<int>(i % c))
            << w << "x" << h << " byte " << i;
    }
  }
}

TEST(Vision, ResizeShrinksByAreaAndGrowsLinearly) {
  // A 2 x 2 checker of 0 and 255 becomes one pixel of its mean.
  const Image checker = MakeImage(2, 2, 1, [](int64_t x, int64_t y, int64_t) {
    return static_cast<uint8_t>((x + y) % 2 ? 255 : 0);
  });
  EXPECT_EQ(Resize(checker, 1, 1).pixels, (std::vector<uint8_t>{128}));
  // A fine 1-pixel checker of 8 x 8 shrunk to 2 x 2: every output pixel is its mean (no aliasing).
  const Image fine = MakeImage(8, 8, 1, [](int64_t x, int64_t y, int64_t) {
    return static_cast<uint8_t>((x + y) % 2 ? 200 : 0);
  });
  EXPECT_EQ(Resize(fine, 2, 2).pixels, (std::vector<uint8_t>{100, 100, 100, 100}));
  // 2 x 2 blocks of 4 x 4 shrunk to 2 x 2: the blocks.
  const Image blocks = MakeImage(4, 4, 1, [](int64_t x, int64_t y, int64_t) {
    return static_cast<uint8_t>(x / 2 * 100 + y / 2 * 50);
  });
  EXPECT_EQ(Resize(blocks, 2, 2).pixels, (std::vector<uint8_t>{0, 100, 50, 150}));
  // Shrinking by 3 to 2 along x: output pixel 0 covers source [0, 1.5).
  Image row;
  row.width = 3;
  row.height = 1;
  row.channels = 1;
  row.pixels = {0, 90, 180};
  EXPECT_EQ(Resize(row, 2, 1).pixels, (std::vector<uint8_t>{30, 150}));
  // Growing: centres aligned, edges clamped.
  row.width = 2;
  row.pixels = {0, 255};
  EXPECT_EQ(Resize(row, 4, 1).pixels, (std::vector<uint8_t>{0, 64, 191, 255}));
  EXPECT_THAT(ThrownMessage([&] { Resize(row, 0, 3); }), HasSubstr("Resize: to 0 x 3"));
}

TEST(Vision, FloatChwLayout) {
  const Image img = MakeImage(2, 2, 3, Pattern);
  const std::vector<float> f = ToFloatCHW(img);
  ASSERT_EQ(f.size(), 12u);
  for (int64_t c = 0; c < 3; ++c)
    for (int64_t y = 0; y < 2; ++y)
      for (int64_t x = 0; x < 2; ++x)
        EXPECT_FLOAT_EQ(f[(c * 2 + y) * 2 + x], img.at(x, y, c) / 255.0f);
}

// An IDX file: big-endian magic and sizes, then the payload; gzip'ed unless `plain`.
void WriteIdx(const std::string& path, uint32_t magic, const std::vector<uint32_t>& dims,
              const std::string& payload, bool plain = false) {
  std::string bytes;
  auto put = [&](uint32_t v) {
    for (int s = 24; s >= 0; s -= 8) bytes.push_back(static_cast<char>((v >> s) & 0xff));
  };
  put(magic);
  for (uint32_t d : dims) put(d);
  bytes += payload;
  if (plain) {
    WriteFile(path, bytes);
    return;
  }
  gzFile f = gzopen(path.c_str(), "wb");
  ASSERT_NE(f, nullptr);
  ASSERT_EQ(gzwrite(f, bytes.data(), static_cast<unsigned>(bytes.size())),
            static_cast<int>(bytes.size()));
  gzclose(f);
}

TEST(Vision, ReadsIdxFiles) {
  TempDir dir;
  std::string payload;
  for (int i = 0; i < 3 * 2 * 4; ++i) payload.push_back(static_cast<char>(i * 10));
  WriteIdx(dir / "images.gz", 2051, {3, 2, 4}, payload);
  const IdxImages images = ReadIdxImages(dir / "images.gz");
  EXPECT_EQ(images.count, 3);
  EXPECT_EQ(images.rows, 2);
  EXPECT_EQ(images.cols, 4);
  ASSERT_EQ(images.pixels.size(), 24u);
  EXPECT_EQ(images.pixels[23], 230);
  const Image second = images.image(1);
  EXPECT_EQ(second.width, 4);
  EXPECT_EQ(second.height, 2);
  EXPECT_EQ(second.at(0, 0), 80);

  WriteIdx(dir / "labels", 2049, {4}, std::string("\x01\x02\x03\x09", 4), /*plain=*/true);
  EXPECT_EQ(ReadIdxLabels(dir / "labels"), (std::vector<uint8_t>{1, 2, 3, 9}));
}

TEST(Vision, IdxErrorsNameTheFile) {
  TempDir dir;
  const std::string labels = dir / "labels.gz";
  WriteIdx(labels, 2049, {2}, "\x01\x02");
  EXPECT_THAT(ThrownMessage([&] { ReadIdxImages(labels); }),
              HasSubstr(labels + ": IDX magic number 2049 (a label file) where 2051"));

  const std::string truncated = dir / "truncated.gz";
  WriteIdx(truncated, 2051, {10, 28, 28}, std::string(1000, '\x7f'));
  EXPECT_THAT(
      ThrownMessage([&] { ReadIdxImages(truncated); }),
      HasSubstr(truncated + ": truncated IDX payload: 10 images of 28 x 28 needs 7840 bytes after "
                            "the header, the file holds 1000"));

  const std::string extra = dir / "extra.gz";
  WriteIdx(extra, 2049, {2}, "\x01\x02\x03");
  EXPECT_THAT(ThrownMessage([&] { ReadIdxLabels(extra); }),
              HasSubstr(extra + ": bytes after the IDX payload of 2 labels"));

  const std::string header = dir / "header.gz";
  WriteIdx(header, 2051, {}, "");
  EXPECT_THAT(ThrownMessage([&] { ReadIdxImages(header); }),
              HasSubstr(header + ": the file ends inside the IDX header"));

  const std::string zero = dir / "zero.gz";
  WriteIdx(zero, 2051, {0, 28, 28}, "");
  EXPECT_THAT(ThrownMessage([&] { ReadIdxImages(zero); }), HasSubstr(zero + ": IDX header says"));

  // A gzip stream cut short.
  WriteIdx(dir / "whole.gz", 2051, {100, 28, 28}, std::string(78400, '\x10'));
  const std::string gz = ReadFile(dir / "whole.gz");
  const std::string cut = dir / "cut.gz";
  WriteFile(cut, gz.substr(0, gz.size() / 2));
  EXPECT_THAT(ThrownMessage([&] { ReadIdxImages(cut); }), HasSubstr(cut + ": "));

  EXPECT_THAT(ThrownMessage([&] { ReadIdxLabels(dir / "missing.gz"); }),
              HasSubstr("missing.gz: no such file"));
  EXPECT_THAT(ThrownMessage([&] { LoadFashionMnist(dir / "nowhere", false); }),
              HasSubstr("dataset-fashion-mnist"));
}

TEST(Vision, LoadsFashionMnist) {
  if (!std::filesystem::exists(std::string(kFashionMnistDir) + "/t10k-images-idx3-ubyte.gz"))
    GTEST_SKIP() << "dataset-fashion-mnist is not installed";
  const FashionMnist test = LoadFashionMnist(kFashionMnistDir, true);
  EXPECT_EQ(test.images.count, 10000);
  EXPECT_EQ(test.labels.size(), 10000u);
  std::vector<int> per_class(10, 0);
  for (uint8_t l : test.labels) ++per_class[l];
  for (int n : per_class) EXPECT_EQ(n, 1000);
  ASSERT_EQ(FashionMnistNames().size(), 10u);
  EXPECT_EQ(FashionMnistNames()[7], "sneaker");
  EXPECT_EQ(FashionMnistNames()[9], "boot");
}

}  // namespace
}  // namespace attend::vision
