#!/usr/bin/env python3
"""PyTorch peer figures for bench/bench_cuda.cpp: the same shapes on the same GPU.

  GemmCuda/M/N/K      torch.matmul, bf16 (f32 accumulation, cuBLAS)      -> TFLOP/s
  GemmCudaF32/M/N/K   torch.matmul, f32 with TF32 off                     -> TFLOP/s
  CopyCuda/bytes      dst.copy_(src), device to device                    -> GB/s (read + write)

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
    return 0


if __name__ == "__main__":
    sys.exit(main())
