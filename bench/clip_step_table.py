#!/usr/bin/env python3
"""The CLIP training-step table of tools/gpu_check.sh: minivl bench-step beside PyTorch on one GPU.

  python3 bench/clip_step_table.py OUT_DIR

Reads OUT_DIR/step_minivl_<config>.json (one `minivl bench-step` JSON each) and OUT_DIR/step_torch.json
(bench/torch_clip_step.py's, possibly cut short by a time-out) and prints, per config, the median step
time of minivl, PyTorch eager and torch.compile, the ratios minivl / eager and minivl / compiled
(below 1: minivl is faster), MFU, peak memory, and minivl's per-step counters. Missing sides print
why (PyTorch or transformers absent, a time-out, an error).
"""
import glob
import json
import os
import sys


def load(path):
    try:
        with open(path) as f:
            return json.load(f)
    except (OSError, ValueError) as e:
        return {"error": f"{os.path.basename(path)}: {e}"}


def fmt(v, spec, width):
    return format(v, spec).rjust(width) if isinstance(v, (int, float)) else str(v if v is not None else "-").rjust(width)


def main():
    out = sys.argv[1] if len(sys.argv) > 1 else "."
    ours = {}
    for path in sorted(glob.glob(os.path.join(out, "step_minivl_*.json"))):
        name = os.path.basename(path)[len("step_minivl_"):-len(".json")]
        ours[name] = load(path)
    torch_doc = load(os.path.join(out, "step_torch.json"))
    peers = {}
    for r in torch_doc.get("results", []):
        name = os.path.splitext(os.path.basename(r.get("config", "")))[0]
        peers[(name, r.get("mode"))] = r
    print("")
    print("  CLIP training step (bf16, f32 master weights, fused AdamW), median ms over 20 steps")
    if "skipped" in torch_doc:
        print(f"  PyTorch side skipped: {torch_doc['skipped']}")
    elif "error" in torch_doc:
        print(f"  PyTorch side: {torch_doc['error']}")
    elif torch_doc.get("device"):
        print(f"  PyTorch {torch_doc.get('torch')} / transformers {torch_doc.get('transformers')} on {torch_doc['device']}")
    print(f"  {'config':12s} {'minivl':>8s} {'eager':>8s} {'compiled':>9s} {'/eager':>7s} {'/compiled':>9s}"
          f" {'MFU':>6s} {'eagerMFU':>8s} {'mem GiB':>8s} {'eager GiB':>9s}  launches syncs allocs")
    names = sorted(set(ours) | {n for n, _ in peers})
    for name in names:
        m = ours.get(name, {"error": "not run"})
        e, c = peers.get((name, "eager"), {}), peers.get((name, "compile"), {})
        if "step_ms_median" not in m:
            print(f"  {name:12s} minivl: {str(m.get('error', m))[:100]}")
            continue
        ms = m["step_ms_median"]
        em, cm = e.get("step_ms_median"), c.get("step_ms_median")
        gib = lambda b: b / 2**30 if isinstance(b, (int, float)) else None
        print(f"  {name:12s} {fmt(ms, '.2f', 8)} {fmt(em, '.2f', 8)} {fmt(cm, '.2f', 9)}"
              f" {fmt(ms / em if em else None, '.3f', 7)} {fmt(ms / cm if cm else None, '.3f', 9)}"
              f" {fmt(m.get('mfu'), '.1%', 6)} {fmt(e.get('mfu'), '.1%', 8)}"
              f" {fmt(gib(m.get('peak_memory_bytes')), '.2f', 8)} {fmt(gib(e.get('peak_memory_bytes')), '.2f', 9)}"
              f"  {m.get('launches_per_step')} {m.get('syncs_per_step')} {m.get('device_allocs_per_step')}")
        for side, r in (("eager", e), ("compiled", c)):
            if "error" in r:
                print(f"  {'':12s} {side}: {r['error'][:100]}")
    if names:
        print("  (ratio < 1: minivl's step is faster; MFU from the FLOP count in bench/torch_clip_step.py)")


if __name__ == "__main__":
    main()
