"""Figures of docs/kernels/attention.md: the tile loop, the online softmax with numbers, the
mma.m16n8k16 fragments (why P needs no shuffle), the causal frontier."""
import math

import matplotlib.pyplot as plt
import numpy as np

from fig_common import ACCENT, MASKED, ON_CHIP, SKIPPED, STREAMED, arrow, blank, box, save, source_constant


def block_sizes():
    bq = source_constant("kernels/cpu", r"kAttentionBlockQ = (\d+)", "the CPU query block")
    bk = source_constant("kernels/cpu", r"kAttentionBlockK = (\d+)", "the CPU key block")
    br = source_constant("kernels/cuda", r"constexpr int kBr = (\d+);", "v3's query rows per block")
    bc = source_constant("kernels/cuda", r"constexpr int kBc = (\d+);", "v3's keys per tile")
    return bq, bk, br, bc


def tile_loop():
    bq, bk, br, bc = block_sizes()
    t = 512
    n = t // bq
    owner = 2  # the query block whose loop the figure follows
    fig = plt.figure(figsize=(13.5, 6.4))
    ax = fig.add_axes([0.0, 0.0, 0.56, 1.0])
    blank(ax, (-2.6, n + 3.4), (-2.4, n + 0.6))
    for i in range(n):
        box(ax, -1.6, i, 1.2, 1, ON_CHIP if i == owner else "white", f"Q{i}", lw=0.8)
        box(ax, i, -1.6, 1, 1.2, STREAMED, f"K{i}ᵀ", lw=0.8)
        box(ax, n + 0.4, i, 1.2, 1, STREAMED, f"V{i}", lw=0.8)
        for j in range(n):
            here = i == owner
            box(ax, j, i, 1, 1, ON_CHIP if here else "white", f"t={j}" if here else None, lw=0.5, fontsize=8)
    box(ax, n + 1.9, owner, 1.2, 1, ON_CHIP, f"O{owner}", lw=1.2)
    ax.add_patch(plt.Rectangle((0, owner), n, 1, fill=False, edgecolor=ACCENT, lw=2.2))
    arrow(ax, (0.3, owner + 1.35), (n - 0.3, owner + 1.35), colour=ACCENT, lw=1.6)
    ax.text(n / 2, owner + 1.75, "key blocks stream past in order t = 0, 1, ...", ha="center", va="top",
            color=ACCENT, fontsize=9)
    ax.text(n / 2, -2.05, f"S = scale · Q Kᵀ for one (batch, head), T = {t}, never stored whole", ha="center",
            fontsize=10)
    ax.text(-1.0, n + 0.35, f"{bq} query rows", ha="center", va="top", fontsize=8)
    ax.text(n / 2, n + 0.35, f"each tile {bq} × {bk} scores", ha="center", va="top", fontsize=8)
    ax.text(n + 1.0, n + 0.35, f"{bk} keys × D", ha="center", va="top", fontsize=8)

    tx = fig.add_axes([0.57, 0.06, 0.42, 0.9])
    tx.axis("off")
    code = (
        "for each (b, h, query block i):        # one worker each:\n"
        "                                        #  CPU: an OpenMP task\n"
        "                                        #  CUDA v3: a block of 4 warps\n"
        "  load Q_i; m = -inf, l = 0, O = 0      # on chip for the whole loop\n"
        "  for t in key blocks i can see:        # causal: stops at the frontier\n"
        "    S = scale · Q_i K_t^T                # tile of scores\n"
        "    m' = max(m, rowmax S)\n"
        "    α  = exp(m - m')                    # rescale what came before\n"
        "    P  = exp(S - m')\n"
        "    l  = α·l + rowsum P\n"
        "    O  = α·O + P V_t\n"
        "    m  = m'\n"
        "  out_i = O / l;  lse_i = m + log l     # the only writes"
    )
    tx.text(0.0, 1.0, code, family="monospace", fontsize=9.2, va="top")
    tx.text(0.0, 0.62,
            f"Sizes in the code: CPU {bq} × {bk} (kAttentionBlockQ/K, kernels/cpu/attention_cpu.h);\n"
            f"CUDA v3 {br} query rows × {bc} keys per tile (kBr, kBc, kernels/cuda/attention_v3.cu),\n"
            f"16 rows per warp; K_t, V_t double-buffered in shared memory (cp.async).\n\n"
            "Memory traffic per (b, h): Q, out and lse move once, K and V once per\n"
            "query block; a materialised S would add T² scores, written and read back.",
            fontsize=9, va="top")
    legend = [plt.Rectangle((0, 0), 1, 1, facecolor=ON_CHIP, edgecolor="black", label="kept on chip by one worker"),
              plt.Rectangle((0, 0), 1, 1, facecolor=STREAMED, edgecolor="black", label="streamed from memory")]
    tx.legend(handles=legend, loc="upper left", bbox_to_anchor=(0.0, 0.40), fontsize=9, frameon=False)
    return save(fig, "attention-tiles.png")


def online_softmax_steps(scores, values, block):
    """The CPU / v2 recurrence, step by step (natural base): list of per-block dicts."""
    m, l, o = -math.inf, 0.0, 0.0
    steps = []
    for start in range(0, len(scores), block):
        s, v = scores[start:start + block], values[start:start + block]
        m_new = max(m, max(s))
        alpha = math.exp(m - m_new) if m != -math.inf else 0.0
        p = [math.exp(x - m_new) for x in s]
        l_new = alpha * l + sum(p)
        o_new = alpha * o + sum(pi * vi for pi, vi in zip(p, v))
        steps.append(dict(s=s, v=v, m=m, m_new=m_new, alpha=alpha, p=p, l=l_new, o=o_new))
        m, l, o = m_new, l_new, o_new
    return steps


def online_softmax():
    scores, values, block = [1.0, 2.0, 4.0, 0.5, 3.0, 6.0], [10.0, 20.0, 30.0, 40.0, 50.0, 60.0], 2
    steps = online_softmax_steps(scores, values, block)
    exact = np.exp(np.array(scores) - max(scores))
    exact_out = float(exact @ np.array(values) / exact.sum())
    exact_lse = float(max(scores) + np.log(exact.sum()))
    last = steps[-1]
    out, lse = last["o"] / last["l"], last["m_new"] + math.log(last["l"])

    fig = plt.figure(figsize=(12.5, 5.6))
    ax = fig.add_axes([0.06, 0.50, 0.40, 0.43])
    colours = ["#6baed6", "#fd8d3c", "#74c476"]
    for k, x in enumerate(scores):
        ax.bar(k, x, color=colours[k // block], edgecolor="black")
        ax.text(k, x + 0.1, f"s={x:g}\nv={values[k]:g}", ha="center", va="bottom", fontsize=8)
    running = [steps[k // block]["m_new"] for k in range(len(scores))]
    ax.step(range(len(scores)), running, where="mid", color=ACCENT, lw=1.8, label="running max m after the block")
    ax.set_xticks(range(len(scores)), [f"key {k}\nblock {k // block}" for k in range(len(scores))], fontsize=8)
    ax.set_ylabel("score s = scale · q·k")
    ax.set_ylim(0, 8.2)
    ax.legend(fontsize=8, loc="upper left")
    ax.set_title("one query row, 6 keys, blocks of 2 (D = 1: each value is a number)", fontsize=10)

    notes = fig.add_axes([0.50, 0.50, 0.48, 0.43])
    notes.axis("off")
    notes.text(0.0, 1.0,
               "Per block:  m' = max(m, max s)     α = e^(m − m')\n"
               "            p = e^(s − m')         l' = α·l + Σ p        o' = α·o + Σ p·v\n\n"
               "α < 1 whenever a block raises the maximum: what was summed\n"
               "against the old m is moved onto the new one. Every exponent\n"
               "is ≤ 0, so nothing overflows; nothing is approximated.",
               family="monospace", fontsize=9, va="top")
    notes.text(0.0, 0.18,
               f"after the last block:  out = o / l = {last['o']:.4f} / {last['l']:.4f} = {out:.4f}\n"
               f"                       lse = m + log l = {lse:.4f}\n"
               f"all 6 at once:         softmax(s)·v = {exact_out:.4f},  log Σ e^s = {exact_lse:.4f}",
               family="monospace", fontsize=9, va="top", color="#08519c")

    tab = fig.add_axes([0.03, 0.0, 0.94, 0.36])
    tab.axis("off")
    header = ["block", "scores s", "m → m'", "α = e^(m−m')", "p = e^(s−m')", "l' = α·l + Σp", "o' = α·o + Σp·v"]
    rows = []
    for b, st in enumerate(steps):
        m_text = ("−∞" if st["m"] == -math.inf else f"{st['m']:g}") + f" → {st['m_new']:g}"
        rows.append([str(b), ", ".join(f"{x:g}" for x in st["s"]), m_text,
                     "0 (m = −∞: nothing yet)" if st["m"] == -math.inf else f"{st['alpha']:.4f}",
                     ", ".join(f"{x:.4f}" for x in st["p"]), f"{st['l']:.4f}", f"{st['o']:.4f}"])
    table = tab.table(cellText=rows, colLabels=header, loc="center", cellLoc="center")
    table.auto_set_font_size(False)
    table.set_fontsize(10)
    table.scale(1.0, 2.1)
    for (r, c), cell in table.get_celld().items():
        if r == 0:
            cell.set_facecolor("#eeeeee")
        elif c == 0:
            cell.set_facecolor(colours[r - 1])
    return save(fig, "attention-online-softmax.png")


def lane_grid(ax, x0, y0, rows, cols, owner, title, highlight_lane, labels, colours, cell=1.0):
    """A fragment: each cell shows the lane that holds it; the highlighted lane's cells show its
    register names."""
    for r in range(rows):
        for c in range(cols):
            lane = owner(r, c)
            mine = lane == highlight_lane
            text = labels(r, c) if mine else str(lane)
            box(ax, x0 + c * cell, y0 + r * cell, cell, cell, ACCENT if mine else colours(lane), text, lw=0.3,
                fontsize=6.2 if not mine else 6.5, text_colour="white" if mine else "black")
    ax.text(x0 + cols * cell / 2, y0 - 0.7, title, ha="center", va="bottom", fontsize=9.5)


def mma_fragments():
    g = lambda lane: lane >> 2  # noqa: E731  (groupID: the quad's row)
    t = lambda lane: lane & 3  # noqa: E731   (the lane within its quad)
    quad_colours = plt.get_cmap("tab20")
    colours = lambda lane: matplotlib_colour(quad_colours(g(lane) * 2 + 1))  # noqa: E731
    a_owner = lambda r, c: (r % 8) * 4 + (c % 8) // 2  # noqa: E731
    b_owner = lambda k, n: n * 4 + (k % 8) // 2  # noqa: E731
    c_owner = lambda r, n: (r % 8) * 4 + n // 2  # noqa: E731
    lane = 5
    a_reg = lambda r, c: f"a[{(r >= 8) + 2 * (c >= 8)}]"  # noqa: E731
    b_reg = lambda k, n: f"b[{int(k >= 8)}]"  # noqa: E731
    c_reg = lambda r, n: f"c{2 * (r >= 8) + n % 2}"  # noqa: E731

    fig, ax = plt.subplots(figsize=(14, 10.5))
    blank(ax, (-1, 45), (-2.5, 37.5))
    lane_grid(ax, 0, 0, 16, 16, a_owner, "A (16 × k16): Q rows × 16 features", lane, a_reg, colours)
    lane_grid(ax, 19, 0, 16, 8, b_owner, "B (k16 × n8): Kᵀ, 16 features × 8 keys", lane, b_reg, colours)
    lane_grid(ax, 30, 0, 16, 8, c_owner, "C (16 × n8): scores, f32", lane, c_reg, colours)
    ax.text(38.6, 0.2, "mma.sync.aligned.m16n8k16\n.row.col.f32.bf16.bf16.f32\n\nC += A · B, one warp:\n"
            "32 lanes, lane = 4·g + t\n(g = lane >> 2, t = lane & 3)\n\nA: 4 registers of 2 halves\n"
            "B: 2 registers of 2 halves\nC: 4 floats\n\n"
            f"red: lane {lane} (g = {g(lane)}, t = {t(lane)})\nother cells: the lane\nholding that element",
            fontsize=8.5, va="top")

    y = 20
    two = lambda r, c: c_owner(r, c % 8)  # noqa: E731
    names = lambda r, c: f"c{2 * (r >= 8) + c % 2}"  # noqa: E731
    lane_grid(ax, 0, y, 16, 16, two, "S accumulators: n8 tile s[2kk]  |  n8 tile s[2kk+1]", lane, names, colours)
    lane_grid(ax, 19, y, 16, 16, a_owner, "the A fragment of P for k16 step kk of O += P·V", lane, a_reg, colours)
    ax.plot([8, 8], [y, y + 16], color="black", lw=2.0)
    for (r, c) in [(1, 2), (9, 2), (1, 10), (9, 10)]:
        arrow(ax, (c + 1.0, y + r + 0.5), (19 + c + 0.05, y + r + 0.5), colour=ACCENT, lw=0.9, rad=-0.12)
    ax.text(36.0, y + 0.2,
            "Every lane holds the same (row, column)\npositions in both pictures, so P goes\n"
            "from the S accumulators into A\nregisters without a shuffle or a trip\nthrough shared memory:\n\n"
            "a[0] = pack2(s[2kk][0],   s[2kk][1])\n"
            "a[1] = pack2(s[2kk][2],   s[2kk][3])\n"
            "a[2] = pack2(s[2kk+1][0], s[2kk+1][1])\n"
            "a[3] = pack2(s[2kk+1][2], s[2kk+1][3])\n\n"
            "(forward_v3_kernel,\nkernels/cuda/attention_v3.cu; the same\nre-packing carries G in\ncontrastive_v2.cu)",
            family="monospace", fontsize=8, va="top")
    return save(fig, "attention-mma-fragments.png")


def matplotlib_colour(rgba):
    r, g, b, _ = rgba
    return (r, g, b)


def causal_panel(ax, tq, tk, block, title):
    nq, nk = -(-tq // block), -(-tk // block)
    blank(ax, (-0.3, nk + 0.3), (-0.9, nq + 1.4))
    counts = {"unmasked": 0, "masked": 0, "skipped": 0}
    for i in range(nq):
        i0, i1 = i * block, min(tq, (i + 1) * block)
        key_end = min(tk, i1 + tk - tq)  # the first key past the block's last visible one
        for j in range(nk):
            j0, j1 = j * block, min(tk, (j + 1) * block)
            if j0 >= key_end:
                kind, colour, hatch = "skipped", SKIPPED, None
            elif j1 - 1 <= i0 + tk - tq:
                kind, colour, hatch = "unmasked", STREAMED, None
            else:
                kind, colour, hatch = "masked", MASKED, "///"
            counts[kind] += 1
            box(ax, j, i, 1, 1, colour, None, lw=0.6, hatch=hatch)
    # the frontier per element: key j visible from query i when j <= i + (Tk - Tq)
    qs = np.linspace(0, tq, 200)
    ax.plot((qs + tk - tq + 0.5) / block, qs / block, color=ACCENT, lw=2.0)
    ax.set_title(title, fontsize=10)
    ax.text(nk / 2, nq + 0.35, f"{counts['unmasked'] + counts['masked']} of {nq * nk} tiles computed: "
            f"{counts['unmasked']} unmasked, {counts['masked']} masked per element; {counts['skipped']} skipped",
            ha="center", va="top", fontsize=9)
    ax.text(-0.2, -0.35, "queries ↓  keys →", fontsize=8, va="bottom")
    return counts


def causal_frontier():
    bq, _, _, _ = block_sizes()
    fig, axes = plt.subplots(1, 2, figsize=(13, 5.4), gridspec_kw={"width_ratios": [1, 1.25]})
    causal_panel(axes[0], 512, 512, bq, f"Tq = Tk = 512, {bq} × {bq} tiles: about half the work")
    causal_panel(axes[1], 192, 448, bq, "Tq = 192 new queries, Tk = 448 keys (a cache): j ≤ i + (Tk − Tq)")
    handles = [plt.Rectangle((0, 0), 1, 1, facecolor=STREAMED, edgecolor="black", label="every key visible: no mask"),
               plt.Rectangle((0, 0), 1, 1, facecolor=MASKED, hatch="///", edgecolor="black",
                             label="straddles the frontier: masked per element (−∞)"),
               plt.Rectangle((0, 0), 1, 1, facecolor=SKIPPED, edgecolor="black",
                             label="beyond the frontier: never loaded"),
               plt.Line2D([], [], color=ACCENT, lw=2, label="frontier: the last visible key of each query")]
    fig.legend(handles=handles, loc="lower center", ncol=4, fontsize=9, frameon=False)
    fig.text(0.5, 0.93, "A query block [i0, i1) stops at key min(Tk, i1 + Tk − Tq); the last query sees every key",
             ha="center", fontsize=10)
    fig.subplots_adjust(bottom=0.1, top=0.86)
    return save(fig, "attention-causal.png")


def all_figures():
    return [tile_loop(), online_softmax(), mma_fragments(), causal_frontier()]
