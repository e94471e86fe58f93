#!/usr/bin/env python3
"""Turns one benchmark results folder into report.md with PNG figures (in FOLDER/figures/).

  python3 tools/bench_report.py bench/results/<date>-<machine>    (make bench runs it)

The folder's rows are read by tools/bench_results.py (Google Benchmark JSON, or the console text
of older runs, and PyTorch's torch.json). Per device: a roofline with the ceilings this machine
measured (CPU: bench_machine's FMA peak and copy; GPU: bench_cuda's GEMMs and copy), every kernel
and version at one shape as a point, the peers beside them. Per kernel: the version ladder at that
shape and the speed against problem size, minivl's versions and the peers as lines.
Needs python3-matplotlib and python3-numpy (Debian), nothing else.
"""
import argparse
import math
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import bench_plots  # noqa: E402
import bench_results  # noqa: E402

KERNEL_ORDER = ["gemm", "attention", "contrastive", "layernorm"]
KERNEL_TITLES = {"gemm": "GEMM", "attention": "Fused attention", "contrastive": "Fused contrastive loss (CLIP)",
                 "layernorm": "LayerNorm"}
KERNEL_DOCS = {"gemm": "docs/kernels/gemm.md", "attention": "docs/kernels/attention.md",
               "contrastive": "docs/kernels/contrastive.md", "layernorm": "docs/kernels/layernorm.md"}
PEER_SHORT = {"PyTorch SDPA (flash)": "SDPA-flash", "PyTorch SDPA (cuDNN)": "SDPA-cuDNN", "PyTorch": "torch",
              "naive (cuBLAS + CE)": "naive", "naive (materialised)": "naive", "composed ops": "composed",
              "OpenBLAS (loop)": "OpenBLAS"}
SHORT = {"gemm": "gemm", "attention": "attn", "contrastive": "clip", "layernorm": "ln"}
PEER_ORDER = ["OpenBLAS", "OpenBLAS (loop)", "PyTorch", "cuDNN", "PyTorch SDPA (flash)", "PyTorch SDPA (cuDNN)",
              "PyTorch SDPA (math)", "composed ops", "naive (materialised)", "naive (cuBLAS + CE)"]


def shape_text(kernel, shape):
    s = shape
    if kernel == "gemm":
        text = f"{s['M']}×{s['N']}×{s['K']}"
        return f"batch {s['batch']} × ({text})" if "batch" in s else text
    if kernel == "attention":
        t = f"T={s['Tq']}" if s["Tq"] == s["Tk"] else f"Tq={s['Tq']} Tk={s['Tk']}"
        return f"B={s['B']} H={s['H']} {t} D={s['D']}" + (" causal" if s["causal"] else "")
    if kernel == "contrastive":
        return f"N={s['N']} d={s['d']}"
    if kernel == "layernorm":
        return f"{s['R']}×{s['C']}" + (" residual" if s.get("residual") else "")
    return str(shape)


def size_axis(kernel, rows):
    """(rows on the size plot, x of a row, x-axis label): one family of shapes per kernel."""
    if kernel == "gemm":
        square = [r for r in rows if r.shape["M"] == r.shape["N"] == r.shape["K"] and "batch" not in r.shape]
        return square, lambda r: r.shape["N"], "n (square GEMM, n × n × n)"
    if kernel == "attention":
        keep = [r for r in rows if r.shape["D"] == 64 and not r.shape["causal"]]
        return keep, lambda r: r.flops / 1e9, "GFLOP per call (D = 64, not causal)"
    if kernel == "contrastive":
        ds = sorted({r.shape["d"] for r in rows})
        d = ds[0] if ds else 0
        return [r for r in rows if r.shape["d"] == d], lambda r: r.shape["N"], f"N (pairs in the batch), d = {d}"
    return [r for r in rows if not r.shape.get("residual")], lambda r: r.bytes / 1e6, "MB moved per call (plain rows)"


class Report:
    def __init__(self, folder):
        self.res = bench_results.Results(folder)
        self.folder = folder
        self.fig_dir = os.path.join(folder, "figures")
        self.ceilings = bench_results.measured_ceilings(self.res)
        self.lines = []
        measured = {r.impl for r in self.res.rows if r.kernel and r.is_peer and r.ok}
        self.peers = [p for p in PEER_ORDER if p in measured] + sorted(measured - set(PEER_ORDER))

    # ---- facts ----
    def device_name(self, device):
        m = self.res.machine
        if device == "gpu":
            gpus = m.get("gpus") or []
            return gpus[0]["name"] if gpus else self.res.torch.get("device", "GPU")
        cpu = m.get("cpu", {})
        cores = cpu.get("logical_cpus") or self.res.context_value("num_cpus")
        return f"{cpu.get('model', 'CPU')}" + (f" ({cores} logical CPUs)" if cores else "")

    def roofs(self, device):
        c = self.ceilings.get(device, {})
        return c.get("compute", []), c.get("memory", [])

    def percent_of_roof(self, row):
        compute, memory = self.roofs(row.device)
        if bench_results.METRIC.get(row.kernel) == "bytes":
            roof = max((m["per_second"] for m in memory), default=None)
        else:
            same = [c["per_second"] for c in compute if c["dtype"] == row.dtype]
            roof = max(same or [c["per_second"] for c in compute] or [0]) or None
        rate = row.rate()
        return 100.0 * rate / roof if roof and rate else None

    # ---- choosing what to draw ----
    def kernel_rows(self, kernel, device):
        return [r for r in self.res.select(kernel=kernel, device=device) if r.ok]

    def representative_shape(self, rows):
        """The shape most implementations (labels x dtypes) reached; the largest among those."""
        by_shape = {}
        for r in rows:
            by_shape.setdefault(r.shape_key(), set()).add((r.label, r.dtype))
        size = {}
        for r in rows:
            size[r.shape_key()] = max(size.get(r.shape_key(), 0), r.flops or r.bytes)
        best = max(by_shape, key=lambda k: (len(by_shape[k]), size[k]))
        return dict(best)

    def ordered(self, rows):
        def key(r):
            peer_rank = self.peers.index(r.impl) if r.impl in self.peers else 99
            return (r.is_peer, peer_rank, r.version or 0, r.variant)
        return sorted(rows, key=key)

    # ---- figures ----
    def figure(self, name):
        os.makedirs(self.fig_dir, exist_ok=True)
        return os.path.join(self.fig_dir, name)

    def roofline_figure(self, device):
        compute, memory = self.roofs(device)
        if not compute or not memory:
            return None
        points, kernel_labels = [], {}
        for kernel in KERNEL_ORDER:
            rows = self.kernel_rows(kernel, device)
            if not rows:
                continue
            shape = self.representative_shape(rows)
            kernel_labels[kernel] = f"{kernel} at {shape_text(kernel, shape)}"
            for r in self.ordered([r for r in rows if r.shape == shape and r.intensity]):
                who = PEER_SHORT.get(r.impl, r.impl) if r.is_peer else (f"v{r.version}" if r.version else "minivl")
                text = f"{SHORT[kernel]} {who} {r.pass_}" + (f" {r.dtype}" if device == "gpu" and kernel == "gemm" else "")
                points.append(dict(kernel=kernel, label=r.label, text=text, intensity=r.intensity, rate=r.rate("flops"),
                                   peer=r.is_peer))
        spread_labels(points)
        ceilings = {"compute": [(c["short"], c["per_second"]) for c in compute],
                    "memory": [(m["short"], m["per_second"]) for m in memory[:1]]}
        path = self.figure(f"roofline-{device}.png")
        bench_bench = "bench_machine" if device == "cpu" else "bench_cuda"
        bench_plots.roofline(path, f"Roofline: {self.device_name(device)} (ceilings measured by {bench_bench})",
                             ceilings, points, kernel_labels)
        return path

    def ladder_figure(self, kernel, device, rows, shape):
        groups = {}
        for r in self.ordered([r for r in rows if r.shape == shape]):
            name = bench_plots.PASS_NAMES.get(r.pass_, r.pass_) + (f", {r.dtype}" if len({x.dtype for x in rows}) > 1
                                                                    else "")
            groups.setdefault(name, []).append((r.label, r.rate()))
        path = self.figure(f"ladder-{kernel}-{device}.png")
        dtypes = sorted({r.dtype for r in rows if r.shape == shape})
        compute, memory = self.roofs(device)
        if bench_results.METRIC[kernel] == "bytes":
            roofs = [(m["short"], m["per_second"]) for m in memory[:1]]
        else:
            roofs = [(c["short"], c["per_second"]) for c in compute if c["dtype"] in dtypes][:2]
        bench_plots.ladder(path, f"{KERNEL_TITLES[kernel]} on {self.device_name(device)}: {shape_text(kernel, shape)}, "
                                 f"{'/'.join(dtypes)}", list(groups.items()), bench_results.METRIC[kernel], self.peers,
                           roofs)
        return path

    def size_figure(self, kernel, device, rows):
        keep, x_of, x_label = size_axis(kernel, rows)
        panels = {}
        multi_dtype = len({r.dtype for r in keep}) > 1
        for r in keep:
            panel = bench_plots.PASS_NAMES.get(r.pass_, r.pass_) + (f", {r.dtype}" if multi_dtype else "")
            panels.setdefault(panel, {}).setdefault(r.label, []).append((x_of(r), r.rate()))
        lines = {p: {k: dedupe(v) for k, v in ls.items()} for p, ls in panels.items()}
        lines = {p: ls for p, ls in lines.items() if any(len(v) >= 2 for v in ls.values())}
        if not any(len(v) >= 2 for ls in lines.values() for v in ls.values()):
            return None  # one size only: the ladder already shows it
        path = self.figure(f"size-{kernel}-{device}.png")
        bench_plots.size_lines(path, f"{KERNEL_TITLES[kernel]} on {self.device_name(device)}: speed against size",
                               list(lines.items()), bench_results.METRIC[kernel], x_label, self.peers)
        return path

    # ---- markdown ----
    def emit(self, text=""):
        self.lines.append(text)

    def image(self, path, alt):
        if path:
            self.emit(f"![{alt}]({os.path.relpath(path, self.folder)})")
            self.emit()

    def machine_section(self):
        m = self.res.machine
        self.emit("## Machine")
        self.emit()
        if not m:
            self.emit("No machine.json in this folder (`tools/machine_facts.py` writes it).")
            self.emit()
            return
        cpu = m.get("cpu", {})
        facts = [("date", m.get("date")), ("commit", m.get("git_commit")),
                 ("CPU", f"{cpu.get('model')} (family {cpu.get('family')}, model {cpu.get('model_number')})"
                  if cpu.get("family") else cpu.get("model")),
                 ("logical CPUs / cores", f"{cpu.get('logical_cpus')} / {cpu.get('physical_cores')}"
                  if cpu.get("physical_cores") else cpu.get("logical_cpus")),
                 ("ISA flags", ", ".join(cpu.get("isa_flags", [])) or None),
                 ("memory", f"{m['memory_gib']} GiB" if m.get("memory_gib") else None),
                 ("OS", " ".join(filter(None, [m.get("os"), f"Debian {m['debian']}" if m.get("debian") else None]))),
                 ("compilers", ", ".join(f"{k}: {v}" for k, v in (m.get("compiler") or {}).items()) or None),
                 ("libraries", ", ".join(f"{k} {v}" for k, v in (m.get("libraries") or {}).items() if v) or None),
                 ("OMP_NUM_THREADS", m.get("omp_num_threads"))]
        for g in m.get("gpus", []):
            facts.append(("GPU", ", ".join(f"{k} {v}" for k, v in g.items())))
        cudnn = self.res.context_value("cudnn")
        if cudnn:
            facts.append(("cuDNN (peer)", cudnn))
        if self.res.torch:
            facts.append(("PyTorch (peer)", self.res.torch.get("torch")))
        load = m.get("load_average_1min") or self.res.load_average()
        if load:
            facts.append(("load average (1 min) during the runs", f"{load[0]:.1f} to {load[1]:.1f}"))
        if m.get("unknown"):
            facts.append(("not in the logs", ", ".join(m["unknown"])))
        self.emit("| fact | value |")
        self.emit("|---|---|")
        for k, v in facts:
            if v not in (None, "", "None"):
                self.emit(f"| {k} | {v} |")
        self.emit()

    def ceilings_section(self, device):
        compute, memory = self.roofs(device)
        self.emit("| ceiling | measured | row |")
        self.emit("|---|---|---|")
        for c in compute + memory:
            self.emit(f"| {c['what']} | {c['value']:,.1f} {c['unit']} | `{c['row']}` ({c['source']}) |")
        if compute and memory:
            ridge = compute[0]["per_second"] / memory[0]["per_second"]
            self.emit()
            self.emit(f"Ridge point: {ridge:,.1f} FLOP/byte (a kernel below it is bound by memory, above it by "
                      f"compute).")
        if device == "gpu" and compute:
            self.emit("The GPU's compute roofs are its fastest measured GEMMs (cuBLASLt through minivl's matmul), "
                      "not the data-sheet peaks; the memory roof is a device-to-device copy of a buffer far larger "
                      "than L2.")
        if device == "cpu" and compute:
            self.emit("The CPU roofs are the rate while the threads run (per-thread CPU time, summed over threads); "
                      "kernel rows are wall time, so on a loaded machine they sit lower than the hardware allows "
                      "(the tables give each row's main-thread CPU time beside its wall time: far below it, "
                      "other processes held the cores).")
        self.emit()

    def kernel_table(self, kernel, rows, shape=None):
        """The rows at one shape (shape given) or every row, with rate, % of roof and the peer ratio."""
        metric = bench_results.METRIC[kernel]
        unit, scale = ("GB/s", 1e9) if metric == "bytes" else (("TFLOP/s", 1e12) if rows[0].device == "gpu"
                                                                 else ("GFLOP/s", 1e9))
        at = self.ordered([r for r in rows if shape is None or r.shape == shape])
        if shape is None:
            at.sort(key=lambda r: (r.flops or r.bytes, r.shape_key()))
        cpu = rows[0].device == "cpu"
        self.emit(f"| {'implementation' if shape else 'shape | implementation'} | pass | dtype | time |"
                  + (" CPU time (main thread) |" if cpu else "") + f" {unit} | % of roof | peer time / this |")
        self.emit("|---|---|---|---|---|---|---|" + ("---|" if shape is None else "") + ("---|" if cpu else ""))
        for r in at:
            peers = [p for p in rows if p.is_peer and p.shape == r.shape and p.pass_ == r.pass_ and p.dtype == r.dtype]
            vs = f"{num(min(p.seconds for p in peers) / r.seconds)}×" if peers and not r.is_peer else ""
            pct = self.percent_of_roof(r)
            lead = "" if shape else f"{shape_text(kernel, r.shape)} | "
            cpu_time = (f" {fmt_time(r.cpu_seconds)} |" if r.cpu_seconds else " |") if cpu else ""
            self.emit(f"| {lead}{r.label} | {r.pass_} | {r.dtype} | {fmt_time(r.seconds)} |{cpu_time} "
                      f"{num(r.rate() / scale)} | {'' if pct is None else num(pct) + ' %'} | {vs} |")
        self.emit()

    def kernel_section(self, kernel, device):
        rows = self.kernel_rows(kernel, device)
        if not rows:
            return
        self.emit(f"### {KERNEL_TITLES[kernel]} ({self.device_name(device)})")
        self.emit()
        self.emit(f"Lesson: [{KERNEL_DOCS[kernel]}](../../../{KERNEL_DOCS[kernel]}). "
                  + ("Rates in bytes moved per second (the kernel is memory-bound)." if
                     bench_results.METRIC[kernel] == "bytes" else "Rates in FLOPs per second."))
        self.emit()
        shape = self.representative_shape(rows)
        self.image(self.ladder_figure(kernel, device, rows, shape), f"{kernel} version ladder on {device}")
        self.image(self.size_figure(kernel, device, rows), f"{kernel} speed against size on {device}")
        self.emit(f"At {shape_text(kernel, shape)} (the ladder's shape). \"peer time / this\" above 1: minivl is "
                  "faster than the fastest peer on the same call.")
        self.emit()
        self.kernel_table(kernel, rows, shape)
        self.emit(f"<details><summary>every {kernel} row on this device ({len(rows)})</summary>")
        self.emit()
        self.kernel_table(kernel, rows)
        self.emit("</details>")
        self.emit()

    def unplotted_section(self):
        failed = [r for r in self.res.rows if not r.ok]
        other = [r for r in self.res.rows if r.ok and r.kernel is None]
        if other:
            self.emit("## Other benchmarks")
            self.emit()
            self.emit("| benchmark | time | counters |")
            self.emit("|---|---|---|")
            for r in other:
                counters = ", ".join(f"{k} {v:,.4g}" for k, v in r.counters.items()
                                     if isinstance(v, float) and k not in ("real_time", "cpu_time", "iterations"))
                self.emit(f"| `{r.name}` | {fmt_time(r.seconds)} | {counters} |")
            self.emit()
        if failed:
            self.emit("## Rows without a time")
            self.emit()
            self.emit("| why | rows |")
            self.emit("|---|---|")
            by_error = {}
            for r in failed:
                by_error.setdefault(r.error or "no time", []).append(r.name)
            for error, names in sorted(by_error.items(), key=lambda e: -len(e[1])):
                shown = ", ".join(f"`{n}`" for n in names[:3]) + (f" and {len(names) - 3} more" if len(names) > 3 else "")
                self.emit(f"| {error.replace('|', '/')} | {shown} |")
            self.emit()

    def build(self):
        name = os.path.basename(os.path.normpath(self.folder))
        self.emit(f"# Benchmark report: {name}")
        self.emit()
        self.emit(f"Generated by `tools/bench_report.py` from {', '.join(self.res.sources)}. Every rate is "
                  "recomputed from the row's time and the FLOP and byte conventions of `tools/bench_results.py` "
                  "(the benchmarks' own); peers ran in the same run. Notes: " + ("; ".join(self.res.notes) or "none")
                  + ".")
        self.emit()
        self.machine_section()
        for device in self.res.devices():
            self.emit(f"## {self.device_name(device)}")
            self.emit()
            self.ceilings_section(device)
            self.image(self.roofline_figure(device), f"roofline of {device}")
            if self.roofs(device)[0]:
                self.emit("Points: every kernel's implementations at the shape the most of them reached (the tables "
                          "below name it); filled circles are minivl, hollow squares its peers.")
                self.emit()
            for kernel in KERNEL_ORDER:
                self.kernel_section(kernel, device)
        self.unplotted_section()
        path = os.path.join(self.folder, "report.md")
        open(path, "w").write("\n".join(self.lines).rstrip() + "\n")
        return path


def dedupe(points):
    """One point per size (x to two significant digits; the fastest shape of that size), so that a
    line does not zig-zag between shapes of about equal size."""
    best = {}
    for x, y in points:
        key = float(f"{x:.2g}")
        if key not in best or y > best[key][1]:
            best[key] = (x, y)
    return sorted(best.values())


def spread_labels(points):
    """Annotation sides: within a kernel, the points left of the cluster's middle are labelled on
    their left, the others on their right; near the right edge, on the left (bench_plots moves
    labels that would still overlap)."""
    for kernel in {p["kernel"] for p in points}:
        mine = [p for p in points if p["kernel"] == kernel]
        xs = sorted({round(math.log10(p["intensity"]), 3) for p in mine})
        middle = (xs[0] + xs[-1]) / 2
        for p in mine:
            p["side"] = -1 if len(xs) > 1 and math.log10(p["intensity"]) < middle else 1
    right_edge = max(math.log10(p["intensity"]) for p in points) - 0.5 if points else 0
    for p in points:
        if math.log10(p["intensity"]) >= right_edge:
            p["side"] = -1  # the last decade: a label on the right would leave the axes


def num(value):
    """Three significant digits without exponents (0.00412, 4.12, 412, 4,120)."""
    if value >= 100:
        return f"{value:,.0f}"
    return f"{value:.3g}" if value >= 0.001 else f"{value:.1e}"


def fmt_time(seconds):
    for unit, scale in (("s", 1.0), ("ms", 1e-3), ("us", 1e-6)):
        if seconds >= scale:
            return f"{seconds / scale:.3g} {unit}"
    return f"{seconds * 1e9:.3g} ns"


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("folder", help="a results folder, e.g. bench/results/2026-11-27-h100")
    a = p.parse_args()
    if not os.path.isdir(a.folder):
        sys.exit(f"bench_report: {a.folder} is not a folder")
    report = Report(a.folder)
    if not report.res.rows:
        sys.exit(f"bench_report: no benchmark rows in {a.folder} (bench_*.json, bench_*.txt or torch.json)")
    print(f"bench_report: wrote {report.build()}")


if __name__ == "__main__":
    main()
