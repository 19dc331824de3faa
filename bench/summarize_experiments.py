#!/usr/bin/env python3
"""One markdown table from the runs of bench/translation_experiments.sh.

  summarize_experiments.py OUT [NAME ...]
For each run OUT/NAME (every finished run when no NAME is given): parameters, the last dev loss,
the test scores `attend score` wrote (score.txt: BLEU and chrF, or bracket F1 and exact match),
target tokens/s of training, and with `attend align` output (align.txt) the AER of the decoder's
last cross-attention site (mean of heads for the Transformer) and of the best site.
"""
import os
import re
import sys


def read(path):
    try:
        with open(path, encoding="utf-8") as f:
            return f.read()
    except OSError:
        return ""


def number(pattern, text, default=""):
    m = re.search(pattern, text, re.M)
    return m.group(1) if m else default


def row(out, name):
    d = os.path.join(out, name)
    log, score = read(os.path.join(d, "train.log")), read(os.path.join(d, "score.txt"))
    params = number(r"(\d+) parameters", log)
    dev = re.findall(r"^validation step \d+: dev loss ([\d.]+)", log, re.M)
    tok = number(r"([\d.]+) target tokens/s", read(d + ".train.out"))
    cells = [name, "%.2f M" % (int(params) / 1e6) if params else "", dev[-1] if dev else ""]
    if "BracketF1" in score:
        cells += [number(r"BracketF1\S* = ([\d.]+)", score), number(r"exact = ([\d.]+)%", score)]
    else:
        cells += [number(r"^\s*BLEU\S* = ([\d.]+)", score), number(r"^\s*chrF2\S* = ([\d.]+)", score)]
    cells.append(tok)
    align = read(os.path.join(d, "align.txt"))
    if align:
        sites = re.findall(r"^(\S+)\s+(\d+)\s+(\d+|mean of heads)\s+([\d.]+)", align, re.M)
        last = [s for s in sites if s[2] in ("mean of heads",)] or sites
        best = min(sites, key=lambda s: float(s[3])) if sites else None
        cells.append(last[-1][3] if last else "")
        cells.append("%s (%s %s)" % (best[3], best[0], best[2]) if best else "")
    else:
        cells += ["", ""]
    return "| " + " | ".join(cells) + " |"


def main(argv):
    out = argv[1]
    names = argv[2:] or sorted(n for n in os.listdir(out)
                               if os.path.isfile(os.path.join(out, n, "score.txt")))
    parse = any("BracketF1" in read(os.path.join(out, n, "score.txt")) for n in names)
    head = ["model", "parameters", "dev loss"]
    head += ["test bracket F1", "exact match %"] if parse else ["test BLEU", "test chrF"]
    head += ["train target tok/s", "AER (last site)", "AER (best site)"]
    print("| " + " | ".join(head) + " |")
    print("|" + "---|" * len(head))
    for n in names:
        print(row(out, n))


if __name__ == "__main__":
    main(sys.argv)
