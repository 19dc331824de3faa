// WAV files (attend/audio.h): our own walk over the RIFF chunks checks what libsndfile lets pass
// (a data chunk cut short, zero channels, encodings we do not read), then libsndfile decodes the
// samples through its virtual I/O, from a file descriptor or from bytes in memory alike, so both
// readers share one path. Also the manifests of (audio, transcript) lines.
#include <fcntl.h>
#include <sndfile.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cmath>
#include <cstring>
#include <filesystem>
#include <memory>
#include <string_view>

#include "attend/audio.h"
#include "attend/error.h"
#include "attend/files.h"
#include "attend/text.h"

namespace attend::audio {
namespace {

// Bytes read at an offset, from memory or from a file.
class ByteSource {
 public:
  virtual ~ByteSource() = default;
  virtual int64_t Size() const = 0;
  // Up to `n` bytes at `offset` into `out`; the number read (0 at or past the end).
  virtual int64_t ReadAt(int64_t offset, void* out, int64_t n) = 0;
  // Reads exactly `n` bytes; false when fewer are there.
  bool ReadExact(int64_t offset, void* out, int64_t n) { return ReadAt(offset, out, n) == n; }
  // The first read error, or "" (libsndfile cannot be handed an exception mid-read).
  virtual std::string error() const { return ""; }
};

class MemorySource : public ByteSource {
 public:
  explicit MemorySource(std::string_view bytes) : bytes_(bytes) {}
  int64_t Size() const override { return static_cast<int64_t>(bytes_.size()); }
  int64_t ReadAt(int64_t offset, void* out, int64_t n) override {
    if (offset < 0 || n <= 0 || offset >= Size()) return 0;
    const int64_t count = std::min(n, Size() - offset);
    std::memcpy(out, bytes_.data() + offset, static_cast<size_t>(count));
    return count;
  }

 private:
  std::string_view bytes_;
};

class FileSource : public ByteSource {
 public:
  explicit FileSource(const std::string& path) {
    fd_ = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
    ATTEND_CHECK(fd_ >= 0, path, ": cannot open the WAV file: ", ErrnoText());
    struct stat st {};
    if (::fstat(fd_, &st) != 0 || !S_ISREG(st.st_mode)) {
      const bool dir = S_ISDIR(st.st_mode);
      ::close(fd_);
      ATTEND_CHECK(false, path, dir ? ": is a directory, not a WAV file" : ": not a regular file");
    }
    size_ = st.st_size;
  }
  ~FileSource() override { ::close(fd_); }
  FileSource(const FileSource&) = delete;
  FileSource& operator=(const FileSource&) = delete;

  int64_t Size() const override { return size_; }
  int64_t ReadAt(int64_t offset, void* out, int64_t n) override {
    int64_t done = 0;
    while (done < n && offset + done < size_) {
      const ssize_t got = ::pread(fd_, static_cast<char*>(out) + done,
                                  static_cast<size_t>(n - done), static_cast<off_t>(offset + done));
      if (got < 0 && errno == EINTR) continue;
      if (got < 0 && error_.empty()) error_ = ErrnoText();
      if (got <= 0) break;
      done += got;
    }
    return done;
  }
  std::string error() const override { return error_; }

 private:
  std::string error_;
  int fd_ = -1;
  int64_t size_ = 0;
};

// libsndfile's virtual I/O over a ByteSource (read only).
struct ReadCursor {
  ByteSource* source;
  int64_t pos = 0;
};

sf_count_t VioLength(void* user) { return static_cast<ReadCursor*>(user)->source->Size(); }
sf_count_t VioSeek(sf_count_t offset, int whence, void* user) {
  auto* c = static_cast<ReadCursor*>(user);
  int64_t base = 0;
  if (whence == SEEK_CUR) base = c->pos;
  if (whence == SEEK_END) base = c->source->Size();
  if (offset < 0 ? base < -offset : offset > INT64_MAX - base) return -1;
  c->pos = base + offset;
  return c->pos;
}
sf_count_t VioRead(void* ptr, sf_count_t count, void* user) {
  auto* c = static_cast<ReadCursor*>(user);
  const int64_t n = c->source->ReadAt(c->pos, ptr, count);
  c->pos += n;
  return n;
}
sf_count_t VioNoWrite(const void*, sf_count_t, void*) { return 0; }
sf_count_t VioTell(void* user) { return static_cast<ReadCursor*>(user)->pos; }

// libsndfile's virtual I/O into a growing buffer (WriteWav encodes in memory, then writes the
// bytes atomically).
struct WriteBuffer {
  std::string bytes;
  int64_t pos = 0;
};

sf_count_t BufLength(void* user) {
  return static_cast<sf_count_t>(static_cast<WriteBuffer*>(user)->bytes.size());
}
sf_count_t BufSeek(sf_count_t offset, int whence, void* user) {
  auto* b = static_cast<WriteBuffer*>(user);
  int64_t base = 0;
  if (whence == SEEK_CUR) base = b->pos;
  if (whence == SEEK_END) base = static_cast<int64_t>(b->bytes.size());
  if (base + offset < 0) return -1;
  b->pos = base + offset;
  return b->pos;
}
sf_count_t BufRead(void* ptr, sf_count_t count, void* user) {
  auto* b = static_cast<WriteBuffer*>(user);
  MemorySource source(b->bytes);
  const int64_t n = source.ReadAt(b->pos, ptr, count);
  b->pos += n;
  return n;
}
sf_count_t BufWrite(const void* ptr, sf_count_t count, void* user) {
  auto* b = static_cast<WriteBuffer*>(user);
  const size_t end = static_cast<size_t>(b->pos + count);
  if (b->bytes.size() < end) b->bytes.resize(end);
  std::memcpy(b->bytes.data() + b->pos, ptr, static_cast<size_t>(count));
  b->pos += count;
  return count;
}
sf_count_t BufTell(void* user) { return static_cast<WriteBuffer*>(user)->pos; }

struct SndfileCloser {
  void operator()(SNDFILE* f) const { sf_close(f); }
};

uint32_t Word32(const unsigned char* p, bool big_endian) {
  return big_endian
             ? (uint32_t{p[0]} << 24) | (uint32_t{p[1]} << 16) | (uint32_t{p[2]} << 8) | p[3]
             : (uint32_t{p[3]} << 24) | (uint32_t{p[2]} << 16) | (uint32_t{p[1]} << 8) | p[0];
}
uint16_t Word16(const unsigned char* p, bool big_endian) {
  return static_cast<uint16_t>(big_endian ? (p[0] << 8) | p[1] : (p[1] << 8) | p[0]);
}

constexpr uint16_t kFormatPcm = 0x0001, kFormatFloat = 0x0003, kFormatExtensible = 0xFFFE;

// What the RIFF chunks say, read without libsndfile.
struct RiffLayout {
  uint16_t format = 0, channels = 0, bits = 0, block_align = 0;
  uint32_t rate = 0;
  int64_t data_offset = 0;
  uint32_t data_bytes = 0;
};

// Walks the chunks up to "data" and refuses what libsndfile would read wrongly or not at all.
RiffLayout CheckRiff(ByteSource& src, const std::string& name) {
  unsigned char head[12];
  ATTEND_CHECK(src.ReadExact(0, head, 12) &&
                   (std::memcmp(head, "RIFF", 4) == 0 || std::memcmp(head, "RIFX", 4) == 0) &&
                   std::memcmp(head + 8, "WAVE", 4) == 0,
               name, ": not a WAV file (no RIFF/WAVE header)");
  const bool big = head[3] == 'X';
  RiffLayout l;
  bool have_fmt = false;
  int64_t at = 12;
  while (true) {
    unsigned char chunk[8];
    ATTEND_CHECK(src.ReadExact(at, chunk, 8), name, ": corrupt WAV header: no 'data' chunk",
                 have_fmt ? "" : " and no 'fmt ' chunk");
    const uint32_t bytes = Word32(chunk + 4, big);
    if (std::memcmp(chunk, "fmt ", 4) == 0) {
      unsigned char fmt[16];
      ATTEND_CHECK(bytes >= 16 && src.ReadExact(at + 8, fmt, 16), name,
                   ": corrupt WAV header: the 'fmt ' chunk is cut short");
      l.format = Word16(fmt, big);
      l.channels = Word16(fmt + 2, big);
      l.rate = Word32(fmt + 4, big);
      l.block_align = Word16(fmt + 12, big);
      l.bits = Word16(fmt + 14, big);
      // WAVE_FORMAT_EXTENSIBLE names the encoding in the first two bytes of its subformat GUID.
      if (l.format == kFormatExtensible) {
        ATTEND_CHECK(bytes >= 26, name,
                     ": corrupt WAV header: WAVE_FORMAT_EXTENSIBLE without its subformat");
        unsigned char guid[2];
        ATTEND_CHECK(src.ReadExact(at + 8 + 24, guid, 2), name,
                     ": corrupt WAV header: the 'fmt ' chunk is cut short");
        l.format = Word16(guid, big);
      }
      have_fmt = true;
    } else if (std::memcmp(chunk, "data", 4) == 0) {
      ATTEND_CHECK(have_fmt, name, ": corrupt WAV header: the 'data' chunk comes before 'fmt '");
      l.data_offset = at + 8;
      l.data_bytes = bytes;
      break;
    }
    at += 8 + int64_t{bytes} + (bytes & 1);  // chunks are padded to an even size
  }

  ATTEND_CHECK(l.channels > 0, name, ": the WAV header says 0 channels");
  ATTEND_CHECK(l.rate > 0, name, ": the WAV header says sample rate 0");
  ATTEND_CHECK(l.rate <= static_cast<uint32_t>(kMaxRate), name, ": sample rate ", l.rate,
               " Hz is over the limit of ", kMaxRate, " Hz");
  const bool pcm =
      l.format == kFormatPcm && (l.bits == 8 || l.bits == 16 || l.bits == 24 || l.bits == 32);
  const bool ieee = l.format == kFormatFloat && (l.bits == 32 || l.bits == 64);
  ATTEND_CHECK(pcm || ieee, name, ": unsupported WAV encoding (format 0x", std::hex, l.format,
               std::dec, ", ", l.bits,
               " bits); only PCM 8/16/24/32-bit and IEEE float 32/64-bit are read");
  // 0xFFFFFFFF is the size a writer leaves when it cannot seek back (streamed WAV): the data runs
  // to the end of the file.
  const int64_t present = src.Size() - l.data_offset;
  ATTEND_CHECK(l.data_bytes == 0xFFFFFFFFu || int64_t{l.data_bytes} <= present, name,
               ": truncated WAV file: the data chunk promises ", l.data_bytes, " bytes but only ",
               present, " are present");
  return l;
}

// The samples of a checked WAV, averaged to mono.
Waveform Decode(ByteSource& src, const std::string& name) {
  CheckRiff(src, name);
  ReadCursor cursor{&src};
  SF_VIRTUAL_IO vio{VioLength, VioSeek, VioRead, VioNoWrite, VioTell};
  SF_INFO info{};
  std::unique_ptr<SNDFILE, SndfileCloser> file(sf_open_virtual(&vio, SFM_READ, &info, &cursor));
  // sf_error(nullptr) is libsndfile's last open error (a global: only the text may be another
  // thread's).
  ATTEND_CHECK(file != nullptr, name, ": corrupt WAV file: ", sf_error_number(sf_error(nullptr)));
  const int type = info.format & SF_FORMAT_TYPEMASK, sub = info.format & SF_FORMAT_SUBMASK;
  ATTEND_CHECK((type == SF_FORMAT_WAV || type == SF_FORMAT_WAVEX) &&
                   (sub == SF_FORMAT_PCM_U8 || sub == SF_FORMAT_PCM_S8 || sub == SF_FORMAT_PCM_16 ||
                    sub == SF_FORMAT_PCM_24 || sub == SF_FORMAT_PCM_32 || sub == SF_FORMAT_FLOAT ||
                    sub == SF_FORMAT_DOUBLE),
               name, ": unsupported WAV file (libsndfile format 0x", std::hex, info.format, ")");
  ATTEND_CHECK(info.channels > 0, name, ": the WAV file has 0 channels");
  ATTEND_CHECK(info.samplerate > 0, name, ": the WAV file has sample rate 0");
  ATTEND_CHECK(info.frames >= 0, name, ": corrupt WAV file: unknown length");
  const double seconds = static_cast<double>(info.frames) / info.samplerate;
  ATTEND_CHECK(seconds <= kMaxSeconds && info.frames <= kMaxFrames, name, ": ", info.frames,
               " frames (", seconds, " s at ", info.samplerate,
               " Hz) is over the limit of one hour and ", kMaxFrames, " frames per file");

  Waveform wave;
  wave.sample_rate = info.samplerate;
  wave.samples.reserve(static_cast<size_t>(info.frames));
  const int channels = info.channels;
  const sf_count_t block = std::max<sf_count_t>(1, 8192 / channels);
  std::vector<float> buf(static_cast<size_t>(block * channels));
  sf_count_t total = 0;
  while (total < info.frames) {
    const sf_count_t want = std::min(block, info.frames - total);
    const sf_count_t got = sf_readf_float(file.get(), buf.data(), want);
    if (got <= 0) break;
    for (sf_count_t f = 0; f < got; ++f) {
      float sum = 0;
      for (int c = 0; c < channels; ++c) sum += buf[static_cast<size_t>(f * channels + c)];
      const float x = sum / static_cast<float>(channels);
      ATTEND_CHECK(std::isfinite(x), name, ": sample ", total + f,
                   " is not a finite number (NaN or infinity)");
      wave.samples.push_back(std::clamp(x, -1.0f, 1.0f));
    }
    total += got;
  }
  ATTEND_CHECK(src.error().empty(), name, ": read error: ", src.error());
  ATTEND_CHECK(total == info.frames, name, ": truncated WAV file: the header promises ",
               info.frames, " frames but only ", total, " could be read");
  return wave;
}

}  // namespace

Waveform ReadWav(const std::string& path) {
  FileSource source(path);
  return Decode(source, path);
}

Waveform ReadWavBytes(const std::string& bytes, const std::string& source) {
  MemorySource memory(bytes);
  return Decode(memory, source);
}

void WriteWav(const std::string& path, const Waveform& wave) {
  ATTEND_CHECK(wave.sample_rate > 0 && wave.sample_rate <= kMaxRate, "WriteWav ", path,
               ": sample rate ", wave.sample_rate, " Hz is outside 1 .. ", kMaxRate);
  const int64_t n = static_cast<int64_t>(wave.samples.size());
  ATTEND_CHECK(n <= kMaxFrames && static_cast<double>(n) / wave.sample_rate <= kMaxSeconds,
               "WriteWav ", path, ": ", n, " samples is over the limit of one hour and ",
               kMaxFrames, " samples");
  // Our own rounding (libsndfile scales by 32767 when writing but 1/32768 when reading).
  std::vector<short> pcm(static_cast<size_t>(n));
  for (int64_t i = 0; i < n; ++i) {
    const float x = wave.samples[static_cast<size_t>(i)];
    ATTEND_CHECK(std::isfinite(x), "WriteWav ", path, ": sample ", i,
                 " is not a finite number (NaN or infinity)");
    pcm[static_cast<size_t>(i)] =
        static_cast<short>(std::clamp(std::lrint(double{x} * 32768.0), -32768l, 32767l));
  }

  WriteBuffer out;
  SF_VIRTUAL_IO vio{BufLength, BufSeek, BufRead, BufWrite, BufTell};
  SF_INFO info{};
  info.samplerate = wave.sample_rate;
  info.channels = 1;
  info.format = SF_FORMAT_WAV | SF_FORMAT_PCM_16;
  {
    std::unique_ptr<SNDFILE, SndfileCloser> file(sf_open_virtual(&vio, SFM_WRITE, &info, &out));
    ATTEND_CHECK(file != nullptr, "WriteWav ", path,
                 ": libsndfile: ", sf_error_number(sf_error(nullptr)));
    ATTEND_CHECK(sf_writef_short(file.get(), pcm.data(), n) == n, "WriteWav ", path,
                 ": libsndfile: ", sf_strerror(file.get()));
  }  // sf_close writes the final sizes into the header
  io::WriteFileAtomic(path, out.bytes);
}

std::vector<Utterance> ReadManifest(const std::string& path) {
  constexpr size_t kMaxLine = size_t{1} << 20;
  text::LineReader reader(path, kMaxLine);
  std::filesystem::path dir = std::filesystem::path(path).parent_path();
  std::vector<Utterance> out;
  text::LineReader::Line line;
  while (reader.Next(&line)) {
    const std::string where = reader.name() + ":" + std::to_string(line.number);
    ATTEND_CHECK(!line.cropped(), where, ": line longer than ", kMaxLine, " bytes");
    const std::string& s = line.text;
    ATTEND_CHECK(!s.empty(), where, ": empty line (expected \"path<TAB>transcript\")");
    const size_t tab = s.find('\t');
    ATTEND_CHECK(tab != std::string::npos, where,
                 ": no TAB between the audio path and the transcript");
    ATTEND_CHECK(s.find('\t', tab + 1) == std::string::npos, where,
                 ": more than one TAB (expected \"path<TAB>transcript\")");
    ATTEND_CHECK(tab > 0, where, ": empty audio path");
    std::string transcript = s.substr(tab + 1);
    ATTEND_CHECK(transcript.find_first_not_of(" ") != std::string::npos, where,
                 ": empty transcript");
    const size_t bad = text::FirstInvalidUtf8(transcript);
    ATTEND_CHECK(bad == std::string::npos, where, ": the transcript is not valid UTF-8 (byte ",
                 bad + 1, " of it)");
    const std::filesystem::path audio(s.substr(0, tab));
    Utterance u;
    u.path = audio.is_relative() ? (dir / audio).string() : audio.string();
    u.transcript = std::move(transcript);
    u.line = static_cast<int64_t>(line.number);
    out.push_back(std::move(u));
  }
  ATTEND_CHECK(!out.empty(), reader.name(), ": the manifest holds no utterances");
  return out;
}

}  // namespace attend::audio
