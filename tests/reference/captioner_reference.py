# PyTorch oracle cases for the image captioners: logits, attention, loss and gradients.
"""PyTorch oracle for attend's image captioners (src/models/captioner.cc).

The torch model is tests/reference/models/captioner_model.py (the CNN as torch.nn.Conv2d +
ReLU + max_pool2d, the additive score, the gate, torch.lstm_cell, the deep output, the doubly
stochastic penalty, top-down's connected-component proposals and region pooling), the one
bench/torch_reference/caption_sat.py trains, so this test also proves that the benchmark trains
the model `attend train --task caption` trains.

Run as `/usr/bin/python3 tests/reference/captioner_reference.py --out FILE` (Debian's
python3-torch); tests/models/test_captioner_reference.cc loads every weight by name into
models::MakeModel(config) and compares. The file format is the one of ops_reference.py. Per case
the op key gives the configuration, e.g. "captioner|arch=show-attend-tell|image_attention=soft|
image_size=16|image_channels=1|cnn_channels=2|hidden=8|embed=6|attention_dim=5|tgt_vocab=11|
regions=16|attention_penalty=1.0|label_smoothing=0.1|mode=train", and the tensors are named:
  src, tgt_in, tgt_out   the batch as nmt::MakeBatch pads it: src f32 images [B, C*H, W] (pixels
                         in [0, 1]: a noise background below the proposal threshold, bright
                         blobs above it), tgt i64 (0 = padding, 2 = BOS, 3 = EOS)
  p:<name>               every parameter under attend's StateDict name
  logits                 [B, T, V] (dropout 0)
  attention              [B, T, L] the decoder's attention weights (not for "none")
  boxes                  top-down only: f32 [B, regions, 4] the proposals (x0, y0, x1, y1)
  loss                   mode=train only: mean cross-entropy over the non-pad targets with label
                         smoothing 0.1, plus (soft attention) the doubly stochastic penalty
                         attention_penalty * sum_b sum_i (1 - sum_t alpha_bti)^2 / target tokens
                         (the sums over each caption's real words, eos included)
  grad:<name>            mode=train only: d loss / d parameter, for the parameters the loss
                         depends on (image_attention none builds the score and never uses it)
mode=eval cases (hard attention: argmax one-hot, as attend decodes; its training samples from
attend's own random stream) hold the forward only.
"""
import os
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
sys.path.insert(0, os.path.join(HERE, "models"))
try:
    import torch  # noqa: E402
    import torch.nn.functional as F  # noqa: E402
except ImportError as e:  # the python3 on PATH has no torch; Debian's /usr/bin/python3 does
    sys.exit("captioner_reference.py needs PyTorch (%s): run it with /usr/bin/python3 "
             "(Debian's python3-torch)" % e)
from ops_reference import generator_main, Builder, op_key  # noqa: E402
from captioner_model import (CaptionConfig, Captioner, PAD, BOS, EOS,  # noqa: E402
                             proposals)

LABEL_SMOOTHING = 0.1
TGT_VOCAB, EMBED, HIDDEN, ATTN, PENALTY = 11, 6, 8, 5, 1.0

# Blobs per image: (x0, y0, x1, y1) rectangles (exclusive ends) painted bright. Proposal cases
# (image side 16, cell centres at 4 and 12; side 24: 4, 12, 20):
#   two blobs of different areas and one of 9 pixels (under the 12-pixel minimum);
#   no blob at all (only the pyramid's tiles);
#   two 3x3 squares touching at a corner (one 8-connected component of 18 pixels), and two
#   12-pixel blobs of equal area (their raster order decides);
#   a 16-pixel blob that covers no cell centre (pooled from the cell under its centre).
IMAGES_16 = [
    [(1, 1, 6, 6), (10, 9, 14, 13), (10, 1, 13, 4)],
    [],
    [(2, 2, 5, 5), (5, 5, 8, 8), (11, 12, 14, 16), (10, 0, 13, 4)],
]
IMAGES_24 = [
    [(5, 5, 9, 9), (2, 16, 14, 21), (17, 2, 23, 8), (19, 12, 22, 14)],
    [(0, 0, 4, 3), (20, 20, 24, 23), (9, 9, 13, 12), (14, 2, 16, 4)],
    [],
]

# (name, arch, image_attention, image_size, image_channels, cnn_channels, regions, images,
#  tgt_lengths (without EOS), mode)
VARIANTS = [
    ("sat_soft_16", "show-attend-tell", "soft", 16, 1, 2, 16, IMAGES_16, [5, 2, 4], "train"),
    ("sat_soft_24_rgb", "show-attend-tell", "soft", 24, 3, 3, 16, IMAGES_24[:2], [3, 6],
     "train"),
    ("sat_none_16", "show-attend-tell", "none", 16, 1, 3, 16, IMAGES_16, [4, 6, 2], "train"),
    ("sat_hard_24", "show-attend-tell", "hard", 24, 1, 2, 16, IMAGES_24, [5, 3, 4], "eval"),
    ("topdown_16_r3", "top-down", "soft", 16, 1, 2, 3, IMAGES_16, [3, 5, 2], "train"),
    ("topdown_24_r8_rgb", "top-down", "soft", 24, 3, 2, 8, IMAGES_24, [2, 4, 6], "train"),
]


def make_images(b, size, channels, blobs_per_image):
    """f32 [B, C, H, W]: noise in [0, 0.15) (below the 0.2 threshold; no two pixels equal, so
    no ties in the max-pools) with blobs of values in [0.6, 1.0) in every channel."""
    n = len(blobs_per_image)
    x = b.positive(n, channels, size, size, lo=0.0, hi=0.15)
    for i, blobs in enumerate(blobs_per_image):
        for (x0, y0, x1, y1) in blobs:
            x[i, :, y0:y1, x0:x1] = b.positive(channels, y1 - y0, x1 - x0, lo=0.6, hi=1.0)
    return x


def make_targets(b, tgt_lengths):
    n = len(tgt_lengths)
    t = max(tgt_lengths) + 1
    tgt_in = torch.full((n, t), PAD, dtype=torch.int64)
    tgt_out = torch.full((n, t), PAD, dtype=torch.int64)
    for r in range(n):
        y = b.randint(4, TGT_VOCAB, tgt_lengths[r])
        tgt_in[r, 0] = BOS
        tgt_in[r, 1:tgt_lengths[r] + 1] = y
        tgt_out[r, :tgt_lengths[r]] = y
        tgt_out[r, tgt_lengths[r]] = EOS
    return tgt_in, tgt_out


def hard_margin(model, src, tgt_in):
    """The smallest gap between the best and the second-best score over every hard step: the
    argmax must not depend on rounding."""
    gaps = []
    original = model.score.forward

    def recording(query, pk):
        s = original(query, pk)
        top = s.detach().topk(2, -1).values
        gaps.append((top[..., 0] - top[..., 1]).min().item())
        return s
    model.score.forward = recording
    try:
        with torch.no_grad():
            model(src, tgt_in)
    finally:
        model.score.forward = original
    return min(gaps)


def variant_case(b, index, variant):
    (name, arch, attend, size, channels, cnn, regions, blobs, tgt_lengths, mode) = variant
    cfg = CaptionConfig(arch=arch, tgt_vocab=TGT_VOCAB, dropout=0.0, embed_dim=EMBED,
                        hidden_dim=HIDDEN, attention_dim=ATTN, image_size=size,
                        image_channels=channels, cnn_channels=cnn, image_attention=attend,
                        attention_penalty=PENALTY, regions=regions)
    torch.manual_seed(3000 + index)
    model = Captioner(cfg)
    if hasattr(model, "score"):
        with torch.no_grad():  # sharper attention than torch's default init gives
            model.score.v.mul_(4.0)
    images = make_images(b, size, channels, blobs)
    src = images.reshape(len(blobs), channels * size, size)
    tgt_in, tgt_out = make_targets(b, tgt_lengths)
    key = op_key("captioner", arch=arch, image_attention=attend, image_size=size,
                 image_channels=channels, cnn_channels=cnn, hidden=HIDDEN, embed=EMBED,
                 attention_dim=ATTN, tgt_vocab=TGT_VOCAB, regions=regions,
                 attention_penalty=PENALTY, label_smoothing=LABEL_SMOOTHING, mode=mode)
    tensors = [("src", src), ("tgt_in", tgt_in), ("tgt_out", tgt_out)]
    params = list(model.named_parameters())
    tensors += [("p:" + n, p.detach().clone()) for n, p in params]
    if arch == "top-down":
        boxes = [proposals(images[i].numpy(), regions) for i in range(len(blobs))]
        tensors.append(("boxes", torch.tensor(boxes, dtype=torch.float32)))
    if mode == "eval":
        model.eval()
        margin = hard_margin(model, src, tgt_in)
        if margin < 1e-3:
            raise RuntimeError("case %s: two attention scores within %g: pick another seed" %
                               (name, margin))
        with torch.no_grad():
            logits, weights = model(src, tgt_in)
        tensors.append(("logits", logits))
        tensors.append(("attention", weights))
    else:
        model.train()  # dropout 0: train mode only switches the penalty on
        logits, weights = model(src, tgt_in)
        loss = F.cross_entropy(logits.reshape(-1, TGT_VOCAB), tgt_out.reshape(-1),
                               ignore_index=PAD, label_smoothing=LABEL_SMOOTHING)
        aux = model.auxiliary_loss(tgt_out, weights)
        if aux is not None:
            loss = loss + aux
        loss.backward()
        tensors.append(("logits", logits.detach()))
        if weights is not None:
            tensors.append(("attention", weights.detach()))
        tensors.append(("loss", loss.detach()))
        for n, p in params:  # none: the score is built but unused, torch gives it no grad
            if p.grad is not None:
                tensors.append(("grad:" + n, p.grad.detach()))
    b.names.add(name)
    b.cases.append((name, key, tensors))


def build_cases(seed):
    b = Builder(seed)
    for i, v in enumerate(VARIANTS):
        variant_case(b, i, v)
    return b.cases


def main(argv):
    return generator_main(argv, __doc__.splitlines()[0], build_cases, 20250101)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
