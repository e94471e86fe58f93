"""Reads one benchmark results folder (bench/results/<date>-<machine>/) into rows that
tools/bench_report.py charts.

A folder holds, per benchmark binary, Google Benchmark JSON (bench_<name>.json, written by
`make bench` and tools/gpu_check.sh) or, where there is no JSON, its console output
(bench_<name>.txt: the older GPU runs kept only that); PyTorch's peer rows (torch.json, from
bench/compare_torch.py); and machine.json (tools/machine_facts.py).

Every row names its kernel, device, implementation (minivl or a peer), version, pass, dtype and
shape, with the FLOPs and the fewest bytes that pass must move (the conventions the benchmarks
state in their headers), so that rates are recomputed the same way for every source.
Benchmark names this module does not know are kept as kernel None (the report lists them).
"""
import json
import os
import re

TIME_UNITS = {"ns": 1e-9, "us": 1e-6, "ms": 1e-3, "s": 1.0}
DTYPE_BYTES = {"f32": 4, "f64": 8, "bf16": 2, "f16": 2}
SI = {"": 1.0, "k": 1e3, "M": 1e6, "G": 1e9, "T": 1e12, "P": 1e15, "m": 1e-3, "u": 1e-6, "n": 1e-9}
# What the report calls each kernel's rate; layernorm and copy are memory-bound by construction.
METRIC = {"gemm": "flops", "attention": "flops", "contrastive": "flops", "fma": "flops",
          "layernorm": "bytes", "copy": "bytes"}
# FLOPs per element of layernorm, only to place it on the roofline (memory-bound at any count):
# forward sum, centred square-accumulate (3), scale, weight, bias; backward about twice that.
LAYERNORM_FLOPS_PER_ELEMENT = {"fwd": 8.0, "bwd": 16.0, "fwd+bwd": 24.0}


class Row:
    """One measured (or failed) benchmark call."""

    def __init__(self, name, kernel, device, impl, seconds, *, version=None, variant="", pass_="fwd",
                 dtype="f32", shape=None, flops=0.0, bytes_=0.0, error=None, counters=None, source=""):
        self.name, self.kernel, self.device, self.impl = name, kernel, device, impl
        self.seconds, self.version, self.variant, self.pass_ = seconds, version, variant, pass_
        self.dtype, self.shape, self.flops, self.bytes = dtype, shape or {}, flops, bytes_
        self.error, self.counters, self.source = error, counters or {}, source
        self.cpu_seconds = None  # Google Benchmark's cpu_time: the main thread's CPU time per call

    @property
    def ok(self):
        return self.error is None and self.seconds is not None and self.seconds > 0

    @property
    def is_peer(self):
        return self.impl != "minivl"

    def rate(self, metric=None):
        """FLOP/s or bytes/s (metric "flops" / "bytes"; default: the kernel's own)."""
        metric = metric or METRIC.get(self.kernel, "flops")
        work = self.flops if metric == "flops" else self.bytes
        return work / self.seconds if self.ok and work else None

    @property
    def intensity(self):
        return self.flops / self.bytes if self.flops and self.bytes else None

    @property
    def label(self):
        """minivl v3 / OpenBLAS / ... (no pass or dtype)."""
        if self.is_peer:
            return self.impl
        text = "minivl" if self.version is None else f"minivl v{self.version}"
        return text + (f" {self.variant}" if self.variant else "")

    def shape_key(self):
        return tuple(sorted(self.shape.items()))

    def __repr__(self):
        return f"Row({self.name!r}, {self.kernel}, {self.label}, {self.pass_}, {self.seconds})"


# ---- work and bytes per kernel ---------------------------------------------------------------

def gemm_work(m, n, k, dtype, batch=1):
    s = DTYPE_BYTES[dtype]
    return 2.0 * batch * m * n * k, batch * (m * k + k * n + m * n) * s


def attention_work(b, h, tq, tk, d, causal, pass_, dtype):
    """FlashAttention's FLOP convention (bench_attention.cpp); bytes: the tensors a pass must touch."""
    fwd = 4.0 * b * h * tq * tk * d * (0.5 if causal else 1.0)
    s, lse = DTYPE_BYTES[dtype], 4.0 * b * h * tq
    if pass_ == "fwd":
        return fwd, (2 * b * h * tq * d + 2 * b * h * tk * d) * s + lse
    return 2.5 * fwd, (4 * b * h * tq * d + 4 * b * h * tk * d) * s + lse


def layernorm_work(r, c, pass_, dtype, residual=False):
    """bench_layernorm.cpp's pass_bytes (weights counted at the activation's size)."""
    s, rc = DTYPE_BYTES[dtype], float(r) * c
    fwd = rc * s * (4 if residual else 2) + 2 * c * s + 8 * r
    bwd = rc * s * (4 if residual else 3) + 3 * c * s + 8 * r
    bytes_ = {"fwd": fwd, "bwd": bwd, "fwd+bwd": fwd + bwd}[pass_]
    return LAYERNORM_FLOPS_PER_ELEMENT[pass_] * rc, bytes_


def contrastive_work(n, d, dtype):
    """Forward + backward: 4 GEMM-equivalents of 2 N^2 d (bench_contrastive.cpp); bytes: read both
    embeddings, write both gradients (the (N, N) logits never exist in the fused kernels)."""
    return 8.0 * n * n * d, 4.0 * n * d * DTYPE_BYTES[dtype]


# ---- names -> rows ---------------------------------------------------------------------------

def clean_name(name):
    return re.sub(r"/(iterations:\d+|manual_time|real_time|min_time:[\d.]+s?|repeats:\d+|threads:\d+)", "", name)


def _ints(parts):
    return [int(p) for p in parts]


def _pass(code):
    return {"0": "fwd", "1": "bwd"}[code]


def _gemm_cpu(fam, args):
    """BM_GemmCpu/M/N/K (one version), BM_GemmCpu/<v>/M/N/K, BM_GemmCpuV<v>[<variant>]/M/N/K."""
    tag = fam[len("BM_GemmCpu"):].lstrip("_")
    version, variant = None, ""
    m = re.fullmatch(r"[vV](\d+)_?(\w*)", tag)
    if m:
        version, variant = int(m.group(1)), m.group(2).lower()
    elif tag:
        variant = tag.lower()
    nums = _ints(args)
    if len(nums) == 4 and version is None:
        version, nums = nums[0], nums[1:]
    return version, variant, nums


def parse_name(name, entry_device_hint=None):
    """(kernel, device, impl, version, variant, pass, dtype, shape, flops, bytes) or None."""
    parts = clean_name(name).split("/")
    fam, args = parts[0], parts[1:]
    try:
        return _parse(fam, args)
    except (ValueError, KeyError, IndexError):
        return None


def _parse(fam, args):
    if fam == "BM_GemmCpuBatched" or fam == "BM_GemmOpenBLASBatched":
        batch, m, n, k = _ints(args)
        impl = "minivl" if fam == "BM_GemmCpuBatched" else "OpenBLAS (loop)"
        f, b = gemm_work(m, n, k, "f32", batch)
        return "gemm", "cpu", impl, None, "batched", "fwd", "f32", dict(batch=batch, M=m, N=n, K=k), f, b
    if fam.startswith("BM_GemmCpu"):
        version, variant, (m, n, k) = _gemm_cpu(fam, args)
        f, b = gemm_work(m, n, k, "f32")
        return "gemm", "cpu", "minivl", version, variant, "fwd", "f32", dict(M=m, N=n, K=k), f, b
    if fam == "BM_GemmOpenBLAS":
        m, n, k = _ints(args)
        f, b = gemm_work(m, n, k, "f32")
        return "gemm", "cpu", "OpenBLAS", None, "", "fwd", "f32", dict(M=m, N=n, K=k), f, b
    if fam in ("BM_GemmCuda", "BM_GemmCudaF32", "GemmCuda", "GemmCudaF32"):
        m, n, k = _ints(args)
        dtype = "f32" if fam.endswith("F32") else "bf16"
        impl = "minivl" if fam.startswith("BM_") else "PyTorch"
        f, b = gemm_work(m, n, k, dtype)
        return "gemm", "gpu", impl, None, "", "fwd", dtype, dict(M=m, N=n, K=k), f, b
    if fam in ("BM_CopyCuda", "CopyCuda", "BM_CpuCopy"):
        (n,) = _ints(args)
        device = "cpu" if fam == "BM_CpuCopy" else "gpu"
        impl = "PyTorch" if fam == "CopyCuda" else "minivl"
        return "copy", device, impl, None, "", "fwd", "f32", dict(bytes=n), 0.0, 2.0 * n
    if fam == "BM_CpuFmaPeak":
        (width,) = _ints(args)
        return "fma", "cpu", "minivl", None, f"{width}-bit", "fwd", "f32", dict(width=width), 0.0, 0.0
    if fam.startswith("BM_Attention") or fam.startswith("AttentionSdpa"):
        return _attention(fam, args)
    if fam.startswith("BM_LayerNorm") or fam == "LayerNormTorch":
        return _layernorm(fam, args)
    if fam.startswith("BM_Clip"):
        return _contrastive(fam, args)
    return None


def _attention_shape(nums, with_version):
    """Shape fields; the older runs named one T for both (B/H/T/D/causal/...)."""
    tail = 3 if with_version else 2  # causal, [version,] pass
    if len(nums) == 5 + tail:
        b, h, tq, tk, d = nums[:5]
    elif len(nums) == 4 + tail:
        b, h, tq, d = nums[:4]
        tk = tq
    else:
        raise ValueError("attention shape")
    return b, h, tq, tk, d, nums[-tail:]


def _attention(fam, args):
    peers = {"BM_AttentionCudnn": ("gpu", "cuDNN"), "AttentionSdpaFlash": ("gpu", "PyTorch SDPA (flash)"),
             "AttentionSdpaCudnn": ("gpu", "PyTorch SDPA (cuDNN)"), "AttentionSdpaMath": ("gpu", "PyTorch SDPA (math)")}
    nums = _ints(args)
    if fam in ("BM_AttentionCpu", "BM_AttentionCuda"):
        with_version = fam == "BM_AttentionCuda"
        b, h, tq, tk, d, tail = _attention_shape(nums, with_version)
        version = tail[1] if with_version else None
        device, impl, dtype = ("gpu", "minivl", "bf16") if with_version else ("cpu", "minivl", "f32")
    elif fam in peers:
        b, h, tq, tk, d, tail = _attention_shape(nums, False)
        (device, impl), version, dtype = peers[fam], None, "bf16"
    else:
        return None
    causal, pass_ = bool(tail[0]), _pass(str(tail[-1]))
    f, by = attention_work(b, h, tq, tk, d, causal, pass_, dtype)
    shape = dict(B=b, H=h, Tq=tq, Tk=tk, D=d, causal=int(causal))
    return "attention", device, impl, version, "", pass_, dtype, shape, f, by


def _layernorm(fam, args):
    cpu = {"BM_LayerNormFused": ("minivl", "fwd"), "BM_LayerNormComposed": ("composed ops", "fwd"),
           "BM_LayerNormFusedBackward": ("minivl", "fwd+bwd"),
           "BM_LayerNormComposedBackward": ("composed ops", "fwd+bwd")}
    if fam in cpu:
        r, c = _ints(args)
        impl, pass_ = cpu[fam]
        f, b = layernorm_work(r, c, pass_, "f32")
        return "layernorm", "cpu", impl, None, "", pass_, "f32", dict(R=r, C=c, residual=0), f, b
    version, residual = None, False
    if fam == "BM_LayerNormCuda" and args[0].isdigit():  # older runs: R/C/version, the bf16 plain forward
        r, c, version = _ints(args)
        dtype, pass_, impl = "bf16", "fwd", "minivl"
    elif fam == "BM_LayerNormCuda":  # dtype/R/C/plain|residual/version/pass
        dtype, (r, c), residual = args[0], _ints(args[1:3]), args[3] == "residual"
        version, pass_, impl = int(args[4]), _pass(args[5]), "minivl"
    elif fam == "BM_LayerNormCudnn":  # dtype/R/C/pass
        dtype, (r, c), pass_, impl = args[0], _ints(args[1:3]), _pass(args[3]), "cuDNN"
    elif fam == "LayerNormTorch":  # dtype/R/C/kind/pass
        dtype, (r, c), residual = args[0], _ints(args[1:3]), args[3] == "residual"
        pass_, impl = _pass(args[4]), "PyTorch"
    else:
        return None
    f, b = layernorm_work(r, c, pass_, dtype, residual)
    return "layernorm", "gpu", impl, version, "", pass_, dtype, dict(R=r, C=c, residual=int(residual)), f, b


def _contrastive(fam, args):
    nums = _ints(args)
    table = {"BM_ClipFused": ("cpu", "minivl", "f32"), "BM_ClipNaive": ("cpu", "naive (materialised)", "f32"),
             "BM_ClipFusedCuda": ("gpu", "minivl", "bf16"), "BM_ClipNaiveCuda": ("gpu", "naive (cuBLAS + CE)", "bf16")}
    if fam not in table:
        return None
    device, impl, dtype = table[fam]
    n, d = nums[:2]
    version = nums[2] if fam == "BM_ClipFusedCuda" else None
    f, b = contrastive_work(n, d, dtype)
    return "contrastive", device, impl, version, "", "fwd+bwd", dtype, dict(N=n, d=d), f, b


def make_row(name, seconds, error=None, counters=None, source=""):
    parsed = parse_name(name)
    if parsed is None:
        return Row(clean_name(name), None, "", "", seconds, error=error, counters=counters, source=source)
    kernel, device, impl, version, variant, pass_, dtype, shape, flops, bytes_ = parsed
    return Row(clean_name(name), kernel, device, impl, seconds, version=version, variant=variant, pass_=pass_,
               dtype=dtype, shape=shape, flops=flops, bytes_=bytes_, error=error, counters=counters, source=source)


# ---- sources -----------------------------------------------------------------------------------

def load_json_lenient(path):
    """A benchmark JSON file, also when a time-out cut it short (the complete entries are kept)."""
    text = open(path, errors="replace").read()
    try:
        return json.loads(text)
    except ValueError:
        end = text.rfind("\n    }")
        if end < 0:
            raise
        return json.loads(text[:end + 6] + "\n  ]\n}")


def entry_seconds(entry):
    """Seconds per call: the median counter when the row has one (the CUDA rows), else real time."""
    if "median_ms" in entry and entry["median_ms"]:
        return entry["median_ms"] * 1e-3
    t = entry.get("real_time")
    return t * TIME_UNITS[entry.get("time_unit", "ns")] if t else None


def rows_from_json(doc, source):
    out = []
    for e in doc.get("benchmarks", []):
        if e.get("run_type", "iteration") != "iteration":
            continue  # aggregates (mean, median, stddev) of repetitions
        error = e.get("error_message") if e.get("error_occurred") else None
        counters = {k: v for k, v in e.items() if isinstance(v, (int, float)) and k not in (
            "family_index", "per_family_instance_index", "repetitions", "repetition_index", "threads")}
        if e.get("label"):
            counters["label"] = e["label"]
        row = make_row(e["name"], None if error else entry_seconds(e), error, counters, source)
        if e.get("cpu_time") and not error:
            row.cpu_seconds = e["cpu_time"] * TIME_UNITS[e.get("time_unit", "ns")]
        out.append(row)
    return out


CONSOLE_ROW = re.compile(r"^(BM_\S+)\s+(?:ERROR OCCURRED: '(.*)'|([\d.]+) (ns|us|ms|s)\s+([\d.]+) (ns|us|ms|s)"
                         r"\s+(\d+)(.*))$")
COUNTER = re.compile(r"(\S+?)=([-\d.e+]+)([kMGTPmun]?)(?:/s)?(?=\s|$)")


def parse_console(text):
    """Google Benchmark's console table -> (context, entries shaped like its JSON entries)."""
    context, entries = {}, []
    for line in text.splitlines():
        line = line.rstrip()
        if m := re.match(r"^Run on \((\d+) X ([\d.]+) MHz CPU", line):
            context["num_cpus"], context["mhz_per_cpu"] = int(m.group(1)), float(m.group(2))
        elif m := re.match(r"^Load Average: ([\d., ]+)$", line):
            context["load_avg"] = [float(v) for v in m.group(1).split(",")]
        elif m := re.match(r"^(\d{4}-\d\d-\d\dT[\d:+-]+)$", line):
            context["date"] = m.group(1)
        elif m := re.match(r"^Running (\S+)$", line):
            context["executable"] = m.group(1)
        m = CONSOLE_ROW.match(line)
        if not m:
            continue
        if m.group(2) is not None:
            entries.append({"name": m.group(1), "error_occurred": True, "error_message": m.group(2)})
            continue
        entry = {"name": m.group(1), "real_time": float(m.group(3)), "time_unit": m.group(4),
                 "cpu_time": float(m.group(5)) * TIME_UNITS[m.group(6)] / TIME_UNITS[m.group(4)],
                 "iterations": int(m.group(7))}
        for key, value, suffix in COUNTER.findall(m.group(8)):
            entry[key] = float(value) * SI[suffix]
        entries.append(entry)
    return context, entries


def rows_from_torch(doc, source):
    rows = []
    for r in doc.get("results", []):
        us = r.get("us")
        rows.append(make_row(r["name"], us * 1e-6 if us else None, r.get("error"), {}, source))
    return rows


def naive_attention_rows(rows):
    """The CPU attention rows time the naive materialised kernels on the same call (counter
    naive_over_tiled, in CPU time): the naive peer's time is the tiled row's times that ratio."""
    out = []
    for r in rows:
        ratio = r.counters.get("naive_over_tiled")
        if r.kernel == "attention" and r.device == "cpu" and r.ok and ratio:
            out.append(Row(r.name + " (naive)", "attention", "cpu", "naive (materialised)", r.seconds * ratio,
                           pass_=r.pass_, dtype=r.dtype, shape=r.shape, flops=r.flops, bytes_=r.bytes,
                           source=r.source + " (naive_over_tiled)"))
    return out


class Results:
    """Everything one folder holds: rows, the benchmarks' contexts, machine facts."""

    def __init__(self, folder):
        self.folder = folder
        self.rows, self.contexts, self.sources, self.notes = [], {}, [], []
        self.machine = {}
        self._load()

    def _load(self):
        names = sorted(os.listdir(self.folder))
        binaries = sorted({n.rsplit(".", 1)[0] for n in names if re.match(r"bench_\w+\.(json|txt)$", n)})
        for b in binaries:
            json_path, txt_path = os.path.join(self.folder, b + ".json"), os.path.join(self.folder, b + ".txt")
            if os.path.exists(json_path):
                try:
                    doc = load_json_lenient(json_path)
                except ValueError as e:
                    self.notes.append(f"{b}.json is not readable JSON ({e}); skipped")
                    continue
                self.contexts[b] = doc.get("context", {})
                self.rows += rows_from_json(doc, b + ".json")
                self.sources.append(b + ".json")
            else:
                context, entries = parse_console(open(txt_path, errors="replace").read())
                if not entries:
                    continue
                self.contexts[b] = context
                self.rows += rows_from_json({"benchmarks": entries}, b + ".txt")
                self.sources.append(b + ".txt (console output)")
        torch_path = os.path.join(self.folder, "torch.json")
        if os.path.exists(torch_path):
            doc = json.load(open(torch_path))
            self.torch = {k: v for k, v in doc.items() if k != "results"}
            self.rows += rows_from_torch(doc, "torch.json")
            self.sources.append("torch.json (PyTorch peer)")
        else:
            self.torch = {}
        self.rows += naive_attention_rows(self.rows)
        machine_path = os.path.join(self.folder, "machine.json")
        if os.path.exists(machine_path):
            self.machine = json.load(open(machine_path))

    def select(self, **conditions):
        out = []
        for r in self.rows:
            if all((getattr(r, k) in v) if isinstance(v, (set, list, tuple)) else getattr(r, k) == v
                   for k, v in conditions.items()):
                out.append(r)
        return out

    def devices(self):
        return sorted({r.device for r in self.rows if r.kernel and r.ok}, key=lambda d: d != "gpu")

    def load_average(self):
        loads = [c["load_avg"][0] for c in self.contexts.values() if c.get("load_avg")]
        return (min(loads), max(loads)) if loads else None

    def context_value(self, key):
        for c in self.contexts.values():
            if c.get(key):
                return c[key]
        return None


def measured_ceilings(res):
    """The roofs the run measured: {device: {compute: [...], memory: [...]}} with the row behind each."""
    out = {}

    def add(device, kind, what, short, value, unit, row, dtype="f32"):
        scale = {"GFLOP/s": 1e9, "TFLOP/s": 1e12, "GB/s": 1e9}[unit]
        out.setdefault(device, {}).setdefault(kind, []).append(
            dict(what=what, short=short, value=round(value, 3), unit=unit, per_second=value * scale, dtype=dtype,
                 row=row.name, source=row.source))

    fma = [r for r in res.select(kernel="fma") if r.ok]
    for r in fma:
        value = r.counters.get("GFLOPS_cpu") or r.counters.get("GFLOPS")
        if value:
            threads = int(r.counters.get("omp_threads", 0))
            isa = {"512-bit": "AVX-512", "256-bit": "AVX2"}.get(r.variant, "scalar")
            add("cpu", "compute", f"f32 FMA peak, {r.variant} vectors, {threads} threads", f"{isa} FMA, f32", value,
                "GFLOP/s", r)
    copies = [r for r in res.select(kernel="copy", impl="minivl") if r.ok]
    for device in ("cpu", "gpu"):
        rows = sorted((r for r in copies if r.device == device), key=lambda r: r.shape["bytes"])
        if rows:
            r = rows[-1]
            gbps = r.counters.get("GBps_cpu") or r.rate("bytes") * 1e-9
            mib = r.shape["bytes"] / 2**20
            add(device, "memory", f"copy of {mib:.0f} MiB (read + write)", f"copy of {mib:.0f} MiB", gbps, "GB/s", r)
    for dtype in ("bf16", "f32"):
        rows = [r for r in res.select(kernel="gemm", device="gpu", impl="minivl", dtype=dtype) if r.ok]
        if rows:
            r = max(rows, key=lambda r: r.rate())
            add("gpu", "compute", f"{dtype} GEMM (minivl: cuBLASLt), best shape", f"{dtype} GEMM (cuBLASLt)",
                r.rate() * 1e-12, "TFLOP/s", r, dtype)
    for key in ("memory_ceiling", "cudnn"):
        value = res.context_value(key)
        if value:
            out.setdefault("context", {})[key] = value
    return out
