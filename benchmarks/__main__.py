"""Every benchmark of the efficiency chapter, in one command (about 5 minutes in all on this 2-core CPU):

    python -m benchmarks                      # writes benchmarks/out/*.json (untracked)
    python -m benchmarks --update             # writes the published benchmarks/results/*.json
    python -m benchmarks executor epoch       # only some parts

Parts and their expected run time: executor (fast vs reference, ~1 min), flops_rate (FLOP/s vs matmul,
~30 s), epoch (evolved LuminaNet vs LeNet-5 epoch, ~1 min), lm_compare (LuminaNet vs GPT-2 compute and
memory, ~1 min per width), runs (epoch times and evolution overhead of the stored runs, instant),
baseline_epochs (seconds per epoch of every CIFAR-10 baseline, ~3 min).
Ratios are measured side by side in one process, so they hold on a busy machine better than absolute times.
"""
import sys

from . import baseline_epochs, common, epoch, executor, flops_rate, lm_compare


def run_summaries():
    """Evolution's share of training time in every stored LuminaNet run of the full profile (target ≤ 2%)."""
    from lumina.published import RUN_SETS
    from lumina.results import load_result

    rows = []
    for name in ("cifar10", "cifar10_ablation", "tinystories"):
        for cfg in RUN_SETS[name]("full"):
            r = load_result(cfg)
            if r is None or r.get("evolve_s") is None:
                continue
            rows.append({"set": name, "key": cfg.key(), "arch": cfg.model.arch, "d_hidden": cfg.model.d_hidden,
                         "seed": cfg.train.seed, "s_per_epoch": r["train_s"] / max(r["epochs_done"], 1e-9),
                         "evolve_share": r["evolve_s"] / r["train_s"], "events": sum(r["event_counts"].values())})
            x = rows[-1]
            print(f"{name:>16} {x['key']} d={x['d_hidden']:<4} s{x['seed']}: {x['s_per_epoch']:6.1f} s/epoch, "
                  f"{x['events']:4d} events, evolution {100 * x['evolve_share']:.2f}% of training time (target ≤ 2%)")
    common.write_json("runs.json", rows=rows)


PARTS = {"executor": lambda: executor.main([]), "flops_rate": lambda: flops_rate.main([]),
         "epoch": lambda: epoch.main([]), "lm_compare": lambda: lm_compare.main([]), "runs": run_summaries,
         "baseline_epochs": lambda: baseline_epochs.main([])}

if __name__ == "__main__":
    args = sys.argv[1:]
    if "--update" in args:
        args.remove("--update")
        common.OUT["dir"] = common.ROOT / "results"
    unknown = [a for a in args if a not in PARTS]
    if unknown:
        sys.exit(f"error: unknown benchmark part(s) {unknown}; valid: {', '.join(PARTS)}")
    for name in args or PARTS:
        print(f"== {name} ==", flush=True)
        PARTS[name]()
