# PyTorch oracle cases for the sentence-pair models: ABCNN-1/2/3, MwAN and the siamese encoders.
"""PyTorch oracle for attend's sentence-pair models (src/tasks/pairs.cc, attend/tasks/pairs.h),
written here from the papers' formulas (Yin et al. 2016, ABCNN; Tan et al. 2018, MwAN) as the C++
header states them, in f64.

Run as `/usr/bin/python3 tests/reference/pairs_reference.py --out FILE` (Debian's python3-torch);
tests/tasks/test_pairs.cc loads every weight by name into the C++ model and compares. The file
format is the one of ops_reference.py. Per case the op key gives the configuration, e.g.
"pairs|model=abcnn3|vocab=11|max_len=5|embed_dim=4|hidden=3|width=3|attn_dim=4|classifier=5|
ways=concat+bilinear+dot+minus", and the tensors are:
  a, b, a_len, b_len, label   the batch (i64; 0 = padding)
  p:<name>        every parameter under the C++ model's name
  logits          [B, 2]
  attention       the attention the model returns (absent for the siamese models)
  loss            mean cross-entropy
  grad:<name>     d loss / d parameter
"""
import math
import os
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
try:
    import torch  # noqa: E402
    import torch.nn as nn  # noqa: E402
    import torch.nn.functional as F  # noqa: E402
except ImportError as e:
    sys.exit("pairs_reference.py needs PyTorch (%s): run it with /usr/bin/python3 "
             "(Debian's python3-torch)" % e)
from ops_reference import generator_main, Builder, op_key  # noqa: E402

F64 = torch.float64


def match_score(x, y):
    """1 / (1 + |x_i - y_j|), with the zero subgradient where x_i == y_j (padding)."""
    d = x.unsqueeze(2) - y.unsqueeze(1)
    ss = (d * d).sum(-1)
    nz = ss.detach() > 0
    dist = torch.where(nz, torch.where(nz, ss, torch.ones_like(ss)).sqrt(), torch.zeros_like(ss))
    return 1.0 / (dist + 1.0)


def length_mask(lengths, n, extra=0):
    return (torch.arange(n)[None, :] < (lengths[:, None] + extra)).to(F64)


def classify(fc1, fc2, u, v):
    return fc2(torch.tanh(fc1(torch.cat([u, v, (u - v).abs(), u * v], -1))))


def masked_mean(h, m):
    return (h * m.unsqueeze(2)).sum(1) / m.sum(1, keepdim=True)


class Abcnn(nn.Module):
    def __init__(self, model, vocab, L, E, H, w, C):
        super().__init__()
        self.attn1 = model in ("abcnn1", "abcnn3")
        self.attn2 = model in ("abcnn2", "abcnn3")
        self.L, self.w = L, w
        self.embed = nn.Embedding(vocab, E, padding_idx=0)
        if self.attn1:
            self.w_a = nn.Parameter(torch.empty(L, E, dtype=F64))
            self.w_b = nn.Parameter(torch.empty(L, E, dtype=F64))
        self.conv = nn.Conv1d(2 * E if self.attn1 else E, H, w, padding=w - 1)
        self.fc1 = nn.Linear(4 * H, C)
        self.fc2 = nn.Linear(C, 2)

    def forward(self, a, b, la, lb):
        L, w = self.L, self.w
        ma, mb = length_mask(la, L), length_mask(lb, L)
        x, y = self.embed(a), self.embed(b)
        att = None
        if self.attn1:
            A = match_score(x, y) * ma[:, :, None] * mb[:, None, :]
            att = A
            x = torch.cat([x, (A @ self.w_a) * ma[..., None]], -1)
            y = torch.cat([y, (A.transpose(1, 2) @ self.w_b) * mb[..., None]], -1)
        hx = torch.tanh(self.conv(x.transpose(1, 2))).transpose(1, 2)
        hy = torch.tanh(self.conv(y.transpose(1, 2))).transpose(1, 2)
        C = L + w - 1
        ca, cb = length_mask(la, C, w - 1), length_mask(lb, C, w - 1)
        if self.attn2:
            A2 = match_score(hx, hy) * ca[:, :, None] * cb[:, None, :]
            if att is None:
                att = A2
            pa, pb = A2.sum(2), A2.sum(1)
        else:
            pa, pb = ca / w, cb / w

        def wap(h, p):
            hw = h * p.unsqueeze(2)
            return sum(hw[:, k:k + L] for k in range(w))

        u = masked_mean(wap(hx, pa), ma)
        v = masked_mean(wap(hy, pb), mb)
        return classify(self.fc1, self.fc2, u, v), att


class Additive(nn.Module):
    def __init__(self, dq, dk, A):
        super().__init__()
        self.query_proj = nn.Linear(dq, A, bias=False)
        self.key_proj = nn.Linear(dk, A)
        self.v = nn.Parameter(torch.empty(A, dtype=F64))

    def forward(self, q, k):
        return torch.tanh(self.query_proj(q).unsqueeze(2) + self.key_proj(k).unsqueeze(1)) @ self.v


class Way(nn.Module):
    """MwAN's four attention functions (concat, bilinear, dot, minus) as the library names them."""

    def __init__(self, kind, D, A):
        super().__init__()
        self.kind, self.D = kind, D
        if kind == "concat":
            self.weight = nn.Parameter(torch.empty(A, 2 * D, dtype=F64))
        elif kind == "bilinear":
            self.weight = nn.Parameter(torch.empty(D, D, dtype=F64))
        else:
            self.weight = nn.Parameter(torch.empty(A, D, dtype=F64))
        if kind != "bilinear":
            self.v = nn.Parameter(torch.empty(A, dtype=F64))

    def forward(self, q, k):  # q [B, Tq, D], k [B, Tk, D] -> [B, Tq, Tk]
        D = self.D
        if self.kind == "concat":
            wq = q @ self.weight[:, :D].T
            wk = k @ self.weight[:, D:].T
            return torch.tanh(wq.unsqueeze(2) + wk.unsqueeze(1)) @ self.v
        if self.kind == "bilinear":
            return q @ (k @ self.weight.T).transpose(1, 2)
        pair = q.unsqueeze(2) * k.unsqueeze(1) if self.kind == "dot" else q.unsqueeze(2) - k.unsqueeze(1)
        return torch.tanh(pair @ self.weight.T) @ self.v


def run_gru(gru, x, lengths):
    packed = nn.utils.rnn.pack_padded_sequence(x, lengths, batch_first=True, enforce_sorted=False)
    out, _ = gru(packed)
    out, _ = nn.utils.rnn.pad_packed_sequence(out, batch_first=True, total_length=x.shape[1])
    return out


class Mwan(nn.Module):
    def __init__(self, model, vocab, L, E, H, A, C, ways):
        super().__init__()
        D = 2 * H
        self.L, self.D = L, D
        self.siamese = model == "siamese-gru"
        self.ways = ways
        self.embed = nn.Embedding(vocab, E, padding_idx=0)
        self.encoder = nn.GRU(E, H, batch_first=True, bidirectional=True)
        if not self.siamese:
            for way in ways:
                setattr(self, "score_" + way, Way(way, D, A))
                setattr(self, "gate_" + way, nn.Linear(2 * D, 2 * D, bias=False))
            self.mix_proj = nn.Linear(2 * D, A, bias=False)
            self.mix_v = nn.Parameter(torch.empty(A, dtype=F64))
            self.aggregator = nn.GRU(2 * D, H, batch_first=True, bidirectional=True)
            self.self_query = nn.Parameter(torch.empty(D, dtype=F64))
            self.self_pool = Additive(D, D, A)
            self.out_pool = Additive(D, D, A)
        self.fc1 = nn.Linear(4 * D, C)
        self.fc2 = nn.Linear(C, 2)

    def forward(self, a, b, la, lb):
        L, D = self.L, self.D
        ma, mb = length_mask(la, L), length_mask(lb, L)
        ha = run_gru(self.encoder, self.embed(a), la)
        hb = run_gru(self.encoder, self.embed(b), lb)
        if self.siamese:
            return classify(self.fc1, self.fc2, masked_mean(ha, ma), masked_mean(hb, mb)), None
        excluded = (ma < 0.5).unsqueeze(1)
        ways, mix, mean_w = [], [], 0
        for way in self.ways:
            s = getattr(self, "score_" + way)(hb, ha).masked_fill(excluded, -math.inf)
            alpha = torch.softmax(s, -1)
            mean_w = mean_w + alpha
            x = torch.cat([alpha @ ha, hb], -1)
            x = torch.sigmoid(getattr(self, "gate_" + way)(x)) * x
            ways.append(x)
            mix.append(torch.tanh(self.mix_proj(x)) @ self.mix_v.unsqueeze(1))
        att = mean_w / len(self.ways) * mb.unsqueeze(2)
        beta = torch.softmax(torch.cat(mix, -1), -1)
        mixed = (torch.stack(ways, 2) * beta.unsqueeze(3)).sum(2)
        ho = run_gru(self.aggregator, mixed, lb)
        B = a.shape[0]

        def pool(score, q, keys, m):
            s = score(q, keys).masked_fill((m < 0.5).unsqueeze(1), -math.inf)
            return (torch.softmax(s, -1) @ keys).reshape(B, D)

        ra = pool(self.self_pool, self.self_query.reshape(1, 1, D).expand(B, 1, D), ha, ma)
        ro = pool(self.out_pool, ra.unsqueeze(1), ho, mb)
        return classify(self.fc1, self.fc2, ro, ra), att


def set_parameters(b, model):
    """Matrices and filters U(-a, a) with a = 1/sqrt(fan in), embeddings N(0, 0.5^2) (padding row
    zero), vectors and biases N(0, 0.3^2)."""
    with torch.no_grad():
        for name, p in model.named_parameters():
            if name.startswith("embed"):
                v = 0.5 * b.randn(*p.shape, dtype=F64)
                v[0] = 0.0
            elif p.dim() >= 2:
                a = 1.0 / math.sqrt(p[0].numel())
                v = (torch.rand(p.shape, generator=b.gen, dtype=F64) * 2 - 1) * a
            else:
                v = 0.3 * b.randn(*p.shape, dtype=F64)
            p.copy_(v)


def pairs_case(b, name, model, lengths_a, lengths_b, vocab=11, L=5, E=4, H=3, w=3, A=4, C=5,
               ways=("concat", "bilinear", "dot", "minus")):
    if name in b.names:
        raise ValueError("duplicate case name " + name)
    b.names.add(name)
    torch.set_default_dtype(F64)
    if model in ("siamese", "abcnn1", "abcnn2", "abcnn3"):
        m = Abcnn(model, vocab, L, E, H, w, C)
    else:
        m = Mwan(model, vocab, L, E, H, A, C, list(ways))
    set_parameters(b, m)
    bsz = len(lengths_a)
    a = torch.zeros(bsz, L, dtype=torch.int64)
    bb = torch.zeros(bsz, L, dtype=torch.int64)
    for i in range(bsz):
        a[i, :lengths_a[i]] = b.randint(1, vocab, lengths_a[i])
        bb[i, :lengths_b[i]] = b.randint(1, vocab, lengths_b[i])
    la = torch.tensor(lengths_a, dtype=torch.int64)
    lb = torch.tensor(lengths_b, dtype=torch.int64)
    label = b.randint(0, 2, bsz)
    logits, att = m(a, bb, la, lb)
    loss = F.cross_entropy(logits, label)
    loss.backward()
    tensors = [("a", a), ("b", bb), ("a_len", la), ("b_len", lb), ("label", label)]
    params = list(m.named_parameters())
    tensors += [("p:" + n, p.detach()) for n, p in params]
    tensors += [("logits", logits.detach()), ("loss", loss.detach())]
    if att is not None:
        tensors.append(("attention", att.detach()))
    for n, p in params:
        g = p.grad if p.grad is not None else torch.zeros_like(p)
        tensors.append(("grad:" + n, g.detach()))
    key = op_key("pairs", model=model, vocab=vocab, max_len=L, embed_dim=E, hidden=H, width=w,
                 attn_dim=A, classifier=C, ways="+".join(ways))
    b.cases.append((name, key, tensors))


def build_cases(seed):
    b = Builder(seed)
    for model in ("siamese", "abcnn1", "abcnn2", "abcnn3"):
        pairs_case(b, model, model, (3, 5, 1), (4, 2, 5))
    # A width-2 filter (an even window) with ABCNN-3.
    pairs_case(b, "abcnn3_width2", "abcnn3", (2, 4), (4, 4), w=2)
    pairs_case(b, "siamese_gru", "siamese-gru", (3, 5, 1), (4, 2, 5))
    pairs_case(b, "mwan", "mwan", (3, 5, 1), (4, 2, 5))
    pairs_case(b, "mwan_two_ways", "mwan", (4, 2), (1, 5), ways=("minus", "bilinear"))
    return b.cases


def main(argv):
    return generator_main(argv, __doc__.splitlines()[0], build_cases, 20261204)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
