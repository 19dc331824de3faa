// Fashion-MNIST's IDX files (gzip'ed or plain, read with zlib's gzread, which passes plain files
// through): a big-endian header (magic, then one 32-bit size per dimension) and the bytes.
#include <zlib.h>

#include <filesystem>
#include <memory>

#include "attend/error.h"
#include "attend/vision.h"

namespace attend::vision {
namespace {

constexpr uint32_t kImagesMagic = 2051, kLabelsMagic = 2049;
constexpr int64_t kMaxIdxSide = 4096;
constexpr int64_t kMaxIdxPixels = int64_t{1} << 30;

struct GzClose {
  void operator()(gzFile_s* f) const { gzclose(f); }
};

class GzReader {
 public:
  explicit GzReader(const std::string& path) : path_(path) {
    std::error_code ec;
    ATTEND_CHECK(std::filesystem::exists(path, ec), path, ": no such file");
    ATTEND_CHECK(!std::filesystem::is_directory(path, ec), path,
                 ": is a directory, not an IDX file");
    file_.reset(gzopen(path.c_str(), "rb"));
    ATTEND_CHECK(file_ != nullptr, path, ": cannot open the file: ", ErrnoText());
  }

  // Reads up to `n` bytes into `out`; returns how many came (fewer at the end of the data).
  // A corrupt gzip stream throws; a stream cut short ends the data early.
  size_t Read(uint8_t* out, size_t n) {
    size_t done = 0;
    while (done < n) {
      const unsigned chunk = static_cast<unsigned>(std::min<size_t>(n - done, 1u << 30));
      const int got = gzread(file_.get(), out + done, chunk);
      if (got < 0) {
        int code = 0;
        const char* why = gzerror(file_.get(), &code);
        ATTEND_CHECK(false, path_, ": corrupt gzip data (", why != nullptr ? why : "zlib error",
                     ")");
      }
      if (got == 0) break;
      done += static_cast<size_t>(got);
    }
    return done;
  }

  uint32_t ReadU32(const char* what) {
    uint8_t b[4];
    ATTEND_CHECK(Read(b, 4) == 4, path_, ": the file ends inside the IDX header (reading ", what,
                 ")");
    return (uint32_t{b[0]} << 24) | (uint32_t{b[1]} << 16) | (uint32_t{b[2]} << 8) | b[3];
  }

  // Reads exactly `n` payload bytes and checks that nothing follows.
  void ReadPayload(uint8_t* out, size_t n, const std::string& shape) {
    const size_t got = Read(out, n);
    ATTEND_CHECK(got == n, path_, ": truncated IDX payload: ", shape, " needs ", n,
                 " bytes after the header, the file holds ", got);
    uint8_t extra[1];
    ATTEND_CHECK(Read(extra, 1) == 0, path_, ": bytes after the IDX payload of ", shape,
                 " (the header's sizes do not match the file)");
  }

  void CheckMagic(uint32_t want) {
    const uint32_t magic = ReadU32("the magic number");
    const char* kind = magic == kImagesMagic   ? " (an image file)"
                       : magic == kLabelsMagic ? " (a label file)"
                                               : "";
    ATTEND_CHECK(magic == want, path_, ": IDX magic number ", magic, kind, " where ", want,
                 want == kImagesMagic ? " (images: unsigned bytes, 3 dimensions)"
                                      : " (labels: unsigned bytes, 1 dimension)",
                 " is expected");
  }

 private:
  std::string path_;
  std::unique_ptr<gzFile_s, GzClose> file_;
};

}  // namespace

Image IdxImages::image(int64_t i) const {
  ATTEND_CHECK(i >= 0 && i < count, "IdxImages::image: index ", i, " outside 0..", count - 1);
  Image out;
  out.width = cols;
  out.height = rows;
  out.channels = 1;
  const auto begin = pixels.begin() + static_cast<std::ptrdiff_t>(i * rows * cols);
  out.pixels.assign(begin, begin + static_cast<std::ptrdiff_t>(rows * cols));
  return out;
}

IdxImages ReadIdxImages(const std::string& path) {
  GzReader in(path);
  in.CheckMagic(kImagesMagic);
  IdxImages out;
  out.count = in.ReadU32("the image count");
  out.rows = in.ReadU32("the rows");
  out.cols = in.ReadU32("the columns");
  const std::string shape = std::to_string(out.count) + " images of " + std::to_string(out.rows) +
                            " x " + std::to_string(out.cols);
  ATTEND_CHECK(out.count >= 1 && out.rows >= 1 && out.cols >= 1 && out.rows <= kMaxIdxSide &&
                   out.cols <= kMaxIdxSide,
               path, ": IDX header says ", shape, " (need at least one image, sides 1-",
               kMaxIdxSide, ")");
  ATTEND_CHECK(out.count * out.rows * out.cols <= kMaxIdxPixels, path, ": IDX header says ", shape,
               ", over the limit of ", kMaxIdxPixels, " pixels");
  out.pixels.resize(static_cast<size_t>(out.count * out.rows * out.cols));
  in.ReadPayload(out.pixels.data(), out.pixels.size(), shape);
  return out;
}

std::vector<uint8_t> ReadIdxLabels(const std::string& path) {
  GzReader in(path);
  in.CheckMagic(kLabelsMagic);
  const int64_t count = in.ReadU32("the label count");
  const std::string shape = std::to_string(count) + " labels";
  ATTEND_CHECK(count >= 1 && count <= kMaxIdxPixels, path, ": IDX header says ", shape, " (1-",
               kMaxIdxPixels, " expected)");
  std::vector<uint8_t> labels(static_cast<size_t>(count));
  in.ReadPayload(labels.data(), labels.size(), shape);
  return labels;
}

FashionMnist LoadFashionMnist(const std::string& dir, bool test_split) {
  std::error_code ec;
  ATTEND_CHECK(std::filesystem::is_directory(dir, ec), "Fashion-MNIST: ", dir,
               " is not a directory (install Debian's dataset-fashion-mnist: scripts/setup.sh, "
               "or give the directory holding the four *-ubyte.gz files)");
  const std::string prefix = dir + "/" + (test_split ? "t10k" : "train");
  FashionMnist out;
  out.images = ReadIdxImages(prefix + "-images-idx3-ubyte.gz");
  out.labels = ReadIdxLabels(prefix + "-labels-idx1-ubyte.gz");
  ATTEND_CHECK(out.images.count == static_cast<int64_t>(out.labels.size()),
               "Fashion-MNIST: ", prefix, "-images-idx3-ubyte.gz holds ", out.images.count,
               " images but ", prefix, "-labels-idx1-ubyte.gz ", out.labels.size(), " labels");
  ATTEND_CHECK(out.images.rows == 28 && out.images.cols == 28, "Fashion-MNIST: ", prefix,
               "-images-idx3-ubyte.gz holds images of ", out.images.rows, " x ", out.images.cols,
               " pixels, not 28 x 28");
  for (size_t i = 0; i < out.labels.size(); ++i)
    ATTEND_CHECK(out.labels[i] < 10, "Fashion-MNIST: ", prefix, "-labels-idx1-ubyte.gz: label ",
                 static_cast<int>(out.labels[i]), " of item ", i, " is outside 0..9");
  return out;
}

const std::vector<std::string>& FashionMnistNames() {
  static const std::vector<std::string> names = {"top",    "trousers", "pullover", "dress", "coat",
                                                 "sandal", "shirt",    "sneaker",  "bag",   "boot"};
  return names;
}

}  // namespace attend::vision
