# What every PyTorch reference trainer shares: data, batching, schedule, training loop, search.
"""Shared parts of the PyTorch reference trainers in bench/torch_reference/.

Each piece mirrors attend's C++ so that a torch run sees the same data in the same order:
  read_split / Vocabulary / encode_pairs   tools/attend/train_command.cc, src/nmt/vocab.cc,
                                           src/nmt/data.cc EncodePairs (the SAME SentencePiece
                                           model file `attend train` wrote, vocab.model)
  make_batches / make_batch                src/nmt/data.cc MakeBatches / MakeBatch (the same
                                           splitmix64 shuffle: identical batches per epoch)
  inverse_sqrt_warmup                      src/optim/schedules.cc InverseSqrtWarmup (Peak form)
  train                                    src/nmt/trainer.cc: Adam(beta2 0.98, eps 1e-9),
                                           warm-up, clipping, label smoothing (no validation)
  greedy_translate                         src/nmt/search.cc with beam 1, batched
A model plugs in through a forward(batch) -> logits [B, T, V] callable for training and
start(src, lengths) -> state, step(state, tokens) -> log-probs [N, V], state.select(rows) for
decoding. A trainer script is then argument_parser() plus its model's options, and run():
  common_arguments / run                   the options every script takes (data, vocabulary,
                                           stop conditions, attend train's optimiser defaults,
                                           search) and the whole run: train, time, translate the
                                           test split, print and write the figures
"""
import argparse
import json
import math
import os
import struct
import sys
import time

import torch
import torch.nn.functional as F

PAD, UNK, BOS, EOS = 0, 1, 2, 3
MASK64 = (1 << 64) - 1


def set_threads(n):
    """Intra-op threads for torch (and, through the environment, the BLAS it loads)."""
    torch.set_num_threads(n)


# ---- data ------------------------------------------------------------------------------------
def read_lines(path):
    """Lines without "\\n" and a trailing "\\r"; a UTF-8 byte-order mark is dropped (as
    data::ReadLines). Invalid UTF-8 and empty lines are errors naming file:line."""
    with open(path, "rb") as f:
        data = f.read()
    if data.startswith(b"\xef\xbb\xbf"):
        data = data[3:]
    text = data.decode("utf-8")
    lines = text.split("\n")
    if lines and lines[-1] == "":
        lines.pop()
    out = []
    for i, line in enumerate(lines):
        if line.endswith("\r"):
            line = line[:-1]
        if not line:
            raise ValueError("%s:%d: empty line" % (path, i + 1))
        out.append(line)
    return out


def read_split(data_dir, split, src_lang, tgt_lang, limit=0):
    """(source, target) pairs of DIR/split.SRC and DIR/split.TGT (the first `limit`; 0 = all)."""
    src = read_lines(os.path.join(data_dir, "%s.%s" % (split, src_lang)))
    tgt = read_lines(os.path.join(data_dir, "%s.%s" % (split, tgt_lang)))
    if len(src) != len(tgt):
        raise ValueError("%s: %d source lines but %d target lines" % (split, len(src), len(tgt)))
    pairs = list(zip(src, tgt))
    return pairs[:limit] if limit > 0 else pairs


class Vocabulary:
    """A SentencePiece model file written by `attend train` (ids 0..3 = pad, unk, bos, eos)."""

    def __init__(self, path):
        import sentencepiece  # Debian's python3-sentencepiece (scripts/setup.sh)
        self.sp = sentencepiece.SentencePieceProcessor(model_file=path)
        ids = (self.sp.pad_id(), self.sp.unk_id(), self.sp.bos_id(), self.sp.eos_id())
        if ids != (PAD, UNK, BOS, EOS):
            raise ValueError("%s: pad/unk/bos/eos ids are %s, not 0/1/2/3" % (path, ids))

    def size(self):
        return self.sp.get_piece_size()

    def encode(self, text):
        return self.sp.encode(text)

    def decode(self, ids):
        return self.sp.decode([i for i in ids if i > EOS])


def encode_pairs(vocab, pairs, max_len):
    """[(src ids, tgt ids)]: pairs with an empty side or a side over max_len subwords are
    dropped (nmt::EncodePairs). Returns the examples and the number dropped."""
    out, dropped = [], 0
    for s, t in pairs:
        src, tgt = vocab.encode(s), vocab.encode(t)
        if not src or not tgt or len(src) > max_len or len(tgt) > max_len:
            dropped += 1
            continue
        out.append((src, tgt))
    return out, dropped


def _mix(x):
    """splitmix64's finaliser, in 64-bit unsigned arithmetic (data.cc's Mix)."""
    x = (x + 0x9E3779B97F4A7C15) & MASK64
    x = ((x ^ (x >> 30)) * 0xBF58476D1CE4E5B9) & MASK64
    x = ((x ^ (x >> 27)) * 0x94D049BB133111EB) & MASK64
    return x ^ (x >> 31)


def make_batches(examples, max_tokens, seed, epoch):
    """nmt::MakeBatches: shuffle, stable sort by max(src, tgt + 1), cut when the padded size
    (longest * count) would pass max_tokens, shuffle the batches; lists of example indices."""
    key = _mix((seed ^ _mix((epoch + 1) & MASK64)) & MASK64)
    n = len(examples)
    order = list(range(n))
    for i in range(n, 1, -1):
        j = _mix((key + i) & MASK64) % i
        order[i - 1], order[j] = order[j], order[i - 1]
    lens = [max(len(s), len(t) + 1) for s, t in examples]
    order.sort(key=lambda e: lens[e])  # Python's sort is stable, as std::stable_sort
    batches, cur, longest = [], [], 0
    for i in order:
        longest_if = max(longest, lens[i])
        if cur and longest_if * (len(cur) + 1) > max_tokens:
            batches.append(cur)
            cur, longest = [], 0
        cur.append(i)
        longest = max(longest, lens[i])
    if cur:
        batches.append(cur)
    for i in range(len(batches), 1, -1):
        j = _mix(key ^ _mix(i)) % i
        batches[i - 1], batches[j] = batches[j], batches[i - 1]
    return batches


class Batch:
    """nmt::MakeBatch: src [B, S], src_lengths [B], tgt_in = BOS y, tgt_out = y EOS [B, T]."""

    def __init__(self, examples, order):
        b = len(order)
        s = max(len(examples[i][0]) for i in order)
        t = max(len(examples[i][1]) for i in order) + 1
        src = torch.zeros(b, s, dtype=torch.int64)
        tgt_in = torch.zeros(b, t, dtype=torch.int64)
        tgt_out = torch.zeros(b, t, dtype=torch.int64)
        lengths = torch.zeros(b, dtype=torch.int64)
        self.src_tokens = self.tgt_tokens = 0
        for r, i in enumerate(order):
            x, y = examples[i]
            src[r, :len(x)] = torch.tensor(x)
            tgt_in[r, 0] = BOS
            tgt_in[r, 1:len(y) + 1] = torch.tensor(y)
            tgt_out[r, :len(y)] = torch.tensor(y)
            tgt_out[r, len(y)] = EOS
            lengths[r] = len(x)
            self.src_tokens += len(x)
            self.tgt_tokens += len(y) + 1
        self.src, self.src_lengths, self.tgt_in, self.tgt_out = src, lengths, tgt_in, tgt_out


# ---- optimisation ----------------------------------------------------------------------------
def inverse_sqrt_warmup(warmup):
    """The factor on the peak lr at scheduler epoch e: min(s / w, sqrt(w / s)), s = max(e, 1)
    (InverseSqrtWarmup::Peak; with LambdaLR's epoch counting the steps use the same lrs)."""
    w = float(max(1, warmup))

    def factor(e):
        s = float(max(e, 1))
        return min(s / w, math.sqrt(w / s))
    return factor


def train(model, forward, examples, max_tokens, lr, warmup, clip_norm, label_smoothing, seed,
          max_steps=0, max_minutes=0.0, log_every=50, log=print):
    """nmt::Train's loop without validation or checkpoints: token-count batches epoch after
    epoch, Adam(beta2 0.98, eps 1e-9) with warm-up, clipping, label-smoothed cross-entropy.
    `forward(batch)` gives logits [B, T, V]. Returns a dict with the steps, the seconds, the
    target and source+target tokens and the last log window's mean loss."""
    if max_steps <= 0 and max_minutes <= 0:
        raise ValueError("train: set --steps or --minutes")
    params = [p for p in model.parameters() if p.requires_grad]
    opt = torch.optim.Adam(params, lr=lr, betas=(0.9, 0.98), eps=1e-9)
    sched = torch.optim.lr_scheduler.LambdaLR(opt, inverse_sqrt_warmup(warmup))
    model.train()
    step, epoch, tgt_tokens, all_tokens = 0, 0, 0, 0
    window_loss = window_tokens = window_all = 0.0
    last_loss = float("nan")
    t0 = t_window = time.perf_counter()
    stop = None
    while stop is None:
        for order in make_batches(examples, max_tokens, seed, epoch):
            if max_steps > 0 and step >= max_steps:
                stop = "steps"
                break
            if max_minutes > 0 and time.perf_counter() - t0 >= max_minutes * 60.0:
                stop = "minutes"
                break
            batch = Batch(examples, order)
            logits = forward(batch)
            loss = F.cross_entropy(logits.reshape(-1, logits.size(-1)),
                                   batch.tgt_out.reshape(-1), ignore_index=PAD,
                                   label_smoothing=label_smoothing)
            value = loss.item()
            if not math.isfinite(value):
                raise FloatingPointError("the loss became %r at step %d" % (value, step + 1))
            opt.zero_grad(set_to_none=True)
            loss.backward()
            if clip_norm > 0:
                torch.nn.utils.clip_grad_norm_(params, clip_norm)
            opt.step()
            sched.step()
            step += 1
            tgt_tokens += batch.tgt_tokens
            all_tokens += batch.src_tokens + batch.tgt_tokens
            window_loss += value * batch.tgt_tokens
            window_tokens += batch.tgt_tokens
            window_all += batch.src_tokens + batch.tgt_tokens
            if log_every > 0 and step % log_every == 0:
                # As attend's progress line: the window's loss and source+target tokens/s.
                last_loss = window_loss / window_tokens
                now = time.perf_counter()
                log("step %d | epoch %d | loss %.3f | %.0f tok/s | lr %.2e" %
                    (step, epoch + 1, last_loss, window_all / (now - t_window),
                     opt.param_groups[0]["lr"]))
                window_loss = window_tokens = window_all = 0.0
                t_window = now
        else:
            epoch += 1
    seconds = time.perf_counter() - t0
    if window_tokens > 0:
        last_loss = window_loss / window_tokens
    return {"steps": step, "epochs_started": epoch + 1, "seconds": seconds,
            "tgt_tokens": tgt_tokens, "all_tokens": all_tokens, "loss": last_loss,
            "stop": stop}


# ---- search ----------------------------------------------------------------------------------
@torch.inference_mode()
def greedy_translate(model, sources, batch_size=32, max_len_ratio=2.0, max_len_extra=10):
    """nmt::Translate with beam 1: sources sorted by length (stable) in chunks of batch_size,
    each decoded together; a sentence ends at EOS or after int(ratio * len) + extra tokens, and
    finished sentences leave the batch (state.select). Returns token lists (no BOS/EOS)."""
    was_training = model.training
    model.eval()
    results = [[] for _ in sources]
    order = sorted((i for i, s in enumerate(sources) if s), key=lambda i: len(sources[i]))
    for at in range(0, len(order), batch_size):
        chunk = order[at:at + batch_size]
        b = len(chunk)
        s = max(len(sources[i]) for i in chunk)
        src = torch.zeros(b, s, dtype=torch.int64)
        lengths = torch.zeros(b, dtype=torch.int64)
        for r, i in enumerate(chunk):
            src[r, :len(sources[i])] = torch.tensor(sources[i])
            lengths[r] = len(sources[i])
        max_len = [int(max_len_ratio * len(sources[i])) + max_len_extra for i in chunk]
        state = model.start(src, lengths)
        live = list(range(b))  # the sentence (row of the chunk) each live row belongs to
        out = [[] for _ in range(b)]
        tokens = torch.full((b,), BOS, dtype=torch.int64)
        while live:
            best = model.step(state, tokens).argmax(1).tolist()  # ties: the lowest id
            keep, nxt = [], []
            for row, sent in enumerate(live):
                if len(out[sent]) >= max_len[sent] or best[row] == EOS:
                    continue  # out of length, or finished
                out[sent].append(best[row])
                keep.append(row)
                nxt.append(best[row])
            if not keep:
                break
            if len(keep) < len(live):
                state.select(torch.tensor(keep, dtype=torch.int64))
                live = [live[r] for r in keep]
            tokens = torch.tensor(nxt, dtype=torch.int64)
        for r, i in enumerate(chunk):
            results[i] = out[r]
    model.train(was_training)
    return results


# ---- the script around a model -----------------------------------------------------------------
def argument_parser(doc):
    """The options every reference trainer takes, with `attend train`'s defaults
    (tools/attend/train_command.cc, nmt.h); a script adds its model's own."""
    ap = argparse.ArgumentParser(description=doc.splitlines()[0])
    ap.add_argument("--data", required=True, help="corpus dir: train.SRC/TGT, test.SRC/TGT")
    ap.add_argument("--src", default="en")
    ap.add_argument("--tgt", default="de")
    ap.add_argument("--vocab", required=True, help="the vocab.model `attend train` wrote")
    ap.add_argument("--max-train", type=int, default=0, help="first N training pairs (0 = all)")
    ap.add_argument("--test-split", default="test", help="split translated after training")
    ap.add_argument("--output", default="", help="file for the test translations")
    # Stop conditions and speed.
    ap.add_argument("--steps", type=int, default=0)
    ap.add_argument("--minutes", type=float, default=0.0)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--max-tokens", type=int, default=2048)
    ap.add_argument("--max-len", type=int, default=100)
    ap.add_argument("--lr", type=float, default=1e-3)
    ap.add_argument("--warmup", type=int, default=500)
    ap.add_argument("--clip-norm", type=float, default=1.0)
    ap.add_argument("--label-smoothing", type=float, default=0.1)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--log-every", type=int, default=50)
    ap.add_argument("--dropout", type=float, default=0.1)
    # Search (nmt::SearchOptions' defaults, beam 1).
    ap.add_argument("--batch-size", type=int, default=32, help="sentences decoded together")
    ap.add_argument("--json", default="", help="also write the figures to this JSON file")
    ap.add_argument("--init-from", default="",
                    help="an attend checkpoint whose weights this model takes (same names and "
                         "shapes); with --steps 0 nothing is trained: translation speed on the "
                         "same weights")
    ap.add_argument("--quantize-dynamic", action="store_true",
                    help="translate with torch.ao.quantization.quantize_dynamic's int8 nn.Linear "
                         "modules (weights per tensor, activations per batch, the default "
                         "quantized engine)")
    return ap


def parse(ap, argv):
    a = ap.parse_args(argv)
    if a.steps <= 0 and a.minutes <= 0 and not a.init_from:
        ap.error("set --steps or --minutes (or --init-from with --steps 0)")
    return a


def _write_atomically(path, text):
    tmp = path + ".tmp"
    with open(tmp, "w", encoding="utf-8") as f:
        f.write(text)
    os.replace(tmp, path)


def load_attend_weights(model, path):
    """Copies the tensors of an attend checkpoint (safetensors: an 8-byte header length, a JSON
    header, raw little-endian data) into model's parameters and buffers of the same names; the
    checkpoint's optimizer, trainer and random-stream entries are ignored. Every model tensor
    must be found with its shape."""
    with open(path, "rb") as f:
        n = struct.unpack("<Q", f.read(8))[0]
        header = json.loads(f.read(n))
        data = f.read()
    dtypes = {"F32": torch.float32, "F64": torch.float64, "I64": torch.int64}
    state = model.state_dict()
    for name, target in state.items():
        if name not in header:
            sys.exit("--init-from %s: no tensor '%s'" % (path, name))
        h = header[name]
        begin, end = h["data_offsets"]
        t = torch.frombuffer(bytearray(data[begin:end]), dtype=dtypes[h["dtype"]]).reshape(h["shape"])
        if tuple(t.shape) != tuple(target.shape):
            sys.exit("--init-from %s: '%s' is %s, the model's %s" %
                     (path, name, list(t.shape), list(target.shape)))
        with torch.no_grad():
            target.copy_(t)


def run(a, arch, make_model, forward):
    """The whole run of a reference trainer with options `a` (argument_parser's): reads and
    encodes the corpus, builds make_model(vocab_size), trains it with forward(model, batch) ->
    logits, prints training target tokens/s and source+target tokens/s (attend's progress
    measure), greedy-translates the test split timing sentences/s (subword encoding included, as
    `attend translate --timing`), writes the detokenized translations (--output) and the
    figures (--json). Returns the exit status."""
    set_threads(a.threads)
    torch.manual_seed(a.seed)
    vocab = Vocabulary(a.vocab)
    train_pairs = read_split(a.data, "train", a.src, a.tgt, a.max_train)
    examples, dropped = encode_pairs(vocab, train_pairs, a.max_len)
    if not examples:
        sys.exit("%s: no training pairs left in %s" % (arch, a.data))
    model = make_model(vocab.size())
    n_params = sum(p.numel() for p in model.parameters())
    print("torch %s, %d threads: %s, %d parameters, %d training pairs (%d dropped), "
          "vocabulary %d" % (torch.__version__, torch.get_num_threads(), arch, n_params,
                             len(examples), dropped, vocab.size()), flush=True)

    if a.init_from:
        load_attend_weights(model, a.init_from)
    if a.steps > 0 or a.minutes > 0:
        t = train(model, lambda batch: forward(model, batch), examples, a.max_tokens, a.lr,
                  a.warmup, a.clip_norm, a.label_smoothing, a.seed, max_steps=a.steps,
                  max_minutes=a.minutes, log_every=a.log_every, log=lambda s: print(s, flush=True))
        train_tps = t["tgt_tokens"] / t["seconds"]
        all_tps = t["all_tokens"] / t["seconds"]
        print("train: %d steps in %.1f s (%s), %.0f target tokens/s, %.0f source+target "
              "tokens/s, loss %.3f" % (t["steps"], t["seconds"], t["stop"], train_tps, all_tps,
                                       t["loss"]), flush=True)
    else:
        t = {"steps": 0, "seconds": 0.0, "loss": float("nan")}
        train_tps = all_tps = 0.0

    if a.quantize_dynamic:
        model.eval()
        model = torch.ao.quantization.quantize_dynamic(model, {torch.nn.Linear},
                                                       dtype=torch.qint8)
        # PyTorch 1.13's encoder layers check their weights' devices before taking their
        # eval-mode fast path, and a dynamically quantized Linear's weight is a method, which
        # that check trips on: the layers take their regular path instead (the flag below is
        # one of the fast path's preconditions; the activation itself is unchanged).
        for m in model.modules():
            if isinstance(m, torch.nn.TransformerEncoderLayer):
                m.activation_relu_or_gelu = False
        print("quantize_dynamic: int8 nn.Linear, engine %s" % torch.backends.quantized.engine,
              flush=True)
    lines = read_lines(os.path.join(a.data, "%s.%s" % (a.test_split, a.src)))
    t0 = time.perf_counter()
    sources = [vocab.encode(line) for line in lines]
    hyps = greedy_translate(model, sources, batch_size=a.batch_size)
    seconds = time.perf_counter() - t0
    text = [vocab.decode(h) for h in hyps]
    target_tokens = sum(len(h) + 1 for h in hyps)  # with eos, as attend translate --timing
    print("translate: %d sentences in %.3f s: %.2f sentences/s, %.1f target tokens/s" %
          (len(lines), seconds, len(lines) / seconds, target_tokens / seconds), flush=True)
    if a.output:
        _write_atomically(a.output, "".join(line + "\n" for line in text))
    if a.json:
        result = {"arch": arch, "torch_version": torch.__version__,
                  "threads": torch.get_num_threads(), "parameters": n_params,
                  "steps": t["steps"], "train_seconds": t["seconds"],
                  "target_tokens_per_s": train_tps, "tokens_per_s": all_tps,
                  "final_loss": t["loss"], "sentences": len(lines),
                  "translate_seconds": seconds, "sentences_per_s": len(lines) / seconds,
                  "translate_target_tokens_per_s": target_tokens / seconds}
        _write_atomically(a.json, json.dumps(result, indent=1))
    return 0
