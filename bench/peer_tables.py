#!/usr/bin/env python3
"""The attention and layernorm tables of a GPU run: minivl's versions beside cuDNN (same binary)
and PyTorch (bench/compare_torch.py, same run), from the benchmarks' JSON files.

  python3 bench/peer_tables.py OUT_DIR     reads OUT_DIR/bench_attention.json, bench_layernorm.json,
                                           torch.json (any may be missing or cut short by a time-out)

Times are medians (ms for attention, us for layernorm). "x cuDNN" is cuDNN's time over minivl's best
version's, "x flash" / "x torch" likewise: above 1 means minivl is faster. %ceil is achieved bytes/s
over the device-to-device copy of >= 4x L2 measured in the same run; %spec over the card's peak.
"""
import json
import os
import re
import sys

ATTENTION_LABELS = {(256, 12, 50, 50, 64): "ViT-B/32", (64, 12, 197, 197, 64): "ViT-B/16",
                    (32, 16, 257, 257, 64): "ViT-L/14", (16, 16, 577, 577, 64): "ViT-L/14@336",
                    (256, 8, 77, 77, 64): "text", (128, 8, 20, 197, 64): "cross-attn"}


def load_json(path):
    """A benchmark JSON file, also when a time-out cut it short (the complete entries are kept)."""
    try:
        text = open(path, errors="replace").read()
    except OSError:
        return None
    try:
        return json.loads(text)
    except ValueError:
        end = text.rfind("\n    }")
        if end < 0:
            return None
        try:
            return json.loads(text[:end + 6] + "\n  ]\n}")
        except ValueError:
            return None


def rows(doc):
    """name (without the iterations / manual_time suffixes) -> entry."""
    out = {}
    for b in (doc or {}).get("benchmarks", []):
        out[re.sub(r"/(iterations:\d+|manual_time|real_time)", "", b["name"])] = b
    return out


def fmt(v, spec):
    return format(v, spec) if isinstance(v, (int, float)) else str(v)


def cell(entry, key="median_ms", scale=1.0):
    if entry is None:
        return "-"
    if entry.get("error_occurred"):
        return "err"
    v = entry.get(key)
    return v * scale if isinstance(v, (int, float)) else "-"


def ratio(peer, ours):
    return f"{peer / ours:.2f}" if isinstance(peer, float) and isinstance(ours, float) and ours > 0 else "-"


def attention_table(doc, torch_rows):
    r = rows(doc)
    keys = []  # (B, H, Tq, Tk, D, causal, pass) in the order the rows ran
    for name in r:
        m = re.match(r"BM_AttentionCud(?:nn|a)/(\d+)/(\d+)/(\d+)/(\d+)/(\d+)/(\d)/(?:\d+/)?(\d)$", name)
        if m and tuple(int(x) for x in m.groups()) not in keys:
            keys.append(tuple(int(x) for x in m.groups()))
    versions = sorted({int(n.split("/")[7]) for n in r if n.startswith("BM_AttentionCuda/") and n.count("/") == 8})
    head = f"  {'shape':13s} {'B H Tq Tk D c':22s} {'pass':4s} " + " ".join(f"{'v%d ms' % v:>8s}" for v in versions)
    head += f" {'cuDNN ms':>8s} {'flash ms':>8s} {'sdpa-cudnn':>10s} | best {'TFLOP/s':>7s} {'%ceil':>5s}"
    head += f" | cuDNN {'TFLOP/s':>7s} {'%ceil':>5s} | {'x cuDNN':>7s} {'x flash':>7s}"
    print("  attention, bf16 (median ms; x = peer time / minivl's best version's)")
    print(head)
    errors = {}
    for b, h, tq, tk, d, c, p in keys:
        args = f"{b}/{h}/{tq}/{tk}/{d}/{c}"
        ours = {v: r.get(f"BM_AttentionCuda/{args}/{v}/{p}") for v in versions}
        cudnn = r.get(f"BM_AttentionCudnn/{args}/{p}")
        flash = torch_rows.get(f"AttentionSdpaFlash/{args}/{p}")
        sdpa_cudnn = torch_rows.get(f"AttentionSdpaCudnn/{args}/{p}")
        for e in list(ours.values()) + [cudnn]:
            if e is not None and e.get("error_occurred"):
                errors.setdefault(e.get("error_message", "")[:200], e["name"])
        timed = {v: cell(e) for v, e in ours.items() if isinstance(cell(e), float)}
        best = min(timed, key=timed.get) if timed else None
        cudnn_ms, flash_ms = cell(cudnn), (flash["us"] * 1e-3 if flash else "-")
        line = f"  {ATTENTION_LABELS.get((b, h, tq, tk, d), 'long'):13s} {args.replace('/', ' '):22s} "
        line += f"{'fwd' if p == 0 else 'bwd':4s} " + " ".join(f"{fmt(cell(ours[v]), '8.3f'):>8s}" for v in versions)
        line += f" {fmt(cudnn_ms, '8.3f'):>8s} {fmt(flash_ms, '8.3f'):>8s}"
        line += f" {fmt(sdpa_cudnn['us'] * 1e-3 if sdpa_cudnn else '-', '10.3f'):>10s} | "
        if best is not None:
            e = ours[best]
            line += f"v{best:<3d} {fmt(e.get('TFLOPS', '-'), '7.1f'):>7s} {fmt(e.get('pct_ceiling', '-'), '5.0f'):>5s}"
        else:
            line += f"{'-':4s} {'-':>7s} {'-':>5s}"
        ctf = cudnn.get("TFLOPS", "-") if cudnn and not cudnn.get("error_occurred") else "-"
        cpc = cudnn.get("pct_ceiling", "-") if cudnn and not cudnn.get("error_occurred") else "-"
        line += f" |       {fmt(ctf, '7.1f'):>7s} {fmt(cpc, '5.0f'):>5s} | "
        ours_ms = timed.get(best) if best is not None else None
        line += f"{ratio(cudnn_ms, ours_ms):>7s} {ratio(flash_ms, ours_ms):>7s}"
        print(line)
    print_errors(errors)
    engines = {e.get("label") for e in r.values() if e.get("label") and "Cudnn" in e["name"]}
    for label in sorted(engines)[:4]:
        print(f"  cuDNN plan: {label}")


def layernorm_table(doc, torch_rows):
    r = rows(doc)
    cases = []
    for name in r:
        m = re.match(r"BM_LayerNormCuda/(bf16|f32)/(\d+)/(\d+)/(plain|residual)/3/0$", name)
        if m:
            cases.append((m.group(1), int(m.group(2)), int(m.group(3)), m.group(4)))
    print("")
    print("  layernorm (median us; x = peer time / minivl's best version's; cuDNN on plain rows only)")
    print(f"  {'dtype rows cols kind':28s} {'pass':4s} {'v3':>7s} {'v2':>7s} {'v1':>8s} | best {'GB/s':>6s} "
          f"{'%ceil':>5s} {'%spec':>5s} | {'cuDNN':>7s} {'%ceil':>5s} | {'torch':>7s} {'%ceil':>5s} | "
          f"{'x cuDNN':>7s} {'x torch':>7s}")
    errors = {}
    for dt, rr, cc, kind in cases:
        for p in (0, 1):
            versions = (3, 2, 1) if p == 0 else (2, 1)
            ours = {v: r.get(f"BM_LayerNormCuda/{dt}/{rr}/{cc}/{kind}/{v}/{p}") for v in versions}
            cudnn = r.get(f"BM_LayerNormCudnn/{dt}/{rr}/{cc}/{p}") if kind == "plain" else None
            torch = torch_rows.get(f"LayerNormTorch/{dt}/{rr}/{cc}/{kind}/{p}")
            for e in list(ours.values()) + [cudnn]:
                if e is not None and e.get("error_occurred"):
                    errors.setdefault(e.get("error_message", "")[:200], e["name"])
            timed = {v: cell(e, scale=1e3) for v, e in ours.items() if isinstance(cell(e), float)}
            best = min(timed, key=timed.get) if timed else None
            us = {v: cell(ours.get(v), scale=1e3) for v in (3, 2, 1)}
            line = f"  {dt + ' ' + str(rr) + ' ' + str(cc) + ' ' + kind:28s} {'fwd' if p == 0 else 'bwd':4s} "
            line += f"{fmt(us[3], '7.1f') if p == 0 else '':>7s} {fmt(us[2], '7.1f'):>7s} {fmt(us[1], '8.1f'):>8s} | "
            if best is not None:
                e = ours[best]
                line += (f"v{best:<3d} {fmt(e.get('GBps', '-'), '6.0f'):>6s} {fmt(e.get('pct_ceiling', '-'), '5.0f'):>5s}"
                         f" {fmt(e.get('pct_spec', '-'), '5.0f'):>5s} | ")
            else:
                line += f"{'-':4s} {'-':>6s} {'-':>5s} {'-':>5s} | "
            cudnn_us = cell(cudnn, scale=1e3)
            cpc = cudnn.get("pct_ceiling", "-") if cudnn and not cudnn.get("error_occurred") else "-"
            line += f"{fmt(cudnn_us, '7.1f'):>7s} {fmt(cpc, '5.0f'):>5s} | "
            torch_us = torch["us"] if torch else "-"
            ceil = (ours[best] or {}).get("ceiling_GBps") if best is not None else None
            tpc = 100.0 * torch["rate"] / ceil if torch and ceil else "-"
            line += f"{fmt(torch_us, '7.1f'):>7s} {fmt(tpc, '5.0f'):>5s} | "
            ours_us = timed.get(best) if best is not None else None
            line += f"{ratio(cudnn_us, ours_us):>7s} {ratio(torch_us, ours_us):>7s}"
            print(line)
    print_errors(errors)


def print_errors(errors):
    for msg, name in list(errors.items())[:8]:
        print(f"  ! {name}: {msg}")
    if len(errors) > 8:
        print(f"  ! ... {len(errors) - 8} more distinct errors (see the .txt logs)")


def main():
    out = sys.argv[1] if len(sys.argv) > 1 else "."
    attention = load_json(os.path.join(out, "bench_attention.json"))
    layernorm = load_json(os.path.join(out, "bench_layernorm.json"))
    torch_doc = load_json(os.path.join(out, "torch.json")) or {}
    torch_rows = {p["name"]: p for p in torch_doc.get("results", [])}
    for doc in (attention, layernorm):
        ctx = (doc or {}).get("context", {})
        for key in ("memory_ceiling", "cudnn"):
            if key in ctx:
                print(f"  {key}: {ctx[key]}")
        if ctx:
            break
    if torch_doc.get("torch"):
        print(f"  torch {torch_doc['torch']}, its cuDNN {torch_doc.get('cudnn')}")
    if attention:
        attention_table(attention, torch_rows)
    else:
        print("  attention: no bench_attention.json")
    if layernorm:
        layernorm_table(layernorm, torch_rows)
    else:
        print("  layernorm: no bench_layernorm.json")
    return 0


if __name__ == "__main__":
    sys.exit(main())
