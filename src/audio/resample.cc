// Resampling with libsamplerate (attend/audio.h).
#include <samplerate.h>

#include <algorithm>
#include <cmath>

#include "attend/audio.h"
#include "attend/error.h"

namespace attend::audio {

Waveform Resample(const Waveform& wave, int rate) {
  ATTEND_CHECK(wave.sample_rate > 0 && wave.sample_rate <= kMaxRate,
               "Resample: the input's sample rate ", wave.sample_rate, " Hz is outside 1 .. ",
               kMaxRate);
  ATTEND_CHECK(rate > 0 && rate <= kMaxRate, "Resample: the target rate ", rate,
               " Hz is outside 1 .. ", kMaxRate);
  if (rate == wave.sample_rate) return wave;
  const double ratio = static_cast<double>(rate) / wave.sample_rate;
  ATTEND_CHECK(src_is_valid_ratio(ratio), "Resample: ", wave.sample_rate, " Hz to ", rate,
               " Hz is a ratio of ", ratio, "; libsamplerate converts within 1/256 .. 256");
  const int64_t n = static_cast<int64_t>(wave.samples.size());
  const int64_t want = std::llround(static_cast<double>(n) * ratio);
  ATTEND_CHECK(want <= kMaxFrames, "Resample: ", n, " samples at ", rate, " Hz would be ", want,
               ", over the limit of ", kMaxFrames);

  Waveform out;
  out.sample_rate = rate;
  if (n == 0) return out;
  // Room for what libsamplerate may give beyond n * ratio while it drains its filter.
  out.samples.resize(static_cast<size_t>(want + 64));
  SRC_DATA data{};
  data.data_in = wave.samples.data();
  data.input_frames = static_cast<long>(n);
  data.data_out = out.samples.data();
  data.output_frames = static_cast<long>(out.samples.size());
  data.src_ratio = ratio;
  const int err = src_simple(&data, SRC_SINC_MEDIUM_QUALITY, 1);
  ATTEND_CHECK(err == 0, "Resample: libsamplerate: ", src_strerror(err));
  ATTEND_ASSERT(data.input_frames_used == n, "libsamplerate used ", data.input_frames_used, " of ",
                n, " samples");
  // The length is fixed by the ratio (a few samples short at the end are zeros).
  out.samples.resize(static_cast<size_t>(data.output_frames_gen));
  out.samples.resize(static_cast<size_t>(want), 0.0f);
  for (float& x : out.samples) x = std::clamp(x, -1.0f, 1.0f);
  return out;
}

}  // namespace attend::audio
