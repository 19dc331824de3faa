// The image decoder on arbitrary bytes: DecodeImage (an upload) and ReadImage (the same bytes as a
// file) must agree, and an accepted image is sane: sides within kMaxImageSide, 1-4 channels,
// exactly width x height x channels bytes. It then goes on as the image pipeline takes it: gray and
// RGB conversions, a resize to the models' size (every pixel a byte: nothing outside the source),
// the float CHW layout in [0, 1], and a PNG round trip that gives back the same pixels.
#include <algorithm>
#include <cmath>

#include "attend/vision.h"
#include "fuzz_support.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace attend;
  static fuzz::ScratchFile file("image");
  const std::string bytes(fuzz::AsView(data, size));
  const std::string& path = file.Write(bytes);

  vision::Image from_memory, from_file;
  const bool memory_ok = fuzz::Accepts([&] { from_memory = vision::DecodeImage(bytes, "upload"); });
  const bool file_ok = fuzz::Accepts([&] { from_file = vision::ReadImage(path); });
  FUZZ_CHECK(memory_ok == file_ok, "DecodeImage %s the bytes, ReadImage %s the file",
             memory_ok ? "accepts" : "refuses", file_ok ? "accepts" : "refuses");
  if (!memory_ok) return 0;
  const vision::Image& img = from_memory;
  FUZZ_CHECK(img.width == from_file.width && img.height == from_file.height &&
             img.channels == from_file.channels && img.pixels == from_file.pixels);
  FUZZ_CHECK(img.width >= 1 && img.height >= 1 && img.width <= vision::kMaxImageSide &&
                 img.height <= vision::kMaxImageSide,
             "%lld x %lld", static_cast<long long>(img.width), static_cast<long long>(img.height));
  FUZZ_CHECK(img.channels >= 1 && img.channels <= 4, "%lld channels",
             static_cast<long long>(img.channels));
  FUZZ_CHECK(img.pixels.size() == static_cast<size_t>(img.width * img.height * img.channels));

  // Small images go through the whole pipeline (large ones would only cost time).
  if (img.width * img.height > 256 * 256) return 0;
  const vision::Image gray = vision::ToChannels(img, 1), rgb = vision::ToChannels(img, 3);
  FUZZ_CHECK(gray.channels == 1 && rgb.channels == 3 &&
             gray.pixels.size() == static_cast<size_t>(img.width * img.height));
  const vision::Image small = vision::Resize(gray, 32, 24);
  FUZZ_CHECK(small.width == 32 && small.height == 24 && small.pixels.size() == 32u * 24u);
  uint8_t lo = 255, hi = 0;
  for (uint8_t p : gray.pixels) lo = std::min(lo, p), hi = std::max(hi, p);
  for (uint8_t p : small.pixels)
    FUZZ_CHECK(p >= lo && p <= hi, "resized %d outside [%d, %d]", p, lo, hi);
  for (float v : vision::ToFloatCHW(rgb)) FUZZ_CHECK(std::isfinite(v) && v >= 0 && v <= 1, "%g", v);
  const vision::Image back = vision::DecodeImage(vision::EncodePng(img), "round trip");
  FUZZ_CHECK(back.width == img.width && back.height == img.height &&
             back.channels == img.channels && back.pixels == img.pixels);
  return 0;
}
