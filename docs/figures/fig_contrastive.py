"""Figures of docs/kernels/contrastive.md: which logits tile each worker visits, and when, on the
CPU (wrapped diagonals) and on CUDA (a row pass, then the same pass with the roles swapped)."""
import matplotlib.pyplot as plt

from fig_common import ACCENT, ON_CHIP, STREAMED, arrow, blank, box, save, source_constant

STEP_COLOURS = ["#c6dbef", "#fdd0a2", "#c7e9c0", "#dadaeb", "#fcbba1", "#d9d9d9"]


def cpu_panel(ax, nb, tile):
    blank(ax, (-1.9, nb + 0.4), (-2.0, nb + 1.6))
    for rb in range(nb):
        for step in range(nb):
            cb = (rb + step) % nb
            box(ax, cb, rb, 1, 1, STEP_COLOURS[step % len(STEP_COLOURS)], f"step {step}\nthread {rb * 2 // nb}",
                lw=0.8, fontsize=8)
        span = f"{rb * tile}–{(rb + 1) * tile - 1}"
        box(ax, -1.5, rb, 1.1, 1, ON_CHIP, f"lse_row\nrows\n{span}", lw=0.6, fontsize=7.5)
        box(ax, rb, -1.6, 1, 1.1, ON_CHIP, f"lse_col\ncols\n{span}", lw=0.6, fontsize=7.5)
    ax.set_title(f"CPU: {tile} × {tile} tiles on wrapped diagonals\n(N = {nb * tile}, 2 threads)", fontsize=10)
    ax.text(nb / 2, nb + 0.25,
            "step t: row block rb meets column block (rb + t) mod nb.\n"
            "Within a step every row block and every column block occurs once,\n"
            "so the threads splitting a step (omp for, static) never share an\n"
            "accumulator: no locks, no atomics, and each row's and column's\n"
            "online log-sum-exp sees its tiles in a fixed order.",
            ha="center", va="top", fontsize=8.5)


def gpu_panel(ax, nblocks, rows, title, columns_pass):
    blank(ax, (-1.9, nblocks + 0.4), (-2.0, nblocks + 1.6))
    for b in range(nblocks):
        for t in range(nblocks):
            r, c = (t, b) if columns_pass else (b, t)
            owner = b == 2
            box(ax, c, r, 1, 1, ON_CHIP if owner else "white", f"{t}" if owner else None, lw=0.5, fontsize=8)
    for b in range(nblocks):
        if columns_pass:
            box(ax, b, -1.6, 1, 1.1, STREAMED if b != 2 else ON_CHIP, f"blk\n{b}", lw=0.6, fontsize=7)
        else:
            box(ax, -1.5, b, 1.1, 1, STREAMED if b != 2 else ON_CHIP, f"blk {b}", lw=0.6, fontsize=7)
    if columns_pass:
        ax.add_patch(plt.Rectangle((2, 0), 1, nblocks, fill=False, edgecolor=ACCENT, lw=2))
        arrow(ax, (3.35, 0.3), (3.35, nblocks - 0.3), colour=ACCENT)
    else:
        ax.add_patch(plt.Rectangle((0, 2), nblocks, 1, fill=False, edgecolor=ACCENT, lw=2))
        arrow(ax, (0.3, 3.35), (nblocks - 0.3, 3.35), colour=ACCENT)
    ax.set_title(title, fontsize=10)
    what = ("image ↔ text swapped: block b owns 64 columns\n(text rows) and walks the row tiles: lse_col, dtext"
            if columns_pass else
            f"block b owns {rows} rows of image and walks the\ncolumn tiles 0, 1, ... in order: lse_row, dimage")
    ax.text(nblocks / 2, nblocks + 0.25, what + "\n(the numbers: the order block 2 visits its tiles)", ha="center",
            va="top", fontsize=8.5)


def schedule():
    tile = source_constant("kernels/cpu", r"kContrastiveTile = (\d+)", "the CPU contrastive tile")
    rows_v2 = source_constant("kernels/cuda", r"constexpr int kBm = (\d+);", "v2's rows per block")
    fig, axes = plt.subplots(1, 3, figsize=(15.5, 6.4))
    cpu_panel(axes[0], 4, tile)
    gpu_panel(axes[1], 8, rows_v2, f"CUDA v2, row pass: {rows_v2} rows per block (N = {8 * rows_v2})", False)
    gpu_panel(axes[2], 8, rows_v2, "CUDA v2, column pass: the same kernel, roles swapped", True)
    fig.text(0.5, 0.02,
             "Both never hold the N × N logits: a tile is computed (a GEMM into registers / a per-thread buffer), "
             "folded into running (max, sum) per row and per column, and dropped. The backward visits the same "
             "tiles again, recomputing them.",
             ha="center", fontsize=9)
    fig.subplots_adjust(left=0.02, right=0.98, bottom=0.08, top=0.93, wspace=0.08)
    return save(fig, "contrastive-schedule.png")


def all_figures():
    return [schedule()]
