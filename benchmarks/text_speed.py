"""Text models' speed, side by side in one process (one thread): LuminaNet's v3 variants against the 1-layer
GPT-2 at d_hidden = d_model = 128 (`lumina.published.text_v3`).

    python -m benchmarks text_speed            # about 2 minutes

  - training throughput: predicted tokens per second of a full training step (forward, backward, AdamW) on
    a batch of the `full` profile (32 windows of 64 tokens), on the initial network of each variant;
  - generation: milliseconds per generated token over one window, LuminaNet with its cache
    (`LuminaNet.step_slot`: the new slot's clusters, or one recurrent position) against GPT-2 with its KV cache.
Targets (issue "TinyStories v3"): training ≥ 0.5× GPT-2's throughput for the slot network, ≥ 0.25× for the
recurrent one; cached generation ≤ 2× GPT-2's time per token.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F

from lumina.build import build_model
from lumina.published import TEXT_VARIANTS, text_v3
from lumina.tables import display_name

from .common import median_time, write_json

TARGETS = {"slot": 0.5, "recurrent": 0.25}


def train_step(model):
    opt = torch.optim.AdamW(model.parameters(), 1e-4)
    cfg_x = torch.randint(0, 4096, (32, 64), generator=torch.Generator().manual_seed(0))
    y = torch.roll(cfg_x, -1, 1)

    def step():
        loss = F.cross_entropy(model(cfg_x).flatten(0, 1), y.flatten())
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
    return step


@torch.no_grad()
def generate(model, tokens):
    if hasattr(model, "step_slot"):
        def run():
            cache = {}
            for t in range(tokens.shape[1]):
                model.step_slot(tokens[:, t], t, cache)
    else:
        def run():
            past = None
            for t in range(tokens.shape[1]):
                past = model.lm(input_ids=tokens[:, t:t + 1], past_key_values=past, use_cache=True).past_key_values
    return run


def main(argv=None, profile: str = "full", reps: int = 3) -> dict:
    torch.set_num_threads(1)
    models = {display_name("gpt2", 128): build_model(text_v3("gpt2", profile))}
    models.update({f"LuminaNet {v}": build_model(text_v3(v, profile)) for v in TEXT_VARIANTS})
    tokens = torch.randint(0, 4096, (1, 64), generator=torch.Generator().manual_seed(1))
    rows = []
    for name, model in models.items():  # interleaved per model, so a busy machine affects all alike
        model.train()
        s = median_time(train_step(model), reps, warmup=1)
        model.eval()
        g = median_time(generate(model, tokens), reps, warmup=1)
        rows.append({"model": name, "train_tokens_per_s": 32 * 64 / s, "ms_per_generated_token": 1e3 * g / 64})
    ref = rows[0]
    for r in rows:
        r["train_throughput_vs_gpt2"] = r["train_tokens_per_s"] / ref["train_tokens_per_s"]
        r["generation_time_vs_gpt2_kv"] = r["ms_per_generated_token"] / ref["ms_per_generated_token"]
        kind = "recurrent" if "recurrent" in r["model"] else "slot"
        target = "" if r is ref else (f" (target ≥ {TARGETS[kind]}x)")
        print(f"{r['model']:>40}: {r['train_tokens_per_s']:8.0f} tokens/s = {r['train_throughput_vs_gpt2']:.2f}x GPT-2"
              f"{target}; generation {r['ms_per_generated_token']:.2f} ms/token = "
              f"{r['generation_time_vs_gpt2_kv']:.2f}x GPT-2 with KV cache" + ("" if r is ref else " (target ≤ 2x)"))
    write_json("text_speed.json", threads=1, profile=profile, rows=rows)
    return {"rows": rows}


if __name__ == "__main__":
    main()
