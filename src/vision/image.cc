// Image files (stb_image to decode, stb_image_write to encode PNG; libstb-dev provides both
// implementations), channel conversion, area/bilinear resizing and the float CHW layout.
#include <stb_image.h>
#include <stb_image_write.h>

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <memory>

#include "attend/error.h"
#include "attend/files.h"
#include "attend/vision.h"

namespace attend::vision {
namespace {

// A freshly decoded or written image must have a sane shape and exactly its pixels.
void CheckImage(const Image& image, const char* fn) {
  ATTEND_CHECK(image.width >= 1 && image.height >= 1 && image.width <= kMaxImageSide &&
                   image.height <= kMaxImageSide,
               fn, ": image of ", image.width, " x ", image.height, " pixels (each side must be 1-",
               kMaxImageSide, ")");
  ATTEND_CHECK(image.channels >= 1 && image.channels <= 4, fn, ": image with ", image.channels,
               " channels (1-4 expected)");
  ATTEND_CHECK(
      image.pixels.size() == static_cast<size_t>(image.width * image.height * image.channels), fn,
      ": image of ", image.width, " x ", image.height, " x ", image.channels, " holds ",
      image.pixels.size(), " bytes instead of ", image.width * image.height * image.channels);
}

struct StbFree {
  void operator()(stbi_uc* p) const { stbi_image_free(p); }
};

void AppendBytes(void* context, void* data, int size) {
  static_cast<std::string*>(context)->append(static_cast<const char*>(data),
                                             static_cast<size_t>(size));
}

// Source taps and weights of one output pixel along one axis.
struct Taps {
  std::vector<int64_t> first;  // [out + 1]: taps of output i are [first[i], first[i + 1])
  std::vector<int64_t> index;  // source pixel of each tap
  std::vector<float> weight;   // its weight; the weights of one output pixel sum to 1
};

// The taps that resize an axis of `src` pixels to `dst` (see Resize in vision.h).
Taps AxisTaps(int64_t src, int64_t dst) {
  Taps t;
  t.first.push_back(0);
  const double scale = static_cast<double>(src) / static_cast<double>(dst);
  for (int64_t i = 0; i < dst; ++i) {
    if (src == dst) {
      t.index.push_back(i);
      t.weight.push_back(1.0f);
    } else if (src > dst) {
      // Area: the source interval [lo, hi) covered by output pixel i.
      const double lo = static_cast<double>(i) * scale, hi = static_cast<double>(i + 1) * scale;
      const int64_t a = static_cast<int64_t>(std::floor(lo));
      const int64_t b = std::min<int64_t>(src, static_cast<int64_t>(std::ceil(hi)));
      for (int64_t k = a; k < b; ++k) {
        const double overlap =
            std::min(hi, static_cast<double>(k + 1)) - std::max(lo, static_cast<double>(k));
        if (overlap <= 0) continue;
        t.index.push_back(k);
        t.weight.push_back(static_cast<float>(overlap / scale));
      }
    } else {
      // Linear between the two nearest centres.
      double x = (static_cast<double>(i) + 0.5) * scale - 0.5;
      x = std::clamp(x, 0.0, static_cast<double>(src - 1));
      const int64_t a = static_cast<int64_t>(std::floor(x));
      const int64_t b = std::min(a + 1, src - 1);
      const double f = x - static_cast<double>(a);
      t.index.push_back(a);
      t.weight.push_back(static_cast<float>(1.0 - f));
      if (b != a && f > 0) {
        t.index.push_back(b);
        t.weight.push_back(static_cast<float>(f));
      }
    }
    t.first.push_back(static_cast<int64_t>(t.index.size()));
  }
  return t;
}

}  // namespace

Image DecodeImage(std::string_view bytes, const std::string& source) {
  ATTEND_CHECK(!bytes.empty(), source, ": empty file, not an image");
  ATTEND_CHECK(static_cast<int64_t>(bytes.size()) <= kMaxImageFileBytes, source, ": ", bytes.size(),
               " bytes is over the limit of ", kMaxImageFileBytes, " bytes for an image file");
  const auto* data = reinterpret_cast<const stbi_uc*>(bytes.data());
  const int len = static_cast<int>(bytes.size());
  int w = 0, h = 0, comp = 0;
  if (stbi_info_from_memory(data, len, &w, &h, &comp) == 0) {
    const char* why = stbi_failure_reason();
    ATTEND_CHECK(false, source, ": not an image stb_image can read (",
                 why != nullptr ? why : "unknown format", ")");
  }
  ATTEND_CHECK(w >= 1 && h >= 1 && w <= kMaxImageSide && h <= kMaxImageSide, source, ": image of ",
               w, " x ", h, " pixels is refused (each side must be 1-", kMaxImageSide, ")");
  std::unique_ptr<stbi_uc, StbFree> pixels(stbi_load_from_memory(data, len, &w, &h, &comp, 0));
  if (pixels == nullptr) {
    const char* why = stbi_failure_reason();
    ATTEND_CHECK(false, source, ": cannot decode the image (",
                 why != nullptr ? why : "unknown reason", "): corrupt or truncated");
  }
  ATTEND_CHECK(
      comp >= 1 && comp <= 4 && w >= 1 && h >= 1 && w <= kMaxImageSide && h <= kMaxImageSide,
      source, ": decoded image of ", w, " x ", h, " x ", comp, " is not usable");
  Image image;
  image.width = w;
  image.height = h;
  image.channels = comp;
  const size_t n = static_cast<size_t>(w) * static_cast<size_t>(h) * static_cast<size_t>(comp);
  image.pixels.assign(pixels.get(), pixels.get() + n);
  return image;
}

Image ReadImage(const std::string& path) {
  std::error_code ec;
  ATTEND_CHECK(std::filesystem::exists(path, ec), path, ": no such file");
  ATTEND_CHECK(!std::filesystem::is_directory(path, ec), path, ": is a directory, not an image");
  const auto size = std::filesystem::file_size(path, ec);
  ATTEND_CHECK(!ec, path, ": cannot read the file's size: ", ec.message());
  ATTEND_CHECK(static_cast<int64_t>(size) <= kMaxImageFileBytes, path, ": ", size,
               " bytes is over the limit of ", kMaxImageFileBytes, " bytes for an image file");
  std::ifstream in(path, std::ios::binary);
  ATTEND_CHECK(in.good(), path, ": cannot open the file: ", ErrnoText());
  const std::string bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  ATTEND_CHECK(!in.bad(), path, ": read error: ", ErrnoText());
  return DecodeImage(bytes, path);
}

std::string EncodePng(const Image& image) {
  CheckImage(image, "EncodePng");
  std::string png;
  const int ok =
      stbi_write_png_to_func(AppendBytes, &png, static_cast<int>(image.width),
                             static_cast<int>(image.height), static_cast<int>(image.channels),
                             image.pixels.data(), static_cast<int>(image.width * image.channels));
  ATTEND_CHECK(ok != 0 && !png.empty(), "EncodePng: stb_image_write failed on an image of ",
               image.width, " x ", image.height, " x ", image.channels);
  return png;
}

void WritePng(const std::string& path, const Image& image) {
  std::string png;
  try {
    png = EncodePng(image);
  } catch (const Error& e) {
    ATTEND_CHECK(false, path, ": ", e.what());
  }
  io::WriteFileAtomic(path, png);
}

Image ToChannels(const Image& image, int64_t channels) {
  CheckImage(image, "ToChannels");
  ATTEND_CHECK(channels >= 1 && channels <= 4, "ToChannels: ", channels,
               " channels asked for (1-4)");
  if (channels == image.channels) return image;
  Image out;
  out.width = image.width;
  out.height = image.height;
  out.channels = channels;
  const size_t n = static_cast<size_t>(image.width * image.height);
  out.pixels.resize(n * static_cast<size_t>(channels));
  const size_t cin = static_cast<size_t>(image.channels), cout = static_cast<size_t>(channels);
  const bool in_colour = image.channels >= 3, in_alpha = image.channels == 2 || image.channels == 4;
  const bool out_colour = channels >= 3, out_alpha = channels == 2 || channels == 4;
  for (size_t i = 0; i < n; ++i) {
    const uint8_t* p = &image.pixels[i * cin];
    uint8_t* q = &out.pixels[i * cout];
    if (out_colour) {
      for (int c = 0; c < 3; ++c) q[c] = in_colour ? p[c] : p[0];
    } else {
      q[0] = in_colour
                 ? static_cast<uint8_t>(std::lround(0.299 * p[0] + 0.587 * p[1] + 0.114 * p[2]))
                 : p[0];
    }
    if (out_alpha) q[cout - 1] = in_alpha ? p[cin - 1] : 255;
  }
  return out;
}

Image Resize(const Image& image, int64_t width, int64_t height) {
  CheckImage(image, "Resize");
  ATTEND_CHECK(width >= 1 && height >= 1 && width <= kMaxImageSide && height <= kMaxImageSide,
               "Resize: to ", width, " x ", height, " pixels (each side must be 1-", kMaxImageSide,
               ")");
  const int64_t c = image.channels;
  const Taps tx = AxisTaps(image.width, width), ty = AxisTaps(image.height, height);
  // Rows first: [image.height, width, c] in float, then columns.
  std::vector<float> rows(static_cast<size_t>(image.height * width * c));
  for (int64_t y = 0; y < image.height; ++y) {
    const uint8_t* src = &image.pixels[static_cast<size_t>(y * image.width * c)];
    float* dst = &rows[static_cast<size_t>(y * width * c)];
    for (int64_t x = 0; x < width; ++x) {
      for (int64_t k = tx.first[x]; k < tx.first[x + 1]; ++k) {
        const float wgt = tx.weight[k];
        const uint8_t* p = src + tx.index[k] * c;
        for (int64_t ch = 0; ch < c; ++ch) dst[x * c + ch] += wgt * static_cast<float>(p[ch]);
      }
    }
  }
  Image out;
  out.width = width;
  out.height = height;
  out.channels = c;
  out.pixels.resize(static_cast<size_t>(width * height * c));
  std::vector<float> acc(static_cast<size_t>(width * c));
  for (int64_t y = 0; y < height; ++y) {
    std::fill(acc.begin(), acc.end(), 0.0f);
    for (int64_t k = ty.first[y]; k < ty.first[y + 1]; ++k) {
      const float wgt = ty.weight[k];
      const float* src = &rows[static_cast<size_t>(ty.index[k] * width * c)];
      for (int64_t i = 0; i < width * c; ++i) acc[i] += wgt * src[i];
    }
    uint8_t* dst = &out.pixels[static_cast<size_t>(y * width * c)];
    for (int64_t i = 0; i < width * c; ++i)
      dst[i] = static_cast<uint8_t>(std::clamp(std::lround(acc[i]), 0L, 255L));
  }
  return out;
}

std::vector<float> ToFloatCHW(const Image& image) {
  CheckImage(image, "ToFloatCHW");
  const int64_t hw = image.width * image.height, c = image.channels;
  std::vector<float> out(static_cast<size_t>(hw * c));
  for (int64_t i = 0; i < hw; ++i)
    for (int64_t ch = 0; ch < c; ++ch)
      out[static_cast<size_t>(ch * hw + i)] =
          static_cast<float>(image.pixels[static_cast<size_t>(i * c + ch)]) / 255.0f;
  return out;
}

}  // namespace attend::vision
