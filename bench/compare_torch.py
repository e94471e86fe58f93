#!/usr/bin/env python3
"""PyTorch peer figures for minivl's CUDA benchmarks: the same shapes on the same GPU.

  GemmCuda/M/N/K      torch.matmul, bf16 (f32 accumulation, cuBLAS)      -> TFLOP/s
  GemmCudaF32/M/N/K   torch.matmul, f32 with TF32 off                     -> TFLOP/s
  CopyCuda/bytes      dst.copy_(src), device to device                    -> GB/s (read + write)
      (bench_cuda's peers: CUDA events around a batch of launches after warm-up, median of batches)
  AttentionSdpa{Flash,Cudnn}/B/H/Tq/Tk/D/causal/pass   F.scaled_dot_product_attention, bf16,
      the flash and cuDNN back-ends forced in turn (bench_attention's peer)  -> TFLOP/s
  LayerNormTorch/dtype/R/C/plain|residual/pass         F.layer_norm (residual: s = x + r, then
      F.layer_norm(s); the backward also carries ds), bf16 or f32 (bench_layernorm's peer) -> GB/s
      The attention and layernorm rows are timed as bench_attention and bench_layernorm time
      theirs: CUDA events around one call, the L2 flushed first (a zero fill of max(4 x L2, 256 MiB)),
      the median of 5 to 101 calls (about 30 ms of them); FLOPs and bytes counted as they count them.

Writes {"device", "torch", "cudnn", "l2_bytes", "results": [{"name", "us", "rate", "unit"}]} to --out
(rewritten after each group, so a time-out keeps what was measured). Names match the C++ rows without
the BM_ prefix; bench/peer_tables.py joins them.
"""
import argparse
import json
import statistics
import sys

GEMM_SHAPES = [(1024, 1024, 1024), (4096, 4096, 4096), (8192, 8192, 8192), (8320, 3072, 768), (8320, 768, 3072)]
GEMM_F32_SHAPES = [(4096, 4096, 4096), (8320, 3072, 768)]
COPY_BYTES = [1 << 20, 1 << 24, 1 << 28, 1 << 30]

# (B, H, Tq, Tk, D, causal): bench_attention's rows (vision-language shapes, then the long sweep).
ATTENTION_SHAPES = [(256, 12, 50, 50, 64, 0), (64, 12, 197, 197, 64, 0), (32, 16, 257, 257, 64, 0),
                    (16, 16, 577, 577, 64, 0), (256, 8, 77, 77, 64, 1), (128, 8, 20, 197, 64, 0)] + [
    (16384 // t, 2048 // d, t, t, d, c) for t in (512, 1024, 2048, 4096) for d in (64, 128) for c in (0, 1)]

# (rows, cols): bench_layernorm's GPU shapes.
LAYERNORM_SHAPES = [(12800, 768), (50432, 768), (65536, 768), (16448, 1024), (36928, 1024), (65536, 1024),
                    (8192, 8192)]


def time_us(torch, fn, reps, batches=7):
    for _ in range(3):
        fn()
    torch.cuda.synchronize()
    times = []
    for _ in range(batches):
        start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
        start.record()
        for _ in range(reps):
            fn()
        end.record()
        end.synchronize()
        times.append(start.elapsed_time(end) * 1e3 / reps)
    return statistics.median(times)


class FlushedTimer:
    """One call between CUDA events, the L2 flushed before each; the median of 5 to 101 calls."""

    def __init__(self, torch):
        self.torch = torch
        props = torch.cuda.get_device_properties(0)
        self.l2_bytes = int(getattr(props, "L2_cache_size", 0) or (50 << 20))
        self.flush = torch.empty(max(4 * self.l2_bytes, 256 << 20), dtype=torch.uint8, device="cuda")

    def once_ms(self, fn):
        torch = self.torch
        start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
        self.flush.zero_()
        start.record()
        fn()
        end.record()
        end.synchronize()
        return start.elapsed_time(end)

    def median_us(self, fn):
        first = self.once_ms(fn)  # also the warm-up
        calls = int(min(101, max(5, 30.0 / max(first, 1e-3)))) | 1
        return statistics.median(self.once_ms(fn) for _ in range(calls)) * 1e3


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default="torch.json")
    args = parser.parse_args()
    try:
        import torch
    except ImportError as e:
        json.dump({"error": f"no torch: {e}", "results": []}, open(args.out, "w"))
        print(f"compare_torch: skipped: no torch ({e})")
        return 0
    if not torch.cuda.is_available():
        json.dump({"error": "no CUDA device", "results": []}, open(args.out, "w"))
        print("compare_torch: skipped: no CUDA device")
        return 0
    torch.backends.cuda.matmul.allow_tf32 = False
    results = []
    timer = FlushedTimer(torch)
    report = {"device": torch.cuda.get_device_name(0), "torch": torch.__version__,
              "cudnn": torch.backends.cudnn.version(), "l2_bytes": timer.l2_bytes, "results": results}

    def save():
        with open(args.out, "w") as f:
            json.dump(report, f, indent=1)

    def gemm(name, dtype, shapes):
        for m, n, k in shapes:
            a = torch.rand(m, k, device="cuda", dtype=dtype)
            b = torch.rand(k, n, device="cuda", dtype=dtype)
            flops = 2.0 * m * n * k
            reps = int(max(1, min(50, 2e12 / flops)))
            us = time_us(torch, lambda: torch.matmul(a, b), reps)
            results.append({"name": f"{name}/{m}/{n}/{k}", "us": us, "rate": flops / us * 1e-6, "unit": "TFLOP/s"})
            print(f"{name}/{m}/{n}/{k}: {us:.1f} us, {flops / us * 1e-6:.1f} TFLOP/s", flush=True)
            del a, b

    gemm("GemmCuda", torch.bfloat16, GEMM_SHAPES)
    gemm("GemmCudaF32", torch.float32, GEMM_F32_SHAPES)
    for nbytes in COPY_BYTES:
        src = torch.rand(nbytes // 4, device="cuda")
        dst = torch.empty_like(src)
        reps = int(max(1, min(100, (1 << 30) // nbytes)))
        us = time_us(torch, lambda: dst.copy_(src), reps)
        gbps = 2.0 * nbytes / us * 1e-3
        results.append({"name": f"CopyCuda/{nbytes}", "us": us, "rate": gbps, "unit": "GB/s"})
        print(f"CopyCuda/{nbytes}: {us:.1f} us, {gbps:.0f} GB/s", flush=True)
        del src, dst
    save()
    attention_sdpa(torch, timer, results, save)
    layernorm_torch(torch, timer, results, save)
    return 0


def attention_sdpa(torch, timer, results, save):
    """bench_attention's peer. FLOPs as bench_attention: forward 4 B H Tq Tk D (halved for causal),
    backward 2.5x. Causal is minivl's: query i sees key j <= i + Tk - Tq (PyTorch's lower-right bias
    when Tq != Tk; is_causal, top-left, is the same when Tq == Tk)."""
    import torch.nn.functional as F
    try:
        from torch.nn.attention import SDPBackend, sdpa_kernel
    except ImportError as e:
        print(f"attention_sdpa: skipped: {e}")
        return
    backends = [("Flash", SDPBackend.FLASH_ATTENTION)]
    if hasattr(SDPBackend, "CUDNN_ATTENTION"):
        backends.append(("Cudnn", SDPBackend.CUDNN_ATTENTION))
    for b, h, tq, tk, d, causal in ATTENTION_SHAPES:
        q = torch.randn(b, h, tq, d, device="cuda", dtype=torch.bfloat16, requires_grad=True)
        k, v = (torch.randn(b, h, tk, d, device="cuda", dtype=torch.bfloat16, requires_grad=True) for _ in range(2))
        mask, is_causal = None, bool(causal)
        if causal and tq != tk:
            from torch.nn.attention.bias import causal_lower_right
            mask, is_causal = causal_lower_right(tq, tk), False
        flops = 4.0 * b * h * tq * tk * d * (0.5 if causal else 1.0)
        for label, backend in backends:
            try:
                with sdpa_kernel(backend):
                    fwd = lambda: F.scaled_dot_product_attention(q, k, v, attn_mask=mask, is_causal=is_causal)
                    out = fwd()
                    dout = torch.randn_like(out)
                    bwd = lambda: torch.autograd.grad(out, (q, k, v), dout, retain_graph=True)
                    for p, fn, f in ((0, fwd, flops), (1, bwd, 2.5 * flops)):
                        us = timer.median_us(fn)
                        name = f"AttentionSdpa{label}/{b}/{h}/{tq}/{tk}/{d}/{causal}/{p}"
                        results.append({"name": name, "us": us, "rate": f / us * 1e-6, "unit": "TFLOP/s"})
                        print(f"{name}: {us:.1f} us, {f / us * 1e-6:.1f} TFLOP/s", flush=True)
            except RuntimeError as e:  # a back-end that does not take this shape / GPU
                print(f"AttentionSdpa{label}/{b}/{h}/{tq}/{tk}/{d}/{causal}: skipped: {str(e).splitlines()[0]}")
        del q, k, v
        save()


def layernorm_bytes(rows, cols, elem, residual, backward):
    """The fewest bytes, as bench_layernorm counts them (weights in the activations' dtype)."""
    rc, stats = rows * cols, 8 * rows
    if not backward:
        return rc * elem * (4 if residual else 2) + 2 * cols * elem + stats
    return rc * elem * (4 if residual else 3) + 3 * cols * elem + stats


def layernorm_torch(torch, timer, results, save):
    """bench_layernorm's peer: F.layer_norm forward, and its backward (dx, dweight, dbias)."""
    import torch.nn.functional as F
    for dtype, dname in ((torch.bfloat16, "bf16"), (torch.float32, "f32")):
        elem = 2 if dtype == torch.bfloat16 else 4
        for rows, cols in LAYERNORM_SHAPES:
            x, r = (torch.randn(rows, cols, device="cuda", dtype=dtype, requires_grad=True) for _ in range(2))
            w, bias = (torch.randn(cols, device="cuda", dtype=dtype, requires_grad=True) for _ in range(2))
            dy, ds = (torch.randn(rows, cols, device="cuda", dtype=dtype) for _ in range(2))
            for residual in (False, True):
                kind = "residual" if residual else "plain"

                def fwd():
                    s = x + r if residual else x
                    return s, F.layer_norm(s, (cols,), w, bias, 1e-5)

                def fwd_no_grad():  # the forward alone (native_layer_norm still writes mean, rstd)
                    with torch.no_grad():
                        return fwd()

                s, y = fwd()
                if residual:
                    bwd = lambda: torch.autograd.grad((y, s), (x, w, bias), (dy, ds), retain_graph=True)
                else:
                    bwd = lambda: torch.autograd.grad(y, (x, w, bias), dy, retain_graph=True)
                for p, fn in ((0, fwd_no_grad), (1, bwd)):
                    us = timer.median_us(fn)
                    gbps = layernorm_bytes(rows, cols, elem, residual, p == 1) / us * 1e-3
                    name = f"LayerNormTorch/{dname}/{rows}/{cols}/{kind}/{p}"
                    results.append({"name": name, "us": us, "rate": gbps, "unit": "GB/s"})
                    print(f"{name}: {us:.1f} us, {gbps:.0f} GB/s", flush=True)
                del s, y
            del x, r, w, bias, dy, ds
            save()


if __name__ == "__main__":
    sys.exit(main())
