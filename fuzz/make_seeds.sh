#!/usr/bin/env bash
# Writes the fuzz targets' seed corpora: fuzz/make_seeds.sh MAKE_FUZZ_SEEDS OUT_DIR
# (scripts/fuzz.sh --seeds runs it). The binary writes what needs attend's writers (safetensors,
# checkpoints, configs, vocabularies); catalogs come from msgfmt; the rest is text written here.
# Existing seeds other than these (the inputs of past findings) are left in place.
set -euo pipefail

make_seeds="$1"
out="$2"
mkdir -p "$out"
"$make_seeds" "$out"

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

# ---- .mo catalogs (msgfmt, as Debian's packages are built) ----
mkdir -p "$out/mo_catalog"
cat > "$work/de.po" <<'EOF'
msgid ""
msgstr ""
"Project-Id-Version: seed\n"
"Content-Type: text/plain; charset=UTF-8\n"
"Plural-Forms: nplurals=2; plural=(n != 1);\n"

msgid "_Open the file"
msgstr "Datei _öffnen"

msgctxt "menu"
msgid "Close"
msgstr "Schließen"

msgid "%d file"
msgid_plural "%d files"
msgstr[0] "%d Datei"
msgstr[1] "%d Dateien"

msgid "Line one\nline two"
msgstr "Zeile eins\nZeile zwei"
EOF
msgfmt -o "$out/mo_catalog/utf8.mo" "$work/de.po"
msgfmt --endianness=big -o "$out/mo_catalog/utf8-big-endian.mo" "$work/de.po"

# ISO-8859-1 (converted by the reader) and KOI8-R (refused, counted as unsupported).
cat > "$work/latin1.po" <<'EOF'
msgid ""
msgstr ""
"Content-Type: text/plain; charset=ISO-8859-1\n"
"Plural-Forms: nplurals=3; plural=n==1 ? 0 : n%10>=2 && n%10<=4 && (n%100<10 || n%100>=20) ? 1 : 2;\n"

msgid "Size"
msgstr "Größe"
EOF
iconv -f UTF-8 -t ISO-8859-1 "$work/latin1.po" > "$work/latin1.iso.po"
msgfmt -o "$out/mo_catalog/latin1.mo" "$work/latin1.iso.po"
cat > "$work/koi8.po" <<'EOF'
msgid ""
msgstr ""
"Content-Type: text/plain; charset=KOI8-R\n"

msgid "File"
msgstr "Файл"
EOF
iconv -f UTF-8 -t KOI8-R "$work/koi8.po" > "$work/koi8.iso.po"
msgfmt -o "$out/mo_catalog/koi8-r.mo" "$work/koi8.iso.po"

# Revision 0.1: a system-dependent string (<PRIu64>) gives the extra tables.
cat > "$work/sysdep.po" <<'EOF'
msgid ""
msgstr ""
"Content-Type: text/plain; charset=UTF-8\n"

#, c-format
msgid "%<PRIu64> bytes"
msgstr "%<PRIu64> Bytes"

msgid "plain"
msgstr "schlicht"
EOF
msgfmt -o "$out/mo_catalog/sysdep.mo" "$work/sysdep.po"

# ---- plural expressions (the Plural-Forms of common languages) ----
mkdir -p "$out/plural"
i=0
while IFS= read -r expr; do
  printf '%s' "$expr" > "$out/plural/$(printf '%02d' $i).txt"
  i=$((i + 1))
done <<'EOF'
n != 1
(n != 1)
n>1
0
n==1 ? 0 : n==2 ? 1 : 2
n%10==1 && n%100!=11 ? 0 : n%10>=2 && n%10<=4 && (n%100<10 || n%100>=20) ? 1 : 2
n==0 ? 0 : n==1 ? 1 : n==2 ? 2 : n%100>=3 && n%100<=10 ? 3 : n%100>=11 ? 4 : 5
(n==1) ? 0 : (n>=2 && n<=4) ? 1 : 2
n%100==1 ? 0 : n%100==2 ? 1 : n%100==3 || n%100==4 ? 2 : 3
!(n/10 - 3*4 + 7) || n%3 == 2
EOF

# ---- parallel text: an options byte, the source file, 0xFF, the target file ----
mkdir -p "$out/parallel_text" "$out/tsv"
printf '\x00Open the file\nClose\r\n\xff\xef\xbb\xbfDatei \xc3\xb6ffnen\nSchlie\xc3\x9fen\r\n' \
  > "$out/parallel_text/two-lines.txt"
printf '\x01one\n\ntwo\n\xffeins\nleer\n\nzwei' > "$out/parallel_text/skip-empty.txt"
printf '\x02a very long line over sixteen bytes\n\xffkurz\n' > "$out/parallel_text/too-long.txt"

# ---- TSV: an options byte, then the file ----
printf '\x00Open the file\tDatei \xc3\xb6ffnen\nClose\tSchlie\xc3\x9fen\r\n' > "$out/tsv/two-lines.tsv"
printf '\x01\xef\xbb\xbfa\tb\n\n\tno source\nc\td' > "$out/tsv/skip-empty.tsv"
printf '\x00one\ttab\ttoo many\n' > "$out/tsv/two-tabs.tsv"

# ---- shortlists (attend shortlist's text): a small one as Shortlist::ToText writes it, and one
# with no frequent ids, its lines in any order and no final newline ----
mkdir -p "$out/shortlist"
printf 'attend-shortlist 1 vocab_size=12 digest=1a2b3c4d frequent=3 per_source=2 iterations=5\nfrequent\t4 6 5\n1\t9\n4\t7 8\n5\t9 4\n11\t10 11\n' \
  > "$out/shortlist/written.txt"
printf 'attend-shortlist 1 vocab_size=8000 digest=cbf43926 frequent=0 per_source=50 iterations=1\nfrequent\t\n7999\t4\n12\t7999 100 5' \
  > "$out/shortlist/any-order.txt"

# ---- metrics: two option bytes, the hypotheses, then each reference, 0xFF between files ----
mkdir -p "$out/metrics"
printf '\x00\x00The cat sat on the mat.\nHello, world!\n\xffThe cat is on the mat.\nHello world.\n' \
  > "$out/metrics/13a.txt"
printf '\x06\x5d\xce\xa3\xce\x95\xce\x99\xce\xa3 \xe2\x80\x9cquoted\xe2\x80\x9d 3.5%% \xe2\x82\xac\n\xff\xcf\x83\xce\xb5\xce\xb9\xcf\x82 quoted 3,5 %%\n\xffOther reference\n' \
  > "$out/metrics/intl-lowercase.txt"
printf '\x89\xe6\xe4\xb8\xad\xe6\x96\x87\xe5\x8f\xa5\xe5\xad\x90 &amp; <skipped> 1-2\n\xff\xe4\xb8\xad\xe6\x96\x87 & 1 - 2\n' \
  > "$out/metrics/char-addk.txt"
printf '\x53\xf2 a\t b  \xe2\x80\x83\n\n\xff\n \n' > "$out/metrics/empty-lines.txt"

# ---- WAV files: the encodings besides make_fuzz_seeds' 16-bit mono (8-bit stereo, float with a
# fact chunk, 24-bit WAVE_FORMAT_EXTENSIBLE after an odd-sized chunk, a streamed data size of
# 0xFFFFFFFF, big-endian RIFX) ----
mkdir -p "$out/wav"
printf 'RIFF\x2c\x00\x00\x00WAVEfmt \x10\x00\x00\x00\x01\x00\x02\x00\x40\x1f\x00\x00\x80\x3e\x00\x00\x02\x00\x08\x00data\x08\x00\x00\x00\x80\x80\xff\x00\x40\xc0\x80\x7f' \
  > "$out/wav/u8-stereo.wav"
printf 'RIFF\x40\x00\x00\x00WAVEfmt \x10\x00\x00\x00\x03\x00\x01\x00\x80\x3e\x00\x00\x00\xfa\x00\x00\x04\x00 \x00fact\x04\x00\x00\x00\x04\x00\x00\x00data\x10\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x3f\x00\x00\x00\xbf\x00\x00\x80\x3f' \
  > "$out/wav/float-fact.wav"
printf 'RIFFT\x00\x00\x00WAVEfmt \x28\x00\x00\x00\xfe\xff\x02\x00\x80\xbb\x00\x00\x00e\x04\x00\x06\x00\x18\x00\x16\x00\x18\x00\x03\x00\x00\x00\x01\x00\x00\x00\x00\x00\x10\x00\x80\x00\x00\xaa\x008\x9bqJUNK\x03\x00\x00\x00abc\x00data\x0c\x00\x00\x00\x00\x00\x40\x00\x00\xc0\xff\xff\x7f\x01\x00\x80' \
  > "$out/wav/s24-extensible-junk.wav"
printf 'RIFF\x2c\x00\x00\x00WAVEfmt \x10\x00\x00\x00\x01\x00\x01\x00\x22V\x00\x00D\xac\x00\x00\x02\x00\x10\x00data\xff\xff\xff\xff\x00\x00\xe8\x03\x18\xfc\xff\x7f' \
  > "$out/wav/s16-streamed.wav"
printf 'RIFX\x00\x00\x00\x2cWAVEfmt \x00\x00\x00\x10\x00\x01\x00\x01\x00\x00\x3e\x80\x00\x00\x7d\x00\x00\x02\x00\x10data\x00\x00\x00\x08\x00\x00\x03\xe8\xfc\x18\x80\x00' \
  > "$out/wav/rifx-s16.wav"

echo "seeds written under $out"
