// Corpora (src/data/): the GNU gettext .mo catalog reader, the default parallel corpus built from
// Debian's installed catalogs (`attend corpus debian`), the synthesised speech corpus (`attend
// corpus speech`), the image corpora built from Fashion-MNIST (`attend corpus scenes` and
// `cluttered`), the synthetic language pair with known alignments and parses (`attend corpus
// synthetic`), and readers for users' own parallel text and image captions. Writing them goes
// through attend/files.h; UTF-8 checks are in attend/text.h.
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
#include <map>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "attend/files.h"
#include "attend/text.h"
#include "attend/vision.h"

namespace attend::data {

// ---- GNU gettext .mo catalogs ----

// One translated message. msgctxt and msgid come from the original string ("ctxt\x04id" when a
// context is present, "id\0id_plural" for plurals); msgstr holds one form per plural index.
struct MoEntry {
  bool has_context = false;
  std::string context;       // msgctxt, without the \x04 separator
  std::string msgid;         // singular msgid
  std::string msgid_plural;  // empty unless is_plural
  bool is_plural = false;
  std::vector<std::string> msgstr;  // [nplurals] for plurals, [1] otherwise
};

struct MoCatalog {
  std::string source;       // file name used in messages
  bool big_endian = false;  // byte order of the file
  uint32_t revision = 0;    // major << 16 | minor
  std::string charset;      // lower-cased, from the header's Content-Type ("" if none)
  // True when the entries are UTF-8: the charset is UTF-8 or ASCII (or absent), or it was
  // ISO-8859-1 and every string was converted. False for any other charset: then `entries` is
  // empty, since the bytes cannot be read without a converter.
  bool charset_supported = true;
  bool converted_from_latin1 = false;
  std::string header;            // msgstr of the header entry (empty msgid), converted
  std::string plural_forms;      // the header's "Plural-Forms:" value ("" if none)
  std::vector<MoEntry> entries;  // every entry except the header, in file order
  // Revision 0.1 files may hold system-dependent strings (<PRIu64> and the like) in separate
  // tables; they are not read, only counted.
  uint32_t system_dependent_strings = 0;
};

// Reads a .mo file. The file is untrusted: the magic (either byte order), the major revision
// (0 or 1), the table offsets, each string's offset and length (and its terminating NUL) are all
// checked against the file size, and anything wrong throws attend::Error naming the file and the
// problem ("string 12 of the translation table: offset 4000 + length 30 is past the end of the
// file (3500 bytes)"). Never reads out of bounds. ReadMoCatalog checks the header against the
// file's size before reading the rest, and refuses files over 64 MiB (catalogs are ~2 MB at most).
MoCatalog ReadMoCatalog(const std::string& path);
// The same from bytes in memory; `source` names them in messages.
MoCatalog ParseMoCatalog(std::string_view bytes, const std::string& source);

// Evaluates a gettext plural expression ("(n != 1)", "n%10==1 && n%100!=11 ? 0 : 1", ...) at
// `n`: C syntax with n, integers, ?:, ||, &&, comparisons, + - * / %, ! and parentheses.
// Throws attend::Error on a syntax error or a division by zero.
uint64_t EvaluatePluralExpression(std::string_view expression, uint64_t n);
// The plural index of a catalog's singular form: its Plural-Forms evaluated at n = 1, or 0 when
// the catalog has no Plural-Forms (gettext's default is "n != 1"). -1 when the expression does
// not parse or points past nplurals.
int SingularPluralIndex(const MoCatalog& catalog);

// ---- the default corpus from installed gettext catalogs ----

struct DebianCorpusOptions {
  std::string src = "en";  // "en" pairs msgid with msgstr
  std::string tgt = "de";
  std::string locale_dir = "/usr/share/locale";  // reads <locale_dir>/<lang>/LC_MESSAGES/*.mo
  std::string out_dir;                           // receives train/dev/test.<lang>, stats.json
  size_t max_bytes = 400;                        // longer sides (after cleaning) are dropped
  // Split by FNV-1a 64 of the cleaned source: hash % 1000 below dev_per_mille goes to dev, the
  // next test_per_mille to test, the rest to train. Every pair with the same source lands in
  // the same split, and a sentence's split does not move when catalogs are added.
  uint32_t dev_per_mille = 15;
  uint32_t test_per_mille = 15;
  // Identical sides (untranslated names: "Szeged" -> "Szeged") are always dropped from dev and
  // test; with this, from train as well.
  bool drop_identical_train = false;
};

// Counts of everything the build read, dropped and wrote (also written as stats.json).
struct DebianCorpusStats {
  size_t catalogs_found = 0;  // <tgt>/LC_MESSAGES/*.mo
  size_t catalogs_read = 0;
  size_t catalogs_latin1 = 0;             // converted from ISO-8859-1
  size_t catalogs_skipped_charset = 0;    // other non-UTF-8 charsets
  size_t catalogs_skipped_corrupt = 0;    // ReadMoCatalog threw; the message is kept below
  size_t catalogs_skipped_no_source = 0;  // src != en: no <src> catalog of the same name
  size_t catalogs_skipped_name = 0;       // a file name that is not valid UTF-8
  std::vector<std::string> skipped;       // "name: reason" for each skipped catalog
  // Entry counts: raw entries (header excluded) and the drops by rule, in rule order.
  size_t raw_entries = 0;
  std::map<std::string, size_t> dropped;
  size_t plural_singular_kept = 0;   // plural entries that contributed their singular
  size_t accelerators_stripped = 0;  // pairs whose mnemonic markers were removed
  size_t pairs_before_split = 0;     // unique pairs
  size_t train = 0, dev = 0, test = 0;
};

// Builds the corpus and writes it (atomically) under options.out_dir: train.<src>,
// train.<tgt>, dev.*, test.* and stats.json. The rules, in order, are documented in
// docs/cli.md ("attend corpus"). Throws attend::Error when the locale directory or the target
// language's LC_MESSAGES is missing, when no catalog could be read, or on write errors;
// single unreadable or corrupt catalogs are skipped and counted.
DebianCorpusStats BuildDebianCorpus(const DebianCorpusOptions& options);

// The cleaning applied to each side before the rules (exposed for tests): control characters
// (newlines, tabs, ...) become spaces, runs of ASCII whitespace collapse to one space, the ends
// are trimmed.
std::string NormalizeWhitespace(std::string_view text);
// True when `text` holds no letter once printf directives (%s, %1$d, %%), brace fields ({0},
// {name}), digits, punctuation and spaces are taken out: "%s: %s", "%d%%", "--", "{0}".
bool IsFormatOnly(std::string_view text);
// Removes gettext accelerator markers from a pair when that is unambiguous: a side holding
// exactly one '_' (or one '&') followed by a letter or digit loses it, unless the word around it
// also appears verbatim on the other side (an identifier such as LC_ALL or AT&T). "__" and "&&"
// (literal characters), HTML entities (&amp;) and a marker before a space are left alone; a
// parenthesised "(_F)" / "(&F)" suffix (CJK style) is removed whole. Returns true when it
// changed anything.
bool StripAccelerators(std::string& src, std::string& tgt);
// FNV-1a 64 of the bytes.
uint64_t Fnv1a64(std::string_view bytes);

// ---- the speech corpus (`attend corpus speech`) ----

// Spoken utterances synthesised with eSpeak NG, for speech recognition: connected digit strings
// ("three oh seven", TIDIGITS style) and short English phrases taken from the msgids of gettext
// catalogs (except iso-codes' lists of names, iso_*.mo). A voice is an espeak-ng English accent
// with a voice variant ("en-gb-x-rp+f2"); the splits are by voice: dev and test each hold out one
// accent and a few variants, whose voices never speak in train. Phrase texts are split as well: no
// dev or test phrase is ever spoken in train. Everything (texts, voices, rates, pitches, the audio
// itself) follows from the seed.
struct SpeechCorpusOptions {
  std::string out_dir;  // receives wav/<split>/<id>.wav, the manifests, voices.json, stats.json
  // Utterances per split and kind.
  size_t train_digits = 6000, train_phrases = 6000;
  size_t dev_digits = 300, dev_phrases = 300;
  size_t test_digits = 500, test_phrases = 500;
  uint64_t seed = 1;
  // Where the phrases come from: every <locale_dir>/<catalog_lang>/LC_MESSAGES/*.mo; with
  // locale_dir empty, the catalogs of the pinned corpus packages (scripts/corpus_packages.sh)
  // as dpkg lists them under /usr/share/locale, so every Debian 12 machine reads the same ones.
  std::string locale_dir;
  std::string catalog_lang = "de";  // any language: only the (English) msgids are read
  // Shares of the unique phrase texts held out for dev and for test (at least one each).
  double dev_phrase_share = 0.05, test_phrase_share = 0.05;
  int sample_rate = 16000;  // of the WAV files (espeak-ng speaks at 22050 Hz)
  // Per utterance, drawn uniformly: speaking rate (words per minute), pitch and pitch range
  // (espeak-ng's 0-100 scales).
  int min_rate = 130, max_rate = 200;
  int min_pitch = 30, max_pitch = 70;
  int min_range = 30, max_range = 70;
  // Silence before the speech and after it, each drawn in [min, max] milliseconds.
  int min_silence_ms = 100, max_silence_ms = 300;
  // Worker processes synthesising at once. espeak-ng keeps global state (some of it carried
  // from one utterance to the next), so each block of utterances is spoken by a fresh process
  // of its own: the audio does not depend on `jobs`.
  int jobs = 2;
  // Called from time to time with (utterances written, total); may be empty.
  std::function<void(size_t, size_t)> progress;
};

// The pinned corpus packages (scripts/corpus_packages.sh, CORPUS_PACKAGES; a test keeps the two
// lists equal): every corpus read from the gettext catalogs takes its catalogs from these, so
// that every Debian 12 machine builds the same corpus whatever else it has installed.
const std::vector<std::string>& CorpusPackages();

// The regular files that dpkg lists for `package` (/var/lib/dpkg/info/<package>.list, or
// <package>:<arch>.list for a multi-arch package) whose paths start with `prefix`, sorted,
// without repeats; empty when the package is not installed.
std::vector<std::string> PackageFiles(const std::string& package, const std::string& prefix);

struct SpeechCorpusStats {
  struct Part {
    size_t utterances = 0;
    double seconds = 0;  // of audio
  };
  // [split][kind]: split 0 train, 1 dev, 2 test; kind 0 digits, 1 phrases.
  Part parts[3][2];
  std::string catalog_dir;                    // the LC_MESSAGES directory read
  size_t catalogs_read = 0;                   // .mo files that gave msgids
  size_t catalogs_skipped_names = 0;          // iso-codes' lists of names (iso_*.mo), not read
  std::vector<std::string> packages_missing;  // pinned packages without catalogs (default only)
  size_t msgids = 0;                          // msgids read (with repeats)
  size_t phrase_texts = 0;                    // unique phrases kept
  size_t phrase_texts_split[3] = {0, 0, 0};   // of them, held by train, dev, test
  // The voices ("accent+variant") of each split, and the accents and variants they combine.
  std::vector<std::string> voices[3], accents[3], variants[3];
  std::string espeak_version;
};

// Builds the speech corpus under options.out_dir: wav/{train,dev,test}/NNNNNN.wav (16-bit mono),
// the manifests train.tsv, dev.tsv, test.tsv, test-digits.tsv and test-phrases.tsv
// ("wav/test/000123.wav<TAB>transcript", paths relative to out_dir), utterances.tsv (every
// utterance with its kind, voice, rate, pitch, range and silences, under a header line),
// voices.json and stats.json (written last). A rebuild replaces the whole wav/ directory and every
// file above. Throws attend::Error when no catalog is found (naming the directory), when too few
// phrases survive the filter, when espeak-ng fails, or on write errors.
SpeechCorpusStats BuildSpeechCorpus(const SpeechCorpusOptions& options);

// The spoken form of a msgid, or "" when it does not make a phrase: whitespace normalised,
// accelerator markers removed ("_Open File"), a final ".", "...", "…", ":", "!" or "?" dropped,
// then 2-6 words of ASCII letters (apostrophes inside a word: "don't"), no acronym, CamelCase
// or vowelless word ("USB", "PackageKit", "gpg": espeak-ng would spell them), lower-cased.
std::string SpeechPhrase(std::string_view msgid);

// ---- image corpora from Fashion-MNIST (`attend corpus scenes`, `attend corpus cluttered`) ----

// Scenes for captioning with attention: on a size x size black gray canvas, 2-4 Fashion-MNIST
// items of distinct classes, each drawn small or large and normal or dark, never touching one
// another, among small dimmed fragments of other items (clutter). Captions from a small grammar
// name every item with its attributes and the spatial relations of their boxes' centres
// (docs/cli.md, "Image corpora"). Train scenes take their items (and clutter) from Fashion-MNIST
// train images 0-54999, dev from 55000-59999, test from the t10k set only. Everything follows
// from the seed: the same options give the same bytes.
struct ScenesCorpusOptions {
  std::string out_dir;  // receives images/<split>/NNNNN.png, <split>.tsv, <split>.items.jsonl,
                        // stats.json
  int64_t size = 96;    // canvas side in pixels (48-1024)
  int64_t train = 20000, dev = 1000, test = 2000;  // scenes per split
  int64_t min_items = 2, max_items = 4;            // items per scene, 1-10 (distinct classes)
  int64_t captions_per_scene = 5;                  // different reference captions, 1-10
  int64_t clutter = 6;                             // fragments per scene, 0-100
  uint64_t seed = 1;
  std::string fashion_dir = vision::kFashionMnistDir;
  int threads = 2;  // draw and encode scenes at once; the output does not depend on it
};

struct ScenesCorpusStats {
  int64_t scenes[3] = {0, 0, 0};    // train, dev, test
  int64_t captions[3] = {0, 0, 0};  // reference captions (lines of <split>.tsv)
  int64_t items[3] = {0, 0, 0};
  std::vector<int64_t> items_per_class;  // [10], all splits
  size_t vocabulary = 0;                 // distinct caption words
  std::vector<std::string> examples;     // the captions of train scene 0
  int64_t bytes = 0;                     // of the PNG files
};

// Builds the scenes corpus under options.out_dir: images/{train,dev,test}/NNNNN.png (gray),
// train.tsv, dev.tsv, test.tsv ("images/train/00000.png<TAB>caption", the captions of one image
// on consecutive lines, paths relative to out_dir), train.items.jsonl etc. (one line per image:
// {"image": ..., "items": [{"label", "class", "box": [x0, y0, x1, y1], "size", "shade", "side",
// "source"}, ...]}, box exclusive in canvas pixels, source the item's index in its Fashion-MNIST
// file) and stats.json (written last). A rebuild replaces images/ and every file above. Throws
// attend::Error for options out of range, a missing Fashion-MNIST, or write errors.
ScenesCorpusStats BuildScenesCorpus(const ScenesCorpusOptions& options);

// Cluttered Fashion-MNIST for classification with attention (RA-CNN style): one small item per
// canvas at a random place and scale, among clutter fragments; the same splits and sources.
struct ClutteredCorpusOptions {
  std::string out_dir;  // images/<split>/NNNNN.png, <split>.tsv, <split>.items.jsonl, stats.json
  int64_t size = 96;
  int64_t train = 20000, dev = 1000, test = 2000;
  int64_t min_item = 20, max_item = 28;  // the item's side in pixels (scaled from 28)
  int64_t clutter = 12;
  uint64_t seed = 1;
  std::string fashion_dir = vision::kFashionMnistDir;
  int threads = 2;
};

struct ClutteredCorpusStats {
  int64_t images[3] = {0, 0, 0};
  std::vector<int64_t> items_per_class;  // [10], all splits
  int64_t bytes = 0;
};

// Builds the cluttered corpus: images/<split>/NNNNN.png, <split>.tsv ("path<TAB>label-name"),
// <split>.items.jsonl (as the scenes corpus's, one item) and stats.json (last).
ClutteredCorpusStats BuildClutteredCorpus(const ClutteredCorpusOptions& options);

// ---- the synthetic parallel corpus (`attend corpus synthetic`) ----

// A made-up language pair generated by a grammar, whose true word alignment and source parse are
// known by construction (docs/cli.md, "attend corpus synthetic"; README.txt in the output). The
// source is English-like and SVO: determiners, adjectives before nouns, prepositional phrases and
// relative clauses ("that ..."), with made-up content words. The target puts adjectives after
// their noun (mirror order), verbs at the end of their clause, a case particle after subject and
// object noun phrases (target words with no source word), drops "the" and "a" (source words with
// no target word) and turns the other determiners into a word after the noun; every word is
// translated by a fixed lexicon, a few nouns into two words (one-to-many links). The language is
// the same for every seed; the seed draws the sentences. Same options, same bytes.
struct SyntheticCorpusOptions {
  std::string
      out_dir;  // receives <split>.{src,tgt,align,tree}, lexicon.tsv, README.txt, stats.json
  uint64_t seed = 1;
  int64_t train = 20000, dev = 500, test = 1000;  // sentence pairs per split
  int64_t max_words = 30;                         // longer source sentences are drawn again (3-200)
  int64_t max_depth = 3;  // prepositional phrases and relative clauses nested at most this deep
                          // (0-6)
};

struct SyntheticCorpusStats {
  // [split]: 0 train, 1 dev, 2 test.
  int64_t sentences[3] = {0, 0, 0};
  int64_t src_words[3] = {0, 0, 0}, tgt_words[3] = {0, 0, 0};
  int64_t links[3] = {0, 0, 0};
  int64_t dropped_src[3] = {0, 0, 0};   // unaligned source words: dropped determiners
  int64_t inserted_tgt[3] = {0, 0, 0};  // unaligned target words: case particles
  int64_t longest = 0;                  // source words of the longest sentence
  // Sentences (all splits) with: an adjective (which follows its noun in the target), a verb
  // moved past its object or prepositional phrase, a relative clause, a noun of two target words.
  int64_t with_adjective = 0, with_verb_moved = 0, with_relative = 0, with_compound = 0;
  // Draws rejected: a source sentence already in the corpus, or longer than max_words.
  int64_t duplicates = 0, too_long = 0;
  int64_t src_vocabulary = 0, tgt_vocabulary = 0;  // words of the lexicon on each side
};

// Builds the corpus under options.out_dir: for each split train, dev, test: <split>.src and
// <split>.tgt (words separated by single spaces), <split>.align (the true links, Pharaoh "s-t",
// 0-based, sorted), <split>.tree (the source's parse, linearised with the words as XX:
// "(S (NP XX XX ) (VP XX ) )", labels S NP VP PP SBAR); lexicon.tsv, README.txt, stats.json
// (written last, all files renamed into place together). No source sentence occurs twice in the
// corpus: test is drawn first, dev next without test's sentences, train last without either, so
// test depends only on the seed and --test (a smaller --test gives a prefix). Throws attend::Error
// for options out of range, when too few distinct sentences can be drawn, or on write errors.
SyntheticCorpusStats BuildSyntheticCorpus(const SyntheticCorpusOptions& options);

// The lexicon: one entry per source word (class "det", "rel", "prep", "noun", "adj", "vt", "vi",
// most frequent first within a class) with its target words (none for a dropped determiner, two
// for a split compound), then the case particles (class "particle", no source word).
struct SyntheticEntry {
  std::string cls;
  std::string src;
  std::vector<std::string> tgt;
};
const std::vector<SyntheticEntry>& SyntheticLexicon();

// ---- users' images with captions, and item boxes ----

struct ImageCaption {
  std::string image;                  // resolved against the TSV's directory when relative
  std::vector<std::string> captions;  // in file order
};

// "image<TAB>caption" per line (the scenes corpus's <split>.tsv, or users' own data). All lines of
// one image path are grouped, images kept in the order they first appear. attend::Error naming
// file:line for a line without exactly one tab, an empty image path or caption, invalid UTF-8,
// an empty line or a line over 4096 bytes; a file without lines is an error too.
std::vector<ImageCaption> ReadCaptionsTsv(const std::string& path);

struct ItemBox {
  std::string label;
  int64_t cls = 0;
  int64_t x0 = 0, y0 = 0, x1 = 0, y1 = 0;  // x1, y1 exclusive
};

// The <split>.items.jsonl files: per line {"image": path, "items": [{"label": string, "class":
// integer, "box": [x0, y0, x1, y1]}, ...]} (other keys ignored); paths resolved as
// ReadCaptionsTsv's. The lines are untrusted: anything missing, of the wrong type, or a box with
// x0 >= x1 or y0 >= y1 or negative coordinates is an attend::Error naming file:line.
std::vector<std::pair<std::string, std::vector<ItemBox>>> ReadItemsJsonl(const std::string& path);

// ---- users' parallel data ----

struct SentencePair {
  std::string src;
  std::string tgt;
};

struct ReadOptions {
  size_t max_bytes = 2048;  // a longer line is an error (its length is named)
  bool skip_empty = false;  // skip empty lines (in parallel data: pairs with an empty side)
};

// Lines of a UTF-8 text file ("-" reads stdin), without their "\n" and a trailing "\r"; a
// UTF-8 byte-order mark at the start is dropped. attend::Error with "file:line" for: a missing
// or unreadable file, invalid UTF-8 (with the byte offset), an empty line (unless skip_empty),
// a line over max_bytes.
std::vector<std::string> ReadLines(const std::string& path, const ReadOptions& options = {});
// Sentence i of src_path with sentence i of tgt_path; the files must have as many lines (both
// counts are named otherwise). With skip_empty, a pair with an empty side is skipped.
std::vector<SentencePair> ReadParallelText(const std::string& src_path, const std::string& tgt_path,
                                           const ReadOptions& options = {});
// "source<TAB>target" per line; a line without exactly one tab is an error naming file:line.
std::vector<SentencePair> ReadTsv(const std::string& path, const ReadOptions& options = {});

}  // namespace attend::data
