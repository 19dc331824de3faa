"""PyTorch oracle for attend's image ops CropZoom and BoxcarMask (attend/ops/image.h).

Run as `/usr/bin/python3 tests/reference/image_reference.py --out FILE` (Debian's python3-torch).
The file format and the tensor names (x<i> inputs, y0 output, dy0 its cotangent, dx<i> the
gradient of sum(y0 * dy0) w.r.t. input i) are those of ops_reference.py, whose writer this
script reuses. tests/ops/test_image_ops.cc replays each case through attend and compares.

Op keys:
  crop_zoom|out=oh,ow          x0 image [B, C, H, W], x1 boxes [B, 3] = (t_x, t_y, t_l)
  boxcar_mask|h=h|w=w|k=k      x0 boxes [B, 3]

CropZoom's oracle is grid_sample over affine_grid (align_corners=False, zero padding) with
theta = [[2 t_l / W, 0, 2 t_x / W - 1], [0, 2 t_l / H, 2 t_y / H - 1]] per image. Its float32
cases are computed in float64 from the float32 inputs and rounded (Builder.add's `exact`):
attend computes the sample positions in double for every dtype, and PyTorch's float32 positions
are off by up to ~1e-5 pixel, which would show as a larger error than attend's own. The mask's
cases run torch in the case's dtype with the same operation order as attend's composition.
"""

import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

try:
    import torch
    import torch.nn.functional as F
except ImportError as e:  # the pyenv python3 on PATH has no torch; Debian's /usr/bin/python3 does
    sys.exit("image_reference.py needs PyTorch (%s): run it with /usr/bin/python3 "
             "(Debian's python3-torch)" % e)

from ops_reference import generator_main, F32, F64, Builder, op_key  # noqa: E402


def crop_zoom(x, boxes, out_h, out_w):
    b, c, h, w = x.shape
    tx, ty, tl = boxes.unbind(1)
    zero = torch.zeros_like(tx)
    theta = torch.stack([torch.stack([2 * tl / w, zero, 2 * tx / w - 1], 1),
                         torch.stack([zero, 2 * tl / h, 2 * ty / h - 1], 1)], 1)
    grid = F.affine_grid(theta, [b, c, out_h, out_w], align_corners=False)
    return F.grid_sample(x, grid, mode="bilinear", padding_mode="zeros", align_corners=False)


def boxcar_mask(boxes, h, w, k):
    tx, ty, tl = boxes[:, 0:1], boxes[:, 1:2], boxes[:, 2:3]

    def axis(centre, n):
        c = (torch.arange(n, dtype=boxes.dtype) + 0.5).view(1, n)
        lo, hi = centre - tl, centre + tl
        return torch.sigmoid((c - lo) * k) - torch.sigmoid((c - hi) * k)

    mx = axis(tx, w)
    my = axis(ty, h)
    return my.view(-1, 1, h, 1) * mx.view(-1, 1, 1, w)


def boxes_of(b, kind, n, h, w, dtype):
    """n boxes for an h x w image: centres and half sides drawn per kind (in pixels)."""
    side = min(h, w)
    if kind == "inside":  # well inside the image
        cx = b.positive(n, 1, dtype=F64, lo=0.35 * w, hi=0.65 * w)
        cy = b.positive(n, 1, dtype=F64, lo=0.35 * h, hi=0.65 * h)
        hl = b.positive(n, 1, dtype=F64, lo=0.15 * side, hi=0.3 * side)
    elif kind == "edges":  # partly or wholly outside the image
        cx = b.positive(n, 1, dtype=F64, lo=-0.3 * w, hi=1.3 * w)
        cy = b.positive(n, 1, dtype=F64, lo=-0.3 * h, hi=1.3 * h)
        hl = b.positive(n, 1, dtype=F64, lo=0.2 * side, hi=0.6 * side)
    elif kind == "tiny":  # a pixel or two across
        cx = b.positive(n, 1, dtype=F64, lo=1.0, hi=w - 1.0)
        cy = b.positive(n, 1, dtype=F64, lo=1.0, hi=h - 1.0)
        hl = b.positive(n, 1, dtype=F64, lo=0.05, hi=1.0)
    elif kind == "large":  # larger than the image
        cx = b.positive(n, 1, dtype=F64, lo=0.3 * w, hi=0.7 * w)
        cy = b.positive(n, 1, dtype=F64, lo=0.3 * h, hi=0.7 * h)
        hl = b.positive(n, 1, dtype=F64, lo=0.8 * side, hi=2.5 * side)
    else:
        raise ValueError(kind)
    return torch.cat([cx, cy, hl], 1).to(dtype)


def crop_zoom_cases(b):
    # (name, x shape, out size, box kind, dtype)
    specs = [
        ("inside_16_to_8", (2, 1, 16, 16), (8, 8), "inside", F64),
        ("edges_12x17_to_9x11", (3, 2, 12, 17), (9, 11), "edges", F64),
        ("tiny_10_to_6x5", (2, 3, 10, 10), (6, 5), "tiny", F64),
        ("large_9x13_to_7x7", (3, 2, 9, 13), (7, 7), "large", F64),
        ("upsample_8_to_20", (2, 2, 8, 8), (20, 20), "inside", F64),
        ("inside_16_to_8_f32", (2, 1, 16, 16), (8, 8), "inside", F32),
        ("edges_12x17_to_9x11_f32", (3, 2, 12, 17), (9, 11), "edges", F32),
        ("tiny_10_to_6x5_f32", (2, 3, 10, 10), (6, 5), "tiny", F32),
        ("large_9x13_to_7x7_f32", (3, 2, 9, 13), (7, 7), "large", F32),
        # The RA-CNN sizes, enough planes to run threaded.
        ("racnn_96_to_48_f32", (4, 3, 96, 96), (48, 48), "edges", F32),
        ("racnn_48_to_48_f64", (3, 2, 48, 48), (48, 48), "inside", F64),
        ("single_pixel_image", (2, 1, 1, 1), (3, 2), "large", F64),
        ("one_output_pixel", (2, 2, 7, 6), (1, 1), "edges", F64),
    ]
    for name, xs, out, kind, dt in specs:
        x = b.randn(*xs, dtype=dt)
        boxes = boxes_of(b, kind, xs[0], xs[2], xs[3], dt)
        b.add("crop_zoom_" + name, op_key("crop_zoom", out=list(out)), [x, boxes],
              lambda x, bx, out=out: crop_zoom(x, bx, out[0], out[1]), exact=(dt == F32))


def boxcar_mask_cases(b):
    # (name, batch, h, w, k, box kind, dtype)
    specs = [
        ("inside_k10", 3, 12, 12, 10.0, "inside", F64),
        ("edges_k10_13x9", 4, 13, 9, 10.0, "edges", F64),
        ("tiny_k1", 3, 10, 10, 1.0, "tiny", F64),
        ("large_k5", 2, 11, 14, 5.0, "large", F64),
        ("inside_k10_f32", 3, 12, 12, 10.0, "inside", F32),
        ("edges_k10_f32", 4, 13, 9, 10.0, "edges", F32),
        ("racnn_96_k10_f32", 3, 96, 96, 10.0, "edges", F32),
        ("large_k0.5_f32", 2, 20, 16, 0.5, "large", F32),
    ]
    for name, n, h, w, k, kind, dt in specs:
        boxes = boxes_of(b, kind, n, h, w, dt)
        b.add("boxcar_mask_" + name, op_key("boxcar_mask", h=h, w=w, k=k), [boxes],
              lambda bx, h=h, w=w, k=k: boxcar_mask(bx, h, w, k))


def build_cases(seed):
    b = Builder(seed)
    for family in (crop_zoom_cases, boxcar_mask_cases):
        family(b)
    return b.cases


def main(argv):
    return generator_main(argv, __doc__.splitlines()[0], build_cases, 20240801)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
