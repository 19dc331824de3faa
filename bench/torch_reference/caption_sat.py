#!/usr/bin/python3
# PyTorch reference trainer for `attend train --task caption`: same model, data, batches, schedule.
"""Trains attend's Show, Attend and Tell captioner in PyTorch on a captions corpus and times it.

The model is tests/reference/models/captioner_model.py (checked against attend's C++ model,
values and gradients, by tests/reference/captioner_reference.py), built from the options
`attend train --task caption --arch show-attend-tell` takes, with its defaults. The data is what
`attend train --task caption` reads (tools/attend/train_command.cc RunCaption,
src/nmt/caption.cc LoadCaptionExamples): DIR/train.tsv, lines image<TAB>caption (relative paths
relative to the file; several lines per image), the images in order of first appearance, the
first --max-train of them; one example per (image, caption), the captions encoded with the
SentencePiece word model attend wrote (OUT/vocab.model), captions that encode to nothing or to
more than --max-len ids dropped; pixels / 255 as f32 [C, H, W] (the PNGs are decoded here, by a
small zlib-based decoder: 8-bit gray, gray+alpha, RGB or RGBA, not interlaced; they must already
be image_size x image_size, as `attend corpus scenes` writes them; colour to gray as
vision::ToChannels). Batches are nmt::MakeBatches' (common.make_batches: an image counts as
C * H source "tokens", so with captions shorter than that a batch holds max_tokens / (C * H)
examples; the same splitmix64 shuffle, so the same batches in the same order), and the
optimisation src/nmt/trainer.cc's: Adam(0.9, 0.98, eps 1e-9), warm-up then inverse square root,
gradient clipping, label-smoothed cross-entropy plus the model's auxiliary loss (soft attention's
doubly stochastic penalty).

Prints, over the training steps only (no image decoding, no model building), images/s, target
tokens/s and source+target tokens/s (attend's progress line counts C * H per image as source
tokens): over steps 2..N (the first step's warm-up left out) and over steps 1..N. A step's time
covers padding its batch, forward, loss, backward, clipping and the optimizer step. --json
writes the figures and every step's images, target tokens and seconds.

  /usr/bin/python3 bench/torch_reference/caption_sat.py --data data/scenes \\
      --vocab OUT/vocab.model --steps 100 --threads 2
Hard attention trains with attend's REINFORCE sampler only: --image-attention is soft or none.
Run it with Debian's /usr/bin/python3 (python3-torch, python3-sentencepiece, python3-numpy).
"""
import argparse
import hashlib
import json
import math
import os
import platform
import struct
import sys
import time
import zlib

_here = os.path.dirname(os.path.abspath(__file__))
_root = os.path.normpath(os.path.join(_here, "..", ".."))
sys.path.insert(0, _here)
sys.path.insert(0, os.path.join(_root, "tests", "reference", "models"))
if __name__ == "__main__":
    import thread_env  # noqa: E402,F401  (before torch: --threads into the environment)
import numpy as np  # noqa: E402
import torch  # noqa: E402
import torch.nn.functional as F  # noqa: E402

import common  # noqa: E402
from captioner_model import BOS, EOS, PAD, CaptionConfig, Captioner  # noqa: E402


# ---- data ------------------------------------------------------------------------------------
def read_captions(path, limit=0):
    """[(image path, [captions])] as data::ReadCaptionsTsv: one "image<TAB>caption" per line,
    images in order of first appearance, relative paths relative to the file's directory; the
    first `limit` images (0 = all), as `attend train --max-train`."""
    with open(path, "rb") as f:
        data = f.read()
    if data.startswith(b"\xef\xbb\xbf"):
        data = data[3:]
    lines = data.decode("utf-8").split("\n")
    if lines and lines[-1] == "":
        lines.pop()
    base = os.path.dirname(path)
    out, index = [], {}
    for n, line in enumerate(lines, 1):
        if line.endswith("\r"):
            line = line[:-1]
        fields = line.split("\t")
        if len(fields) != 2 or not fields[0] or not fields[1]:
            sys.exit("%s:%d: expected exactly one tab (image<TAB>caption)" % (path, n))
        image = fields[0] if os.path.isabs(fields[0]) else os.path.join(base, fields[0])
        if image not in index:
            index[image] = len(out)
            out.append((image, []))
        out[index[image]][1].append(fields[1])
    if not out:
        sys.exit("%s: no captions" % path)
    return out[:limit] if limit > 0 else out


def read_png(path):
    """uint8 [H, W, channels] of an 8-bit, non-interlaced PNG (gray, gray+alpha, RGB, RGBA)."""
    with open(path, "rb") as f:
        data = f.read()
    if data[:8] != b"\x89PNG\r\n\x1a\n":
        sys.exit("%s: not a PNG file" % path)
    pos, idat, header = 8, [], None
    while pos < len(data):
        n, kind = struct.unpack(">I4s", data[pos:pos + 8])
        chunk = data[pos + 8:pos + 8 + n]
        pos += 12 + n
        if kind == b"IHDR":
            header = struct.unpack(">IIBBBBB", chunk)
        elif kind == b"IDAT":
            idat.append(chunk)
        elif kind == b"IEND":
            break
    width, height, depth, colour, _, _, interlace = header
    channels = {0: 1, 4: 2, 2: 3, 6: 4}.get(colour)
    if depth != 8 or channels is None or interlace:
        sys.exit("%s: only 8-bit gray/RGB(A) non-interlaced PNGs are read here (depth %d, colour "
                 "type %d, interlace %d)" % (path, depth, colour, interlace))
    raw = np.frombuffer(zlib.decompress(b"".join(idat)), dtype=np.uint8)
    stride = width * channels
    raw = raw.reshape(height, stride + 1)
    out = np.zeros((height, stride), dtype=np.uint8)
    prev = [0] * stride
    for y in range(height):
        kind, line = int(raw[y, 0]), raw[y, 1:].tolist()
        if kind == 0:
            cur = line
        elif kind == 2:
            cur = [(v + b) & 255 for v, b in zip(line, prev)]
        elif kind in (1, 3, 4):  # each byte depends on the one `channels` to its left
            cur = [0] * stride
            for x in range(stride):
                a = cur[x - channels] if x >= channels else 0
                b = prev[x]
                if kind == 1:
                    p = a
                elif kind == 3:
                    p = (a + b) >> 1
                else:
                    c = prev[x - channels] if x >= channels else 0
                    pa, pb, pc = abs(b - c), abs(a - c), abs(a + b - 2 * c)
                    p = a if pa <= pb and pa <= pc else (b if pb <= pc else c)
                cur[x] = (line[x] + p) & 255
        else:
            sys.exit("%s: unknown PNG filter %d" % (path, kind))
        out[y] = cur
        prev = cur
    return out.reshape(height, width, channels)


def image_tensor(path, size, channels):
    """f32 [C * H, W]: the pixels / 255 (nmt::ImageExample without the resize)."""
    img = read_png(path)
    h, w, c = img.shape
    if h != size or w != size:
        sys.exit("%s: %dx%d, the model reads %dx%d (attend resizes; this script does not)" %
                 (path, w, h, size, size))
    if c in (2, 4):  # alpha dropped, as vision::ToChannels
        img, c = img[:, :, :c - 1], c - 1
    if channels == 1 and c == 3:  # Rec. 601 luma, rounded as std::lround
        rgb = img.astype(np.float64)
        img = np.floor(0.299 * rgb[:, :, 0:1] + 0.587 * rgb[:, :, 1:2] + 0.114 * rgb[:, :, 2:3] +
                       0.5).astype(np.uint8)
    elif channels == 3 and c == 1:
        img = np.repeat(img, 3, axis=2)
    chw = np.ascontiguousarray(img.transpose(2, 0, 1)).astype(np.float32) / np.float32(255.0)
    return torch.from_numpy(chw.reshape(channels * size, size))


def load_examples(images, vocab, size, channels, max_len):
    """nmt::LoadCaptionExamples with all captions: [(pixels [C * H, W], ids)] in file order, the
    examples of one image sharing its pixels; captions with no ids or more than max_len dropped.
    Returns (examples, dropped)."""
    out, dropped = [], 0
    for path, captions in images:
        pixels = image_tensor(path, size, channels)
        for caption in captions:
            ids = vocab.encode(caption)
            if not ids or (max_len > 0 and len(ids) > max_len):
                dropped += 1
                continue
            out.append((pixels, ids))
    return out, dropped


class _Rows:
    """A source's length for common.make_batches: the image's C * H rows."""

    def __init__(self, n):
        self.n = n

    def __len__(self):
        return self.n


class CaptionBatch:
    """nmt::MakeBatch for images: src f32 [B, C * H, W], tgt_in = BOS y, tgt_out = y EOS [B, T]
    padded with PAD; src_tokens = C * H per image."""

    def __init__(self, examples, order):
        b = len(order)
        t = max(len(examples[i][1]) for i in order) + 1
        self.src = torch.stack([examples[i][0] for i in order])
        self.tgt_in = torch.full((b, t), PAD, dtype=torch.int64)
        self.tgt_out = torch.full((b, t), PAD, dtype=torch.int64)
        self.src_tokens = b * self.src.size(1)
        self.tgt_tokens = 0
        for r, i in enumerate(order):
            y = torch.tensor(examples[i][1], dtype=torch.int64)
            n = y.numel()
            self.tgt_in[r, 0] = BOS
            self.tgt_in[r, 1:n + 1] = y
            self.tgt_out[r, :n] = y
            self.tgt_out[r, n] = EOS
            self.tgt_tokens += n + 1


# ---- training --------------------------------------------------------------------------------
def train(model, examples, a, log=print):
    """nmt::Train's loop for --steps steps, without validation or checkpoints; every step timed
    on its own. Returns [{step, epoch, images, src_tokens, tgt_tokens, seconds, loss}]."""
    params = [p for p in model.parameters() if p.requires_grad]
    opt = torch.optim.Adam(params, lr=a.lr, betas=(0.9, 0.98), eps=1e-9)
    sched = torch.optim.lr_scheduler.LambdaLR(opt, common.inverse_sqrt_warmup(a.warmup))
    model.train()
    lengths = [(_Rows(x.size(0)), y) for x, y in examples]
    steps, epoch = [], 0
    window = [0.0, 0.0, 0.0, 0.0]  # loss * tgt tokens, tgt tokens, src+tgt tokens, seconds
    while len(steps) < a.steps:
        for order in common.make_batches(lengths, a.max_tokens, a.seed, epoch):
            if len(steps) >= a.steps:
                break
            t0 = time.perf_counter()
            batch = CaptionBatch(examples, order)
            logits, weights = model(batch.src, batch.tgt_in)
            loss = F.cross_entropy(logits.reshape(-1, logits.size(-1)),
                                   batch.tgt_out.reshape(-1), ignore_index=PAD,
                                   label_smoothing=a.label_smoothing)
            value = loss.item()  # the cross-entropy, as attend logs it
            if not math.isfinite(value):
                raise FloatingPointError("the loss became %r at step %d" % (value, len(steps) + 1))
            extra = model.auxiliary_loss(batch.tgt_out, weights)
            if extra is not None:
                loss = loss + extra
            opt.zero_grad(set_to_none=True)
            loss.backward()
            if a.clip_norm > 0:
                torch.nn.utils.clip_grad_norm_(params, a.clip_norm)
            opt.step()
            sched.step()
            seconds = time.perf_counter() - t0
            steps.append({"step": len(steps) + 1, "epoch": epoch + 1, "images": len(order),
                          "src_tokens": batch.src_tokens, "tgt_tokens": batch.tgt_tokens,
                          "seconds": seconds, "loss": value})
            window[0] += value * batch.tgt_tokens
            window[1] += batch.tgt_tokens
            window[2] += batch.src_tokens + batch.tgt_tokens
            window[3] += seconds
            if a.log_every > 0 and (len(steps) % a.log_every == 0 or len(steps) == a.steps):
                log("step %d | epoch %d | loss %.3f | %.0f src+tgt tok/s | lr %.2e" %
                    (len(steps), epoch + 1, window[0] / window[1], window[2] / window[3],
                     opt.param_groups[0]["lr"]))
                window = [0.0, 0.0, 0.0, 0.0]
        epoch += 1
    return steps


def rates(steps):
    """Images/s, target tokens/s and source+target tokens/s over `steps` (None if empty)."""
    seconds = sum(s["seconds"] for s in steps)
    if not steps or seconds <= 0:
        return None
    images = sum(s["images"] for s in steps)
    src = sum(s["src_tokens"] for s in steps)
    tgt = sum(s["tgt_tokens"] for s in steps)
    return {"steps": len(steps), "seconds": seconds, "images": images, "tgt_tokens": tgt,
            "images_per_s": images / seconds, "target_tokens_per_s": tgt / seconds,
            "tokens_per_s": (src + tgt) / seconds}


# ---- the script ------------------------------------------------------------------------------
def argument_parser():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", default="", help="corpus dir with train.tsv")
    ap.add_argument("--train-tsv", default="", help="the training captions (default DATA/train.tsv)")
    ap.add_argument("--vocab", required=True, help="the vocab.model `attend train` wrote")
    ap.add_argument("--max-train", type=int, default=0, help="first N images (0 = all)")
    ap.add_argument("--steps", type=int, default=0, help="training steps (required)")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--log-every", type=int, default=50)
    ap.add_argument("--json", default="", help="also write the figures to this JSON file")
    # `attend train`'s training options and defaults (nmt::TrainOptions, train_command.cc).
    ap.add_argument("--max-tokens", type=int, default=2048)
    ap.add_argument("--max-len", type=int, default=100)
    ap.add_argument("--lr", type=float, default=1e-3)
    ap.add_argument("--warmup", type=int, default=500)
    ap.add_argument("--clip-norm", type=float, default=1.0)
    ap.add_argument("--label-smoothing", type=float, default=0.1)
    ap.add_argument("--seed", type=int, default=1)
    # The model: models::ModelConfig's captioning options and defaults, under attend's names.
    ap.add_argument("--arch", default="show-attend-tell", choices=("show-attend-tell",))
    ap.add_argument("--dropout", type=float, default=0.1)
    ap.add_argument("--embed-dim", type=int, default=256)
    ap.add_argument("--hidden-dim", type=int, default=256)
    ap.add_argument("--attention-dim", type=int, default=256)
    ap.add_argument("--image-size", type=int, default=96)
    ap.add_argument("--image-channels", type=int, default=1, choices=(1, 3))
    ap.add_argument("--cnn-channels", type=int, default=16)
    ap.add_argument("--image-attention", default="soft", choices=("soft", "none"))
    ap.add_argument("--attention-penalty", type=float, default=1.0)
    ap.add_argument("--parse-only", action="store_true",
                    help="check the options and exit (bench/caption_compare.sh, before training)")
    return ap


def main(argv):
    ap = argument_parser()
    a = ap.parse_args(argv)
    if a.parse_only:
        return 0
    if a.steps <= 0:
        ap.error("--steps must be positive")
    listing = a.train_tsv or (os.path.join(a.data, "train.tsv") if a.data else "")
    if not listing:
        ap.error("give --data DIR (with train.tsv) or --train-tsv")
    common.set_threads(a.threads)
    torch.manual_seed(a.seed)
    vocab = common.Vocabulary(a.vocab)

    t0 = time.perf_counter()
    images = read_captions(listing, a.max_train)
    examples, dropped = load_examples(images, vocab, a.image_size, a.image_channels, a.max_len)
    if not examples:
        sys.exit("caption_sat.py: no training captions left in %s" % listing)
    print("images: %d training images with %d captions, %d dropped (over %d ids or empty), "
          "decoded in %.1f s (not timed below)" % (len(images), len(examples), dropped,
                                                   a.max_len, time.perf_counter() - t0),
          flush=True)

    cfg = CaptionConfig(arch=a.arch, tgt_vocab=vocab.size(), dropout=a.dropout,
                        embed_dim=a.embed_dim, hidden_dim=a.hidden_dim,
                        attention_dim=a.attention_dim, image_size=a.image_size,
                        image_channels=a.image_channels, cnn_channels=a.cnn_channels,
                        image_attention=a.image_attention,
                        attention_penalty=a.attention_penalty)
    model = Captioner(cfg)
    n_params = sum(p.numel() for p in model.parameters())
    coretype = os.environ.get("OPENBLAS_CORETYPE", "unset")
    print("torch %s, %d threads (OMP_NUM_THREADS %s, OPENBLAS_NUM_THREADS %s, OPENBLAS_CORETYPE "
          "%s): %s %s attention, %d parameters, vocabulary %d" %
          (torch.__version__, torch.get_num_threads(), os.environ.get("OMP_NUM_THREADS", "unset"),
           os.environ.get("OPENBLAS_NUM_THREADS", "unset"), coretype, a.arch, a.image_attention,
           n_params, vocab.size()), flush=True)

    steps = train(model, examples, a, log=lambda s: print(s, flush=True))
    after = rates(steps[1:])
    every = rates(steps)
    print("train: %d steps, step 1 %.3f s (warm-up)" % (len(steps), steps[0]["seconds"]))
    for name, r in (("steps 2..%d" % len(steps), after), ("steps 1..%d" % len(steps), every)):
        if r is None:
            print("  %s: no steps" % name)
            continue
        print("  %s: %.2f s, %.2f images/s, %.0f target tok/s, %.0f src+tgt tok/s" %
              (name, r["seconds"], r["images_per_s"], r["target_tokens_per_s"],
               r["tokens_per_s"]))
    sys.stdout.flush()
    if a.json:
        digest = hashlib.sha256(json.dumps([[s["images"], s["tgt_tokens"]]
                                            for s in steps]).encode()).hexdigest()[:16]
        result = {"torch_version": torch.__version__, "threads": torch.get_num_threads(),
                  "openblas_coretype": coretype, "python": platform.python_version(),
                  "parameters": n_params, "training_images": len(images),
                  "training_captions": len(examples), "dropped": dropped, "steps": len(steps),
                  "after_first": after, "all": every, "batches_digest": digest,
                  "per_step": steps}
        common._write_atomically(a.json, json.dumps(result, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
