#!/usr/bin/env python3
# A synthetic English-German-like parallel corpus for trying the trainers without a real one.
"""Writes a small synthetic parallel corpus: DIR/{train,dev,test}.{en,de}.

The "German" side is a deterministic rule-based rendering of the English side: a word-for-word
dictionary, adjective agreement endings, verb-second main clauses and verb-final subordinate
clauses after "because"/"that", so a model must learn reordering that grows with the sentence
length (what attention is for). Sentences run from 3 to about 40 words. Deterministic by seed;
standard library only, so any python3 runs it:

  python3 bench/torch_reference/toy_corpus.py --out /tmp/toy --train 6000
"""
import argparse
import os
import random

NOUNS = {"man": "mann", "woman": "frau", "child": "kind", "dog": "hund", "cat": "katze",
         "house": "haus", "car": "auto", "book": "buch", "city": "stadt", "tree": "baum",
         "teacher": "lehrer", "doctor": "arzt", "friend": "freund", "river": "fluss",
         "garden": "garten", "table": "tisch", "letter": "brief", "train": "zug",
         "bird": "vogel", "school": "schule", "window": "fenster", "door": "tür",
         "apple": "apfel", "road": "straße", "king": "könig", "song": "lied"}
ADJS = {"big": "groß", "small": "klein", "old": "alt", "young": "jung", "red": "rot",
        "green": "grün", "fast": "schnell", "quiet": "leise", "happy": "glücklich",
        "new": "neu", "dark": "dunkel", "warm": "warm", "cold": "kalt", "tired": "müde"}
VERBS = {"sees": "sieht", "finds": "findet", "likes": "mag", "buys": "kauft",
         "reads": "liest", "paints": "malt", "visits": "besucht", "carries": "trägt",
         "hears": "hört", "follows": "folgt", "builds": "baut", "opens": "öffnet"}
ADVS = {"today": "heute", "yesterday": "gestern", "often": "oft", "never": "nie",
        "always": "immer", "slowly": "langsam", "again": "wieder", "here": "hier"}
PREPS = {"near": "bei", "behind": "hinter", "under": "unter", "with": "mit", "in": "in"}
CONJ = {"because": "weil", "that": "dass", "while": "während"}
NUMS = {"two": "zwei", "three": "drei", "four": "vier", "five": "fünf", "seven": "sieben"}


def noun_phrase(rng):
    """(english words, german words)."""
    adjs = rng.sample(sorted(ADJS), rng.choice([0, 0, 1, 1, 2]))
    noun = rng.choice(sorted(NOUNS))
    if rng.random() < 0.15:
        num = rng.choice(sorted(NUMS))
        en = [num] + adjs + [noun + "s"]
        de = [NUMS[num]] + [ADJS[a] + "e" for a in adjs] + [NOUNS[noun] + "en"]
        return en, de
    det_en, det_de = ("the", "der") if rng.random() < 0.6 else ("a", "ein")
    en = [det_en] + adjs + [noun]
    de = [det_de] + [ADJS[a] + ("e" if det_de == "der" else "er") for a in adjs] + [NOUNS[noun]]
    if rng.random() < 0.2:
        p = rng.choice(sorted(PREPS))
        en2, de2 = noun_phrase_simple(rng)
        en += [p] + en2
        de += [PREPS[p]] + de2
    return en, de


def noun_phrase_simple(rng):
    noun = rng.choice(sorted(NOUNS))
    return ["the", noun], ["dem", NOUNS[noun]]


def clause(rng, subordinate):
    """subject verb object [adverb]: German main clauses put the verb second (after a fronted
    adverb the subject follows the verb); subordinate clauses put it last."""
    s_en, s_de = noun_phrase(rng)
    o_en, o_de = noun_phrase(rng)
    verb = rng.choice(sorted(VERBS))
    adv = rng.choice(sorted(ADVS)) if rng.random() < 0.5 else None
    en = s_en + [verb] + o_en + ([adv] if adv else [])
    if subordinate:
        de = s_de + ([ADVS[adv]] if adv else []) + o_de + [VERBS[verb]]
    elif adv and rng.random() < 0.5:
        de = [ADVS[adv], VERBS[verb]] + s_de + o_de
    else:
        de = s_de + [VERBS[verb]] + ([ADVS[adv]] if adv else []) + o_de
    return en, de


def sentence(rng):
    en, de = clause(rng, False)
    while rng.random() < 0.45 and len(en) < 32:
        c = rng.choice(sorted(CONJ))
        s_en, s_de = clause(rng, True)
        en += [",", c] + s_en
        de += [",", CONJ[c]] + s_de
    return " ".join(en).replace(" ,", ",") + ".", " ".join(de).replace(" ,", ",") + "."


def write(path, lines):
    tmp = path + ".tmp"
    with open(tmp, "w", encoding="utf-8") as f:
        f.write("".join(line + "\n" for line in lines))
    os.replace(tmp, path)


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", required=True)
    ap.add_argument("--train", type=int, default=6000)
    ap.add_argument("--dev", type=int, default=300)
    ap.add_argument("--test", type=int, default=500)
    ap.add_argument("--seed", type=int, default=7)
    a = ap.parse_args()
    rng = random.Random(a.seed)
    seen, pairs = set(), []
    total = a.train + a.dev + a.test
    while len(pairs) < total:
        en, de = sentence(rng)
        if en in seen:
            continue
        seen.add(en)
        pairs.append((en, de))
    os.makedirs(a.out, exist_ok=True)
    splits = {"train": pairs[:a.train], "dev": pairs[a.train:a.train + a.dev],
              "test": pairs[a.train + a.dev:]}
    for name, ps in splits.items():
        write(os.path.join(a.out, name + ".en"), [p[0] for p in ps])
        write(os.path.join(a.out, name + ".de"), [p[1] for p in ps])
    print("wrote %s: %s" % (a.out, ", ".join("%s %d" % (k, len(v)) for k, v in splits.items())))


if __name__ == "__main__":
    main()
