"""Runs that survive being killed, a results store that is never half-read, and clear errors for bad data."""
import os
import signal
import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path

import pytest

from lumina.config import resolve
from lumina.data import DataError, load_cifar10
from lumina.results import load_result, result_dir, save_result
from lumina.train import train

ROOT = Path(__file__).resolve().parents[1]
CFG = dict(epochs=12.0, threads=1, eval_every=40)


def _untimed(history):
    return [{k: v for k, v in h.items() if k != "train_s"} for h in history]


@pytest.mark.slow
def test_sigkill_and_resume_reaches_the_same_result(tmp_path):
    """A real training process killed with SIGKILL mid-run, then resumed, ends exactly where an uninterrupted run
    with the same seed ends: same metrics, same history, same topology."""
    cfg = resolve("synthetic", "smoke", **CFG)
    env = {**os.environ, "LUMINA_RESULTS": str(tmp_path / "res_killed"), "LUMINA_RUNS": str(tmp_path / "runs_killed"),
           "OMP_NUM_THREADS": "1", "LUMINA_PROGRESS": "0"}
    script = textwrap.dedent(f"""
        from lumina.config import resolve
        from lumina.train import train
        train(resolve("synthetic", "smoke", **{CFG!r}), checkpoint_every=3)
    """)
    child = subprocess.Popen([sys.executable, "-c", script], cwd=ROOT, env=env)
    ckpt = tmp_path / "runs_killed" / "synthetic" / "smoke" / cfg.key() / "checkpoint.safetensors"
    deadline = time.time() + 120
    while not ckpt.exists() and child.poll() is None and time.time() < deadline:
        time.sleep(0.05)
    time.sleep(0.4)  # somewhere in the middle of training (and possibly of a save)
    killed = child.poll() is None
    child.send_signal(signal.SIGKILL)
    child.wait()
    assert killed, "training finished before it could be killed; make CFG longer"
    assert not (tmp_path / "res_killed" / "synthetic" / "smoke" / cfg.key() / "result.json").exists()

    os.environ.update(LUMINA_RESULTS=env["LUMINA_RESULTS"], LUMINA_RUNS=env["LUMINA_RUNS"])
    try:
        resumed = train(cfg)  # picks up the last complete checkpoint
    finally:
        os.environ.pop("LUMINA_RESULTS")
        os.environ.pop("LUMINA_RUNS")
    straight = train(cfg, save=False, resume=False, run_dir=tmp_path / "straight")
    assert resumed["metrics"] == straight["metrics"]
    assert _untimed(resumed["history"]) == _untimed(straight["history"])
    assert resumed["model"].graph.to_json() == straight["model"].graph.to_json()


def test_stop_and_resume_in_process_is_exact(tmp_path, monkeypatch):
    monkeypatch.setenv("LUMINA_RUNS", str(tmp_path / "runs"))
    monkeypatch.setenv("LUMINA_RESULTS", str(tmp_path / "res"))
    cfg = resolve("synthetic", "smoke", epochs=4.0, threads=1, eval_every=10)
    assert train(cfg, stop_after=37)["stopped_at"] == 37
    resumed = train(cfg)
    straight = train(cfg, save=False, resume=False, run_dir=tmp_path / "other")
    assert resumed["metrics"] == straight["metrics"]
    assert _untimed(resumed["history"]) == _untimed(straight["history"])


def test_concurrent_writers_never_leave_a_corrupt_result(tmp_path, monkeypatch):
    monkeypatch.setenv("LUMINA_RESULTS", str(tmp_path))
    cfg = resolve("synthetic", "smoke")
    big = {"config": cfg.to_dict(), "blob": "x" * 200_000}
    errors = []

    def writer(n):
        for _ in range(15):
            save_result(cfg, {**big, "writer": n})

    def reader():
        for _ in range(200):
            try:
                r = load_result(cfg)
                assert r is None or r["writer"] in (0, 1)
            except Exception as err:  # a torn read would be a JSON error here
                errors.append(err)

    threads = [threading.Thread(target=writer, args=(n,)) for n in (0, 1)] + [threading.Thread(target=reader)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    assert not list(result_dir(cfg).glob("*.tmp"))


def test_a_partial_result_is_not_complete(tmp_path, monkeypatch):
    monkeypatch.setenv("LUMINA_RESULTS", str(tmp_path))
    cfg = resolve("synthetic", "smoke")
    d = result_dir(cfg)
    d.mkdir(parents=True)
    (d / "topology.json").write_text("{}")  # written before result.json; result.json is the completion mark
    (d / ".result.json.abc.tmp").write_text('{"half": ')
    assert load_result(cfg) is None


def test_stored_result_from_a_changed_default_is_refused(tmp_path, monkeypatch):
    monkeypatch.setenv("LUMINA_RESULTS", str(tmp_path))
    cfg = resolve("synthetic", "smoke")
    stale = cfg.to_dict()
    stale["train"]["lr"] = 123.0
    save_result(cfg, {"config": stale})
    with pytest.raises(ValueError, match="another config"):
        load_result(cfg)


# ---- bad data -------------------------------------------------------------------------------------------
def test_missing_cifar_names_the_path_and_the_fix(tmp_path, monkeypatch):
    monkeypatch.setenv("LUMINA_OFFLINE", "1")
    with pytest.raises(DataError, match=r"data_batch_1 is missing.*LUMINA_DATA"):
        load_cifar10(True, root=tmp_path)


def test_corrupt_cifar_file_is_named(tmp_path, monkeypatch):
    monkeypatch.setenv("LUMINA_OFFLINE", "1")
    folder = tmp_path / "cifar-10-batches-py"
    folder.mkdir()
    for name in ["data_batch_1", "data_batch_2", "data_batch_3", "data_batch_4", "data_batch_5", "test_batch", "batches.meta"]:
        (folder / name).write_bytes(b"half a download")
    with pytest.raises(DataError, match=r"data_batch_1 is corrupt \(md5 mismatch"):
        load_cifar10(True, root=tmp_path)
