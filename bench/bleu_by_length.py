#!/usr/bin/env python3
"""BLEU and chrF of a translation by source-length bucket (words), scored by `attend score`.

  bleu_by_length.py --attend build/attend --src test.en --ref test.de --hyp a.hyp [--hyp b.hyp ...]
prints a markdown table: one row per bucket, one BLEU (chrF) column per hypothesis file.
"""
import argparse
import json
import os
import subprocess
import tempfile

BUCKETS = [(1, 5), (6, 10), (11, 20), (21, 10**9)]


def read(path):
    with open(path, encoding="utf-8") as f:
        return f.read().split("\n")[:-1]


def score(attend, refs, hyps):
    with tempfile.TemporaryDirectory() as d:
        r, h = os.path.join(d, "ref"), os.path.join(d, "hyp")
        for path, lines in ((r, refs), (h, hyps)):
            with open(path, "w", encoding="utf-8") as f:
                f.write("".join(line + "\n" for line in lines))
        out = subprocess.run([attend, "score", "-r", r, "-i", h, "--metrics", "bleu,chrf", "--json", "-w", "2"],
                             check=True, capture_output=True, text=True).stdout
    scores = json.loads(out)
    return {s["name"]: s["score"] for s in scores}


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--attend", required=True)
    ap.add_argument("--src", required=True)
    ap.add_argument("--ref", required=True)
    ap.add_argument("--hyp", action="append", required=True)
    ap.add_argument("--names", help="comma-separated column names (default: file names)")
    args = ap.parse_args()
    src, ref = read(args.src), read(args.ref)
    hyps = [read(h) for h in args.hyp]
    names = args.names.split(",") if args.names else [os.path.basename(h) for h in args.hyp]
    for h, path in zip(hyps, args.hyp):
        if len(h) != len(src) or len(ref) != len(src):
            raise SystemExit(f"{path}: {len(h)} lines, source {len(src)}, reference {len(ref)}")
    print("| source words | sentences | " + " | ".join(f"{n} BLEU (chrF)" for n in names) + " |")
    print("|---|---|" + "---|" * len(names))
    for lo, hi in BUCKETS + [(1, 10**9)]:
        idx = [i for i, s in enumerate(src) if lo <= len(s.split()) <= hi]
        if not idx:
            continue
        label = "all" if (lo, hi) == (1, 10**9) else (f"{lo}-{hi}" if hi < 10**9 else f"{lo}+")
        cells = []
        for h in hyps:
            s = score(args.attend, [ref[i] for i in idx], [h[i] for i in idx])
            cells.append(f"{s['BLEU']:.2f} ({s['chrF2']:.2f})")
        print(f"| {label} | {len(idx)} | " + " | ".join(cells) + " |")


if __name__ == "__main__":
    main()
