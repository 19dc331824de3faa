#!/usr/bin/env python3
"""Long and repeated utterances from a speech corpus's test digits, where Chorowski et al. (2015)
saw content-only attention fail.

  python3 scripts/speech_stress.py [--data data/speech] [--count 150] [--parts 3]

Reads DATA/utterances.tsv (written by `attend corpus speech`) and, from the test split's digit
strings, writes
  DATA/test-long.tsv      PARTS different utterances of one voice joined (about 3x as long as
                          anything heard in training), transcripts joined by spaces;
  DATA/test-repeated.tsv  one utterance said PARTS times over (the same words again and again);
with the audio under DATA/wav/stress/. Each piece loses the silence the corpus put around it
(utterances.tsv's lead_ms and tail_ms; the first keeps its lead, the last its tail) and the pieces
are joined by 60 ms of silence, about a pause between words: a long pause would read as the end of
an utterance, which every training utterance ends with. Deterministic: utterances are taken in
manifest order. Only the standard library is used (wave).
"""
import argparse
import os
import sys
import wave

SILENCE_MS = 60


def read_pcm(path):
    with wave.open(path, "rb") as w:
        if w.getsampwidth() != 2 or w.getnchannels() != 1:
            sys.exit(f"{path}: expected 16-bit mono PCM (as attend corpus speech writes)")
        return w.getframerate(), w.readframes(w.getnframes())


def write_pcm(path, rate, pcm):
    tmp = path + ".tmp"
    with wave.open(tmp, "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(rate)
        w.writeframes(pcm)
    os.replace(tmp, path)


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", default="data/speech")
    ap.add_argument("--count", type=int, default=150, help="utterances per manifest")
    ap.add_argument("--parts", type=int, default=3, help="pieces per utterance")
    a = ap.parse_args()
    rows = []
    with open(os.path.join(a.data, "utterances.tsv"), encoding="utf-8") as f:
        header = f.readline().rstrip("\n").split("\t")
        for line in f:
            rows.append(dict(zip(header, line.rstrip("\n").split("\t"))))
    test = [r for r in rows if r["path"].startswith("wav/test/") and r["kind"] == "digits"]
    by_voice = {}
    for r in test:
        by_voice.setdefault(r["voice"], []).append(r)
    out_dir = os.path.join(a.data, "wav", "stress")
    os.makedirs(out_dir, exist_ok=True)

    def join(pieces, name):
        rate, pcm = None, b""
        for i, r in enumerate(pieces):
            r_rate, r_pcm = read_pcm(os.path.join(a.data, r["path"]))
            # Trim the corpus's added silence (2 bytes per sample) inside the joined utterance.
            lead = 0 if i == 0 else int(r["lead_ms"]) * r_rate // 1000
            tail = 0 if i + 1 == len(pieces) else int(r["tail_ms"]) * r_rate // 1000
            r_pcm = r_pcm[2 * lead:len(r_pcm) - 2 * tail]
            if rate is not None and r_rate != rate:
                sys.exit(f"{r['path']}: sample rate {r_rate} differs from {rate}")
            if pcm:
                pcm += b"\0\0" * (r_rate * SILENCE_MS // 1000)
            rate, pcm = r_rate, pcm + r_pcm
        write_pcm(os.path.join(out_dir, name), rate, pcm)
        return "wav/stress/" + name, " ".join(r["transcript"] for r in pieces)

    long_lines, repeated_lines = [], []
    # Long: consecutive groups of PARTS utterances of the same voice.
    for voice in sorted(by_voice):
        group = by_voice[voice]
        for i in range(0, len(group) - a.parts + 1, a.parts):
            if len(long_lines) < a.count:
                long_lines.append(join(group[i:i + a.parts], f"long{len(long_lines):04d}.wav"))
    # Repeated: each utterance PARTS times.
    for r in test[:a.count]:
        repeated_lines.append(join([r] * a.parts, f"repeated{len(repeated_lines):04d}.wav"))
    for name, lines in [("test-long.tsv", long_lines), ("test-repeated.tsv", repeated_lines)]:
        path = os.path.join(a.data, name)
        with open(path + ".tmp", "w", encoding="utf-8") as f:
            f.writelines(f"{p}\t{t}\n" for p, t in lines)
        os.replace(path + ".tmp", path)
        print(f"{path}: {len(lines)} utterances")


if __name__ == "__main__":
    main()
