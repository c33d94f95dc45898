"""Every benchmark of the efficiency chapter, in one command (about 5 minutes in all on this 2-core CPU):

    python -m benchmarks                      # writes benchmarks/out/*.json (untracked)
    python -m benchmarks --update             # writes the published benchmarks/results/*.json
    python -m benchmarks executor epoch       # only some parts
    python -m benchmarks --help               # this text

Parts and their expected run time: executor (fast vs reference, ~1 min), step_bound (the fast step's parts, each
timed alone, against the time the executor target allows, ~30 s), flops_rate (FLOP/s vs matmul,
~30 s), step_profile (where a training step spends its time, ~20 s), evolution_event (one evolution event
of the stored headline network against its training steps, ~30 s), epoch (evolved LuminaNet vs LeNet-5
epoch, ~1 min), lm_compare (LuminaNet vs GPT-2 compute and memory, ~1 min per width), runs (epoch times and
evolution overhead of the stored runs, instant), baseline_epochs (float32 and fast-path CPU minutes per epoch
of every CIFAR-10 baseline, ~6 min), baseline_epochs_parity (1-epoch accuracy of float32 against the fast
path, from stored runs, instant), text_speed (training throughput and generation time of the text variants
against GPT-2, ~2 min). On a GPU machine only, and only when named: gpu_epochs (seconds per epoch of every model
of the `gpu` run set on the device, and the set's total, ~2 min on one H200).
Ratios are measured side by side in one process, so they hold on a busy machine better than absolute times.
The epoch, evolution_event and baseline_epochs parts read CIFAR-10 from LUMINA_DATA; without it they stop with
one `error:` line.
"""
import importlib
import sys


def run_summaries():
    """Evolution's share of training time in every stored LuminaNet run of the full profile (target ≤ 2%)."""
    from lumina.published import RUN_SETS
    from lumina.results import load_result

    from . import common

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


PARTS = ("executor", "step_bound", "flops_rate", "step_profile", "evolution_event", "epoch", "lm_compare", "runs", "baseline_epochs", "baseline_epochs_parity",
         "text_speed")
GPU_PARTS = ("gpu_epochs",)  # need a CUDA device: run only when named


def main(args: list[str]) -> int:
    """Exit status 0, or 2 with one `error:` line for a mistake in what was typed or missing data (the same
    convention as `python -m lumina`). The parts (torch, the models: seconds to import) are imported once
    the arguments are known to be good, so `--help` and a typo are answered at once."""
    if {"-h", "--help"} & set(args):
        print(__doc__.strip())
        return 0
    update = "--update" in args
    args = [a for a in args if a != "--update"]
    unknown = [a for a in args if a not in PARTS + GPU_PARTS]
    if unknown:
        print(f"error: unknown benchmark part(s) {unknown}; valid: {', '.join(PARTS + GPU_PARTS)} (see --help)",
              file=sys.stderr)
        return 2
    from lumina.data import DataError

    from . import common

    if update:
        common.OUT["dir"] = common.ROOT / "results"
    for name in args or PARTS:
        print(f"== {name} ==", flush=True)
        try:
            if name == "runs":
                run_summaries()
            else:
                importlib.import_module(f"{__package__}.{name}").main([])
        except (DataError, ValueError) as err:  # missing or corrupt data, a stored result that is not usable
            print(f"error: benchmark {name}: {' '.join(str(err).split())}", file=sys.stderr)
            return 2
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
