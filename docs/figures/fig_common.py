"""Shared drawing helpers of docs/figures/make_figures.py (matplotlib only)."""
import os
import re

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
from matplotlib.patches import FancyArrowPatch, Rectangle  # noqa: E402

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
plt.rcParams.update({"font.size": 10, "axes.titlesize": 11, "savefig.dpi": 110, "figure.dpi": 110})

ON_CHIP = "#fdd49e"   # what stays in registers / shared memory / L1
STREAMED = "#c6dbef"  # what streams past it
SKIPPED = "#d9d9d9"
MASKED = "#fcbba1"
ACCENT = "#d62728"


def save(fig, name):
    path = os.path.join(HERE, name)
    fig.savefig(path, bbox_inches="tight")
    plt.close(fig)
    print(f"make_figures: wrote docs/figures/{name}")
    return path


def box(ax, x, y, w, h, colour="white", text=None, edge="black", lw=1.0, fontsize=9, hatch=None, text_colour="black",
        **kw):
    ax.add_patch(Rectangle((x, y), w, h, facecolor=colour, edgecolor=edge, lw=lw, hatch=hatch, **kw))
    if text is not None:
        ax.text(x + w / 2, y + h / 2, text, ha="center", va="center", fontsize=fontsize, color=text_colour)


def arrow(ax, start, end, colour="black", lw=1.2, style="-|>", rad=0.0, **kw):
    ax.add_patch(FancyArrowPatch(start, end, arrowstyle=style, mutation_scale=12, color=colour, lw=lw,
                                 connectionstyle=f"arc3,rad={rad}", **kw))


def blank(ax, xlim, ylim, invert=True):
    """An axes for a diagram: no ticks, equal aspect, y growing downwards (rows of a matrix)."""
    ax.set_xlim(*xlim)
    ax.set_ylim(*ylim)
    if invert:
        ax.invert_yaxis()
    ax.set_aspect("equal")
    ax.axis("off")


def source_constant(relative_glob_dir, pattern, what, group_count=1):
    """The first match of `pattern` in the sources under kernels/...: figures use the sizes the code
    uses. Exits naming the files and the pattern when the code has moved on."""
    folder = os.path.join(ROOT, relative_glob_dir)
    names = sorted(n for n in os.listdir(folder) if n.endswith((".h", ".cpp", ".cu", ".cuh")))
    for name in names:
        text = open(os.path.join(folder, name)).read()
        m = re.search(pattern, text, re.S)
        if m:
            values = tuple(int(g) for g in m.groups()[:group_count])
            return values if group_count > 1 else values[0]
    raise SystemExit(f"make_figures: {what} not found in {relative_glob_dir}/ (pattern {pattern!r}); "
                     "update docs/figures to the code")
