// Images (src/vision/): PNG, JPEG and the other formats stb_image decodes, PNG output through
// attend/files.h, channel conversion and resizing, the f32 [C, H, W] layout the image models
// read, and Fashion-MNIST's (gzip'ed) IDX files.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace attend::vision {

// 8-bit pixels, row-major HWC: pixel (x, y) channel c is pixels[(y * width + x) * channels + c].
// channels: 1 gray, 2 gray + alpha, 3 RGB, 4 RGBA.
struct Image {
  int64_t width = 0, height = 0, channels = 0;
  std::vector<uint8_t> pixels;
  uint8_t at(int64_t x, int64_t y, int64_t c = 0) const {
    return pixels[static_cast<size_t>((y * width + x) * channels + c)];
  }
};

// The largest side ReadImage, DecodeImage, Resize and WritePng accept.
constexpr int64_t kMaxImageSide = 16384;
// The largest file ReadImage reads.
constexpr int64_t kMaxImageFileBytes = int64_t{256} << 20;

// Reads an image file (PNG, JPEG, BMP, GIF's first frame, TGA, PSD, PNM, HDR: whatever stb_image
// decodes), with the channels the file has (1-4); 16-bit PNGs are reduced to 8 bits and HDR is
// tone-mapped (stb_image's defaults). A missing, unreadable, empty, non-image, corrupt or
// truncated file, one over kMaxImageFileBytes, and a side over kMaxImageSide (read from the
// header before anything is decoded) throw attend::Error naming the file and stb_image's reason.
Image ReadImage(const std::string& path);
// The same from bytes in memory (an upload); `source` names them in messages.
Image DecodeImage(std::string_view bytes, const std::string& source);

// PNG bytes of `image` (stb_image_write at its default compression: the same bytes for the same
// image on every run).
std::string EncodePng(const Image& image);
// Writes `image` as PNG, atomically (attend/files.h).
void WritePng(const std::string& path, const Image& image);

// The image with `channels` channels (1 or 3; 2 and 4 also accepted as targets, adding an opaque
// alpha). Gray from colour is the Rec. 601 luma round(0.299 R + 0.587 G + 0.114 B); colour
// from gray repeats the value; alpha is dropped as it is, not composited over a background.
Image ToChannels(const Image& image, int64_t channels);

// Resized to width x height, each axis on its own (separably, in float, rounded at the end):
// - shrinking an axis averages by area: output pixel i covers the source interval
//   [i * s, (i + 1) * s), s = source / output, and takes the mean of the source pixels over it,
//   each weighted by the length it overlaps (a box filter matched to the scale, so no pixel is
//   skipped and fine patterns average instead of aliasing);
// - growing an axis interpolates linearly between the two nearest source pixel centres (pixel
//   centres aligned, i.e. source x = (i + 0.5) * s - 0.5, clamped at the edges);
// - an axis of the same size is copied.
// A constant image stays constant; a 2 x 2 checker of 0 and 255 becomes one pixel of 128.
Image Resize(const Image& image, int64_t width, int64_t height);

// f32 [C, H, W] with values pixel / 255 in [0, 1] (the layout the image models read).
std::vector<float> ToFloatCHW(const Image& image);

// ---- Fashion-MNIST ----

// An IDX image file (magic 2051): `count` images of rows x cols 8-bit gray pixels, image i at
// pixels[i * rows * cols].
struct IdxImages {
  int64_t count = 0, rows = 0, cols = 0;
  std::vector<uint8_t> pixels;
  // Image i as a gray Image.
  Image image(int64_t i) const;
};

// Reads an IDX image file, gzip'ed or plain. attend::Error naming the file for: a missing or
// unreadable file, a corrupt gzip stream, a wrong magic (2051 expected; 2049 is a label file),
// zero or absurd dimensions (a side over 4096, more than 2^30 pixels), a payload shorter than
// count * rows * cols (the bytes found are named), or bytes after it.
IdxImages ReadIdxImages(const std::string& path);
// Reads an IDX label file (magic 2049): one byte per item, with the same checks.
std::vector<uint8_t> ReadIdxLabels(const std::string& path);

// Where Debian's dataset-fashion-mnist installs the four files.
inline constexpr const char* kFashionMnistDir = "/usr/share/datasets/fashion-mnist";

struct FashionMnist {
  IdxImages images;             // 28 x 28
  std::vector<uint8_t> labels;  // 0..9, one per image
};

// <dir>/train-{images-idx3,labels-idx1}-ubyte.gz (60000 images), or with test_split the t10k
// files (10000). The images and labels must agree in count, labels lie in 0..9; a missing
// directory suggests installing dataset-fashion-mnist.
FashionMnist LoadFashionMnist(const std::string& dir = kFashionMnistDir, bool test_split = false);

// The classes' one-word names, by label: top, trousers, pullover, dress, coat, sandal, shirt,
// sneaker, bag, boot.
const std::vector<std::string>& FashionMnistNames();

}  // namespace attend::vision
