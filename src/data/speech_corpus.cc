// The speech corpus: digit strings and catalog phrases spoken by espeak-ng voices, split by
// voice (and phrase text) into train/dev/test, resampled and written as 16-bit WAV files with
// manifests. Every choice is drawn from the seed; the audio is synthesised in child processes,
// a fresh one per block of utterances, because espeak-ng's state is global and partly carried
// from one utterance to the next (its pitch flutter, for one).
#include <espeak-ng/speak_lib.h>
#include <poll.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdlib>
#include <cmath>
#include <csignal>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <set>
#include <tuple>

#include <nlohmann/json.hpp>

#include "attend/audio.h"
#include "attend/corpus.h"
#include "attend/error.h"
#include "data/internal.h"

namespace attend::data {
namespace fs = std::filesystem;
namespace {

constexpr const char* kSplitNames[3] = {"train", "dev", "test"};
constexpr const char* kKindNames[2] = {"digits", "phrases"};
constexpr int kTrain = 0, kDev = 1, kTest = 2;
constexpr int kDigits = 0, kPhrases = 1;

// Utterances spoken by one synthesiser process. Part of the corpus's definition: espeak-ng's
// output depends on what the process said before, so changing it changes the audio.
constexpr size_t kBlock = 64;

constexpr const char* kSystemLocaleDir = "/usr/share/locale";

// espeak-ng's English accents (`espeak-ng --voices=en`): the language code users know, the voice
// file espeak_SetVoiceByName accepts (it refuses "en-gb"), and the split that holds the accent
// out. Test hears an accent no other split has, dev another.
struct Accent {
  const char* code;
  const char* file;
  int split;
};
constexpr Accent kAccents[] = {
    {"en-us", "gmw/en-US", kTrain},
    {"en-gb", "gmw/en", kTrain},
    {"en-gb-x-rp", "gmw/en-GB-x-rp", kTrain},
    {"en-gb-x-gbclan", "gmw/en-GB-x-gbclan", kTrain},
    {"en-gb-x-gbcwmd", "gmw/en-GB-x-gbcwmd", kTrain},
    {"en-us-nyc", "gmw/en-US-nyc", kTrain},
    {"en-029", "gmw/en-029", kDev},
    {"en-gb-scotland", "gmw/en-GB-scotland", kTest},
};
// Voice variants (`espeak-ng --voices=variant`) that sound like a person: the numbered male and
// female ones, the Klatt synthesiser's, and named ones of either sex. Robots, whispers, croaks
// and echoes are left out; near-copies (linda and belinda) stay in one split.
struct Variant {
  const char* name;
  int split;
};
constexpr Variant kVariants[] = {
    {"m1", kTrain},     {"m2", kTrain},      {"m3", kTrain},     {"m5", kTrain},
    {"m7", kTrain},     {"f1", kTrain},      {"f2", kTrain},     {"f5", kTrain},
    {"klatt", kTrain},  {"klatt3", kTrain},  {"adam", kTrain},   {"Andy", kTrain},
    {"aunty", kTrain},  {"belinda", kTrain}, {"linda", kTrain},  {"benjamin", kTrain},
    {"david", kTrain},  {"edward", kTrain},  {"Gene", kTrain},   {"grandpa", kTrain},
    {"john", kTrain},   {"max", kTrain},     {"paul", kTrain},   {"quincy", kTrain},
    {"robert", kTrain}, {"steph", kTrain},   {"travis", kTrain}, {"m6", kDev},
    {"f4", kDev},       {"Jacky", kDev},     {"grandma", kDev},  {"m4", kTest},
    {"f3", kTest},      {"klatt2", kTest},   {"Michael", kTest}, {"Annie", kTest},
};

struct Voice {
  std::string name;    // "en-gb-x-rp+f2"
  std::string espeak;  // "gmw/en-GB-x-rp+f2"
};

// A voice belongs to the strictest split of its accent and its variant: a held-out accent or
// variant is never heard in an easier split.
void AssignVoices(SpeechCorpusStats& st, std::vector<Voice> (&voices)[3]) {
  for (int s = 0; s < 3; ++s) {
    for (const Accent& a : kAccents)
      if (a.split == s) st.accents[s].push_back(a.code);
    for (const Variant& v : kVariants)
      if (v.split == s) st.variants[s].push_back(v.name);
  }
  for (const Accent& a : kAccents) {
    for (const Variant& v : kVariants) {
      const int s = std::max(a.split, v.split);
      voices[s].push_back({std::string(a.code) + "+" + v.name, std::string(a.file) + "+" + v.name});
      st.voices[s].push_back(voices[s].back().name);
    }
  }
}

// Each utterance draws from a stream of its own (data/internal.h), so that every draw depends only
// on its position.
using Rng = detail::SplitMix64;
uint64_t StreamSeed(uint64_t seed, uint64_t a, uint64_t b, uint64_t c) {
  return detail::StreamSeed(seed, {a, b, c});
}

template <typename T>
void Shuffle(std::vector<T>& v, Rng& rng) {
  for (size_t i = v.size(); i > 1; --i) std::swap(v[i - 1], v[rng.Below(i)]);
}

constexpr const char* kDigitWords[10] = {"zero", "one", "two",   "three", "four",
                                         "five", "six", "seven", "eight", "nine"};

struct Utterance {
  int split = 0, kind = 0;
  size_t id = 0;  // position in its split: wav/<split>/<id>.wav
  std::string text;
  const Voice* voice = nullptr;
  int rate = 0, pitch = 0, range = 0;
  int lead_ms = 0, tail_ms = 0;  // silence around the speech
  int64_t samples = 0;           // at the output rate, once synthesised
};

std::string IdPath(int split, size_t id) {
  char name[32];
  std::snprintf(name, sizeof(name), "%06zu.wav", id);
  return std::string("wav/") + kSplitNames[split] + "/" + name;
}

// ---- phrases ----

struct Catalogs {
  std::string dir;  // the LC_MESSAGES directory
  std::vector<std::string> paths;
  std::vector<std::string> packages_missing;
};

// The <lang> catalogs dpkg lists for the pinned packages (/var/lib/dpkg/info/<pkg>.list, or
// <pkg>:<arch>.list for multi-arch packages).
Catalogs PinnedCatalogs(const std::string& lang) {
  Catalogs c;
  c.dir = std::string(kSystemLocaleDir) + "/" + lang + "/LC_MESSAGES";
  const std::string prefix = c.dir + "/";
  std::set<std::string> paths;
  for (const std::string& pkg : CorpusPackages()) {
    bool found = false;
    for (const std::string& line : PackageFiles(pkg, prefix)) {
      if (line.size() < prefix.size() + 4 || line.find('/', prefix.size()) != std::string::npos ||
          line.compare(line.size() - 3, 3, ".mo") != 0)
        continue;
      paths.insert(line);
      found = true;
    }
    if (!found) c.packages_missing.push_back(pkg);
  }
  c.paths.assign(paths.begin(), paths.end());
  ATTEND_CHECK(
      !c.paths.empty(), "attend corpus speech: no catalogs of the pinned corpus packages (",
      CorpusPackages()[0], ", ", CorpusPackages()[1], ", ...; scripts/corpus_packages.sh) in ",
      c.dir, ": install them (scripts/setup.sh) or give --locale-dir");
  return c;
}

Catalogs DirectoryCatalogs(const std::string& locale_dir, const std::string& lang) {
  Catalogs c;
  std::error_code ec;
  ATTEND_CHECK(fs::is_directory(locale_dir, ec), "attend corpus speech: --locale-dir ", locale_dir,
               ": no such directory");
  c.dir = (fs::path(locale_dir) / lang / "LC_MESSAGES").string();
  ATTEND_CHECK(fs::is_directory(c.dir, ec), "attend corpus speech: no catalogs in ", c.dir,
               ": not a directory (the phrases are the msgids of <locale-dir>/", lang,
               "/LC_MESSAGES/*.mo)");
  for (const fs::directory_entry& e : fs::directory_iterator(c.dir, ec))
    if (e.path().extension() == ".mo" && e.is_regular_file(ec))
      c.paths.push_back(e.path().string());
  ATTEND_CHECK(!ec, "attend corpus speech: cannot list ", c.dir, ": ", ec.message());
  std::sort(c.paths.begin(), c.paths.end());
  ATTEND_CHECK(!c.paths.empty(), "attend corpus speech: no .mo catalogs in ", c.dir);
  return c;
}

bool IsLower(char c) { return c >= 'a' && c <= 'z'; }
bool IsLetter(char c) { return IsLower(c) || (c >= 'A' && c <= 'Z'); }

// A word espeak-ng reads as a word: letters, apostrophes only between letters, no capital after
// the first letter (acronyms and CamelCase names get spelled out), a vowel (abbreviations
// such as "gpg" or "mkfs" are spelled out too), no lone letter but "a" and "I" (variable names:
// "x offset").
bool SpeakableWord(std::string_view w) {
  if (w.empty() || !IsLetter(w.front()) || !IsLetter(w.back())) return false;
  if (w.size() == 1) return w == "a" || w == "A" || w == "I" || w == "i";
  bool vowel = false;
  for (size_t i = 0; i < w.size(); ++i) {
    vowel = vowel || std::strchr("aeiouyAEIOUY", w[i]) != nullptr;
    if (i == 0) continue;
    if (w[i] == '\'') {
      if (!IsLetter(w[i + 1])) return false;  // w.back() is a letter: i + 1 is in range
    } else if (!IsLower(w[i])) {
      return false;
    }
  }
  return vowel;
}

}  // namespace

std::string SpeechPhrase(std::string_view msgid) {
  std::string s, none;
  // The typographic apostrophe (U+2019) is the ASCII one in a transcript.
  constexpr std::string_view kCurly = "\xE2\x80\x99";
  for (size_t i = 0; i < msgid.size();) {
    const bool curly = msgid.substr(i, kCurly.size()) == kCurly;
    s.push_back(curly ? '\'' : msgid[i]);
    i += curly ? kCurly.size() : 1;
  }
  s = NormalizeWhitespace(s);
  StripAccelerators(s, none);
  for (std::string_view end : {"...", "\xE2\x80\xA6", ".", ":", "!", "?"}) {
    if (s.size() >= end.size() && s.compare(s.size() - end.size(), end.size(), end) == 0) {
      s.resize(s.size() - end.size());
      break;
    }
  }
  size_t words = 0;
  for (size_t b = 0; b <= s.size();) {
    size_t e = s.find(' ', b);
    if (e == std::string::npos) e = s.size();
    if (!SpeakableWord(std::string_view(s).substr(b, e - b)) || ++words > 6) return "";
    b = e + 1;
  }
  if (words < 2) return "";
  for (char& c : s)
    if (c >= 'A' && c <= 'Z') c = static_cast<char>(c - 'A' + 'a');
  return s;
}

namespace {

// ---- synthesis (in the child processes) ----

int CollectSamples(short* wav, int n, espeak_EVENT* events) {
  if (wav != nullptr && n > 0 && events != nullptr && events->user_data != nullptr)
    static_cast<std::vector<short>*>(events->user_data)
        ->insert(static_cast<std::vector<short>*>(events->user_data)->end(), wav, wav + n);
  return 0;  // go on
}

// Speaks `block` with a freshly initialised espeak-ng and writes the WAV files under `root`;
// returns each file's length in samples.
std::vector<int64_t> SpeakBlock(const std::vector<Utterance*>& block, const std::string& root,
                                int sample_rate) {
  // espeak-ng draws from C's rand() (its breath and flutter noise), whose state the fork copies
  // from the parent: a process that had called rand() before (a Python session, a test runner)
  // would speak different audio than the command does. srand(1) is the state every new process
  // starts in (C11 7.22.2.2), so the files are the same from any caller.
  std::srand(1);
  const int rate =
      espeak_Initialize(AUDIO_OUTPUT_SYNCHRONOUS, 0, nullptr, espeakINITIALIZE_DONT_EXIT);
  ATTEND_CHECK(rate > 0,
               "attend corpus speech: espeak_Initialize failed (is espeak-ng-data "
               "installed? scripts/setup.sh installs espeak-ng)");
  espeak_SetSynthCallback(CollectSamples);
  std::vector<int64_t> lengths;
  std::vector<short> pcm;
  for (Utterance* u : block) {
    const std::string where = std::string(kSplitNames[u->split]) + " utterance " +
                              std::to_string(u->id) + " (\"" + u->text + "\", " + u->voice->name +
                              ")";
    ATTEND_CHECK(espeak_SetVoiceByName(u->voice->espeak.c_str()) == EE_OK,
                 "attend corpus speech: espeak-ng has no voice ", u->voice->espeak, " for ", where);
    espeak_SetParameter(espeakRATE, u->rate, 0);
    espeak_SetParameter(espeakPITCH, u->pitch, 0);
    espeak_SetParameter(espeakRANGE, u->range, 0);
    pcm.clear();
    const espeak_ERROR err = espeak_Synth(u->text.c_str(), u->text.size() + 1, 0, POS_CHARACTER, 0,
                                          espeakCHARS_UTF8, nullptr, &pcm);
    ATTEND_CHECK(err == EE_OK && espeak_Synchronize() == EE_OK,
                 "attend corpus speech: espeak-ng failed (error ", static_cast<int>(err), ") on ",
                 where);
    ATTEND_CHECK(!pcm.empty(), "attend corpus speech: espeak-ng gave no audio for ", where);
    audio::Waveform wave;
    wave.sample_rate = rate;
    wave.samples.resize(pcm.size());
    for (size_t i = 0; i < pcm.size(); ++i) wave.samples[i] = static_cast<float>(pcm[i]) / 32768.0f;
    // espeak-ng speaks from the first sample to the last; recordings have silence around
    // speech. It is added after resampling (the resampler takes most of the time, and it
    // treats the signal as zero beyond its ends anyway).
    const audio::Waveform speech = audio::Resample(wave, sample_rate);
    audio::Waveform out;
    out.sample_rate = sample_rate;
    const auto ms = [&](int n) {
      return static_cast<size_t>(n) * static_cast<size_t>(sample_rate) / 1000;
    };
    out.samples.assign(ms(u->lead_ms), 0.0f);
    out.samples.insert(out.samples.end(), speech.samples.begin(), speech.samples.end());
    out.samples.resize(out.samples.size() + ms(u->tail_ms), 0.0f);
    audio::WriteWav(root + "/" + IdPath(u->split, u->id), out);
    lengths.push_back(static_cast<int64_t>(out.samples.size()));
  }
  return lengths;  // the process ends here: no espeak_Terminate needed
}

void WriteAll(int fd, const void* data, size_t size) {
  const char* p = static_cast<const char*>(data);
  while (size > 0) {
    const ssize_t n = ::write(fd, p, size);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return;  // the parent is gone: nothing more to do
    p += n;
    size -= static_cast<size_t>(n);
  }
}

// The child's side: speaks the block and reports 'O' + int64 lengths, or 'E' + the message.
[[noreturn]] void RunChild(int fd, const std::vector<Utterance*>& block, const std::string& root,
                           int sample_rate) {
  int code = 0;
  try {
    const std::vector<int64_t> lengths = SpeakBlock(block, root, sample_rate);
    WriteAll(fd, "O", 1);
    WriteAll(fd, lengths.data(), lengths.size() * sizeof(int64_t));
  } catch (const std::exception& e) {
    WriteAll(fd, "E", 1);
    WriteAll(fd, e.what(), std::strlen(e.what()));
    code = 1;
  } catch (...) {
    code = 2;
  }
  ::close(fd);
  // No atexit handlers, no stdio flushes: they belong to the parent.
  ::_exit(code);
}

struct Worker {
  pid_t pid = -1;
  int fd = -1;
  size_t block = 0;
  std::string reply;
};

// Speaks every utterance, `jobs` processes at a time, each a fork that takes one block.
void SpeakAll(std::vector<Utterance>& utts, const std::string& root,
              const SpeechCorpusOptions& opt) {
  const size_t blocks = (utts.size() + kBlock - 1) / kBlock;
  std::vector<Worker> running;
  std::string failure;
  size_t next = 0, done = 0;
  auto block_of = [&](size_t b) {
    std::vector<Utterance*> v;
    for (size_t i = b * kBlock; i < std::min(utts.size(), (b + 1) * kBlock); ++i)
      v.push_back(&utts[i]);
    return v;
  };
  while (true) {
    while (failure.empty() && next < blocks && running.size() < static_cast<size_t>(opt.jobs)) {
      const std::vector<Utterance*> block = block_of(next);
      int fds[2];
      if (::pipe(fds) != 0) {
        failure = "attend corpus speech: pipe: " + ErrnoText();
        break;
      }
      std::fflush(nullptr);  // nothing buffered may be written twice
      // The child only speaks, resamples and writes files: none of the locks another thread of
      // the parent might hold at the fork (a test runner's, a thread pool's) is taken there.
      const pid_t pid = ::fork();
      if (pid == 0) {
        ::close(fds[0]);
        for (const Worker& w : running) ::close(w.fd);
        RunChild(fds[1], block, root, opt.sample_rate);
      }
      ::close(fds[1]);
      if (pid < 0) {
        ::close(fds[0]);
        failure = "attend corpus speech: fork: " + ErrnoText();
        break;
      }
      running.push_back({pid, fds[0], next++, {}});
    }
    if (running.empty()) break;
    // Read whatever the workers say; a closed pipe means the worker is done.
    std::vector<pollfd> polls;
    for (const Worker& w : running) polls.push_back({w.fd, POLLIN, 0});
    if (::poll(polls.data(), polls.size(), -1) < 0) {
      if (errno == EINTR) continue;
      failure = "attend corpus speech: poll: " + ErrnoText();
      for (const Worker& w : running) {
        ::kill(w.pid, SIGKILL);
        ::close(w.fd);
        while (::waitpid(w.pid, nullptr, 0) < 0 && errno == EINTR) {
        }
      }
      break;
    }
    for (size_t i = running.size(); i-- > 0;) {
      if (polls[i].revents == 0) continue;
      Worker& w = running[i];
      char buf[4096];
      const ssize_t n = ::read(w.fd, buf, sizeof(buf));
      if (n < 0 && errno == EINTR) continue;
      if (n > 0) {
        w.reply.append(buf, static_cast<size_t>(n));
        continue;
      }
      ::close(w.fd);
      int status = 0;
      while (::waitpid(w.pid, &status, 0) < 0 && errno == EINTR) {
      }
      const std::vector<Utterance*> block = block_of(w.block);
      const std::string what = "attend corpus speech: the synthesiser of " +
                               std::string(kSplitNames[block.front()->split]) + " utterance " +
                               std::to_string(block.front()->id) + " and the next " +
                               std::to_string(block.size() - 1);
      if (!w.reply.empty() && w.reply[0] == 'E') {
        if (failure.empty()) failure = w.reply.substr(1);
      } else if (WIFSIGNALED(status)) {
        if (failure.empty())
          failure = what + " was killed by signal " + std::to_string(WTERMSIG(status));
      } else if (w.reply.size() != 1 + block.size() * sizeof(int64_t) || w.reply[0] != 'O' ||
                 !WIFEXITED(status) || WEXITSTATUS(status) != 0) {
        if (failure.empty())
          failure = what + " failed (exit status " + std::to_string(WEXITSTATUS(status)) + ")";
      } else {
        for (size_t k = 0; k < block.size(); ++k)
          std::memcpy(&block[k]->samples, w.reply.data() + 1 + k * sizeof(int64_t),
                      sizeof(int64_t));
        done += block.size();
        if (opt.progress) opt.progress(done, utts.size());
      }
      running.erase(running.begin() + static_cast<std::ptrdiff_t>(i));
    }
  }
  ATTEND_CHECK(failure.empty(), failure);
}

// Removes a directory tree on the way out: the staging directory, emptied on success.
struct RemoveOnExit {
  fs::path path;
  ~RemoveOnExit() {
    std::error_code ec;
    fs::remove_all(path, ec);
  }
};

}  // namespace

SpeechCorpusStats BuildSpeechCorpus(const SpeechCorpusOptions& opt) {
  ATTEND_CHECK(!opt.out_dir.empty(), "attend corpus speech: --out is required");
  ATTEND_CHECK(!opt.catalog_lang.empty() && opt.catalog_lang.find('/') == std::string::npos &&
                   opt.catalog_lang != "." && opt.catalog_lang != "..",
               "attend corpus speech: --catalog-lang \"", opt.catalog_lang,
               "\" is not a language directory name (e.g. de)");
  ATTEND_CHECK(opt.sample_rate >= 8000 && opt.sample_rate <= 48000,
               "attend corpus speech: --sample-rate ", opt.sample_rate,
               " is outside 8000-48000 Hz");
  ATTEND_CHECK(espeakRATE_MINIMUM <= opt.min_rate && opt.min_rate <= opt.max_rate &&
                   opt.max_rate <= espeakRATE_MAXIMUM,
               "attend corpus speech: speaking rates ", opt.min_rate, "-", opt.max_rate,
               " words/min: need ", espeakRATE_MINIMUM, " <= min <= max <= ", espeakRATE_MAXIMUM);
  ATTEND_CHECK(0 <= opt.min_pitch && opt.min_pitch <= opt.max_pitch && opt.max_pitch <= 100 &&
                   0 <= opt.min_range && opt.min_range <= opt.max_range && opt.max_range <= 100,
               "attend corpus speech: pitch ", opt.min_pitch, "-", opt.max_pitch, " and range ",
               opt.min_range, "-", opt.max_range, ": need 0 <= min <= max <= 100");
  ATTEND_CHECK(0 <= opt.min_silence_ms && opt.min_silence_ms <= opt.max_silence_ms &&
                   opt.max_silence_ms <= 10'000,
               "attend corpus speech: silence of ", opt.min_silence_ms, "-", opt.max_silence_ms,
               " ms: need 0 <= min <= max <= 10000");
  ATTEND_CHECK(opt.dev_phrase_share >= 0 && opt.test_phrase_share >= 0 &&
                   opt.dev_phrase_share + opt.test_phrase_share < 1,
               "attend corpus speech: dev and test phrase shares must be >= 0 and leave some "
               "for train");
  ATTEND_CHECK(opt.jobs >= 1 && opt.jobs <= 256, "attend corpus speech: --jobs ", opt.jobs,
               " is outside 1-256");
  const size_t counts[3][2] = {{opt.train_digits, opt.train_phrases},
                               {opt.dev_digits, opt.dev_phrases},
                               {opt.test_digits, opt.test_phrases}};
  size_t total = 0;
  for (const auto& split : counts) total += split[0] + split[1];
  ATTEND_CHECK(total > 0, "attend corpus speech: every utterance count is 0");
  ATTEND_CHECK(total <= 10'000'000, "attend corpus speech: ", total,
               " utterances is more than the 10 million allowed");

  SpeechCorpusStats st;
  st.espeak_version = espeak_Info(nullptr);
  std::vector<Voice> voices[3];
  AssignVoices(st, voices);

  // Phrases: the unique speakable msgids, split by rank of their hash, so that a phrase's split
  // does not depend on the seed or on the order catalogs are read.
  std::vector<std::string> pools[3];
  const bool want_phrases = opt.train_phrases + opt.dev_phrases + opt.test_phrases > 0;
  if (want_phrases) {
    const Catalogs cats = opt.locale_dir.empty()
                              ? PinnedCatalogs(opt.catalog_lang)
                              : DirectoryCatalogs(opt.locale_dir, opt.catalog_lang);
    st.catalog_dir = cats.dir;
    st.packages_missing = cats.packages_missing;
    std::set<std::string> phrases;
    for (const std::string& path : cats.paths) {
      // iso-codes' catalogs (iso_639-3.mo, iso_3166-2.mo, ...) are lists of names of languages,
      // regions and currencies, not phrases: their spelling cannot be heard.
      if (fs::path(path).filename().string().rfind("iso_", 0) == 0) {
        ++st.catalogs_skipped_names;
        continue;
      }
      MoCatalog cat;
      try {
        cat = ReadMoCatalog(path);
      } catch (const Error&) {
        continue;  // a corrupt catalog gives no phrases; the others still do
      }
      ++st.catalogs_read;
      for (const MoEntry& e : cat.entries) {
        ++st.msgids;
        std::string p = SpeechPhrase(e.msgid);
        if (!p.empty()) phrases.insert(std::move(p));
      }
    }
    st.phrase_texts = phrases.size();
    std::vector<std::pair<uint64_t, const std::string*>> ranked;
    for (const std::string& p : phrases) ranked.push_back({Fnv1a64(p), &p});
    std::sort(ranked.begin(), ranked.end(), [](const auto& a, const auto& b) {
      return std::tie(a.first, *a.second) < std::tie(b.first, *b.second);
    });
    const size_t n = ranked.size();
    auto share = [n](double f) {
      return std::max<size_t>(1, static_cast<size_t>(std::llround(f * static_cast<double>(n))));
    };
    const size_t n_dev = share(opt.dev_phrase_share), n_test = share(opt.test_phrase_share);
    ATTEND_CHECK(n >= n_dev + n_test + 1, "attend corpus speech: only ", n,
                 " phrases (2-6 words of "
                 "letters) in the ",
                 st.catalogs_read, " catalogs of ", cats.dir,
                 ": too few to split into train, dev and test");
    for (size_t i = 0; i < n; ++i) {
      const int s = i < n_dev ? kDev : i < n_dev + n_test ? kTest : kTrain;
      pools[s].push_back(*ranked[i].second);
    }
    for (int s = 0; s < 3; ++s) st.phrase_texts_split[s] = pools[s].size();
  }

  // The utterances: each drawn from a stream of its own (seed, split, kind, index), then each
  // split shuffled so the kinds are mixed; a phrase pool is gone through in a shuffled order
  // before any text repeats.
  std::vector<Utterance> utts;
  utts.reserve(total);
  for (int s = 0; s < 3; ++s) {
    Rng pool_rng(StreamSeed(opt.seed, s, 2, 0));
    Shuffle(pools[s], pool_rng);
    std::vector<Utterance> split;
    for (int kind = 0; kind < 2; ++kind) {
      for (size_t i = 0; i < counts[s][kind]; ++i) {
        Rng rng(StreamSeed(opt.seed, s, kind, i));
        Utterance u;
        u.split = s;
        u.kind = kind;
        u.voice = &voices[s][rng.Below(voices[s].size())];
        u.rate = rng.Between(opt.min_rate, opt.max_rate);
        u.pitch = rng.Between(opt.min_pitch, opt.max_pitch);
        u.range = rng.Between(opt.min_range, opt.max_range);
        u.lead_ms = rng.Between(opt.min_silence_ms, opt.max_silence_ms);
        u.tail_ms = rng.Between(opt.min_silence_ms, opt.max_silence_ms);
        if (kind == kPhrases) {
          u.text = pools[s][i % pools[s].size()];
        } else {
          // 1-7 digits; zero is "oh" or "zero", as speakers of TIDIGITS said it.
          const int len = rng.Between(1, 7);
          for (int d = 0; d < len; ++d) {
            const size_t digit = rng.Below(10);
            if (d > 0) u.text += ' ';
            u.text += digit == 0 && (rng.Next() & 1) ? "oh" : kDigitWords[digit];
          }
        }
        split.push_back(std::move(u));
      }
    }
    Rng order_rng(StreamSeed(opt.seed, s, 3, 0));
    Shuffle(split, order_rng);
    for (size_t i = 0; i < split.size(); ++i) {
      split[i].id = i;
      utts.push_back(std::move(split[i]));
    }
  }

  // Synthesis into a staging directory beside wav/, swapped in at the end with the manifests.
  std::error_code ec;
  const fs::path out(opt.out_dir);
  fs::create_directories(out, ec);
  ATTEND_CHECK(fs::is_directory(out, ec), "attend corpus speech: cannot create --out ", opt.out_dir,
               ": ", ec.message());
  const fs::path fresh = out / ".wav.new", old = out / ".wav.old", wav = out / "wav";
  fs::remove_all(fresh, ec);  // left by a build that was killed
  fs::remove_all(old, ec);
  RemoveOnExit fresh_guard{fresh};
  for (const char* s : kSplitNames) {
    fs::create_directories(fresh / "wav" / s, ec);
    ATTEND_CHECK(!ec, "attend corpus speech: cannot create ", (fresh / "wav" / s).string(), ": ",
                 ec.message());
  }
  SpeakAll(utts, fresh.string(), opt);

  std::vector<std::string> manifests[3], test_kind[2];
  std::vector<std::string> details = {
      "path\tkind\tvoice\trate_wpm\tpitch\trange\tlead_ms\ttail_ms\ttranscript"};
  for (const Utterance& u : utts) {
    std::string row = IdPath(u.split, u.id) + "\t" + kKindNames[u.kind] + "\t" + u.voice->name;
    for (int v : {u.rate, u.pitch, u.range, u.lead_ms, u.tail_ms}) row += "\t" + std::to_string(v);
    details.push_back(row + "\t" + u.text);
    std::string line = IdPath(u.split, u.id) + "\t" + u.text;
    if (u.split == kTest) test_kind[u.kind].push_back(line);
    manifests[u.split].push_back(std::move(line));
    SpeechCorpusStats::Part& part = st.parts[u.split][u.kind];
    ++part.utterances;
    part.seconds += static_cast<double>(u.samples) / opt.sample_rate;
  }

  nlohmann::ordered_json vj;
  vj["rule"] =
      "a voice (accent+variant) is in test when its accent or its variant is held out for test, "
      "else in dev when either is held out for dev, else in train";
  for (int s = 0; s < 3; ++s) {
    const std::string suffix = s == kTrain ? "" : "_held_out";
    vj[kSplitNames[s]] = {{"accents" + suffix, st.accents[s]},
                          {"variants" + suffix, st.variants[s]},
                          {"voices", st.voices[s]}};
  }

  nlohmann::ordered_json sj;
  sj["seed"] = opt.seed;
  sj["sample_rate"] = opt.sample_rate;
  sj["espeak_ng"] = st.espeak_version;
  nlohmann::ordered_json splits = nlohmann::ordered_json::object();
  double all_seconds = 0;
  for (int s = 0; s < 3; ++s) {
    nlohmann::ordered_json j = nlohmann::ordered_json::object();
    for (int k = 0; k < 2; ++k) {
      j[kKindNames[k]] = {{"utterances", st.parts[s][k].utterances},
                          {"seconds", std::round(st.parts[s][k].seconds * 1000) / 1000}};
      all_seconds += st.parts[s][k].seconds;
    }
    j["voices"] = st.voices[s].size();
    splits[kSplitNames[s]] = j;
  }
  sj["splits"] = splits;
  sj["hours"] = std::round(all_seconds / 36) / 100;
  sj["phrases"] = {{"catalog_dir", st.catalog_dir},
                   {"source", opt.locale_dir.empty() ? "pinned corpus packages (dpkg lists)"
                                                     : "every .mo in catalog_dir"},
                   {"catalogs_read", st.catalogs_read},
                   {"catalogs_skipped_names", st.catalogs_skipped_names},
                   {"packages_missing", st.packages_missing},
                   {"msgids", st.msgids},
                   {"unique_texts", st.phrase_texts},
                   {"texts",
                    {{"train", st.phrase_texts_split[kTrain]},
                     {"dev", st.phrase_texts_split[kDev]},
                     {"test", st.phrase_texts_split[kTest]}}},
                   {"text_split", "by rank of fnv1a64(text): no dev or test text is in train"}};
  sj["draws"] = {{"rate_wpm", {opt.min_rate, opt.max_rate}},
                 {"pitch", {opt.min_pitch, opt.max_pitch}},
                 {"range", {opt.min_range, opt.max_range}},
                 {"silence_ms_before_and_after", {opt.min_silence_ms, opt.max_silence_ms}},
                 {"digits_per_string", {1, 7}},
                 {"words_per_phrase", {2, 6}}};
  sj["synthesis"] = {{"utterances_per_process", kBlock},
                     {"espeak_rate", 22050},
                     {"resampler", "attend::audio::Resample"}};

  // The manifests are staged first, then wav/ is swapped and they are renamed into place,
  // stats.json last: a reader never finds a manifest naming files of another build.
  io::StagedFiles staged;
  for (int s = 0; s < 3; ++s)
    staged.AddLines((out / (std::string(kSplitNames[s]) + ".tsv")).string(), manifests[s]);
  staged.AddLines((out / "test-digits.tsv").string(), test_kind[kDigits]);
  staged.AddLines((out / "test-phrases.tsv").string(), test_kind[kPhrases]);
  staged.AddLines((out / "utterances.tsv").string(), details);
  staged.Add((out / "voices.json").string(), vj.dump(2) + "\n");
  staged.Add((out / "stats.json").string(), sj.dump(2) + "\n");
  if (fs::exists(wav, ec)) {
    fs::rename(wav, old, ec);
    ATTEND_CHECK(!ec, "attend corpus speech: cannot move the old ", wav.string(),
                 " aside: ", ec.message());
  }
  fs::rename(fresh / "wav", wav, ec);
  ATTEND_CHECK(!ec, "attend corpus speech: cannot move ", (fresh / "wav").string(), " to ",
               wav.string(), ": ", ec.message());
  staged.Commit();
  fs::remove_all(old, ec);
  return st;
}

}  // namespace attend::data
