"""Run sets through submitit: each missing run as its own job, with the same result as the sequential run.

The `synthetic` smoke config (one epoch) trains in seconds. It runs once in this process (`launcher="local"`) and once
as a job of submitit's local executor (a separate process, as on one machine without Slurm), each into its
own temporary results store; both must store the very same run. Finished runs are skipped; a failing job is
reported with its log file (submitit's in-process `debug` executor keeps that test fast).
"""
import pytest

from lumina.config import resolve
from lumina.launch import run_job, run_set
from lumina.paths import results_root
from lumina.results import load_result

pytest.importorskip("submitit")


def _store(monkeypatch, tmp_path, name):
    monkeypatch.setenv("LUMINA_RESULTS", str(tmp_path / name / "results"))
    monkeypatch.setenv("LUMINA_RUNS", str(tmp_path / name / "runs"))


def _untimed(history):
    return [{k: v for k, v in h.items() if not k.endswith("_s")} for h in history]


def _files(cfg) -> dict[str, bytes]:
    """The stored run's files other than result.json (which holds wall times and dates)."""
    d = results_root() / cfg.experiment / cfg.profile / cfg.key()
    return {p.name: p.read_bytes() for p in sorted(d.iterdir()) if p.is_file() and p.name != "result.json"}


def test_submitit_local_executor_matches_sequential_run(tmp_path, monkeypatch):
    cfg = resolve("synthetic", "smoke", epochs=1.0)  # evolution still fires; half the smoke run's time
    lines = []
    _store(monkeypatch, tmp_path, "sequential")
    [seq] = run_set([cfg], "local", log=lines.append)
    assert seq["state"] == "trained" and lines[-1].startswith("trained synthetic/smoke key=" + cfg.key())
    seq_stored, seq_files = load_result(cfg), _files(cfg)

    _store(monkeypatch, tmp_path, "submitit")
    [job] = run_set([cfg], "submitit", cluster="local", folder=tmp_path / "jobs" / "%j", poll_s=0.2,
                    log=lines.append, timeout_min=10)
    assert job["state"] == "trained", (job, lines)
    assert any(l.startswith("submitted synthetic/smoke") for l in lines)
    stored = load_result(cfg)  # written by the job, into this store
    assert stored is not None and stored["metrics"] == seq_stored["metrics"] == job["result"]["metrics"]
    assert _untimed(stored["history"]) == _untimed(seq_stored["history"])
    assert _files(cfg) == seq_files  # topology, event log, weights: byte for byte

    lines.clear()  # launched again: the finished run is skipped, no job is submitted
    [again] = run_set([cfg], "submitit", cluster="local", folder=tmp_path / "jobs2" / "%j", log=lines.append)
    assert again["state"] == "loaded" and not (tmp_path / "jobs2").exists()
    assert lines == [l for l in lines if l.startswith("loaded synthetic/smoke")] and len(lines) == 1


def test_failed_job_is_reported_with_its_log(tmp_path, monkeypatch):
    _store(monkeypatch, tmp_path, "failing")
    monkeypatch.setenv("LUMINA_DATA", str(tmp_path / "no_data"))
    monkeypatch.delenv("LUMINA_DOWNLOAD", raising=False)
    lines = []
    [rec] = run_set([resolve("cifar10", "smoke")], "submitit", cluster="debug", folder=tmp_path / "jobs" / "%j",
                    log=lines.append)
    assert rec["state"] == "failed" and "DataError" in rec["error"], rec
    assert rec["log"].endswith(".err") and rec["log"] in lines[-1] and lines[-1].startswith("failed cifar10/smoke")


def test_job_body_takes_the_config_as_a_dict(tmp_path, monkeypatch):
    """What a job receives: a plain dict (picklable anywhere) and absolute roots it writes into."""
    import pickle

    cfg = resolve("synthetic", "smoke", epochs=0.5)
    roots = {"LUMINA_RESULTS": str(tmp_path / "r"), "LUMINA_RUNS": str(tmp_path / "runs")}
    assert pickle.loads(pickle.dumps(run_job)) is run_job
    monkeypatch.setenv("LUMINA_RESULTS", roots["LUMINA_RESULTS"])  # restored after the test
    monkeypatch.setenv("LUMINA_RUNS", roots["LUMINA_RUNS"])
    out = run_job(cfg.to_dict(), roots)
    assert out["key"] == cfg.key() and load_result(cfg)["metrics"] == out["metrics"]


def test_bad_launcher_or_cluster():
    with pytest.raises(ValueError, match="unknown launcher 'slurm'; valid: local, submitit"):
        run_set([], "slurm")
    with pytest.raises(ValueError, match="unknown cluster 'pbs'"):
        run_set([], "submitit", cluster="pbs")
