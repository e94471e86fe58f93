#!/usr/bin/env python3
"""The facts of the machine a benchmark run measured, written beside the results (machine.json).

  machine_facts.py --slug                      the results folder's machine name: the GPU's (when
                                               nvidia-smi sees one) or the CPU model's, slugged
  machine_facts.py --out DIR/machine.json [--results DIR] [--build BUILD]
                                               CPU (model, cores, ISA flags, caches), memory, OS,
                                               compiler, library versions, GPU (nvidia-smi), git
                                               commit; with --results, the ceilings the run measured
                                               (bench_machine: FMA peak and copy; bench_cuda: GEMM
                                               and copy)
  machine_facts.py --from-logs DIR             machine.json for an older GPU run that kept only logs
                                               (device.log's nvidia-smi output, the console headers,
                                               torch.json); says which facts it could not know

Standard library only.
"""
import argparse
import datetime
import glob
import json
import os
import platform
import re
import shutil
import subprocess
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import bench_results  # noqa: E402

# The ISA flags that decide which kernels a CPU can run (the rest of /proc/cpuinfo's list is not kept).
ISA_FLAGS = ["sse4_2", "avx", "avx2", "fma", "f16c", "avx512f", "avx512dq", "avx512bw", "avx512vl", "avx512_bf16",
             "avx512_fp16", "avx512_vnni", "avx_vnni", "amx_tile", "amx_bf16", "hypervisor"]
GPU_QUERY = "name,memory.total,driver_version,clocks.max.sm,clocks.max.mem,compute_cap"


def run(cmd):
    try:
        return subprocess.run(cmd, capture_output=True, text=True, timeout=20).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return ""


def slug(text):
    text = re.sub(r"\(r\)|\(tm\)|\bcpu\b|@.*$|\bprocessor\b", "", text.lower())
    return re.sub(r"[^a-z0-9]+", "-", text).strip("-") or "unknown"


def cpu_facts():
    info = {}
    try:
        blocks = open("/proc/cpuinfo").read().strip().split("\n\n")
    except OSError:
        blocks = []
    processors = [dict(re.split(r"\s*:\s*", line, maxsplit=1) for line in b.splitlines() if ":" in line)
                  for b in blocks]
    first = processors[0] if processors else {}
    flags = set(first.get("flags", "").split())
    cores = {(p.get("physical id"), p.get("core id")) for p in processors}
    info.update(model=first.get("model name", platform.processor() or "unknown"),
                vendor=first.get("vendor_id", ""), family=first.get("cpu family", ""),
                model_number=first.get("model", ""), logical_cpus=os.cpu_count(),
                physical_cores=len(cores) if cores else None,
                mhz=float(first["cpu MHz"]) if first.get("cpu MHz") else None,
                isa_flags=[f for f in ISA_FLAGS if f in flags])
    caches = []
    for index in sorted(glob.glob("/sys/devices/system/cpu/cpu0/cache/index*")):
        try:
            level, kind, size = (open(os.path.join(index, f)).read().strip() for f in ("level", "type", "size"))
        except OSError:
            continue
        caches.append(f"L{level} {kind} {size}")
    info["caches_per_core"] = caches
    return info


def memory_gib():
    try:
        for line in open("/proc/meminfo"):
            if line.startswith("MemTotal:"):
                return round(int(line.split()[1]) / 2**20, 1)
    except OSError:
        pass
    return None


def package_version(name):
    return run(["dpkg-query", "-W", "-f=${Version}", name]) or None


def compiler_facts(build):
    """The compilers the build used (CMake's own records of them) and its build type."""
    facts = {}
    for path in glob.glob(os.path.join(build, "CMakeFiles", "*", "CMake*Compiler.cmake")):
        text = open(path).read()
        for lang, field in (("CXX", "cxx"), ("CUDA", "cuda")):
            version = re.search(rf'set\(CMAKE_{lang}_COMPILER_VERSION "([^"]+)"\)', text)
            ident = re.search(rf'set\(CMAKE_{lang}_COMPILER_ID "([^"]+)"\)', text)
            if version:
                facts[field] = f"{ident.group(1) if ident else lang} {version.group(1)}"
    cache = os.path.join(build, "CMakeCache.txt")
    if os.path.exists(cache):
        m = re.search(r"^CMAKE_BUILD_TYPE:\w+=(.*)$", open(cache).read(), re.M)
        facts["build_type"] = m.group(1) if m else ""
    return facts


def gpu_facts():
    if not shutil.which("nvidia-smi"):
        return []
    out = run(["nvidia-smi", f"--query-gpu={GPU_QUERY}", "--format=csv,noheader"])
    gpus = []
    for line in out.splitlines():
        fields = [f.strip() for f in line.split(",")]
        if len(fields) == len(GPU_QUERY.split(",")) and "failed" not in line.lower():
            gpus.append(dict(zip(GPU_QUERY.split(","), fields)))
    return gpus


def git_commit():
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    commit = run(["git", "-C", root, "rev-parse", "--short", "HEAD"])
    dirty = run(["git", "-C", root, "status", "--porcelain", "--untracked-files=no"])
    return commit + ("+local changes" if dirty else "") if commit else None


def machine_slug():
    gpus = gpu_facts()
    return slug(gpus[0]["name"]) if gpus else slug(cpu_facts()["model"])


def facts(build, results):
    doc = dict(date=datetime.date.today().isoformat(), git_commit=git_commit(), cpu=cpu_facts(),
               memory_gib=memory_gib(), os=f"{platform.system()} {platform.release()}",
               debian=open("/etc/debian_version").read().strip() if os.path.exists("/etc/debian_version") else None,
               compiler=compiler_facts(build), gpus=gpu_facts(),
               libraries={k: package_version(v) for k, v in (("openblas", "libopenblas0-pthread"),
                                                             ("google_benchmark", "libbenchmark-dev"),
                                                             ("matplotlib", "python3-matplotlib"))},
               omp_num_threads=os.environ.get("OMP_NUM_THREADS"))
    if results:
        doc["measured"] = bench_results.measured_ceilings(bench_results.Results(results))
        loads = bench_results.Results(results).load_average()
        doc["load_average_1min"] = list(loads) if loads else None
    return doc


def from_logs(folder):
    """machine.json for a run that kept logs only (tools/gpu_check.sh before JSON results)."""
    res = bench_results.Results(folder)
    doc = dict(date=None, cpu={}, gpus=[], libraries={}, unknown=[])
    m = re.match(r"(\d{4}-\d\d-\d\d)", os.path.basename(os.path.normpath(folder)))
    doc["date"] = m.group(1) if m else None
    ctx = next(iter(res.contexts.values()), {})
    if ctx.get("num_cpus"):
        doc["cpu"] = dict(model="unknown (not in the logs)", logical_cpus=ctx["num_cpus"], mhz=ctx.get("mhz_per_cpu"))
    device_log = os.path.join(folder, "device.log")
    if os.path.exists(device_log):
        text = open(device_log).read()
        m = re.search(r"^name, memory.total \[MiB\], driver_version, clocks.max.sm \[MHz\]\n(.+)$", text, re.M)
        if m:
            name, memory, driver, sm = [f.strip() for f in m.group(1).split(",")]
            doc["gpus"].append({"name": name, "memory.total": memory, "driver_version": driver, "clocks.max.sm": sm})
        m = re.search(r"CUDA Version: ([\d.]+)", text)
        if m:
            doc["libraries"]["cuda_driver_api"] = m.group(1)
    if res.torch:
        doc["libraries"]["torch"] = res.torch.get("torch")
    doc["measured"] = bench_results.measured_ceilings(res)
    loads = res.load_average()
    doc["load_average_1min"] = list(loads) if loads else None
    doc["unknown"] = ["CPU model and ISA flags", "compiler", "cuDNN version", "git commit (see the run's notes)"]
    doc["source"] = "tools/machine_facts.py --from-logs (device.log, the console headers, torch.json)"
    return doc


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--slug", action="store_true")
    p.add_argument("--out")
    p.add_argument("--results")
    p.add_argument("--build", default="build")
    p.add_argument("--from-logs", metavar="DIR")
    a = p.parse_args()
    if a.slug:
        print(machine_slug())
    elif a.from_logs:
        path = os.path.join(a.from_logs, "machine.json")
        json.dump(from_logs(a.from_logs), open(path, "w"), indent=1)
        print(f"machine_facts: wrote {path}")
    elif a.out:
        json.dump(facts(a.build, a.results), open(a.out, "w"), indent=1)
    else:
        p.error("give --slug, --out or --from-logs")


if __name__ == "__main__":
    main()
