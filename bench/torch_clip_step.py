#!/usr/bin/env python3
"""The PyTorch peer of `minivl bench-step`: a whole CLIP training step, timed on the same GPU.

  python3 bench/torch_clip_step.py --config configs/clip_vitb32.toml [--config ...] \
      [--mode eager|compile|both] [--steps 20] [--warmup 3] [--out FILE]

For each config (a minivl training TOML, read here so both sides build the same model) and mode:
  - transformers.CLIPModel from a CLIPConfig with the config's sizes, random weights (HF's
    initialisation; nothing is downloaded), attn_implementation="sdpa", f32 master weights;
  - the same batch, image size and context length as bench-step: random pixels (B, 3, R, R) and
    captions of the whole context (start id, then ids (b * 7919 + t * 104729) mod (V - 2), then the
    end-of-text id last, bench-step's rows);
  - one step = zero_grad, forward under torch.autocast(bfloat16), CLIP's symmetric contrastive loss
    (HF's return_loss: the mean of the cross-entropies over rows and over columns of
    exp(logit_scale) * text @ image^T), backward, torch.optim.AdamW(fused=True) with the config's
    lr, betas, eps and weight decay (decay on matrices, none on biases, norms and embeddings, as
    minivl's groups);
  - eager, and the model under torch.compile (the optimizer step stays fused AdamW, uncompiled).
Each step is timed alone between CUDA events; the median over --steps steps after --warmup
untimed ones (compiled: the warm-up includes the compilation). Peak memory is
torch.cuda.max_memory_allocated over the timed steps.

FLOPs per step (clip_step_flops; minivl's bench-step counts the same, tools/cmd_clip.cpp, and
tests/test_step_counters.cpp checks that the two agree), the model FLOPs convention: every matrix
multiply counted once forward and twice backward (so 6 FLOPs per multiply-add weight per row),
attention's two batched products at their full T x T extent (causal masking not discounted),
elementwise work, norms and softmax not counted:
  per tower with L layers, width D, MLP width M, T tokens per example, B examples:
    6 * B * T * L * (4 D^2 + 2 D M)        q, k, v, out projections and the MLP
  + 12 * B * L * T^2 * D                   scores q k^T and probs @ v, forward 4 B T^2 D per layer
  vision: + 6 * B * N * (3 P^2) * D        patch embedding (N = (R / P)^2 patches; T = N + 1)
  both:   + 6 * B * (D_vision + D_text) * E  projections of the pooled rows to E dims
          + 6 * B^2 * E                    the logits image @ text^T inside the loss
MFU = FLOPs per step / step time / the card's dense bf16 peak (--peak-tflops, or from the device
name: H100 SXM and H200 989.4, H100 NVL 835.5, H100 PCIe 756.5, A100 312 TFLOP/s).

Prints one JSON object, also written to --out after every measurement (a time-out keeps what was
measured): {"device", "torch", "transformers", "results": [{"config", "mode", "step_ms_median",
"step_ms_min", "images_per_s", "flops_per_step", "mfu", "peak_memory_bytes", ...}]}. Where
PyTorch, transformers or a CUDA device is missing it prints {"skipped": "<reason>"} and exits 0.
--flops-only prints the FLOP counts alone and needs neither.
"""
import argparse
import json
import statistics
import sys
import time

try:
    import tomllib
except ImportError:  # Python < 3.11
    tomllib = None

# The model keys bench-step reads, with minivl's schema defaults (models/clip_train.cpp).
MODEL_DEFAULTS = {
    "image_size": 32, "patch_size": 4, "vision_width": 128, "vision_layers": 4, "vision_heads": 2,
    "vision_mlp": 512, "vocab_size": 49408, "context_length": 32, "text_width": 128, "text_layers": 4,
    "text_heads": 2, "text_mlp": 512, "projection_dim": 128, "hidden_act": "quick_gelu",
    "logit_scale_init": 2.6592,
}
OPTIM_DEFAULTS = {"lr": 1e-3, "beta1": 0.9, "beta2": 0.999, "eps": 1e-8, "weight_decay": 0.0}
EOS_TOKEN_ID = 49407  # minivl's default (ClipTowerConfig), as HF's current CLIPTextConfig
START_TOKEN_ID = 49406

# Dense bf16 tensor-core peaks (TFLOP/s), by a substring of the device name; the first match wins.
PEAK_BF16_TFLOPS = [("H200", 989.4), ("H100 NVL", 835.5), ("H100 PCIe", 756.5), ("H100", 989.4),
                    ("A100", 312.0)]


def load_config(path):
    if tomllib is None:
        raise SystemExit(f"torch_clip_step: reading {path} needs Python 3.11's tomllib")
    with open(path, "rb") as f:
        raw = tomllib.load(f)
    model = dict(MODEL_DEFAULTS)
    for k, v in raw.get("model", {}).items():
        if k in model:
            model[k] = v
    if raw.get("model", {}).get("name", "clip") != "clip":
        raise SystemExit(f"torch_clip_step: {path}: model.name is not clip")
    optim = dict(OPTIM_DEFAULTS)
    optim.update({k: v for k, v in raw.get("optim", {}).items() if k in optim})
    batch = int(raw.get("data", {}).get("batch_size", 32))
    if model["image_size"] % model["patch_size"]:
        raise SystemExit(f"torch_clip_step: {path}: image_size is not a multiple of patch_size")
    return {"path": path, "model": model, "optim": optim, "batch_size": batch,
            "precision": raw.get("precision", "f32")}


def clip_step_flops(m, batch):
    """FLOPs of one training step (forward + backward), the formula in this file's docstring."""
    B = batch
    n_patches = (m["image_size"] // m["patch_size"]) ** 2
    towers = [  # (layers, width, mlp width, tokens per example)
        (m["vision_layers"], m["vision_width"], m["vision_mlp"], n_patches + 1),
        (m["text_layers"], m["text_width"], m["text_mlp"], m["context_length"]),
    ]
    flops = 0
    for L, D, M, T in towers:
        flops += 6 * B * T * L * (4 * D * D + 2 * D * M)
        flops += 12 * B * L * T * T * D
    flops += 6 * B * n_patches * 3 * m["patch_size"] ** 2 * m["vision_width"]
    E = m["projection_dim"]
    flops += 6 * B * (m["vision_width"] + m["text_width"]) * E
    flops += 6 * B * B * E
    return flops


def peak_tflops(name, override):
    if override:
        return override
    for key, peak in PEAK_BF16_TFLOPS:
        if key in name:
            return peak
    return None


def make_inputs(torch, m, batch, device):
    R, T, V = m["image_size"], m["context_length"], m["vocab_size"]
    pixels = torch.randn(batch, 3, R, R, device=device)
    b = torch.arange(batch).unsqueeze(1)
    t = torch.arange(1, T - 1).unsqueeze(0)
    ids = torch.empty(batch, T, dtype=torch.long)
    ids[:, 0] = START_TOKEN_ID % V
    ids[:, 1:T - 1] = (b * 7919 + t * 104729) % (V - 2)
    ids[:, T - 1] = EOS_TOKEN_ID % V
    return pixels, ids.to(device)


def build_model(torch, transformers, m):
    act = m["hidden_act"]
    text = dict(vocab_size=m["vocab_size"], hidden_size=m["text_width"], intermediate_size=m["text_mlp"],
                num_hidden_layers=m["text_layers"], num_attention_heads=m["text_heads"],
                max_position_embeddings=m["context_length"], hidden_act=act, layer_norm_eps=1e-5,
                eos_token_id=EOS_TOKEN_ID, bos_token_id=START_TOKEN_ID, pad_token_id=1,
                projection_dim=m["projection_dim"])
    vision = dict(hidden_size=m["vision_width"], intermediate_size=m["vision_mlp"],
                  num_hidden_layers=m["vision_layers"], num_attention_heads=m["vision_heads"],
                  image_size=m["image_size"], patch_size=m["patch_size"], num_channels=3, hidden_act=act,
                  layer_norm_eps=1e-5, projection_dim=m["projection_dim"])
    config = transformers.CLIPConfig(text_config=text, vision_config=vision, projection_dim=m["projection_dim"],
                                     logit_scale_init_value=m["logit_scale_init"])
    try:
        model = transformers.CLIPModel._from_config(config, attn_implementation="sdpa")
    except (TypeError, ValueError):
        config._attn_implementation = "sdpa"
        model = transformers.CLIPModel(config)
    impl = getattr(model.config, "_attn_implementation", "?")
    return model, impl


def param_groups(model, weight_decay):
    decay, no_decay = [], []
    for name, p in model.named_parameters():
        # minivl's groups: matrices decay; biases, norms, embeddings and the logit scale do not.
        is_embedding = "embedding" in name
        (decay if p.dim() >= 2 and not is_embedding else no_decay).append(p)
    return [{"params": decay, "weight_decay": weight_decay}, {"params": no_decay, "weight_decay": 0.0}]


def measure(torch, transformers, cfg, mode, steps, warmup, peak):
    m, B = cfg["model"], cfg["batch_size"]
    torch.manual_seed(0)
    model, impl = build_model(torch, transformers, m)
    model = model.cuda().train()
    o = cfg["optim"]
    opt = torch.optim.AdamW(param_groups(model, o["weight_decay"]), lr=o["lr"], betas=(o["beta1"], o["beta2"]),
                            eps=o["eps"], fused=True)
    pixels, ids = make_inputs(torch, m, B, "cuda")
    forward = torch.compile(model) if mode == "compile" else model

    def step():
        opt.zero_grad(set_to_none=True)
        with torch.autocast("cuda", dtype=torch.bfloat16):
            loss = forward(input_ids=ids, pixel_values=pixels, return_loss=True).loss
        loss.backward()
        opt.step()
        return loss

    t_compile = time.time()
    for _ in range(warmup):
        loss = step()
    torch.cuda.synchronize()
    warmup_s = time.time() - t_compile
    torch.cuda.reset_peak_memory_stats()
    times = []
    for _ in range(steps):
        start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
        start.record()
        loss = step()
        end.record()
        end.synchronize()
        times.append(start.elapsed_time(end))
    med = statistics.median(times)
    flops = clip_step_flops(m, B)
    result = {
        "config": cfg["path"], "mode": mode, "attn_implementation": impl, "precision": "bf16 autocast",
        "batch_size": B, "parameters": sum(p.numel() for p in model.parameters()), "steps": steps,
        "warmup": warmup, "warmup_s": round(warmup_s, 2), "step_ms_median": med, "step_ms_min": min(times),
        "images_per_s": 1000.0 * B / med, "flops_per_step": flops,
        "tflops_per_s": flops / (med * 1e-3) / 1e12,
        "mfu": flops / (med * 1e-3) / (peak * 1e12) if peak else None,
        "peak_memory_bytes": torch.cuda.max_memory_allocated(), "final_loss": float(loss.detach()),
    }
    del forward, model, opt, pixels, ids, loss
    return result


def skip(reason, out):
    doc = {"skipped": reason}
    print(json.dumps(doc))
    if out:
        with open(out, "w") as f:
            json.dump(doc, f, indent=1)
    sys.exit(0)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--config", action="append", required=True, help="minivl training TOML (repeatable)")
    ap.add_argument("--mode", choices=["eager", "compile", "both"], default="both")
    ap.add_argument("--steps", type=int, default=20)
    ap.add_argument("--warmup", type=int, default=3, help="untimed steps first (compiled: at least 3)")
    ap.add_argument("--peak-tflops", type=float, default=0.0, help="the card's dense bf16 peak (default: by name)")
    ap.add_argument("--flops-only", action="store_true", help="print the FLOP count of each config and exit")
    ap.add_argument("--out", default="", help="also write the JSON here")
    args = ap.parse_args()
    configs = [load_config(p) for p in args.config]
    if args.flops_only:
        print(json.dumps({"results": [{"config": c["path"], "batch_size": c["batch_size"],
                                       "flops_per_step": clip_step_flops(c["model"], c["batch_size"])}
                                      for c in configs]}))
        return
    if args.steps < 20:
        ap.error("--steps must be at least 20 (the median is over at least 20 steps)")
    try:
        import torch
    except ImportError as e:
        skip(f"PyTorch is not installed ({e})", args.out)
    try:
        import transformers
    except ImportError as e:
        skip(f"Hugging Face transformers is not installed ({e})", args.out)
    if not torch.cuda.is_available():
        skip("no CUDA device visible to PyTorch", args.out)
    name = torch.cuda.get_device_name(0)
    peak = peak_tflops(name, args.peak_tflops)
    doc = {"device": name, "torch": torch.__version__, "transformers": transformers.__version__,
           "peak_bf16_tflops": peak, "results": []}
    modes = ["eager", "compile"] if args.mode == "both" else [args.mode]
    import gc
    for mode in modes:  # every config eager first: a slow compilation cannot cost the eager rows
        for cfg in configs:
            warmup = max(args.warmup, 3) if mode == "compile" else args.warmup
            try:
                r = measure(torch, transformers, cfg, mode, args.steps, warmup, peak)
            except Exception as e:  # one failing row (say, a compiler error) keeps the others
                r = {"config": cfg["path"], "mode": mode, "error": f"{type(e).__name__}: {e}"[:400]}
            doc["results"].append(r)
            print(json.dumps(r), file=sys.stderr, flush=True)
            if args.out:
                with open(args.out, "w") as f:
                    json.dump(doc, f, indent=1)
            gc.collect()
            torch.cuda.empty_cache()
            if mode == "compile":
                torch._dynamo.reset()
    print(json.dumps(doc))


if __name__ == "__main__":
    main()
