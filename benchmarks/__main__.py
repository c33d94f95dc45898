"""Every benchmark of the efficiency chapter, in one command:

    python -m benchmarks            # executor speed-up, FLOP/s vs matmul, step profile, LM compute/memory, runs
    python -m benchmarks profile_step runs   # only some parts

Figures measured side by side in one process (or, for memory, in fresh subprocesses) are written as JSON
under benchmarks/results/ and read by book/chapters/08_efficiency.ipynb. The run summaries (CIFAR-10 epoch
times, evolution overhead) are read from the stored results of the full profile.
"""
import json
from pathlib import Path

from . import executor, flops_rate, lm_compare, profile_step


def run_summaries(out="benchmarks/results/runs.json"):
    from lumina.published import ablation_runs, cifar10_runs
    from lumina.results import load_result

    rows = []
    runs = [("cifar10", c) for g in cifar10_runs("full").values() for c in g]
    runs += [(f"ablation: {n}", c) for n, c in ablation_runs("full").items()]
    for run_set, cfg in runs:
        r = load_result(cfg)
        if r is None:
            continue
        rows.append({"set": run_set, "arch": cfg.model.arch, "git_commit": r["provenance"]["git_commit"][:8], "d_hidden": cfg.model.d_hidden, "seed": cfg.train.seed,
                     "train_s": r["train_s"], "epochs": r["epochs_done"], "s_per_epoch": r["train_s"] / max(r["epochs_done"], 1e-9),
                     "evolve_s": r.get("evolve_s"), "evolve_share": (r["evolve_s"] / r["train_s"]) if r.get("evolve_s") is not None else None,
                     "threads": r["provenance"]["hardware"]["torch_threads"]})
        x = rows[-1]
        print(f"{x['set'][:30]:>30} {x['arch']:>10} d={x['d_hidden']:<4} s{x['seed']}: {x['s_per_epoch']:8.1f} s/epoch"
              + (f", evolution {100 * x['evolve_share']:.1f}% of training time" if x["evolve_share"] is not None else ""))
    Path(out).parent.mkdir(parents=True, exist_ok=True)
    Path(out).write_text(json.dumps({"rows": rows}, indent=1))
    print(f"wrote {out}")


if __name__ == "__main__":
    import sys

    only = sys.argv[1:]  # e.g. `python -m benchmarks lm_compare runs` reruns just those parts
    if not only or "executor" in only:
        print("== fast executor vs reference loop (2 threads) =="); executor.main(["--threads", "2"])
    if not only or "flops_rate" in only:
        print("== achieved FLOP/s vs dense matmul (1 thread) =="); flops_rate.main(["--threads", "1"])
    if not only or "profile_step" in only:
        print("== where a training step spends its time (1 thread) =="); profile_step.main([])
    if not only or "lm_compare" in only:
        print("== LuminaNet vs 1-layer GPT-2 (1 thread, fresh processes) =="); lm_compare.main([])
    if not only or "runs" in only:
        print("== stored CIFAR-10 runs =="); run_summaries()
