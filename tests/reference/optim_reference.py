# PyTorch oracle for optimizers, gradient clipping, lr schedules and safetensors interop.
"""PyTorch oracle for attend's optimizers, clip_grad_norm_, lr schedules and safetensors files.

Generate (what CTest runs, with Debian's /usr/bin/python3 and its python3-torch):
    /usr/bin/python3 tests/reference/optim_reference.py --out DIR/optim_reference.bin
writes DIR/optim_reference.bin (the format of ops_reference.py; tests/optim/test_optim.cc and
tests/io/test_checkpoint.cc replay the cases) and DIR/optim_reference_torch.safetensors (a
safetensors file written here, without the safetensors package, that the C++ test must read).

Read (no torch needed; tests/io/test_checkpoint.cc runs it on a file written by attend):
    /usr/bin/python3 tests/reference/optim_reference.py --read-safetensors FILE
prints the file as JSON: {"metadata": {...}, "checksum": "ok" | "absent",
"tensors": [{"name", "dtype", "shape", "values"}]} with floats as float.hex() strings; a
malformed file or a checksum mismatch exits with status 1 and a message.

Cases (names and op keys; tensors per case):
  optimizer cases, op "sgd|..."/"adam|..."/"adamw|...": param<i> (initial values), grad<t>.<i>
    (the gradient of parameter i at step t = 1..steps; absent = no gradient at that step),
    out<t>.<i> (torch's parameter after step t) and state.<i>.<buffer> (torch's final state).
    Ops "..._model" instead train a linear least-squares model (inputs x, y) and have no grads.
    A "sched=warmup" key means a LambdaLR inverse-sqrt schedule ran alongside.
  clip cases, op "clip|...": grad.<i> (before), clipped.<i> (after), total_norm.
  schedule cases, op "lambda_transformer|..."/"lambda_peak|..."/"steplr|..."/"constantlr|...":
    lr (f64 [steps + 1]: after construction, then after each step);
    "plateau|...": metric (fed to step), lr/best/num_bad_epochs/cooldown_counter after each step.
  "safetensors_interop": the tensors of optim_reference_torch.safetensors.
"""

import argparse
import json
import math
import os
import struct
import sys
import zlib

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

CHECKSUM_KEY = "attend.crc32"
SAFETENSORS_DTYPES = {"F32": ("<f", 4), "F64": ("<d", 8), "I64": ("<q", 8), "BOOL": ("<?", 1)}
TORCH_SAFETENSORS_FILE = "optim_reference_torch.safetensors"


# ---------------------------------------------------------------------------------------------
# Safetensors reading (plain Python: struct + json + zlib)
# ---------------------------------------------------------------------------------------------


class SafetensorsError(Exception):
    pass


def read_safetensors(path):
    """Returns (metadata, checksum status, [(name, dtype, shape, values)]) in data order."""
    with open(path, "rb") as f:
        blob = f.read()
    if len(blob) < 8:
        raise SafetensorsError("shorter than the header length field")
    (n,) = struct.unpack("<Q", blob[:8])
    if n > len(blob) - 8:
        raise SafetensorsError("header length %d exceeds the file" % n)
    header_bytes = blob[8:8 + n]
    header = json.loads(header_bytes.decode("utf-8"))
    data = blob[8 + n:]
    metadata = header.pop("__metadata__", {})
    entries = []
    for name, info in header.items():
        if set(info) != {"dtype", "shape", "data_offsets"}:
            raise SafetensorsError("tensor %r has fields %s" % (name, sorted(info)))
        fmt, size = SAFETENSORS_DTYPES[info["dtype"]]
        numel = 1
        for d in info["shape"]:
            numel *= d
        begin, end = info["data_offsets"]
        if end - begin != numel * size:
            raise SafetensorsError("tensor %r: byte count mismatch" % name)
        entries.append((begin, end, name, info["dtype"], list(info["shape"]), fmt, numel))
    entries.sort()
    expected = 0
    tensors = []
    for begin, end, name, dtype, shape, fmt, numel in entries:
        if begin != expected:
            raise SafetensorsError("tensor %r does not follow the previous one" % name)
        expected = end
        values = list(struct.unpack("<%d%s" % (numel, fmt[1]), data[begin:end]))
        tensors.append((name, dtype, shape, values))
    if expected != len(data):
        raise SafetensorsError("%d trailing bytes" % (len(data) - expected))
    status = "absent"
    if CHECKSUM_KEY in metadata:
        digits = metadata[CHECKSUM_KEY]
        field = ('"%s":"%s"' % (CHECKSUM_KEY, digits)).encode("utf-8")
        if header_bytes.count(field) != 1:
            raise SafetensorsError("checksum field not found once")
        at = header_bytes.index(field) + len(field) - 1 - 8
        zeroed = header_bytes[:at] + b"00000000" + header_bytes[at + 8:]
        crc = zlib.crc32(blob[:8] + zeroed + data) & 0xFFFFFFFF
        if "%08x" % crc != digits:
            raise SafetensorsError("checksum mismatch: %08x vs %s" % (crc, digits))
        status = "ok"
    return metadata, status, tensors


def dump_safetensors(path):
    metadata, status, tensors = read_safetensors(path)
    out = {"metadata": metadata, "checksum": status, "tensors": []}
    for name, dtype, shape, values in tensors:
        if dtype in ("F32", "F64"):
            values = [float(v).hex() for v in values]
        out["tensors"].append({"name": name, "dtype": dtype, "shape": shape, "values": values})
    json.dump(out, sys.stdout, ensure_ascii=True)
    sys.stdout.write("\n")


# ---------------------------------------------------------------------------------------------
# Everything below needs torch.
# ---------------------------------------------------------------------------------------------


def build_cases(seed):
    import torch  # noqa: F401  (imported here so --read-safetensors runs without torch)
    from ops_reference import op_key

    F32, F64, I64 = torch.float32, torch.float64, torch.int64
    gen = torch.Generator().manual_seed(seed)
    cases = []
    names = set()

    def add(name, op, tensors):
        if name in names:
            raise ValueError("duplicate case name " + name)
        names.add(name)
        cases.append((name, op, tensors))

    def randn(*shape, dtype=F32, scale=1.0):
        return (torch.randn(shape, generator=gen, dtype=F64) * scale).to(dtype)

    def f64_vector(values):
        return torch.tensor(values, dtype=F64)

    def final_state(opt, params):
        tensors = []
        for i, p in enumerate(params):
            st = opt.state.get(p, {})
            if "step" in st:
                step = st["step"]
                step = int(step.item()) if torch.is_tensor(step) else int(step)
                tensors.append(("state.%d.step" % i, torch.tensor(step, dtype=I64)))
            for key in ("momentum_buffer", "exp_avg", "exp_avg_sq", "max_exp_avg_sq"):
                if st.get(key) is not None:
                    tensors.append(("state.%d.%s" % (i, key), st[key].detach().clone()))
        return tensors

    # ---- optimizers over fixed gradient sequences ----
    shapes = [(3, 4), (5,), (37,)]  # 37: both torch's vectorised body and its scalar tail

    def optimizer_case(name, kind, make, dtype, steps=6, none=(), scales=None, warmup=None,
                       **hyper):
        params0 = [randn(*s, dtype=dtype) for s in shapes]
        params = [p.clone().requires_grad_(True) for p in params0]
        opt = make(params)
        sched = None
        if warmup is not None:
            d_model, warm, factor = warmup

            def rate(e):
                s = max(e, 1)
                return factor * (d_model ** (-0.5) * min(s ** (-0.5), s * warm ** (-1.5)))

            sched = torch.optim.lr_scheduler.LambdaLR(opt, rate)
        tensors = [("param%d" % i, p) for i, p in enumerate(params0)]
        for t in range(1, steps + 1):
            scale = scales[(t - 1) % len(scales)] if scales else 1.0
            for i, p in enumerate(params):
                if (t, i) in none:
                    p.grad = None
                    continue
                g = randn(*p.shape, dtype=dtype, scale=scale)
                p.grad = g.clone()
                tensors.append(("grad%d.%d" % (t, i), g))
            opt.step()
            if sched is not None:
                sched.step()
            for i, p in enumerate(params):
                tensors.append(("out%d.%d" % (t, i), p.detach().clone()))
        tensors += final_state(opt, params)
        key_params = dict(hyper)
        if warmup is not None:
            key_params.update(sched="warmup", d_model=warmup[0], warmup=warmup[1],
                              factor=warmup[2])
        add(name, op_key(kind, steps=steps, n=len(shapes), **key_params), tensors)

    S = torch.optim
    for dtype, suffix in ((F32, "f32"), (F64, "f64")):
        def sgd(lr, momentum=0.0, dampening=0.0, weight_decay=0.0, nesterov=False):
            hyper = dict(lr=lr, momentum=momentum, dampening=dampening,
                         weight_decay=weight_decay, nesterov=nesterov)
            return (lambda ps: S.SGD(ps, foreach=False, **hyper)), hyper

        for name, (make, hyper), extra in [
            ("sgd_plain", sgd(0.1), {}),
            ("sgd_momentum", sgd(0.05, momentum=0.9), {}),
            ("sgd_dampening_wd", sgd(0.05, momentum=0.8, dampening=0.3, weight_decay=0.01), {}),
            ("sgd_nesterov_wd", sgd(0.05, momentum=0.9, nesterov=True, weight_decay=1e-3), {}),
            ("sgd_wd_no_momentum", sgd(0.2, weight_decay=0.05), {}),
            ("sgd_momentum_missing_grads", sgd(0.05, momentum=0.9),
             {"none": {(1, 1), (3, 0), (3, 2), (4, 2)}}),
        ]:
            optimizer_case("%s_%s" % (name, suffix), "sgd", make, dtype, **extra, **hyper)

        def adam(cls, lr, beta1=0.9, beta2=0.999, eps=1e-8, weight_decay=0.0, amsgrad=False):
            hyper = dict(lr=lr, beta1=beta1, beta2=beta2, eps=eps, weight_decay=weight_decay,
                         amsgrad=amsgrad)
            return (lambda ps: cls(ps, lr=lr, betas=(beta1, beta2), eps=eps,
                                   weight_decay=weight_decay, amsgrad=amsgrad, foreach=False)), hyper

        for kind, name, (make, hyper), extra in [
            ("adam", "adam_plain", adam(S.Adam, 0.05), {}),
            ("adam", "adam_wd", adam(S.Adam, 0.05, weight_decay=0.1), {}),
            ("adam", "adam_betas_eps", adam(S.Adam, 0.02, beta1=0.5, beta2=0.9, eps=1e-3), {}),
            # Shrinking gradients make the running maximum differ from the second moment.
            ("adam", "adam_amsgrad", adam(S.Adam, 0.05, beta1=0.8, beta2=0.99, amsgrad=True),
             {"scales": [3.0, 0.3, 1.0, 0.1, 2.0, 0.05]}),
            ("adam", "adam_amsgrad_wd_missing_grads",
             adam(S.Adam, 0.05, weight_decay=0.02, amsgrad=True),
             {"none": {(1, 0), (2, 1), (5, 1)}, "scales": [2.0, 0.5, 1.0]}),
            ("adamw", "adamw_plain", adam(S.AdamW, 0.05, weight_decay=0.1), {}),
            ("adamw", "adamw_no_decay", adam(S.AdamW, 0.05, weight_decay=0.0), {}),
            ("adamw", "adamw_amsgrad", adam(S.AdamW, 0.05, weight_decay=0.01, amsgrad=True),
             {"scales": [3.0, 0.3, 1.0, 0.1, 2.0, 0.05], "none": {(2, 2)}}),
            ("adamw", "adamw_warmup", adam(S.AdamW, 1.0, weight_decay=0.05),
             {"warmup": (16, 3, 0.5), "steps": 8}),
        ]:
            optimizer_case("%s_%s" % (name, suffix), kind, make, dtype, **extra, **hyper)

    # ---- optimizers training a tiny linear least-squares model (f64, gradients by autograd) ----
    def model_case(name, kind, make, steps=5, **hyper):
        x = randn(8, 4, dtype=F64)
        y = randn(8, 3, dtype=F64)
        w0 = randn(3, 4, dtype=F64, scale=0.5)
        b0 = randn(3, dtype=F64, scale=0.5)
        w = w0.clone().requires_grad_(True)
        b = b0.clone().requires_grad_(True)
        opt = make([w, b])
        tensors = [("x", x), ("y", y), ("param0", w0), ("param1", b0)]
        for t in range(1, steps + 1):
            opt.zero_grad(set_to_none=True)
            loss = ((x @ w.T + b - y) ** 2).mean()
            loss.backward()
            opt.step()
            tensors.append(("out%d.0" % t, w.detach().clone()))
            tensors.append(("out%d.1" % t, b.detach().clone()))
        add(name, op_key(kind + "_model", steps=steps, n=2, **hyper), tensors)

    model_case("sgd_nesterov_model_f64", "sgd",
               lambda ps: S.SGD(ps, lr=0.1, momentum=0.9, nesterov=True, foreach=False),
               lr=0.1, momentum=0.9, dampening=0.0, weight_decay=0.0, nesterov=True)
    model_case("adam_model_f64", "adam",
               lambda ps: S.Adam(ps, lr=0.05, weight_decay=0.01, foreach=False),
               lr=0.05, beta1=0.9, beta2=0.999, eps=1e-8, weight_decay=0.01, amsgrad=False)
    model_case("adamw_amsgrad_model_f64", "adamw",
               lambda ps: S.AdamW(ps, lr=0.05, amsgrad=True, foreach=False),
               lr=0.05, beta1=0.9, beta2=0.999, eps=1e-8, weight_decay=0.01, amsgrad=True)

    # ---- clip_grad_norm_ ----
    clip_shapes = [(4, 5), (7,), (2, 3, 2)]

    def clip_case(name, max_norm, norm_type, dtype, scale=1.0, missing=()):
        grads = {}
        params = []
        for i, s in enumerate(clip_shapes):
            p = torch.zeros(s, dtype=dtype, requires_grad=True)
            if i not in missing:
                g = randn(*s, dtype=dtype, scale=scale)
                grads[i] = g
                p.grad = g.clone()
            params.append(p)
        total = torch.nn.utils.clip_grad_norm_(params, max_norm, norm_type)
        tensors = [("grad.%d" % i, g) for i, g in grads.items()]
        tensors += [("clipped.%d" % i, params[i].grad.detach().clone()) for i in grads]
        tensors.append(("total_norm", total.detach().clone()))
        add(name, op_key("clip", max_norm=max_norm, norm_type=norm_type, n=len(clip_shapes)),
            tensors)

    inf = float("inf")
    for dtype, suffix in ((F32, "f32"), (F64, "f64")):
        clip_case("clip_l2_" + suffix, 1.0, 2.0, dtype)
        clip_case("clip_l2_not_needed_" + suffix, 100.0, 2.0, dtype)
        clip_case("clip_l1_" + suffix, 2.5, 1.0, dtype)
        clip_case("clip_inf_" + suffix, 0.5, inf, dtype)
        clip_case("clip_p3_5_" + suffix, 0.75, 3.5, dtype, scale=2.0)
        clip_case("clip_l2_missing_grad_" + suffix, 0.3, 2.0, dtype, missing=(1,))

    # ---- schedules ----
    def lr_case(name, op, make_sched, lr, steps):
        p = torch.zeros(1, requires_grad=True)
        opt = S.SGD([p], lr=lr)
        sched = make_sched(opt)
        lrs = [opt.param_groups[0]["lr"]]
        for _ in range(steps):
            opt.step()  # no gradient: nothing moves, but torch expects step before sched.step
            sched.step()
            lrs.append(opt.param_groups[0]["lr"])
        add(name, op, [("lr", f64_vector(lrs))])

    LR = S.lr_scheduler

    def transformer_rate(d_model, warmup, factor):
        def rate(e):
            s = max(e, 1)
            return factor * (d_model ** (-0.5) * min(s ** (-0.5), s * warmup ** (-1.5)))
        return rate

    def peak_rate(lr_peak, warmup):
        def rate(e):
            s = max(e, 1)
            return lr_peak * min(s / warmup, math.sqrt(warmup / s))
        return rate

    for d_model, warmup, factor, steps in ((512, 10, 1.0, 40), (64, 4, 2.0, 20),
                                           (512, 4000, 1.0, 30)):
        lr_case("lambda_transformer_%d_%d" % (d_model, warmup),
                op_key("lambda_transformer", d_model=d_model, warmup=warmup, factor=factor,
                       steps=steps),
                lambda o: LR.LambdaLR(o, transformer_rate(d_model, warmup, factor)), 1.0, steps)
    for lr_peak, warmup, steps in ((1e-3, 8, 30), (0.5, 1, 10), (3e-4, 25, 60)):
        lr_case("lambda_peak_%g_%d" % (lr_peak, warmup),
                op_key("lambda_peak", lr_peak=lr_peak, warmup=warmup, steps=steps),
                lambda o: LR.LambdaLR(o, peak_rate(lr_peak, warmup)), 1.0, steps)
    for lr, step_size, gamma, steps in ((0.1, 3, 0.5, 20), (1.0, 1, 0.9, 15), (0.3, 7, 0.1, 30)):
        lr_case("steplr_%d_%g" % (step_size, gamma),
                op_key("steplr", lr=lr, step_size=step_size, gamma=gamma, steps=steps),
                lambda o: LR.StepLR(o, step_size, gamma), lr, steps)
    for lr, factor, total_iters, steps in ((0.1, 0.5, 4, 10), (0.05, 1.0 / 3, 5, 10),
                                           (0.1, 0.25, 0, 5), (0.2, 1.0, 3, 6)):
        lr_case("constantlr_%g_%d" % (factor, total_iters),
                op_key("constantlr", lr=lr, factor=factor, total_iters=total_iters, steps=steps),
                lambda o: LR.ConstantLR(o, factor=factor, total_iters=total_iters), lr, steps)

    def plateau_case(name, lr, metrics, **kw):
        p = torch.zeros(1, requires_grad=True)
        opt = S.SGD([p], lr=lr)
        sched = LR.ReduceLROnPlateau(opt, **kw)
        lrs, best, bad, cool = [], [], [], []
        for m in metrics:
            sched.step(m)
            lrs.append(opt.param_groups[0]["lr"])
            best.append(sched.best)
            bad.append(sched.num_bad_epochs)
            cool.append(sched.cooldown_counter)
        add(name, op_key("plateau", lr=lr, **kw),
            [("metric", f64_vector(metrics)), ("lr", f64_vector(lrs)), ("best", f64_vector(best)),
             ("num_bad_epochs", f64_vector(bad)), ("cooldown_counter", f64_vector(cool))])

    loss_curve = [1.0, 0.9, 0.85, 0.85, 0.86, 0.85, 0.84999, 0.7, 0.7, 0.7, 0.7, 0.71, 0.7, 0.69,
                  0.69, 0.69, 0.69, 0.69, 0.5, 0.5, 0.5, 0.5, 0.5, 0.5]
    accuracy = [0.1, 0.2, 0.25, 0.255, 0.26, 0.3, 0.3, 0.31, 0.305, 0.3, 0.3, 0.3, 0.5, 0.5, 0.5,
                0.5, 0.5, 0.5, 0.5, 0.5]
    plateau_case("plateau_min_rel", 0.1, loss_curve, mode="min", factor=0.5, patience=2,
                 threshold=1e-4, threshold_mode="rel", cooldown=0, min_lr=0.0, eps=1e-8)
    plateau_case("plateau_min_abs_cooldown", 0.1, loss_curve, mode="min", factor=0.3,
                 patience=1, threshold=0.01, threshold_mode="abs", cooldown=2, min_lr=0.005,
                 eps=1e-8)
    plateau_case("plateau_max_rel", 0.2, accuracy, mode="max", factor=0.1, patience=1,
                 threshold=0.05, threshold_mode="rel", cooldown=1, min_lr=0.0, eps=1e-8)
    plateau_case("plateau_max_abs_eps", 1e-3, accuracy, mode="max", factor=0.1, patience=0,
                 threshold=0.0, threshold_mode="abs", cooldown=0, min_lr=0.0, eps=1e-5)

    return cases


def write_torch_safetensors(path, seed):
    """A safetensors file written as the reference layout says, with data in an order unlike
    its keys', for the C++ reader. Returns the tensors it holds, for the .bin."""
    import torch

    gen = torch.Generator().manual_seed(seed)
    special = torch.tensor([0.0, -0.0, float("inf"), float("-inf"), float("nan"), 1e-45,
                            3.4028234663852886e38, -1.5], dtype=torch.float32)
    tensors = [  # in data order; the JSON header lists them sorted by name
        ("zeta.weight", torch.randn(2, 3, generator=gen)),
        ("alpha.f64", torch.randn(4, generator=gen, dtype=torch.float64)),
        ("mid.index", torch.tensor([[3, -1], [2**40, 0], [-2**62, 7]], dtype=torch.int64)),
        ("mid.mask", torch.tensor([True, False, False, True, True])),
        ("scalar", torch.tensor(2.5, dtype=torch.float32)),
        ("empty", torch.zeros(0, 3)),
        ("special", special),
    ]
    dtypes = {torch.float32: "F32", torch.float64: "F64", torch.int64: "I64", torch.bool: "BOOL"}
    header = {"__metadata__": {"writer": "optim_reference.py", "unicode": "\u00fcn\u00efc\u00f8de \u2713"}}
    blobs = []
    offset = 0
    for name, t in tensors:
        raw = t.contiguous().numpy().tobytes()
        header[name] = {"dtype": dtypes[t.dtype], "shape": list(t.shape),
                        "data_offsets": [offset, offset + len(raw)]}
        offset += len(raw)
        blobs.append(raw)
    text = json.dumps(header, sort_keys=True, ensure_ascii=False).encode("utf-8")
    text += b" " * ((8 - len(text) % 8) % 8)
    tmp = path + ".tmp"
    with open(tmp, "wb") as f:
        f.write(struct.pack("<Q", len(text)))
        f.write(text)
        for raw in blobs:
            f.write(raw)
    os.replace(tmp, path)
    return tensors


def main(argv):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", help="oracle file to write (parent dirs are created)")
    parser.add_argument("--read-safetensors", metavar="FILE",
                        help="print a safetensors file as JSON (no torch needed)")
    parser.add_argument("--seed", type=int, default=20240617)
    args = parser.parse_args(argv)
    if args.read_safetensors:
        try:
            dump_safetensors(args.read_safetensors)
        except (SafetensorsError, ValueError, KeyError, struct.error) as e:
            sys.stderr.write("optim_reference.py: %s: %s\n" % (args.read_safetensors, e))
            return 1
        return 0
    if not args.out:
        parser.error("--out or --read-safetensors is required")
    try:
        import torch
    except ImportError as e:
        sys.exit("optim_reference.py needs PyTorch (%s): run it with /usr/bin/python3 "
                 "(Debian's python3-torch)" % e)
    from ops_reference import write_file

    torch.set_num_threads(1)
    cases = build_cases(args.seed)
    directory = os.path.dirname(os.path.abspath(args.out))
    os.makedirs(directory, exist_ok=True)
    interop = write_torch_safetensors(os.path.join(directory, TORCH_SAFETENSORS_FILE),
                                      args.seed + 1)
    cases.append(("safetensors_interop", "safetensors|file=" + TORCH_SAFETENSORS_FILE, interop))
    write_file(args.out, cases)
    print("wrote %d cases to %s" % (len(cases), args.out))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
