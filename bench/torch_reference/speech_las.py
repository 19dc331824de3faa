#!/usr/bin/python3
# PyTorch reference trainer for `attend train --task speech`: same model, data, batches, schedule.
"""Trains attend's Listen, Attend and Spell model in PyTorch on a speech corpus and times it.

The model is tests/reference/models/rnn_model.py with feature_dim > 0 (checked against attend's
C++ model, values and gradients, by tests/reference/seq2seq_reference.py), built from the same
options `attend train --task speech` takes, with its defaults. The data is what `attend train
--task speech` reads: the manifest DIR/train.tsv (relative audio paths are relative to the
manifest's directory), its first --max-train utterances; log-mel features (80 bins, 25 ms window,
10 ms hop, 512-point FFT, 20 Hz .. Nyquist, floor 1e-10: audio::FeatureOptions' defaults)
from the NumPy reference tests/audio/logmel_reference.py, each bin normalised to zero mean and
unit (population) variance over its utterance as audio::NormalizeUtterance; transcripts encoded
with the SentencePiece character model attend wrote (OUT/vocab.model); utterances with an empty
transcript, no frames, more than --max-frames frames or more than --max-len ids dropped, as
nmt::LoadSpeechExamples. Batches are nmt::MakeBatches' (common.make_batches: an utterance's
length is max(frames, ids + 1); the same splitmix64 shuffle, so the same batches in the same
order), and the optimisation src/nmt/trainer.cc's: Adam(0.9, 0.98, eps 1e-9), warm-up then
inverse square root, gradient clipping, label-smoothed cross-entropy.

Prints, over the training steps only (no feature extraction, no model building), source frames/s,
source+target tokens/s (the "src+tgt tok/s" of attend's progress line, which counts feature
frames as source tokens) and utterances/s: over steps 2..N (the first step's warm-up left out)
and over steps 1..N (what attend's progress line with --log-every N measures). A step's time
covers padding its batch, forward, loss, backward, clipping and the optimizer step; working out
an epoch's batch plan (pure Python here, microseconds in attend) is not timed. --json writes the
figures and every step's frames, target tokens, utterances and seconds.

  /usr/bin/python3 bench/torch_reference/speech_las.py --data data/speech \\
      --vocab OUT/vocab.model --steps 100 --threads 2 --cell lstm --score location-aware ...
Run it with Debian's /usr/bin/python3 (python3-torch, python3-sentencepiece, python3-numpy).
"""
import argparse
import hashlib
import json
import math
import os
import platform
import sys
import time

_here = os.path.dirname(os.path.abspath(__file__))
_root = os.path.normpath(os.path.join(_here, "..", ".."))
sys.path.insert(0, _here)
# The model the tests check attend against, and the independent NumPy log-mel reference.
sys.path.insert(0, os.path.join(_root, "tests", "reference", "models"))
sys.path.insert(0, os.path.join(_root, "tests", "audio"))
if __name__ == "__main__":
    import thread_env  # noqa: E402,F401  (before torch: --threads into the environment)
import numpy as np  # noqa: E402
import torch  # noqa: E402
import torch.nn.functional as F  # noqa: E402

import common  # noqa: E402
import logmel_reference  # noqa: E402
from rnn_model import BOS, EOS, PAD, RnnConfig, RnnSeq2Seq  # noqa: E402

# audio::FeatureOptions' defaults (include/attend/audio.h); only the mel bins are an option of
# `attend train` (--mel-bins).
SAMPLE_RATE, WINDOW_MS, HOP_MS, FFT_SIZE, LOW_HZ, HIGH_HZ, FLOOR = 16000, 25.0, 10.0, 512, 20.0, \
    0.0, 1e-10


# ---- data ------------------------------------------------------------------------------------
def read_manifest(path, limit=0):
    """[(audio path, transcript)] of a manifest as audio::ReadManifest reads it: one
    "path<TAB>transcript" per line, relative paths relative to the manifest's directory, a UTF-8
    byte-order mark and a "\\r" before "\\n" dropped; malformed lines are errors naming file:line.
    The first `limit` (0 = all), as `attend train --max-train`."""
    with open(path, "rb") as f:
        data = f.read()
    if data.startswith(b"\xef\xbb\xbf"):
        data = data[3:]
    lines = data.decode("utf-8").split("\n")
    if lines and lines[-1] == "":
        lines.pop()
    base = os.path.dirname(path)
    out = []
    for n, line in enumerate(lines, 1):
        if line.endswith("\r"):
            line = line[:-1]
        fields = line.split("\t")
        if len(fields) != 2 or not fields[0] or not fields[1].strip(" "):
            sys.exit("%s:%d: expected \"path<TAB>transcript\"" % (path, n))
        audio, transcript = fields
        out.append((audio if os.path.isabs(audio) else os.path.join(base, audio), transcript))
    if not out:
        sys.exit("%s: the manifest holds no utterances" % path)
    return out[:limit] if limit > 0 else out


def frame_count(samples):
    """LogMel's frames: 1 + (samples - window) / hop, 0 when shorter than one window."""
    win = int(round(WINDOW_MS * SAMPLE_RATE / 1000.0))
    hop = int(round(HOP_MS * SAMPLE_RATE / 1000.0))
    return 0 if samples < win else 1 + (samples - win) // hop


def utterance_features(x, mel_bins):
    """[frames, mel_bins] float32: the NumPy reference's log-mel (float64) normalised per
    utterance as audio::NormalizeUtterance (population stddev; a constant bin gets 1)."""
    f = logmel_reference.log_mel(x, SAMPLE_RATE, WINDOW_MS, HOP_MS, FFT_SIZE, mel_bins, LOW_HZ,
                                 HIGH_HZ, FLOOR)
    if f.shape[0] == 0:
        return f.astype(np.float32)
    mean = f.mean(0)
    sd = np.sqrt(((f - mean) ** 2).mean(0))
    sd[sd == 0.0] = 1.0
    return ((f - mean) / sd).astype(np.float32)


class FeatureCache:
    """Features already computed, by audio file (path, size, mtime) and feature options, in one
    .npz file (no pickles), so a second run (another thread count) skips the extraction."""

    def __init__(self, path, mel_bins):
        self.path, self.entries, self.dirty = path, {}, False
        self.options = "%d %g %g %d %d %g %g %g" % (SAMPLE_RATE, WINDOW_MS, HOP_MS, FFT_SIZE,
                                                    mel_bins, LOW_HZ, HIGH_HZ, FLOOR)
        if path and os.path.exists(path):
            try:
                with np.load(path, allow_pickle=False) as z:
                    meta = json.loads(str(z["meta"]))
                    if meta.get("options") == self.options:
                        for i, key in enumerate(meta["keys"]):
                            self.entries[key] = z["f%d" % i]
            except (OSError, ValueError, KeyError) as e:
                print("feature cache %s unreadable (%s): recomputing" % (path, e), flush=True)
                self.entries = {}

    @staticmethod
    def key(path):
        st = os.stat(path)
        return "%s|%d|%d" % (os.path.abspath(path), st.st_size, st.st_mtime_ns)

    def get(self, key):
        return self.entries.get(key)

    def put(self, key, value):
        self.entries[key] = value
        self.dirty = True

    def save(self):
        if not self.path or not self.dirty:
            return
        keys = sorted(self.entries)
        arrays = {"f%d" % i: self.entries[k] for i, k in enumerate(keys)}
        meta = json.dumps({"options": self.options, "keys": keys})
        tmp = self.path + ".tmp.npz"
        np.savez(tmp, meta=np.array(meta), **arrays)
        os.replace(tmp, self.path)


def load_examples(utterances, vocab, mel_bins, max_frames, max_len, cache):
    """nmt::LoadSpeechExamples: [(features float32 tensor [frames, F], transcript ids)] in
    manifest order, dropping utterances with an empty transcript, no frames, more than
    max_frames frames or more than max_len ids (0 = no limit). Returns (examples, dropped,
    seconds of audio kept, number of utterances whose features were computed now)."""
    examples, dropped, seconds, computed = [], 0, 0.0, 0
    for path, transcript in utterances:
        ids = vocab.encode(transcript)
        key = FeatureCache.key(path)
        feats = cache.get(key)
        if feats is None:
            x, rate = logmel_reference.read_wav(path)
            if rate != SAMPLE_RATE:
                sys.exit("%s: %d Hz; attend resamples to %d Hz, this script does not (the corpus "
                         "is written at %d Hz by default)" % (path, rate, SAMPLE_RATE, SAMPLE_RATE))
            frames = frame_count(x.size)
        else:
            frames = feats.shape[0]
        if (not ids or frames == 0 or (max_frames > 0 and frames > max_frames) or
                (max_len > 0 and len(ids) > max_len)):
            dropped += 1
            continue
        if feats is None:
            feats = utterance_features(x, mel_bins)
            cache.put(key, feats)
            computed += 1
        assert feats.shape == (frames, mel_bins), (path, feats.shape)
        examples.append((torch.from_numpy(feats), ids))
        seconds += frames * HOP_MS / 1000.0
    return examples, dropped, seconds, computed


class SpeechBatch:
    """nmt::MakeBatch for speech: src f32 [B, S, F] padded with zero frames, src_lengths [B]
    (frames), tgt_in = BOS y, tgt_out = y EOS [B, T] padded with PAD."""

    def __init__(self, examples, order):
        b = len(order)
        s = max(examples[i][0].size(0) for i in order)
        t = max(len(examples[i][1]) for i in order) + 1
        f = examples[order[0]][0].size(1)
        self.src = torch.zeros(b, s, f)
        self.tgt_in = torch.full((b, t), PAD, dtype=torch.int64)
        self.tgt_out = torch.full((b, t), PAD, dtype=torch.int64)
        self.src_lengths = torch.zeros(b, dtype=torch.int64)
        self.src_tokens = self.tgt_tokens = 0
        for r, i in enumerate(order):
            x, y = examples[i]
            n = x.size(0)
            self.src[r, :n] = x
            yt = torch.tensor(y, dtype=torch.int64)
            self.tgt_in[r, 0] = BOS
            self.tgt_in[r, 1:len(y) + 1] = yt
            self.tgt_out[r, :len(y)] = yt
            self.tgt_out[r, len(y)] = EOS
            self.src_lengths[r] = n
            self.src_tokens += n
            self.tgt_tokens += len(y) + 1


# ---- training --------------------------------------------------------------------------------
def train(model, examples, a, log=print):
    """nmt::Train's loop for --steps steps, without validation or checkpoints; every step timed
    on its own. Returns [{step, epoch, frames, tgt_tokens, utterances, seconds, loss}]."""
    params = [p for p in model.parameters() if p.requires_grad]
    opt = torch.optim.Adam(params, lr=a.lr, betas=(0.9, 0.98), eps=1e-9)
    sched = torch.optim.lr_scheduler.LambdaLR(opt, common.inverse_sqrt_warmup(a.warmup))
    model.train()
    steps = []
    epoch = 0
    window = [0.0, 0.0, 0.0, 0.0]  # loss * tgt tokens, tgt tokens, src+tgt tokens, seconds
    while len(steps) < a.steps:
        for order in common.make_batches(examples, a.max_tokens, a.seed, epoch):
            if len(steps) >= a.steps:
                break
            t0 = time.perf_counter()
            batch = SpeechBatch(examples, order)
            logits = model(batch.src, batch.src_lengths, batch.tgt_in)[0]
            loss = F.cross_entropy(logits.reshape(-1, logits.size(-1)),
                                   batch.tgt_out.reshape(-1), ignore_index=PAD,
                                   label_smoothing=a.label_smoothing)
            value = loss.item()
            if not math.isfinite(value):
                raise FloatingPointError("the loss became %r at step %d" % (value, len(steps) + 1))
            opt.zero_grad(set_to_none=True)
            loss.backward()
            if a.clip_norm > 0:
                torch.nn.utils.clip_grad_norm_(params, a.clip_norm)
            opt.step()
            sched.step()
            seconds = time.perf_counter() - t0
            steps.append({"step": len(steps) + 1, "epoch": epoch + 1, "frames": batch.src_tokens,
                          "tgt_tokens": batch.tgt_tokens, "utterances": len(order),
                          "max_frames": int(batch.src.size(1)), "seconds": seconds,
                          "loss": value})
            window[0] += value * batch.tgt_tokens
            window[1] += batch.tgt_tokens
            window[2] += batch.src_tokens + batch.tgt_tokens
            window[3] += seconds
            if a.log_every > 0 and (len(steps) % a.log_every == 0 or len(steps) == a.steps):
                # As attend's progress line: the window's loss and source+target tokens/s.
                log("step %d | epoch %d | loss %.3f | %.0f src+tgt tok/s | lr %.2e" %
                    (len(steps), epoch + 1, window[0] / window[1], window[2] / window[3],
                     opt.param_groups[0]["lr"]))
                window = [0.0, 0.0, 0.0, 0.0]
        epoch += 1
    return steps


def rates(steps):
    """Frames/s, source+target tokens/s and utterances/s over `steps` (None if empty)."""
    seconds = sum(s["seconds"] for s in steps)
    if not steps or seconds <= 0:
        return None
    frames = sum(s["frames"] for s in steps)
    tgt = sum(s["tgt_tokens"] for s in steps)
    utts = sum(s["utterances"] for s in steps)
    return {"steps": len(steps), "seconds": seconds, "frames": frames, "tgt_tokens": tgt,
            "utterances": utts, "frames_per_s": frames / seconds,
            "tokens_per_s": (frames + tgt) / seconds, "target_tokens_per_s": tgt / seconds,
            "utterances_per_s": utts / seconds}


# ---- the script ------------------------------------------------------------------------------
def argument_parser():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", default="", help="corpus dir with train.tsv")
    ap.add_argument("--train-tsv", default="",
                    help="the training manifest (default DATA/train.tsv)")
    ap.add_argument("--vocab", required=True, help="the vocab.model `attend train` wrote")
    ap.add_argument("--max-train", type=int, default=0, help="first N utterances (0 = all)")
    ap.add_argument("--steps", type=int, default=0, help="training steps (required)")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--log-every", type=int, default=50)
    ap.add_argument("--json", default="", help="also write the figures to this JSON file")
    ap.add_argument("--feature-cache", default="",
                    help=".npz of features already computed (read if there, written after)")
    # `attend train`'s training options and defaults (nmt::TrainOptions, train_command.cc).
    ap.add_argument("--max-tokens", type=int, default=2048)
    ap.add_argument("--max-len", type=int, default=100)
    ap.add_argument("--max-frames", type=int, default=1500)
    ap.add_argument("--mel-bins", type=int, default=80)
    ap.add_argument("--lr", type=float, default=1e-3)
    ap.add_argument("--warmup", type=int, default=500)
    ap.add_argument("--clip-norm", type=float, default=1.0)
    ap.add_argument("--label-smoothing", type=float, default=0.1)
    ap.add_argument("--seed", type=int, default=1)
    # The model: models::ModelConfig's RNN options and defaults, under attend's option names.
    ap.add_argument("--arch", default="rnn-attention", choices=("rnn", "rnn-attention"))
    ap.add_argument("--dropout", type=float, default=0.1)
    ap.add_argument("--cell", default="gru", choices=("gru", "lstm"))
    ap.add_argument("--embed-dim", type=int, default=256)
    ap.add_argument("--hidden-dim", type=int, default=256)
    ap.add_argument("--encoder-layers", type=int, default=1)
    ap.add_argument("--decoder-layers", type=int, default=1)
    ap.add_argument("--score", default="additive",
                    choices=("additive", "dot", "general", "concat", "location",
                             "location-aware"))
    ap.add_argument("--attention-dim", type=int, default=256)
    ap.add_argument("--window", default="global", choices=("global", "local-m", "local-p"))
    ap.add_argument("--window-size", type=int, default=5)
    ap.add_argument("--max-source-len", type=int, default=256)
    ap.add_argument("--no-input-feeding", action="store_true")
    ap.add_argument("--teacher-forcing", type=float, default=1.0)
    ap.add_argument("--frame-stacking", type=int, default=1)
    ap.add_argument("--pyramid-levels", type=int, default=2)
    ap.add_argument("--location-filters", type=int, default=10)
    ap.add_argument("--location-width", type=int, default=31)
    ap.add_argument("--sharpening", type=float, default=1.0)
    ap.add_argument("--parse-only", action="store_true",
                    help="check the options and exit (bench/speech_compare.sh, before training)")
    return ap


def main(argv):
    ap = argument_parser()
    a = ap.parse_args(argv)
    if a.parse_only:
        return 0
    if a.steps <= 0:
        ap.error("--steps must be positive")
    manifest = a.train_tsv or (os.path.join(a.data, "train.tsv") if a.data else "")
    if not manifest:
        ap.error("give --data DIR (with train.tsv) or --train-tsv")
    common.set_threads(a.threads)
    torch.manual_seed(a.seed)
    vocab = common.Vocabulary(a.vocab)

    t0 = time.perf_counter()
    cache = FeatureCache(a.feature_cache, a.mel_bins)
    utterances = read_manifest(manifest, a.max_train)
    examples, dropped, audio_s, computed = load_examples(utterances, vocab, a.mel_bins,
                                                         a.max_frames, a.max_len, cache)
    cache.save()
    if not examples:
        sys.exit("speech_las.py: no training utterances left in %s" % manifest)
    print("features: %d training utterances (%.2f h of audio), %d dropped (over %d frames or "
          "%d ids, or empty); %d computed with the NumPy reference, %d from the cache, in %.1f s "
          "(not timed below)" % (len(examples), audio_s / 3600.0, dropped, a.max_frames,
                                 a.max_len, computed, len(examples) - computed,
                                 time.perf_counter() - t0), flush=True)

    cfg = RnnConfig(arch=a.arch, src_vocab=0, tgt_vocab=vocab.size(), dropout=a.dropout,
                    cell=a.cell, embed_dim=a.embed_dim, hidden_dim=a.hidden_dim,
                    encoder_layers=a.encoder_layers, decoder_layers=a.decoder_layers,
                    score=a.score, attention_dim=a.attention_dim, window=a.window,
                    window_size=a.window_size, max_source_len=a.max_source_len,
                    input_feeding=not a.no_input_feeding, teacher_forcing=a.teacher_forcing,
                    feature_dim=a.mel_bins, frame_stacking=a.frame_stacking,
                    pyramid_levels=a.pyramid_levels, location_filters=a.location_filters,
                    location_width=a.location_width, sharpening=a.sharpening)
    model = RnnSeq2Seq(cfg)
    n_params = sum(p.numel() for p in model.parameters())
    coretype = os.environ.get("OPENBLAS_CORETYPE", "unset")
    print("torch %s, %d threads (OMP_NUM_THREADS %s, OPENBLAS_NUM_THREADS %s, OPENBLAS_CORETYPE "
          "%s): %s %s %s score, %d parameters, vocabulary %d" %
          (torch.__version__, torch.get_num_threads(), os.environ.get("OMP_NUM_THREADS", "unset"),
           os.environ.get("OPENBLAS_NUM_THREADS", "unset"), coretype, a.arch, a.cell, a.score,
           n_params, vocab.size()), flush=True)

    steps = train(model, examples, a, log=lambda s: print(s, flush=True))
    after = rates(steps[1:])
    every = rates(steps)
    print("train: %d steps, step 1 %.3f s (warm-up)" % (len(steps), steps[0]["seconds"]))
    for name, r in (("steps 2..%d" % len(steps), after), ("steps 1..%d" % len(steps), every)):
        if r is None:
            print("  %s: no steps" % name)
            continue
        print("  %s: %.2f s, %.0f frames/s, %.0f src+tgt tok/s, %.2f utterances/s" %
              (name, r["seconds"], r["frames_per_s"], r["tokens_per_s"], r["utterances_per_s"]))
    sys.stdout.flush()
    if a.json:
        digest = hashlib.sha256(json.dumps([[s["frames"], s["tgt_tokens"], s["utterances"]]
                                            for s in steps]).encode()).hexdigest()[:16]
        result = {"torch_version": torch.__version__, "threads": torch.get_num_threads(),
                  "openblas_coretype": coretype, "python": platform.python_version(),
                  "parameters": n_params, "training_utterances": len(examples),
                  "dropped": dropped, "steps": len(steps), "after_first": after, "all": every,
                  "batches_digest": digest, "per_step": steps}
        common._write_atomically(a.json, json.dumps(result, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
