#!/usr/bin/env python3
"""The weight gradient of a channels_last 1x1 convolution: oneDNN's backward-weights kernel against one
matrix product (dW = dY^T X over the pixels, both read in place), over channel widths and pixel counts
(batch x height x width). This is the measurement behind nas::Conv2d's bound (kFewPixels in
core/engine/src/layers.cpp): below it the engine takes the product.

Prints oneDNN's time over the product's (above 1: the product is faster), each the median of 5
repeats.

usage: bench/pointwise_weight_gradient.py [--threads 2]
"""
import argparse
import time

import torch

PIXELS = [(2, 11), (2, 21), (8, 14), (16, 14), (2, 42), (16, 28), (2, 83), (16, 56)]  # (batch, side)
CHANNELS = [(44, 44), (88, 88), (176, 176), (352, 352), (1056, 176), (672, 672), (4032, 672)]  # (in, out)


def milliseconds(f, reps):
    f()  # oneDNN builds its kernel once
    times = []
    for _ in range(5):
        start = time.perf_counter()
        for _ in range(reps):
            f()
        times.append((time.perf_counter() - start) / reps * 1e3)
    return sorted(times)[2]


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    cl = torch.channels_last
    print(f"oneDNN's time / the matrix product's, {args.threads} threads; columns: output pixels (batch x side x side)")
    print(f"{'in -> out':>12}" + "".join(f"{n * s * s:>8}" for n, s in PIXELS))
    for cin, cout in CHANNELS:
        row = []
        for n, side in PIXELS:
            x = torch.randn(n, cin, side, side).to(memory_format=cl)
            dy = torch.randn(n, cout, side, side).to(memory_format=cl)
            w = torch.randn(cout, cin, 1, 1).to(memory_format=cl)
            x2, dy2 = x.permute(0, 2, 3, 1).reshape(-1, cin), dy.permute(0, 2, 3, 1).reshape(-1, cout)  # views
            onednn = lambda: torch.ops.aten.convolution_backward(dy, x, w, None, [1, 1], [0, 0], [1, 1], False,
                                                                 [0, 0], 1, [False, True, False])[1]
            product = lambda: torch.mm(dy2.t(), x2)
            assert torch.allclose(onednn().view(cout, cin), product(), rtol=1e-3, atol=1e-2)
            reps = max(3, int(1e8 / (n * side * side * cin * cout)))
            row.append(milliseconds(onednn, reps) / milliseconds(product, reps))
        print(f"{f'{cin} -> {cout}':>12}" + "".join(f"{r:8.2f}" for r in row), flush=True)


if __name__ == "__main__":
    main()
