"""Shared by the page's browser test and the load test: tiny models trained by the built `attend`
on a synthetic copy task (lower case in, upper case out), a tiny speech model trained for a few
steps on a synthesised speech corpus, a tiny captioner trained for a few steps on a scenes corpus,
and a running `attend serve`."""
import os
import random
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time

WORDS = ["lo", "ka", "mi", "su", "te", "ra", "no", "vi"]


def write_corpus(d):
    rng = random.Random(12345)
    src, tgt = [], []
    for i in range(400):
        s = [rng.choice(WORDS) for _ in range(2 + i % 6)]
        src.append(" ".join(s))
        tgt.append(" ".join(w.upper() for w in s))
    for name, lines in [("train.src", src), ("train.tgt", tgt), ("dev.src", src[:4]), ("dev.tgt", tgt[:4])]:
        with open(os.path.join(d, name), "w") as f:
            f.write("\n".join(lines) + "\n")


def train(attend, d, name, arch_args, steps):
    out = os.path.join(d, name)
    cmd = [attend, "train", "--train-src", f"{d}/train.src", "--train-tgt", f"{d}/train.tgt",
           "--dev-src", f"{d}/dev.src", "--dev-tgt", f"{d}/dev.tgt", "--out", out,
           "--vocab-size", "40", "--max-tokens", "400", "--max-steps", str(steps),
           "--valid-every", str(steps), "--valid-sentences", "4", "--warmup", "10", "--lr", "0.01",
           "--no-progress", "--threads", "1"] + arch_args
    r = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    if r.returncode != 0:
        sys.exit(f"training {name} failed:\n{r.stdout}")
    return os.path.join(out, "best.ckpt")


def train_models(attend, d, steps=150):
    """{name: checkpoint} for the three architectures the page shows."""
    write_corpus(d)
    return {
        "transformer": train(attend, d, "transformer",
                             ["--arch", "transformer", "--d-model", "32", "--heads", "4",
                              "--ff-dim", "64", "--layers", "2"], steps),
        "rnn-attention": train(attend, d, "rnn-attention",
                               ["--arch", "rnn-attention", "--embed-dim", "32", "--hidden-dim", "32",
                                "--attention-dim", "16"], steps),
        "rnn": train(attend, d, "rnn", ["--arch", "rnn", "--embed-dim", "16", "--hidden-dim", "16"], 20),
    }


def train_speech_model(attend, d, steps=4):
    """A speech corpus of 48 synthesised utterances in d/speech (`attend corpus speech`) and a
    Listen, Attend and Spell model trained on it for a few steps (it transcribes nonsense, but
    every part of its answer has the right shape): (checkpoint, corpus directory)."""
    corpus = os.path.join(d, "speech")
    out = os.path.join(d, "speech-model")
    for cmd in ([attend, "corpus", "speech", "-q", "--out", corpus, "--digits", "24", "--phrases", "24",
                 "--dev-digits", "4", "--dev-phrases", "4", "--test-digits", "4", "--test-phrases", "4"],
                [attend, "train", "--task", "speech", "--data", corpus, "--out", out,
                 "--arch", "rnn-attention", "--cell", "lstm", "--score", "location-aware",
                 "--hidden-dim", "16", "--embed-dim", "8", "--attention-dim", "8",
                 "--location-filters", "2", "--location-width", "5", "--frame-stacking", "3",
                 "--pyramid-levels", "1", "--max-tokens", "1500", "--valid-every", str(steps),
                 "--valid-sentences", "4", "--max-steps", str(steps), "--no-progress", "--threads", "1"]):
        r = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        if r.returncode != 0:
            sys.exit(f"{' '.join(cmd[1:3])} failed:\n{r.stdout}")
    return os.path.join(out, "best.ckpt"), corpus


def train_caption_model(attend, d, steps=40):
    """A scenes corpus of 24 training images in d/scenes (`attend corpus scenes`: 96 x 96 gray PNGs
    of Fashion-MNIST items, with captions) and a show-attend-tell captioner trained on it for a
    few steps (its captions repeat a few words, but every part of its answer has the right shape):
    (checkpoint, corpus directory)."""
    corpus = os.path.join(d, "scenes")
    out = os.path.join(d, "caption-model")
    for cmd in ([attend, "corpus", "scenes", "-q", "--out", corpus, "--train", "24", "--dev", "4",
                 "--test", "4", "--seed", "3"],
                [attend, "train", "--task", "caption", "--data", corpus, "--out", out,
                 "--arch", "show-attend-tell", "--hidden-dim", "16", "--embed-dim", "8",
                 "--attention-dim", "8", "--cnn-channels", "2", "--max-tokens", "600", "--lr", "0.01",
                 "--valid-every", str(steps), "--valid-sentences", "4", "--max-steps", str(steps),
                 "--no-progress", "--threads", "1"]):
        r = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        if r.returncode != 0:
            sys.exit(f"{' '.join(cmd[1:3])} failed:\n{r.stdout}")
    return os.path.join(out, "best.ckpt"), corpus


class Server:
    """`attend serve` on a free loopback port; stopped with SIGTERM (and checked to exit 0)."""

    def __init__(self, attend, models, extra=()):
        args = [attend, "serve", "--port", "0", "--threads", "1"]
        for name, path in models.items():
            args += ["-m", f"{name}={path}"]
        self.proc = subprocess.Popen(args + list(extra), stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        line = self.proc.stdout.readline()
        m = re.search(r"listening on (http://[0-9.]+:\d+/)", line)
        if not m:
            rest = self.proc.stdout.read() if self.proc.poll() is not None else ""
            sys.exit(f"attend serve did not start: {line}{rest}")
        self.url = m.group(1)

    def stop(self):
        self.proc.send_signal(signal.SIGTERM)
        out, _ = self.proc.communicate(timeout=30)
        return self.proc.returncode, out


def workdir(prefix):
    return tempfile.mkdtemp(prefix=prefix)
