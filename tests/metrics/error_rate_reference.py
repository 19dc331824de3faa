#!/usr/bin/env python3
"""An independent word and character error rate count, for tests/metrics/test_error_rates.cc.

Reads a UTF-8 file of sentence pairs, one per line, "reference<TAB>hypothesis", and prints the
corpus counts "S D I H N" for words (--unit word: str.split()) or characters (--unit char:
' '.join(s.split()), one unit per code point), optionally after str.lower().

The alignment is the textbook one, written separately from src/metrics/error_rate.cc: the full
Levenshtein table, then a backtrace from the bottom-right cell that takes, among the moves that
explain the cell's cost, the diagonal first, then a deletion, then an insertion
(attend/metrics.h's tie-break).
"""
import argparse
import sys


def units(sentence, unit, lowercase):
    if lowercase:
        sentence = sentence.lower()
    if unit == "word":
        return sentence.split()
    return list(" ".join(sentence.split()))


def count(ref, hyp):
    n, m = len(ref), len(hyp)
    table = [[0] * (m + 1) for _ in range(n + 1)]
    for i in range(n + 1):
        table[i][0] = i
    for j in range(m + 1):
        table[0][j] = j
    for i in range(1, n + 1):
        for j in range(1, m + 1):
            table[i][j] = min(table[i - 1][j - 1] + (ref[i - 1] != hyp[j - 1]),
                              table[i - 1][j] + 1, table[i][j - 1] + 1)
    s = d = ins = h = 0
    i, j = n, m
    while i > 0 or j > 0:
        if i > 0 and j > 0 and table[i][j] == table[i - 1][j - 1] + (ref[i - 1] != hyp[j - 1]):
            if ref[i - 1] == hyp[j - 1]:
                h += 1
            else:
                s += 1
            i, j = i - 1, j - 1
        elif i > 0 and table[i][j] == table[i - 1][j] + 1:
            d += 1
            i -= 1
        else:
            ins += 1
            j -= 1
    return s, d, ins, h


def main():
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("pairs")
    parser.add_argument("--unit", choices=["word", "char"], required=True)
    parser.add_argument("--lowercase", action="store_true")
    args = parser.parse_args()
    with open(args.pairs, "rb") as f:
        text = f.read().decode("utf-8")
    totals = [0, 0, 0, 0, 0]
    # Lines split on "\n" only: str.splitlines() would also split on U+2028, U+0085 and others.
    for line in text.split("\n"):
        if line == "":
            continue
        ref, hyp = line.split("\t")
        r, h = units(ref, args.unit, args.lowercase), units(hyp, args.unit, args.lowercase)
        s, d, ins, hits = count(r, h)
        assert s + d + hits == len(r) and s + ins + hits == len(h)
        for k, v in enumerate((s, d, ins, hits, len(r))):
            totals[k] += v
    sys.stdout.write(" ".join(str(v) for v in totals) + "\n")


if __name__ == "__main__":
    main()
