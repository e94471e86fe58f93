"""Figures of docs/kernels/layernorm.md: one pass over memory with exact statistics from registers
(and why not E[x²] − E[x]²), and what bounds each CUDA version (the committed H100 run)."""
import os
import sys

import matplotlib.pyplot as plt
import numpy as np

from fig_common import ACCENT, ON_CHIP, ROOT, STREAMED, arrow, blank, box, save, source_constant

H100_RUN = os.path.join(ROOT, "bench", "results", "2026-11-27-h100")


def v3_layout(cols, elem_bytes):
    """layernorm_forward_v3's launch (launch_v3, kernels/cuda/layernorm.cu): packs per row, threads
    per row, packs per thread."""
    half_packs, float_packs = source_constant("kernels/cuda", r"max_packs = sizeof\(T\) == 2 \? (\d+) : (\d+);",
                                              "v3's packs per thread", 2)
    pack = 16 // elem_bytes
    max_packs = half_packs if elem_bytes == 2 else float_packs
    packs = cols // pack
    threads = -(-packs // max_packs)
    threads = max(32, -(-threads // 32) * 32)
    per_thread = -(-packs // threads)
    return pack, packs, threads, per_thread


def one_pass_panel(ax, cols=768):
    pack, packs, threads, per_thread = v3_layout(cols, 2)
    blank(ax, (-1, 34), (-3.5, 17))
    ax.set_title(f"v3, bf16 row of C = {cols}: {packs} 128-bit packs of {pack}, {threads} lanes (one warp), "
                 f"{per_thread} packs each", fontsize=10)
    width = 32 / packs
    cmap = plt.get_cmap("tab20")
    for k in range(packs):
        lane = k % threads
        box(ax, k * width, 0, width, 1, cmap(lane % 20), None, lw=0.2)
    for j in range(per_thread):  # lane 0's packs
        ax.add_patch(plt.Rectangle((j * threads * width, -0.08), width, 1.16, fill=False, edgecolor=ACCENT, lw=1.8))
    ax.text(16, -0.4, f"x[r, 0 : {cols}] in memory: pack k goes to lane k mod {threads} (k = lane + j·{threads})",
            ha="center", fontsize=8.5)
    for j in range(per_thread):
        k = j * threads
        arrow(ax, (k * width + width / 2, 1.05), (2 + j * 3.2, 2.9), colour="black", lw=0.8)
    for j in range(per_thread):
        box(ax, 1 + j * 3.2, 3, 3, 1, ON_CHIP, f"v[{j}][0..{pack - 1}]", fontsize=8)
    ax.text(1 + per_thread * 3.2 + 0.3, 3.5, f"lane 0's registers: {per_thread * pack} floats of this row",
            va="center", fontsize=8.5)
    steps = [
        ("1  load once (load128), s += v", "mean = row_reduce(s) / C", "warp_sum: shuffles"),
        ("2  q += (v − mean)²  from registers", "rstd = rsqrt(row_reduce(q) / C + eps)", "no second read of x"),
        ("3  y = (v − mean)·rstd·w + b", "store128(y)", "mean, rstd: 8 bytes per row"),
    ]
    for i, (a, b, c) in enumerate(steps):
        y = 5.6 + i * 2.1
        box(ax, 0, y, 14, 1.5, STREAMED if i != 1 else ON_CHIP, a, fontsize=9)
        box(ax, 15, y, 11, 1.5, "white", b, fontsize=8.5)
        ax.text(26.5, y + 0.75, c, va="center", fontsize=8.5)
        if i:
            arrow(ax, (7, y - 0.6), (7, y), colour="black", lw=1)
    ax.text(0, 12.5,
            "Bytes per row (bf16, forward): read x once (2C), write y once (2C), plus 8 for mean and rstd;\n"
            "w and b (2C each) stay in L2 across rows. The minimum any layernorm moves: a copy's traffic.\n"
            "CPU (forward_impl, kernels/cpu/layernorm_cpu.cpp): the same three steps over an L1 buffer\n"
            "of the widened row, one row per OpenMP iteration.",
            fontsize=8.5, va="top")


def variance_panel(ax, cols=768):
    rng = np.random.default_rng(7)
    noise = rng.standard_normal(cols)
    offsets = [0, 10, 100, 300, 1000, 3000]
    two_pass, textbook = [], []
    for off in offsets:
        x = (off + noise).astype(np.float32)
        exact = float(np.var(x.astype(np.float64)))
        s, q = np.float32(0), np.float32(0)
        for v in x:  # one accumulator, in order, as a single thread would
            s += v
            q += v * v
        mean = s / np.float32(cols)
        one = float(q / np.float32(cols) - mean * mean)
        mean2 = np.float32(0)
        for v in x:
            mean2 += v
        mean2 /= np.float32(cols)
        c = np.float32(0)
        for v in x:
            c += (v - mean2) * (v - mean2)
        two = float(c / np.float32(cols))
        two_pass.append(abs(two - exact) / exact)
        textbook.append(abs(one - exact) / exact)
    xs = np.arange(len(offsets))
    ax.bar(xs - 0.2, np.maximum(textbook, 1e-9), 0.4, color=ACCENT, label="E[x²] − E[x]² (one pass over the values)")
    ax.bar(xs + 0.2, np.maximum(two_pass, 1e-9), 0.4, color="#3182bd", label="Σ (x − mean)² / C (two passes, v3, CPU)")
    ax.set_yscale("log")
    ax.set_xticks(xs, [f"{o:g}" for o in offsets])
    ax.set_xlabel(f"row mean (values = mean + N(0, 1), C = {cols}, f32 arithmetic)")
    ax.set_ylabel("relative error of the variance (log scale)")
    ax.axhline(1.0, color="black", lw=0.8, ls=":")
    ax.text(-0.4, 1.15, "100 % wrong", ha="left", fontsize=8)
    ax.set_title("why the statistics take two passes over the registers", fontsize=10)
    ax.legend(fontsize=8, loc="upper left", bbox_to_anchor=(0.0, 0.93))
    ax.grid(True, axis="y", alpha=0.3)


def one_pass():
    fig, axes = plt.subplots(1, 2, figsize=(15, 6), gridspec_kw={"width_ratios": [1.45, 1]})
    one_pass_panel(axes[0])
    variance_panel(axes[1])
    fig.tight_layout()
    return save(fig, "layernorm-one-pass.png")


BOUNDS = {
    1: "v1: a thread per row. A warp's 32 loads fall in 32\ndifferent rows (no coalescing), and x is read 3 times",
    2: "v2: a warp per row, coalesced; one element per load,\nx re-read for the variance and the output (L1/L2)",
    3: "v3: 128-bit loads, x read once into registers: the copy's\ntraffic; what is left is launch and the last wave",
}


def bounds():
    sys.path.insert(0, os.path.join(ROOT, "tools"))
    import bench_results  # tools/bench_results.py

    if not os.path.isdir(H100_RUN):
        raise SystemExit(f"make_figures: {H100_RUN} is missing (the layernorm bounds figure draws that run)")
    res = bench_results.Results(H100_RUN)
    rows = [r for r in res.select(kernel="layernorm", device="gpu", impl="minivl", pass_="fwd") if r.ok]
    copy = max((r for r in res.select(kernel="copy", device="gpu", impl="minivl") if r.ok),
               key=lambda r: r.shape["bytes"])
    shapes = sorted({(r.shape["R"], r.shape["C"]) for r in rows}, key=lambda s: s[0] * s[1])
    versions = sorted({r.version for r in rows})
    fig, ax = plt.subplots(figsize=(12, 5.6))
    colours = {1: "#9ecae1", 2: "#4292c6", 3: "#08519c"}
    width = 0.8 / len(versions)
    for si, (r_, c_) in enumerate(shapes):
        for vi, v in enumerate(versions):
            match = [r for r in rows if r.version == v and (r.shape["R"], r.shape["C"]) == (r_, c_)]
            if not match:
                continue
            gbps = match[0].rate("bytes") / 1e9
            x = si + (vi - (len(versions) - 1) / 2) * width
            ax.bar(x, gbps, width, color=colours.get(v, "#6baed6"), edgecolor="black", lw=0.5,
                   label=BOUNDS.get(v, f"v{v}") if si == 0 else None)
            ax.text(x, gbps * 1.05, f"{gbps:,.0f}", ha="center", va="bottom", fontsize=8)
    ceiling = copy.rate("bytes") / 1e9
    ax.axhline(ceiling, color="black", ls="--", lw=1.2,
               label=f"memory roof: copy of {copy.shape['bytes'] / 2**30:.0f} GiB, {ceiling:,.0f} GB/s (same run)")
    ax.set_xticks(range(len(shapes)), [f"{r_} × {c_}\n({(4 * r_ * c_) / 1e6:.0f} MB moved)" for r_, c_ in shapes])
    ax.set_yscale("log")
    ax.set_ylim(20, ceiling * 8)
    ax.set_ylabel("GB/s moved (log scale): 2 R C bytes read and written, bf16")
    ax.set_title("What bounds each version: bf16 layernorm forward, NVIDIA H100 80GB HBM3 (2026-11-27 run)",
                 fontsize=10.5)
    ax.legend(fontsize=8.5, loc="upper left", ncol=2)
    ax.grid(True, axis="y", alpha=0.3)
    fig.tight_layout()
    return save(fig, "layernorm-bounds.png")


def all_figures():
    return [one_pass(), bounds()]
