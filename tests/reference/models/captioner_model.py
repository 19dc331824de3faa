# The image captioners of src/models/captioner.cc written in PyTorch, under the same names.
"""PyTorch mirror of attend's image captioners (src/models/captioner.cc).

Arch "show-attend-tell" (Xu et al. 2015; image_attention soft | hard | none) and "top-down"
(Anderson et al. 2018, with attend's image-derived proposals instead of Faster R-CNN). Every
parameter has the name attend's StateDict gives it, so weights copy across by name:

  cnn.{0..3}.weight / .bias        four 3x3 convolutions (padding 1) + ReLU, cnn_channels, 2x,
                                   4x, 8x wide; a 2x2 max-pool after each of the first three
  embed.weight                     target embedding (row PAD zero, no gradient)
  score.query_proj.weight          additive score v^T tanh(W q + U k + b): W without bias,
  score.key_proj.weight / .bias    U with bias b,
  score.v                          v
  show-attend-tell:
    init_h.*, init_c.*             h0 = tanh(init_h(mean a)), c0 = tanh(init_c(mean a))
    gate.*                         beta_t = sigmoid(gate(h_{t-1})) (not with "none")
    lstm.weight_ih/hh, bias_ih/hh  LSTMCell over [E y_{t-1}; z_t] (torch.lstm_cell's gate order
                                   i, f, g, o: attend's)
    out_h.weight, out_z.weight     the deep output E y_{t-1} + L_h h_t + L_z z_t (no biases),
    out.*                          then L_o (with bias)
  top-down:
    attention_lstm.*               LSTMCell over [h2_{t-1}; mean v; E y_{t-1}]
    language_lstm.*                LSTMCell over [v^_t; h1_t]
    out.*                          logits from h2_t

Images are f32 [B, C * H, W] rows (a batch as nmt::MakeBatch pads them) viewed as
[B, C, H, W]. Hard attention: eval mode only (argmax one-hot); attend's REINFORCE sampling in
training draws from its own generator, which torch cannot reproduce, so training raises.
tests/reference/captioner_reference.py checks this module against the C++ model end to end;
bench/torch_reference/caption_sat.py trains it.
"""
import numpy as np
import torch
import torch.nn.functional as F

PAD, UNK, BOS, EOS = 0, 1, 2, 3

# captioner.cc's proposal constants.
PROPOSAL_THRESHOLD = np.float32(0.2)
MIN_COMPONENT = 12


class CaptionConfig:
    """The captioning fields of attend's models::ModelConfig, with its defaults."""

    def __init__(self, **kw):
        self.arch = "show-attend-tell"  # show-attend-tell | top-down
        self.tgt_vocab = 0
        self.dropout = 0.1
        self.embed_dim = 256
        self.hidden_dim = 256
        self.attention_dim = 256
        self.image_size = 96
        self.image_channels = 1
        self.cnn_channels = 16
        self.image_attention = "soft"  # soft | hard | none
        self.attention_penalty = 1.0
        self.regions = 16
        for k, v in kw.items():
            if not hasattr(self, k):
                raise ValueError("CaptionConfig: unknown field " + k)
            setattr(self, k, v)
        if self.arch not in ("show-attend-tell", "top-down"):
            raise ValueError("CaptionConfig: unknown arch " + self.arch)
        if self.image_attention not in ("soft", "hard", "none"):
            raise ValueError("CaptionConfig: unknown image_attention " + self.image_attention)
        if self.image_size % 8 or self.image_size < 8:
            raise ValueError("CaptionConfig: image_size %d is not a multiple of 8" %
                             self.image_size)

    def grid(self):
        return self.image_size // 8


# ---- the proposals (captioner.cc's Components / Proposals), in float32 as attend computes ----

def components(pixels):
    """Boxes (x0, y0, x1, y1; float32, exclusive) of the bright 8-connected components of one
    image pixels [C, H, W] (numpy float32): channel mean > 0.2, at least 12 pixels, largest
    first, equal areas in the order their first pixel comes in a raster scan."""
    c, size, _ = pixels.shape
    v = np.zeros((size, size), dtype=np.float32)
    for ch in range(c):  # attend sums the channels in order, in float32
        v = (v + pixels[ch]).astype(np.float32)
    on = (v / np.float32(c)) > PROPOSAL_THRESHOLD
    label = -np.ones((size, size), dtype=np.int64)
    found = []  # (area, box)
    for start in range(size * size):
        sy, sx = divmod(start, size)
        if not on[sy, sx] or label[sy, sx] >= 0:
            continue
        ident = len(found)
        label[sy, sx] = ident
        stack = [(sy, sx)]
        area, x0, y0, x1, y1 = 0, size, size, 0, 0
        while stack:
            y, x = stack.pop()
            area += 1
            x0, y0, x1, y1 = min(x0, x), min(y0, y), max(x1, x + 1), max(y1, y + 1)
            for dy in (-1, 0, 1):
                for dx in (-1, 0, 1):
                    yy, xx = y + dy, x + dx
                    if 0 <= yy < size and 0 <= xx < size and on[yy, xx] and label[yy, xx] < 0:
                        label[yy, xx] = ident
                        stack.append((yy, xx))
        found.append((area, tuple(np.float32(t) for t in (x0, y0, x1, y1))))
    found.sort(key=lambda f: -f[0])  # stable: std::stable_sort by area, largest first
    return [box for area, box in found if area >= MIN_COMPONENT]


def proposals(pixels, regions):
    """`regions` boxes for one image [C, H, W]: its components (largest first, at most
    `regions`), then the pyramid of tiles 1x1, 2x2, 3x3, 1x1, ... until there are enough."""
    boxes = components(pixels)[:regions]
    s = np.float32(pixels.shape[1])
    tiles = 1
    while len(boxes) < regions:
        for i in range(tiles * tiles):
            if len(boxes) >= regions:
                break
            w = np.float32(s / np.float32(tiles))
            x = np.float32(np.float32(i % tiles) * w)
            y = np.float32(np.float32(i // tiles) * w)
            boxes.append((x, y, np.float32(x + w), np.float32(y + w)))
        tiles = tiles % 3 + 1
    return boxes


def pooling_matrix(boxes, size, grid):
    """[K, G*G] float32: row r averages the grid cells whose centres lie in box r (the cell
    under the box's centre when none does), as captioner.cc's Regions."""
    cell = np.float32(np.float32(size) / np.float32(grid))
    pool = np.zeros((len(boxes), grid * grid), dtype=np.float32)
    for r, (x0, y0, x1, y1) in enumerate(boxes):
        n = 0
        for y in range(grid):
            for x in range(grid):
                cx = np.float32(np.float32(x + 0.5) * cell)
                cy = np.float32(np.float32(y + 0.5) * cell)
                if x0 <= cx < x1 and y0 <= cy < y1:
                    pool[r, y * grid + x] = 1.0
                    n += 1
        if n == 0:
            x = min(grid - 1, int(np.float32(np.float32(x0 + x1) / np.float32(2)) / cell))
            y = min(grid - 1, int(np.float32(np.float32(y0 + y1) / np.float32(2)) / cell))
            pool[r, y * grid + x] = 1.0
            n = 1
        pool[r] = (pool[r] / np.float32(n)).astype(np.float32)
    return pool


# ---- the model ---------------------------------------------------------------------------------

class AdditiveScore(torch.nn.Module):
    """attention::AdditiveScore: v^T tanh(W q + U k + b); query_proj W has no bias."""

    def __init__(self, q_dim, k_dim, a_dim):
        super().__init__()
        self.query_proj = torch.nn.Linear(q_dim, a_dim, bias=False)
        self.key_proj = torch.nn.Linear(k_dim, a_dim)
        bound = 1.0 / a_dim ** 0.5
        self.v = torch.nn.Parameter(torch.empty(a_dim).uniform_(-bound, bound))

    def prepare_keys(self, keys):
        return self.key_proj(keys)  # [N, L, A]

    def forward(self, query, pk):
        wq = self.query_proj(query)  # [N, Tq, A]
        return torch.tanh(wq.unsqueeze(2) + pk.unsqueeze(1)) @ self.v  # [N, Tq, L]


class LSTMCell(torch.nn.Module):
    """attend's nn::LSTMCell: weight_ih [4H, in], weight_hh [4H, H], bias_ih, bias_hh, gates
    i, f, g, o (torch.lstm_cell)."""

    def __init__(self, input_size, hidden_size):
        super().__init__()
        cell = torch.nn.LSTMCell(input_size, hidden_size)
        self.weight_ih, self.weight_hh = cell.weight_ih, cell.weight_hh
        self.bias_ih, self.bias_hh = cell.bias_ih, cell.bias_hh

    def forward(self, x, h, c):
        return torch.lstm_cell(x, (h, c), self.weight_ih, self.weight_hh, self.bias_ih,
                               self.bias_hh)


class State:
    """What decoding keeps per hypothesis (captioner.cc's CaptionState)."""

    def __init__(self):
        self.annotations = self.keys = self.mean = None
        self.h = self.c = self.h1 = self.c1 = None


class Captioner(torch.nn.Module):
    def __init__(self, cfg):
        super().__init__()
        self.cfg = cfg
        self.top_down = cfg.arch == "top-down"
        k, h, e = cfg.cnn_channels, cfg.hidden_dim, cfg.embed_dim
        self.d = d = 8 * k
        widths = [cfg.image_channels, k, 2 * k, 4 * k, 8 * k]
        self.cnn = torch.nn.ModuleList(
            [torch.nn.Conv2d(widths[i], widths[i + 1], 3, padding=1) for i in range(4)])
        self.embed = torch.nn.Embedding(cfg.tgt_vocab, e, padding_idx=PAD)
        self.attend_mode = "soft" if self.top_down else cfg.image_attention
        if self.attend_mode != "none":  # the baseline without attention has no score
            self.score = AdditiveScore(h, d, cfg.attention_dim)
        self.dropout = torch.nn.Dropout(cfg.dropout)
        if self.top_down:
            self.attention_lstm = LSTMCell(h + d + e, h)
            self.language_lstm = LSTMCell(d + h, h)
            self.out = torch.nn.Linear(h, cfg.tgt_vocab)
            return
        self.init_h = torch.nn.Linear(d, h)
        self.init_c = torch.nn.Linear(d, h)
        if self.attend_mode != "none":
            self.gate = torch.nn.Linear(h, 1)
        self.lstm = LSTMCell(e + d, h)
        self.out_h = torch.nn.Linear(h, e, bias=False)
        self.out_z = torch.nn.Linear(d, e, bias=False)
        self.out = torch.nn.Linear(e, cfg.tgt_vocab)

    # ---- encoder ------------------------------------------------------------------------------
    def images(self, src):
        """f32 [B, C * H, W] -> [B, C, H, W]."""
        c, s = self.cfg.image_channels, self.cfg.image_size
        if src.dim() != 3 or src.size(1) != c * s or src.size(2) != s:
            raise ValueError("captioner: images must be [B, %d, %d], got %s" %
                             (c * s, s, list(src.shape)))
        return src.reshape(src.size(0), c, s, s)

    def grid(self, images):
        """The CNN's grid [B, G*G, D] (row-major cells)."""
        x = images
        for i, conv in enumerate(self.cnn):
            x = F.relu(conv(x))
            if i < 3:
                x = F.max_pool2d(x, 2)
        return x.flatten(2).transpose(1, 2)

    def boxes(self, images):
        """Per image the `regions` proposals (top-down)."""
        arr = images.detach().contiguous().numpy().astype(np.float32)
        return [proposals(arr[i], self.cfg.regions) for i in range(arr.shape[0])]

    def regions(self, images, grid):
        """Region features [B, K, D]: the pooling matrices (constants) times the grid."""
        g = self.cfg.grid()
        pool = np.stack([pooling_matrix(b, self.cfg.image_size, g) for b in self.boxes(images)])
        return torch.from_numpy(pool) @ grid

    def start(self, src):
        images = self.images(src)
        st = State()
        grid = self.grid(images)
        st.annotations = self.regions(images, grid) if self.top_down else grid
        st.mean = st.annotations.mean(1)
        b, h = images.size(0), self.cfg.hidden_dim
        if self.top_down or self.attend_mode != "none":
            st.keys = self.score.prepare_keys(st.annotations)
        if self.top_down:
            z = st.mean.new_zeros(b, h)
            st.h = st.c = st.h1 = st.c1 = z
        else:
            st.h = torch.tanh(self.init_h(st.mean))
            st.c = torch.tanh(self.init_c(st.mean))
        return st

    # ---- decoder ------------------------------------------------------------------------------
    def attend(self, st, query):
        """Weights [N, L] and context [N, D] of `query` [N, H] over the annotations."""
        scores = self.score(query.unsqueeze(1), st.keys)  # [N, 1, L]
        if self.attend_mode == "hard":
            if self.training:
                raise NotImplementedError("hard attention's REINFORCE sampling is attend's own "
                                          "random stream: compare in eval mode (argmax)")
            w = F.one_hot(scores.argmax(-1), scores.size(-1)).to(scores.dtype)
        else:
            w = scores.softmax(-1)
        context = (w @ st.annotations).squeeze(1)
        return w.squeeze(1), context

    def decode_step(self, st, emb):
        """One word from input embeddings [N, E]: logits [N, V], weights [N, L] or None."""
        if self.top_down:
            x = torch.cat([st.h, st.mean, emb], 1)
            st.h1, st.c1 = self.attention_lstm(x, st.h1, st.c1)
            w, v = self.attend(st, st.h1)
            st.h, st.c = self.language_lstm(torch.cat([v, st.h1], 1), st.h, st.c)
            return self.out(self.dropout(st.h)), w
        if self.attend_mode == "none":
            z, w = st.mean, None
        else:
            w, context = self.attend(st, st.h)
            z = context * torch.sigmoid(self.gate(st.h))
        st.h, st.c = self.lstm(torch.cat([emb, z], 1), st.h, st.c)
        deep = emb + self.out_h(st.h) + self.out_z(z)
        return self.out(self.dropout(deep)), w

    def forward(self, src, tgt_in):
        """Teacher-forced logits [B, T, V] and the weights [B, T, L] (None for "none")."""
        st = self.start(src)
        emb = self.embed(tgt_in)
        logits, weights = [], []
        for t in range(tgt_in.size(1)):
            y, w = self.decode_step(st, emb[:, t])
            logits.append(y)
            weights.append(w)
        w = None if weights[0] is None else torch.stack(weights, 1)
        return torch.stack(logits, 1), w

    def step(self, st, tokens):
        """The last tokens i64 [N] -> log-probabilities [N, V]."""
        y, _ = self.decode_step(st, self.embed(tokens))
        return F.log_softmax(y, 1)

    def auxiliary_loss(self, tgt_out, weights):
        """The doubly stochastic penalty of soft show-attend-tell in training: the paper's
        lambda * sum_i (1 - sum_t alpha_ti)^2 per image, summed over the batch and divided by the
        target tokens (the count the cross-entropy is a mean over), the sums over each caption's
        real words (eos included, not the padding); None for the other models (and outside
        training), as attend's AuxiliaryLoss."""
        if (self.top_down or self.attend_mode != "soft" or not self.training or
                self.cfg.attention_penalty == 0.0 or weights is None):
            return None
        real = (tgt_out != PAD).to(weights.dtype)              # [B, T]
        gap = 1.0 - (weights * real.unsqueeze(2)).sum(1)         # [B, L]
        tokens = max(1.0, real.sum().item())
        return (gap * gap).sum() * (self.cfg.attention_penalty / tokens)
