"""Figures of docs/kernels/gemm.md: the packed panels of the blocked loop nest, and the
microkernel's register tile. The sizes (MR x NR per ISA, KC, MC) are read from kernels/cpu."""
import matplotlib.pyplot as plt

from fig_common import ACCENT, ON_CHIP, STREAMED, arrow, blank, box, save, source_constant

SHAPE = r"struct KernelShape<float> \{\s*static constexpr int MR = (\d+), NR = (\d+);"


def tile_shapes():
    """(MR, NR) of the f32 microkernel: AVX-512 first, then AVX2 (their order in the #if)."""
    import os
    import re
    from fig_common import ROOT

    folder = os.path.join(ROOT, "kernels", "cpu")
    for name in sorted(os.listdir(folder)):
        if name.startswith("gemm") and name.endswith((".h", ".cpp")):
            found = re.findall(SHAPE, open(os.path.join(folder, name)).read())
            if len(found) >= 2:
                return [(int(a), int(b)) for a, b in found[:2]]
    raise SystemExit("make_figures: the f32 KernelShape (MR, NR) for AVX-512 and AVX2 not found in kernels/cpu/gemm*; "
                     "update docs/figures/fig_gemm.py to the code")


def blocking():
    kc = source_constant("kernels/cpu", r"struct Blocking<float> \{\s*static constexpr int64_t KC = (\d+);", "KC")
    mc = source_constant("kernels/cpu", r"struct Blocking<float> \{.*?MC = (\d+) /", "MC")
    return kc, mc


def packing():
    (mr, nr), _ = tile_shapes()
    kc, mc = blocking()
    mc = mc // mr * mr
    size = 1024
    u = 10.0 / size  # drawing units per element
    top, ic, pc, jp, ip = 3.6, mc, kc, 9, 3  # the block, slice, panels the figure follows
    fig, ax = plt.subplots(figsize=(15, 9.0))
    blank(ax, (-1.2, 37.5), (-1.3, 19.2))
    # B's K slice pc, above C: NR-wide micro-panels
    bx = 12.5
    for p in range(size // nr):
        box(ax, bx + p * nr * u, 0, nr * u, kc * u, ON_CHIP if p == jp else STREAMED, None, lw=0.25)
    ax.text(bx + 5, -0.25, f"B, K slice pc: KC × N = {kc} × {size}, cut into NR = {nr} wide micro-panels",
            ha="center", fontsize=8.5)
    ax.text(bx - 0.2, kc * u / 2, f"KC\n{kc}", ha="right", va="center", fontsize=8)
    # A with its MC x KC block cut into MR-row micro-panels
    box(ax, 0, top, 10, 10, "white", lw=1.2)
    ax.text(5, top - 0.15, f"A ({size} × {size})", ha="center", va="bottom", fontsize=10)
    for p in range(mc // mr):
        box(ax, pc * u, top + (ic + p * mr) * u, kc * u, mr * u, ON_CHIP if p == ip else STREAMED, None, lw=0.25)
    ax.text(pc * u + kc * u + 0.2, top + ic * u + mc * u / 2, f"MC × KC\n= {mc} × {kc}\n({mc // mr} panels\nof MR = {mr})",
            va="center", fontsize=8.5)
    # C with the row band of the block and the tile one microkernel call owns
    box(ax, bx, top, 10, 10, "white", lw=1.2)
    ax.text(bx + 5, top + 10.35, f"C ({size} × {size}) += A · B", ha="center", va="top", fontsize=10)
    box(ax, bx, top + ic * u, 10, mc * u, "#f0f0f0", None, lw=0.6)
    box(ax, bx + jp * nr * u, top + (ic + ip * mr) * u, nr * u, mr * u, ACCENT, None, lw=0.5)
    ax.text(bx + 5, top + ic * u - 0.1, f"red: one microkernel call, an MR × NR = {mr} × {nr} tile of C",
            ha="center", va="bottom", fontsize=8.5, color=ACCENT)
    # the packed buffers: B's beside its slice, A's under A
    px, w = 25.0, 11.5
    spots = [(px, 0.4, w, "packed B", f"each KC × NR panel stored as panel[k·NR + j] = B(pc + k, jc + j):\n"
                                     f"row k of a panel is NR = {nr} consecutive floats (vector loads)"),
             (0.0, 16.0, 10.0, "packed A", f"each KC × MR panel as panel[k·MR + i] = A(ic + i, pc + k):\n"
                                           f"column k of a panel is MR = {mr} consecutive floats (broadcasts)")]
    for x, y, width, label, text in spots:
        for p in range(12):
            box(ax, x + p * width / 12, y, width / 12, 1.0, ON_CHIP if p == 3 else STREAMED, None, lw=0.3)
        ax.text(x, y - 0.15, f"{label}: panel after panel, contiguous, zero-padded at the edges", fontsize=8.5)
        ax.text(x, y + 1.15, text, fontsize=8, va="top")
    arrow(ax, (bx + 10.05, kc * u / 2), (px - 0.1, 0.9), colour="black")
    ax.text(bx + 10.3, kc * u / 2 + 0.35, "pack", fontsize=8)
    arrow(ax, (pc * u + kc * u / 2, top + (ic + mc) * u + 0.05), (3.5 * 10 / 12, 15.45), colour="black")
    ax.text(pc * u + kc * u / 2 + 0.4, 12.0, "pack", fontsize=8)
    ax.text(px, 4.0,
            "Loop nest (gemm_team, kernels/cpu/gemm_cpu.cpp):\n"
            "for jc: nc columns       pack B(:, jc:jc+nc), all of K\n"
            "  for unit (ic, chunk):  claimed by any thread\n"
            "    for pc: KC deep      pack A(ic:ic+MC, pc:pc+KC)\n"
            "      for jr: NR panel   stays in L1 ...\n"
            "        for ir: MR panel ... while the A panels pass\n"
            "          Microkernel::run(kc, A panel, B panel, C tile)\n\n"
            f"B panel: KC·NR·4 B = {kc * nr * 4 // 1024} KiB (L1)\n"
            f"A block: MC·KC·4 B = {mc * kc * 4 // 1024} KiB (L2)\n"
            "packed B: at most 8 MiB (L3)",
            family="monospace", fontsize=8.2, va="top")
    ax.set_title(f"Packing for the AVX-512 f32 kernel, M = N = K = {size} (drawn to scale)", fontsize=11)
    return save(fig, "gemm-packing.png")


def register_tile(ax, x0, mr, nr, lanes, isa, regs):
    vecs = nr // lanes
    cell = 1.0
    blank(ax, (x0 - 3.4, x0 + vecs * 4 + 6.4), (-4.0, mr + 3.2))
    # the B row: vecs vectors of `lanes`
    for v in range(vecs):
        box(ax, x0 + v * 4, -2.4, 4, 1, STREAMED, f"b_row[{v}]: B(k, {v * lanes}..{v * lanes + lanes - 1})",
            fontsize=7.5)
    ax.text(x0 + vecs * 2, -2.9, f"row k of the B panel: {vecs} vector load{'s' if vecs > 1 else ''}", ha="center",
            fontsize=8.5)
    for i in range(mr):
        box(ax, x0 - 2.6, i, 2.0, cell, STREAMED, f"a{i}", fontsize=7.5)
        for v in range(vecs):
            box(ax, x0 + v * 4, i, 4, cell, ON_CHIP, f"acc[{i}][{v}]", fontsize=7.5)
    ax.text(x0 - 1.6, -0.35, "A(i, k)\nbroadcast", ha="center", va="bottom", fontsize=8)
    ax.text(x0 + vecs * 4 + 0.4, mr / 2,
            f"per k step:\n{vecs} loads of B\n{mr} broadcasts of A\n{mr * vecs} FMAs\n\nregisters:\n"
            f"{mr * vecs} accumulators\n+ {vecs} B + 1 broadcast\n= {mr * vecs + vecs + 1} of {regs}",
            va="center", fontsize=8.5)
    ax.set_title(f"{isa}: {mr} × {nr} tile, {lanes} floats per register", fontsize=10)
    ax.text(x0 + vecs * 2, mr + 0.4, "acc[i][v] += a_i · b_row[v]   (kc steps, then C = α·acc + β·C)", ha="center",
            va="top", fontsize=8.5)


def microkernel():
    (mr512, nr512), (mr256, nr256) = tile_shapes()
    fig, axes = plt.subplots(1, 2, figsize=(13, 7.4), gridspec_kw={"width_ratios": [1.25, 1]})
    register_tile(axes[0], 0, mr512, nr512, 16, "AVX-512 (zmm)", 32)
    register_tile(axes[1], 0, mr256, nr256, 8, "AVX2 + FMA (ymm)", 16)
    fig.suptitle("The microkernel's register tile (Microkernel::run, kernels/cpu/gemm_cpu.cpp): C stays in registers "
                 "for all kc steps", fontsize=11)
    fig.tight_layout()
    return save(fig, "gemm-microkernel.png")


def all_figures():
    return [packing(), microkernel()]
