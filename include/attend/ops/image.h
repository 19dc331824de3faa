// Differentiable image ops for attention over regions (src/ops/image.cc): zooming into a square
// box by bilinear sampling, and RA-CNN's smooth boxcar mask. Both are differentiable w.r.t. the
// box, which is how an attention proposal network learns where to look.
//
// Coordinates. A box is (t_x, t_y, t_l) in input pixel units: the centre (t_x, t_y) and the half
// side t_l of the square [t_x - t_l, t_x + t_l] x [t_y - t_l, t_y + t_l]. Pixel (row i, column j)
// covers [j, j + 1) x [i, i + 1), so its centre is (j + 0.5, i + 0.5) and the whole W x H image
// is [0, W] x [0, H]: the box (W/2, H/2, W/2) is the whole of a square image. This is PyTorch's
// align_corners=False convention.
#pragma once

#include <cstdint>

#include "attend/tensor.h"

namespace attend {

// Bilinear zoom into one square box per image.
//
// x [B, C, H, W] (f32 or f64), boxes [B, 3] of the same dtype -> [B, C, out_h, out_w].
//
// Output pixel (i, j) samples the input at the centre of cell (i, j) of a regular out_h x out_w
// grid laid over the box:
//   u_j = t_x + t_l * ((2j + 1) / out_w - 1),   v_i = t_y + t_l * ((2i + 1) / out_h - 1),
// the value being the bilinear interpolation of the pixel centres around (u_j, v_i), with zero
// for pixels outside the image. It equals PyTorch's
//   F.grid_sample(x, F.affine_grid(theta, [B, C, out_h, out_w], align_corners=False),
//                 mode="bilinear", padding_mode="zeros", align_corners=False)
// with theta[b] = [[2 t_l / W, 0, 2 t_x / W - 1], [0, 2 t_l / H, 2 t_y / H - 1]].
//
// Differentiable w.r.t. x and boxes. As PyTorch, the gradient w.r.t. a sample position is the
// slope of the interpolation's cell, the right-hand one where a position falls exactly on a pixel
// centre. A negative t_l flips the crop; t_l = 0 repeats one sample.
Tensor CropZoom(const Tensor& x, const Tensor& boxes, int64_t out_h, int64_t out_w);

// RA-CNN's attention mask (Fu et al. 2017, eq. 5-6), a smooth boxcar over each box.
//
// boxes [B, 3] (f32 or f64) -> [B, 1, h, w]:
//   M[b, 0, i, j] = [s(k (x - x_tl)) - s(k (x - x_br))] * [s(k (y - y_tl)) - s(k (y - y_br))]
// with s the logistic sigmoid, x = j + 0.5 and y = i + 0.5 the pixel centres (the coordinates
// above), x_tl = t_x - t_l, x_br = t_x + t_l, y_tl = t_y - t_l, y_br = t_y + t_l. k > 0 sets how
// sharp the edges are (RA-CNN uses 10). Differentiable w.r.t. boxes.
Tensor BoxcarMask(const Tensor& boxes, int64_t h, int64_t w, double k);

}  // namespace attend
