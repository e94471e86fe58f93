#!/usr/bin/env python3
"""PyTorch peer figures for bench/bench_cuda.cpp: the same shapes on the same GPU.

  GemmCuda/M/N/K      torch.matmul, bf16 (f32 accumulation, cuBLAS)      -> TFLOP/s
  GemmCudaF32/M/N/K   torch.matmul, f32 with TF32 off                     -> TFLOP/s
  CopyCuda/bytes      dst.copy_(src), device to device                    -> GB/s (read + write)
  AttentionSdpa{Flash,Cudnn}/B/H/T/D/causal/pass   F.scaled_dot_product_attention, bf16 -> TFLOP/s
                      (bench_attention's peer; see attention_sdpa at the end)

Timing: CUDA events around a batch of launches, after warm-up; the median of the batches.
Writes {"device": ..., "torch": ..., "results": [{"name", "us", "rate", "unit"}]} to --out.
Names match bench_cuda's without the BM_ prefix, so tools/gpu_check.sh puts them side by side.
"""
import argparse
import json
import statistics
import sys

GEMM_SHAPES = [(1024, 1024, 1024), (4096, 4096, 4096), (8192, 8192, 8192), (8320, 3072, 768), (8320, 768, 3072)]
GEMM_F32_SHAPES = [(4096, 4096, 4096), (8320, 3072, 768)]
COPY_BYTES = [1 << 20, 1 << 24, 1 << 28, 1 << 30]


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
    report = {"device": torch.cuda.get_device_name(0), "torch": torch.__version__, "results": results}
    with open(args.out, "w") as f:
        json.dump(report, f, indent=1)
    # bench_attention's peer (see the function below), written again after: a time-out while it
    # runs keeps the figures above.
    attention_sdpa(torch, results)
    with open(args.out, "w") as f:
        json.dump(report, f, indent=1)
    return 0


# ---- attention (bench/bench_attention.cpp's peer; added with the fused attention op) ----------
# torch.nn.functional.scaled_dot_product_attention in bf16 on bench_attention's shapes, with the
# flash and cuDNN back-ends forced in turn. Forward and backward timed apart (the backward as
# autograd.grad of a saved forward). FLOPs as bench_attention: forward 4 B H T^2 D (halved for
# causal), backward 2.5x. Names: AttentionSdpa{Flash,Cudnn}/B/H/T/D/causal/pass (0 fwd, 1 bwd).
ATTENTION_SHAPES = [(256, 12, 50, 64, 0), (64, 12, 197, 64, 0), (256, 8, 77, 64, 1)] + [
    (16384 // t, 2048 // d, t, d, c) for t in (512, 1024, 2048, 4096) for d in (64, 128) for c in (0, 1)]


def attention_sdpa(torch, results):
    import torch.nn.functional as F
    try:
        from torch.nn.attention import SDPBackend, sdpa_kernel
    except ImportError as e:
        print(f"attention_sdpa: skipped: {e}")
        return
    backends = [("Flash", SDPBackend.FLASH_ATTENTION)]
    if hasattr(SDPBackend, "CUDNN_ATTENTION"):
        backends.append(("Cudnn", SDPBackend.CUDNN_ATTENTION))
    for b, h, t, d, causal in ATTENTION_SHAPES:
        q, k, v = (torch.randn(b, h, t, d, device="cuda", dtype=torch.bfloat16, requires_grad=True) for _ in range(3))
        flops = 4.0 * b * h * t * t * d * (0.5 if causal else 1.0)
        for label, backend in backends:
            try:
                with sdpa_kernel(backend):
                    fwd = lambda: F.scaled_dot_product_attention(q, k, v, is_causal=bool(causal))
                    out = fwd()
                    dout = torch.randn_like(out)
                    bwd = lambda: torch.autograd.grad(out, (q, k, v), dout, retain_graph=True)
                    for p, fn, f in ((0, fwd, flops), (1, bwd, 2.5 * flops)):
                        reps = int(max(1, min(50, 2e12 / f)))
                        us = time_us(torch, fn, reps)
                        name = f"AttentionSdpa{label}/{b}/{h}/{t}/{d}/{causal}/{p}"
                        results.append({"name": name, "us": us, "rate": f / us * 1e-6, "unit": "TFLOP/s"})
                        print(f"{name}: {us:.1f} us, {f / us * 1e-6:.1f} TFLOP/s", flush=True)
            except RuntimeError as e:  # a back-end that does not take this shape / GPU
                print(f"AttentionSdpa{label}/{b}/{h}/{t}/{d}/{causal}: skipped: {str(e).splitlines()[0]}")
        del q, k, v

if __name__ == "__main__":
    sys.exit(main())
