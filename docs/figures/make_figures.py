#!/usr/bin/env python3
"""Draws the kernel lessons' figures (docs/kernels/*.md) into docs/figures/*.png.

  python3 docs/figures/make_figures.py [attention|contrastive|layernorm|gemm ...]   (make figures)

Tile sizes and register tiles are read from the kernels' sources (kernels/cpu, kernels/cuda), so a
figure shows the sizes the code uses; the layernorm bounds figure reads the committed H100 run
(bench/results/2026-11-27-h100) through tools/bench_results.py. matplotlib and numpy only.
"""
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import fig_attention  # noqa: E402
import fig_contrastive  # noqa: E402
import fig_gemm  # noqa: E402
import fig_layernorm  # noqa: E402

LESSONS = {"attention": fig_attention, "contrastive": fig_contrastive, "layernorm": fig_layernorm, "gemm": fig_gemm}


def main(argv):
    wanted = argv or list(LESSONS)
    unknown = [w for w in wanted if w not in LESSONS]
    if unknown:
        sys.exit(f"make_figures: unknown lesson {', '.join(unknown)} (choose from {', '.join(LESSONS)})")
    for name in wanted:
        LESSONS[name].all_figures()


if __name__ == "__main__":
    main(sys.argv[1:])
