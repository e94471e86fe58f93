"""The report's figures (tools/bench_report.py): a roofline per device, and per kernel a version
ladder and a speed-vs-size line, each with the peers beside minivl. matplotlib and numpy only."""
import textwrap

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
from matplotlib.ticker import FuncFormatter, LogLocator  # noqa: E402

PLAIN = FuncFormatter(lambda v, _: f"{v:,.10g}")

KERNEL_COLOURS = {"gemm": "#1f77b4", "attention": "#d62728", "contrastive": "#2ca02c", "layernorm": "#9467bd"}
VERSION_COLOURS = ["#9ecae1", "#6baed6", "#3182bd", "#08519c", "#08306b"]
PEER_COLOURS = ["#e6550d", "#fd8d3c", "#a63603", "#636363", "#8c6d31", "#d6616b"]
PASS_NAMES = {"fwd": "forward", "bwd": "backward", "fwd+bwd": "forward + backward"}
plt.rcParams.update({"font.size": 10, "axes.titlesize": 11, "figure.dpi": 110, "savefig.dpi": 110})


def colour_of(label, peers):
    """minivl's versions in blues (darker = later), each peer in its own warm colour."""
    if label.startswith("minivl"):
        parts = label.split()
        version = parts[1][1:] if len(parts) > 1 and parts[1].startswith("v") else ""
        return VERSION_COLOURS[min(int(version), 4)] if version.isdigit() else "#2171b5"
    return PEER_COLOURS[peers.index(label) % len(PEER_COLOURS)] if label in peers else "#636363"


def per_second_units(values, kind):
    """(scale, unit) that keeps the largest value readable."""
    top = max([v for v in values if v] or [1.0])
    if kind == "flops":
        return (1e12, "TFLOP/s") if top >= 1e12 else (1e9, "GFLOP/s")
    return (1e12, "TB/s") if top >= 1e12 else (1e9, "GB/s")


def roofline(path, title, ceilings, points, kernel_labels=None):
    """ceilings: {compute: [(label, FLOP/s)], memory: [(label, B/s)]}; points: dicts with kernel,
    label (implementation), text (the annotation), intensity (FLOP/B), rate (FLOP/s), peer (bool),
    side (-1: annotation left of the point, 1: right) and dy (vertical offset in points)."""
    compute, memory = ceilings.get("compute", []), ceilings.get("memory", [])
    rates = [p["rate"] for p in points] + [c for _, c in compute]
    scale, unit = per_second_units(rates, "flops")
    xs = [p["intensity"] for p in points] + [c / m for _, c in compute for _, m in memory]
    x_lo, x_hi = 10 ** np.floor(np.log10(min(xs) / 4)), 10 ** np.ceil(np.log10(max(xs) * 4))
    fig, ax = plt.subplots(figsize=(12, 6.2))
    x = np.logspace(np.log10(x_lo), np.log10(x_hi), 400)
    styles = ["-", "--", ":", "-."]
    handles = []
    for i, (mlabel, bw) in enumerate(memory[:1]):
        for j, (clabel, peak) in enumerate(compute):
            (line,) = ax.plot(x, np.minimum(peak, bw * x) / scale, color="black", lw=1.8 - 0.4 * j,
                              ls=styles[j % 4], alpha=0.85,
                              label=f"roof: {clabel}, {peak / scale:,.1f} {unit}")
            handles.append(line)
        handles.append(plt.Line2D([], [], color="white", label=f"slope: {mlabel}, {bw / 1e9:,.0f} GB/s"))
    kernels_seen = []
    for p in points:
        c = KERNEL_COLOURS.get(p["kernel"], "#7f7f7f")
        ax.scatter(p["intensity"], p["rate"] / scale, s=55, marker="s" if p["peer"] else "o",
                   facecolors="white" if p["peer"] else c, edgecolors=c, linewidths=1.6, zorder=3)
        if p["kernel"] not in kernels_seen:
            kernels_seen.append(p["kernel"])
    handles += [plt.Line2D([], [], marker="o", ls="", color=KERNEL_COLOURS.get(k, "#7f7f7f"),
                           label=(kernel_labels or {}).get(k, k)) for k in kernels_seen]
    handles += [plt.Line2D([], [], marker="o", ls="", color="black", label="minivl (filled)"),
                plt.Line2D([], [], marker="s", ls="", markerfacecolor="white", color="black", label="peer (hollow)")]
    ax.legend(handles=handles, loc="upper left", bbox_to_anchor=(1.01, 1.0), fontsize=8.5, framealpha=0.9)
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlim(x_lo, x_hi)
    lows = [p["rate"] / scale for p in points] + [m * x_lo / scale for _, m in memory]
    ax.set_ylim(min(lows) / 3, max(rates) / scale * 2.5)
    ax.set_xlabel("arithmetic intensity: FLOPs per byte (the fewest bytes the problem must move)")
    ax.set_ylabel(f"attained {unit} (log scale)")
    ax.set_title(title)
    ax.grid(True, which="major", alpha=0.3)
    fig.tight_layout()
    place_annotations(fig, ax, points, scale)
    fig.savefig(path)
    plt.close(fig)


def place_annotations(fig, ax, points, scale, fontsize=7.5):
    """Labels beside their points (p["side"]: -1 left, 1 right), moved up or down in 10-point steps
    until no two labels' boxes overlap (box sizes from the axes' size in inches and the font)."""
    box_ = ax.get_position()
    width_in, height_in = box_.width * fig.get_figwidth(), box_.height * fig.get_figheight()
    (x0, x1), (y0, y1) = ax.get_xlim(), ax.get_ylim()
    per_in_x, per_in_y = np.log10(x1 / x0) / width_in, np.log10(y1 / y0) / height_in
    char = 0.55 * fontsize / 72 * per_in_x  # decades per character
    line = 1.25 * fontsize / 72 * per_in_y  # decades per text line
    step = 10 / 72 * per_in_y  # 10 points, in decades
    marker = 4.5 / 72 * per_in_x  # half a marker's width, in decades
    placed = [(np.log10(q["intensity"]) - marker, np.log10(q["intensity"]) + marker, np.log10(q["rate"] / scale))
              for q in points]  # labels keep off every marker too
    lo, hi = np.log10(x0), np.log10(x1)
    for p in sorted(points, key=lambda q: -q["rate"]):
        lx, ly = np.log10(p["intensity"]), np.log10(p["rate"] / scale)
        gap, span = 7 / 72 * per_in_x, len(p["text"]) * char
        first = p.get("side", 1)
        # the preferred side first, then the other side, each nearer before farther
        tries = [(side, k) for k in (0, -1, 1) for side in (first, -first)]
        tries += [(side, k) for k in (-2, 2, -3, 3, -4, 4) for side in (first, -first)]
        choice = None
        for side, k in tries:
            left, right = (lx + gap, lx + gap + span) if side > 0 else (lx - gap - span, lx - gap)
            y = ly + k * step
            inside = left >= lo and right <= hi
            if inside and all(right < a or left > b or abs(y - yy) >= line for a, b, yy in placed):
                choice = (side, k, left, right, y)
                break
        side, k, left, right, y = choice or (first, 0, *((lx + gap, lx + gap + span) if first > 0
                                                        else (lx - gap - span, lx - gap)), ly)
        placed.append((left, right, y))
        colour = KERNEL_COLOURS.get(p["kernel"], "#7f7f7f")
        ax.annotate(p["text"], (p["intensity"], p["rate"] / scale), xytext=(7 * side, k * 10),
                    textcoords="offset points", fontsize=fontsize, color=colour, va="center",
                    ha="left" if side > 0 else "right",
                    arrowprops=dict(arrowstyle="-", lw=0.6, color=colour, shrinkA=0, shrinkB=3) if k else None)


def ladder(path, title, groups, kind, peers, roofs=()):
    """groups: [(group name, [(label, rate)])]: bars per implementation, one group per pass/dtype;
    each minivl version's bar says its speed-up over the previous version. roofs: [(label, rate)]
    drawn as horizontal lines (the machine's measured ceiling for this kind of rate)."""
    rates = [r for _, bars in groups for _, r in bars]
    scale, unit = per_second_units(rates + [r for _, r in roofs], kind)
    width = max(len(bars) for _, bars in groups)
    fig, ax = plt.subplots(figsize=(max(6.5, 1.5 + 0.75 * (width + 1) * len(groups)), 4.8))
    seen, centres = set(), []
    for g, (name, bars) in enumerate(groups):
        previous = None
        for i, (label, rate) in enumerate(bars):
            xpos = g * (width + 1) + i
            ax.bar(xpos, rate / scale, color=colour_of(label, peers), edgecolor="black", lw=0.6,
                   hatch="" if label.startswith("minivl") else "//", label=label if label not in seen else None)
            seen.add(label)
            text = f"{rate / scale:,.3g}"
            if label.startswith("minivl v") and previous:
                text += f"\n×{rate / previous:.1f}"
            ax.text(xpos, rate / scale * 1.08, text, ha="center", va="bottom", fontsize=8)
            if label.startswith("minivl"):
                previous = rate
        centres.append(g * (width + 1) + (len(bars) - 1) / 2)
    for j, (label, rate) in enumerate(roofs):
        ax.axhline(rate / scale, color="black", ls=["--", ":"][j % 2], lw=1.2,
                   label=f"roof: {label} ({rate / scale:,.3g} {unit})")
    ax.set_yscale("log")
    ax.set_xticks(centres, [name for name, _ in groups], fontsize=10)
    tops = rates + [r for _, r in roofs]
    ax.set_ylim(min(rates) / scale / 2.5, max(tops) / scale * 6)
    ax.set_ylabel(f"{unit} (log scale)")
    ax.set_title(textwrap.fill(title, int(15 * fig.get_size_inches()[0])), fontsize=10)
    ax.legend(fontsize=8, loc="upper left", ncol=2, framealpha=0.9)
    ax.grid(True, axis="y", which="major", alpha=0.3)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)


def size_lines(path, title, panels, kind, x_label, peers):
    """panels: [(panel title, {label: [(x, rate)]})]: one line per implementation, peers dashed.
    Panels where no implementation has two sizes are left out."""
    panels = [(n, ls) for n, ls in panels if any(len(pts) >= 2 for pts in ls.values())]
    rates = [r for _, lines in panels for pts in lines.values() for _, r in pts]
    scale, unit = per_second_units(rates, kind)
    columns = min(len(panels), 3)
    rows = (len(panels) + columns - 1) // columns
    fig, axes = plt.subplots(rows, columns, figsize=(max(6.4, 5.2 * columns), 4.4 * rows), squeeze=False)
    for ax in axes.flat[len(panels):]:
        ax.set_visible(False)
    for ax, (name, lines) in zip(axes.flat, panels):
        values = []
        for label in sorted(lines, key=lambda lb: (not lb.startswith("minivl"), lb)):
            pts = sorted(lines[label])
            peer = not label.startswith("minivl")
            values += [p[1] / scale for p in pts]
            ax.plot([p[0] for p in pts], [p[1] / scale for p in pts], marker="s" if peer else "o",
                    ls="--" if peer else "-", color=colour_of(label, peers), label=label,
                    markerfacecolor="white" if peer else None, lw=1.6)
        ax.set_xscale("log")
        ax.set_yscale("log")
        ax.set_ylim(min(values) / 2, max(values) * 2)
        xs = sorted({p[0] for pts in lines.values() for p in pts})
        if len(xs) <= 8:  # few sizes: tick each one that is not crowded by the previous tick
            ticks = [v for i, v in enumerate(xs) if i == 0 or np.log10(v / xs[i - 1]) > 0.12]
            ax.set_xticks(ticks, [f"{v:,.3g}" if v < 1000 else f"{v:,.0f}" for v in ticks])
            ax.xaxis.set_minor_formatter(FuncFormatter(lambda v, _: ""))
        else:
            ax.xaxis.set_major_locator(LogLocator(base=10, subs=(1.0, 2.0, 5.0)))
            ax.xaxis.set_major_formatter(PLAIN)
            ax.xaxis.set_minor_formatter(FuncFormatter(lambda v, _: ""))
        ax.set_xlabel(x_label)
        ax.set_ylabel(f"{unit} (log scale)")
        ax.set_title(name, fontsize=10)
        ax.grid(True, which="major", alpha=0.3)
        ax.legend(fontsize=8, framealpha=0.9)
    fig.suptitle(textwrap.fill(title, int(14 * max(6.4, 5.2 * columns))), fontsize=11)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
