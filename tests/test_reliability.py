"""Runs that survive being killed (the real command line, SIGKILL, rerun), one run at a time per config,
faults during saves, a results store that is never half-read, and nothing read back from disk trusted
unchecked: corrupt checkpoints and stored networks, malformed results, folders that cannot be written."""
import errno
import fcntl
import json
import os
import re
import signal
import stat
import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path

import pytest
import torch

import lumina.checkpoint as checkpoint_module
import lumina.paths as paths_module
from lumina.checkpoint import CheckpointError, atomic_write_text, load_checkpoint, load_tensors, read_network
from lumina.config import resolve
from lumina.loop import Run, train
from lumina.paths import check_writable
from lumina.results import (find_results, load_model, load_result, result_dir, run_dir, run_lock, save_run,
                            train_or_load, train_or_load_state)
from tests.helpers import image_model, untimed

ROOT = Path(__file__).resolve().parents[1]
QUIET = dict(log=lambda *a: None)
# 256 steps, about 5 s on one thread: train_or_load checkpoints at step 200, then there are 56 steps to kill it in
KILL_SETS = dict(epochs=16.0, threads=1, evolve_every=20, max_clusters=16, eval_every=128)


def _env(tmp: Path, name: str) -> dict:
    return {**os.environ, "LUMINA_RESULTS": str(tmp / f"{name}_results"), "LUMINA_RUNS": str(tmp / f"{name}_runs"),
            "OMP_NUM_THREADS": "1", "LUMINA_PROGRESS": "0", "PYTHONUNBUFFERED": "1"}


def _cli(overrides: dict) -> list[str]:
    sets = [a for k, v in overrides.items() for a in ("--set", f"{k}={v}")]
    return [sys.executable, "-m", "lumina", "train", "synthetic", "--profile", "smoke", *sets]


def _wait_for(path: Path, child: subprocess.Popen, timeout: float = 120) -> None:
    deadline = time.time() + timeout
    while not path.exists() and child.poll() is None and time.time() < deadline:
        time.sleep(0.02)


def _stored(results: Path, cfg) -> dict:
    """Everything a finished run stored: result (without wall times), topology, events, weights."""
    d = results / cfg.experiment / cfg.profile / cfg.key()
    r = json.loads((d / "result.json").read_text())
    tensors, _ = load_tensors(d / "network" / "weights.safetensors")
    return {"metrics": r["metrics"], "history": untimed(r["history"]), "steps": r["steps"],
            "event_counts": r["event_counts"], "topology": (d / "topology.json").read_text(),
            "events": (d / "events.jsonl").read_text(), "weights": tensors}


def _assert_same(a: dict, b: dict) -> None:
    for k in ("metrics", "history", "steps", "event_counts", "topology", "events"):
        assert a[k] == b[k], k
    assert set(a["weights"]) == set(b["weights"])
    for k, t in a["weights"].items():
        assert torch.equal(t, b["weights"][k]), k


@pytest.mark.slow
def test_sigkill_of_the_command_line_and_rerun_reach_the_uninterrupted_result(tmp_path, monkeypatch):
    """`python -m lumina train ...` killed with SIGKILL after its first checkpoint; the same command again
    resumes and stores exactly what an uninterrupted run stores: metrics, history, topology, events, weights."""
    cfg = resolve("synthetic", "smoke", **KILL_SETS)
    env = _env(tmp_path, "killed")
    ckpt = Path(env["LUMINA_RUNS"]) / "synthetic" / "smoke" / cfg.key() / "checkpoint.safetensors"
    child = subprocess.Popen(_cli(KILL_SETS), cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    _wait_for(ckpt, child)
    alive = child.poll() is None
    child.send_signal(signal.SIGKILL)
    out, err = child.communicate()
    assert alive, f"the run ended before it could be killed; make KILL_SETS longer\n{out}\n{err}"
    assert ckpt.exists() and not (Path(env["LUMINA_RESULTS"]) / "synthetic" / "smoke" / cfg.key() / "result.json").exists()

    again = subprocess.run(_cli(KILL_SETS), cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)
    assert again.returncode == 0, again.stderr
    assert "resuming" in again.stdout and "at step 200" in again.stdout, again.stdout
    assert json.loads(again.stdout.strip().splitlines()[-1])["state"] == "resumed"

    monkeypatch.setenv("LUMINA_RESULTS", str(tmp_path / "straight_results"))
    monkeypatch.setenv("LUMINA_RUNS", str(tmp_path / "straight_runs"))
    train_or_load(cfg, **QUIET)  # uninterrupted, in this process
    _assert_same(_stored(Path(env["LUMINA_RESULTS"]), cfg), _stored(tmp_path / "straight_results", cfg))


@pytest.mark.slow
def test_sigkill_at_any_moment_with_frequent_checkpoints(tmp_path, monkeypatch):
    """Checkpoints every 3 steps (so the kill may land during a save), resumed here with `train_or_load`."""
    sets = dict(epochs=4.0, threads=1)
    cfg = resolve("synthetic", "smoke", **sets)
    env = _env(tmp_path, "killed")
    script = textwrap.dedent(f"""
        from lumina.config import resolve
        from lumina.results import train_or_load
        train_or_load(resolve("synthetic", "smoke", **{sets!r}), checkpoint_every=3)
    """)
    child = subprocess.Popen([sys.executable, "-c", script], cwd=ROOT, env=env, stdout=subprocess.PIPE,
                             stderr=subprocess.PIPE, text=True)
    ckpt = Path(env["LUMINA_RUNS"]) / "synthetic" / "smoke" / cfg.key() / "checkpoint.safetensors"
    _wait_for(ckpt, child)
    while child.poll() is None and load_checkpoint(ckpt, cfg.key())["state"]["step"] < 24:
        time.sleep(0.02)  # past several evolution events (edges, splits), in the middle of a save or not
    alive = child.poll() is None
    child.send_signal(signal.SIGKILL)
    out, err = child.communicate()
    assert alive, f"the run ended before it could be killed\n{out}\n{err}"
    c = load_checkpoint(ckpt, cfg.key())  # the last complete checkpoint is readable
    step = c["state"]["step"]
    assert 24 <= step < 64 and c["topology"].edges and len(c["topology"].clusters) > 12

    monkeypatch.setenv("LUMINA_RESULTS", env["LUMINA_RESULTS"])
    monkeypatch.setenv("LUMINA_RUNS", env["LUMINA_RUNS"])
    lines = []
    train_or_load(cfg, log=lines.append, checkpoint_every=3)
    assert any(f"resuming synthetic/smoke/{cfg.key()} at step {step} of 64" in line for line in lines), lines
    monkeypatch.setenv("LUMINA_RESULTS", str(tmp_path / "straight_results"))
    monkeypatch.setenv("LUMINA_RUNS", str(tmp_path / "straight_runs"))
    train_or_load(cfg, **QUIET)
    _assert_same(_stored(Path(env["LUMINA_RESULTS"]), cfg), _stored(tmp_path / "straight_results", cfg))


@pytest.mark.parametrize("stop", [36, 37])  # right after an evolution event (every 4 steps), and between two
def test_stop_and_resume_in_process_is_exact(tmp_path, stop):
    cfg = resolve("synthetic", "smoke", epochs=4.0, threads=1, eval_every=10)
    ckpt = tmp_path / "ckpt.safetensors"
    assert train(cfg, ckpt=ckpt, stop_after=stop, **QUIET) is None
    assert load_checkpoint(ckpt, cfg.key())["state"]["step"] == stop
    lines = []
    resumed = train(cfg, ckpt=ckpt, log=lines.append)
    assert lines and f"at step {stop} of 64" in lines[0]
    straight = train(cfg, **QUIET)
    assert resumed.result["metrics"] == straight.result["metrics"]
    assert untimed(resumed.result["history"]) == untimed(straight.result["history"])
    assert resumed.events == straight.events and resumed.model.graph.to_json() == straight.model.graph.to_json()
    a, b = resumed.model.named_tensors(), straight.model.named_tensors()
    assert all(torch.equal(a[k], b[k]) for k in b)


def test_a_second_process_waits_for_the_first_and_loads_its_result(tmp_path, monkeypatch):
    """Two processes start the same config: the second waits on the run's lock (never trains it twice, never
    writes the same checkpoint), then returns the first one's result."""
    sets = dict(epochs=2.0, threads=1)
    cfg = resolve("synthetic", "smoke", **sets)
    env = _env(tmp_path, "shared")
    monkeypatch.setenv("LUMINA_RESULTS", env["LUMINA_RESULTS"])
    monkeypatch.setenv("LUMINA_RUNS", env["LUMINA_RUNS"])
    first = subprocess.Popen(_cli(sets), cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    lock = run_dir(cfg) / "lock"
    deadline = time.time() + 120
    held = False
    while not held and first.poll() is None and time.time() < deadline:
        if lock.exists():
            with open(lock) as f:
                try:
                    fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
                    fcntl.flock(f, fcntl.LOCK_UN)
                except BlockingIOError:
                    held = True
        time.sleep(0.01)
    assert held, "the first process never held the run's lock"
    lines = []
    state, second = train_or_load_state(cfg, log=lines.append)
    out, err = first.communicate(timeout=300)
    assert first.returncode == 0, err
    assert state == "loaded"  # what it did, not "trained" (what it would have done when it started)
    assert any("being trained by another process; waiting" in line for line in lines), lines
    assert not any("training" in line and "another" not in line for line in lines), lines  # it did not train
    assert second == load_result(cfg)
    assert json.loads(out.strip().splitlines()[-1])["metrics"] == second["metrics"]
    assert out.count("[lumina] training") == 1


def test_run_lock_serialises_two_holders(tmp_path, monkeypatch):
    monkeypatch.setenv("LUMINA_RUNS", str(tmp_path))
    cfg = resolve("synthetic", "smoke")
    order, lines = [], []

    def holder(name):
        with run_lock(cfg, log=lines.append):
            order.append(f"{name} in")
            time.sleep(0.2)
            order.append(f"{name} out")

    a = threading.Thread(target=holder, args=("a",))
    a.start()
    time.sleep(0.05)
    holder("b")
    a.join()
    assert order == ["a in", "a out", "b in", "b out"] and len(lines) == 1 and "waiting" in lines[0]


def test_retrain_and_restart_start_from_step_zero(tmp_path, monkeypatch):
    monkeypatch.setenv("LUMINA_RESULTS", str(tmp_path / "r"))
    monkeypatch.setenv("LUMINA_RUNS", str(tmp_path / "k"))
    cfg = resolve("synthetic", "smoke", epochs=1.0, threads=1)
    first = train_or_load(cfg, **QUIET)
    for kw in (dict(retrain=True), dict(restart=True)):
        lines = []
        again = train_or_load(cfg, log=lines.append, **kw)
        assert any(line.startswith("[lumina] training") for line in lines) and not any("resuming" in x for x in lines)
        assert again["metrics"] == first["metrics"] and untimed(again["history"]) == untimed(first["history"])


# ---- faults during saves --------------------------------------------------------------------------------
def test_a_failed_checkpoint_write_keeps_the_last_good_one(tmp_path, monkeypatch):
    """A full disk during a save: the error reaches the user, the previous checkpoint is intact, no temp file."""
    cfg = resolve("synthetic", "smoke", epochs=1.0, threads=1)
    ckpt = tmp_path / "ckpt.safetensors"
    real, calls = checkpoint_module.save_file, []

    def full_disk(tensors, path, metadata=None):
        calls.append(path)
        if len(calls) == 2:
            real(tensors, path, metadata=metadata)  # half a file, then the disk is full
            raise OSError(errno.ENOSPC, "No space left on device")
        real(tensors, path, metadata=metadata)

    monkeypatch.setattr(checkpoint_module, "save_file", full_disk)
    with pytest.raises(OSError, match="No space left"):
        train(cfg, ckpt=ckpt, checkpoint_every=5, **QUIET)
    assert load_checkpoint(ckpt, cfg.key())["state"]["step"] == 5
    assert [p.name for p in tmp_path.iterdir()] == ["ckpt.safetensors"]


def test_a_failed_result_write_keeps_the_stored_result(tmp_path, monkeypatch):
    monkeypatch.setenv("LUMINA_RESULTS", str(tmp_path))
    cfg = resolve("synthetic", "smoke")
    run = Run({"config": cfg.to_dict(), "n_params": 1, "metrics": {"test_top1": 1.0}}, image_model(), [])
    save_run(cfg, run, weights=False)
    good = (result_dir(cfg) / "result.json").read_text()
    real = checkpoint_module.os.replace

    def read_only(src, dst):
        if str(dst).endswith("result.json"):
            raise PermissionError(errno.EROFS, "Read-only file system", str(dst))
        return real(src, dst)

    monkeypatch.setattr(checkpoint_module.os, "replace", read_only)
    bad = Run({**run.result, "metrics": {"test_top1": 2.0}}, run.model, [])
    with pytest.raises(PermissionError, match="Read-only"):
        save_run(cfg, bad, weights=False)
    assert (result_dir(cfg) / "result.json").read_text() == good
    assert load_result(cfg)["metrics"] == {"test_top1": 1.0}
    assert not list(result_dir(cfg).glob(".*.tmp"))


# ---- the results store -----------------------------------------------------------------------------------
def test_concurrent_writers_never_leave_a_corrupt_result(tmp_path, monkeypatch):
    monkeypatch.setenv("LUMINA_RESULTS", str(tmp_path))
    cfg = resolve("synthetic", "smoke")
    model = image_model()
    big = {"config": cfg.to_dict(), "n_params": 1, "metrics": {"test_top1": 1.0}, "blob": "x" * 200_000}
    errors = []

    def writer(n):
        for _ in range(10):
            save_run(cfg, Run({**big, "writer": n}, model, []), weights=False)

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
    assert not list(result_dir(cfg).glob(".*.tmp"))


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
    save_run(cfg, Run({"config": stale, "n_params": 1, "metrics": {"test_top1": 1.0}}, image_model(), []), weights=False)
    with pytest.raises(ValueError, match="another config"):
        load_result(cfg)
    (result_dir(cfg) / "result.json").write_text('{"config": ')
    with pytest.raises(ValueError, match="not valid JSON"):
        load_result(cfg)


# ---- nothing read back from disk is trusted unchecked ----------------------------------------------------
def _flip_tensor_bytes(path: Path) -> None:
    """Flip bytes in the tensor data of a safetensors file (past its JSON header), as a bad disk or a broken
    copy would: the header still parses, so only a checksum can tell."""
    data = bytearray(path.read_bytes())
    start = 8 + int.from_bytes(data[:8], "little")
    mid = start + (len(data) - start) // 2
    data[mid:mid + 4] = bytes(b ^ 0xFF for b in data[mid:mid + 4])
    path.write_bytes(bytes(data))


def _one_error_line(p: subprocess.CompletedProcess, *fragments: str) -> str:
    lines = p.stderr.splitlines()
    assert p.returncode == 2 and len(lines) == 1 and lines[0].startswith("error: "), (p.returncode, p.stderr)
    assert all(f in lines[0] for f in fragments), (fragments, lines[0])
    return lines[0]


def test_a_corrupted_checkpoint_is_refused_and_restart_trains_from_step_zero(tmp_path, monkeypatch):
    """The command line on a checkpoint whose tensors were changed on disk: one `error:` line naming the file
    and `--restart` (it used to resume silently and store a different result); `--restart` then trains from
    step 0, says "trained", and stores what an uninterrupted run stores."""
    sets = dict(epochs=1.0, threads=1)
    cfg = resolve("synthetic", "smoke", **sets)
    env = _env(tmp_path, "corrupt")
    monkeypatch.setenv("LUMINA_RESULTS", env["LUMINA_RESULTS"])
    monkeypatch.setenv("LUMINA_RUNS", env["LUMINA_RUNS"])
    ckpt = run_dir(cfg) / "checkpoint.safetensors"
    assert train(cfg, ckpt=ckpt, stop_after=5, **QUIET) is None
    _flip_tensor_bytes(ckpt)

    p = subprocess.run(_cli(sets), cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)
    _one_error_line(p, str(ckpt), "is corrupt", "--restart")
    assert "resuming" not in p.stdout and not (result_dir(cfg) / "result.json").exists()

    again = subprocess.run(_cli(sets) + ["--restart"], cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)
    assert again.returncode == 0, again.stderr
    assert "resuming" not in again.stdout
    printed = json.loads(again.stdout.strip().splitlines()[-1])
    assert printed["state"] == "trained"  # not "resumed": the checkpoint was discarded
    assert printed["metrics"] == train(cfg, **QUIET).result["metrics"]


def test_checkpoint_errors_name_the_file_and_the_way_out(tmp_path):
    cfg = resolve("synthetic", "smoke", epochs=1.0, threads=1)
    ckpt = tmp_path / "c.safetensors"
    train(cfg, ckpt=ckpt, stop_after=3, **QUIET)
    good = ckpt.read_bytes()
    with pytest.raises(CheckpointError, match="another config.*--restart"):
        load_checkpoint(ckpt, "another-key")
    ckpt.write_bytes(good[: len(good) // 2])  # a truncated copy
    with pytest.raises(CheckpointError, match=f"{re.escape(str(ckpt))} is not a readable safetensors file.*--restart"):
        load_checkpoint(ckpt, cfg.key())
    ckpt.write_bytes(good)
    _flip_tensor_bytes(ckpt)
    with pytest.raises(CheckpointError, match=f"{re.escape(str(ckpt))} is corrupt.*--restart"):
        load_checkpoint(ckpt, cfg.key())


def test_a_corrupted_stored_network_is_refused(tmp_path, monkeypatch):
    monkeypatch.setenv("LUMINA_RESULTS", str(tmp_path))
    cfg = resolve("synthetic", "smoke")
    run = Run({"config": cfg.to_dict(), "n_params": 1, "metrics": {"test_top1": 1.0}}, image_model(), [])
    d = save_run(cfg, run, weights=True)
    _, _, tensors, meta = read_network(d / "network")  # intact: its checksum matches
    assert meta["sha256"] and set(tensors) == set(run.model.named_tensors())
    _flip_tensor_bytes(d / "network" / "weights.safetensors")
    with pytest.raises(CheckpointError, match=f"weights.safetensors is corrupt.*delete the run's folder {re.escape(str(d))} "):
        load_model(cfg)


def test_a_file_written_before_checksums_still_loads(tmp_path):
    """Checkpoints and networks written by older code have no checksum: they load (refusing them would strand
    every run in progress), and the next save adds one."""
    from safetensors.torch import save_file

    save_file({"w": torch.ones(3)}, str(tmp_path / "old.safetensors"), metadata={"format": "named-v2"})
    tensors, meta = load_tensors(tmp_path / "old.safetensors")
    assert torch.equal(tensors["w"], torch.ones(3)) and "sha256" not in meta


def test_written_files_are_readable_by_group_and_others(tmp_path, monkeypatch):
    """Results and checkpoints get the mode the umask allows (0644 under 022), not mkstemp's 0600."""
    monkeypatch.setenv("LUMINA_RESULTS", str(tmp_path / "results"))
    cfg = resolve("synthetic", "smoke", epochs=1.0, threads=1)
    old = os.umask(0o022)
    try:
        run = Run({"config": cfg.to_dict(), "n_params": 1, "metrics": {"test_top1": 1.0}}, image_model(), [1])
        d = save_run(cfg, run, weights=True)
        train(cfg, ckpt=tmp_path / "ckpt.safetensors", stop_after=2, **QUIET)
        files = [p for p in d.rglob("*") if p.is_file()] + [tmp_path / "ckpt.safetensors"]
        assert len(files) >= 5
        assert {p.name: oct(stat.S_IMODE(p.stat().st_mode)) for p in files} == {p.name: "0o644" for p in files}
        os.umask(0o077)  # and a stricter umask is respected
        atomic_write_text(tmp_path / "private.json", "{}")
        assert stat.S_IMODE((tmp_path / "private.json").stat().st_mode) == 0o600
    finally:
        os.umask(old)


MALFORMED = {
    "empty object": ("{}", "no 'config' and no 'metrics' field"),
    "NaN metric": (None, "not finite numbers: {'test_top1': nan}"),  # filled in from a real result below
    "truncated": ('{"config": {"model": ', "is not valid JSON"),
    "a list": ("[1, 2]", "a JSON list, not an object"),
    "metrics not numbers": (None, "not finite numbers: {'test_top1': '64'}"),
    "binary garbage": (b"\xff\xfe\x00", "is not valid JSON"),
}


def _malformed(cfg, case: str):
    text, _ = MALFORMED[case]
    if text is None:
        good = {"config": cfg.to_dict(), "n_params": 1, "metrics": {"test_top1": 1.0, "test_loss": 0.5}}
        good["metrics"]["test_top1"] = float("nan") if case == "NaN metric" else "64"
        text = json.dumps(good)  # json writes NaN, as a run whose loss diverged would have
    f = result_dir(cfg) / "result.json"
    f.parent.mkdir(parents=True, exist_ok=True)
    f.write_bytes(text if isinstance(text, bytes) else text.encode())
    return f


@pytest.mark.parametrize("case", MALFORMED)
def test_a_malformed_result_is_a_value_error_naming_the_file(tmp_path, monkeypatch, case):
    monkeypatch.setenv("LUMINA_RESULTS", str(tmp_path))
    cfg = resolve("synthetic", "smoke")
    f = _malformed(cfg, case)
    for read in (lambda: load_result(cfg), lambda: find_results("synthetic", "smoke"), lambda: train_or_load(cfg)):
        with pytest.raises(ValueError) as err:
            read()
        msg = str(err.value)
        assert msg.startswith(f"{f} ") and MALFORMED[case][1] in msg and "--retrain" in msg, msg


@pytest.mark.slow
@pytest.mark.parametrize("command, case", [  # every case with every command is the in-process test above
    (["show", "synthetic"], "truncated"), (["train", "synthetic"], "empty object"),
    (["run-set", "evolution"], "empty object"), (["report", "--profile", "smoke"], "NaN metric"),
])
def test_a_malformed_result_is_one_error_line_on_the_command_line(tmp_path, monkeypatch, command, case):
    """`show`, `train`, `run-set` and `report` on a malformed result.json: one `error:` line naming the file
    (they ended in KeyError and AttributeError tracebacks)."""
    env = _env(tmp_path, "bad")
    monkeypatch.setenv("LUMINA_RESULTS", env["LUMINA_RESULTS"])
    from lumina.published import RUN_SETS, cifar10_v3_choice_runs

    name = command[1] if command[0] != "report" else None
    cfg = (resolve("synthetic", "smoke") if name == "synthetic" else RUN_SETS[name]("smoke")[0] if name else
           cifar10_v3_choice_runs("smoke")["LuminaNet-16 v3, lr 0.001"][0])  # the report's choice table reads it
    f = _malformed(cfg, case)
    p = subprocess.run([sys.executable, "-m", "lumina", *command], cwd=ROOT, env=env, capture_output=True,
                       text=True, timeout=300)
    _one_error_line(p, str(f), MALFORMED[case][1])
    assert not (Path(env["LUMINA_RUNS"]) / cfg.experiment).exists()  # nothing was trained


@pytest.mark.parametrize("var, where", [("LUMINA_RESULTS", "a file"), ("LUMINA_RUNS", "under a file")])
def test_a_folder_that_cannot_be_written_stops_the_run_before_it_trains(tmp_path, var, where):
    """The real command line with LUMINA_RESULTS or LUMINA_RUNS pointing at a file (or below one): one
    `error:` line at once, nothing trained (a NotADirectoryError traceback came after the training)."""
    blocker = tmp_path / "blocker"
    blocker.write_text("not a folder")
    env = {**_env(tmp_path, "w"), var: str(blocker if where == "a file" else blocker / "sub")}
    t0 = time.perf_counter()
    p = subprocess.run(_cli(dict(epochs=1.0, threads=1)), cwd=ROOT, env=env, capture_output=True, text=True,
                       timeout=300)
    _one_error_line(p, f"{blocker} is not a folder", f"point {var} at a folder")
    assert "[lumina] training" not in p.stdout and time.perf_counter() - t0 < 60
    assert not any(Path(env[v]).exists() for v in ("LUMINA_RESULTS", "LUMINA_RUNS") if v != var)


@pytest.mark.skipif(os.geteuid() == 0, reason="root writes into a read-only folder; see the next test")
def test_a_read_only_results_folder_stops_the_run_before_it_trains(tmp_path):
    env = _env(tmp_path, "ro")
    results = Path(env["LUMINA_RESULTS"])
    results.mkdir()
    results.chmod(0o555)
    try:
        p = subprocess.run(_cli(dict(epochs=1.0, threads=1)), cwd=ROOT, env=env, capture_output=True, text=True,
                           timeout=300)
    finally:
        results.chmod(0o755)
    _one_error_line(p, f"{results} is not writable", "point LUMINA_RESULTS at a writable folder")
    assert not Path(env["LUMINA_RUNS"]).exists()


def test_check_writable_refuses_a_folder_that_refuses_a_file(tmp_path, monkeypatch):
    """A read-only mount, as the probe file sees it (also for root, whom chmod does not stop)."""
    def read_only(*a, **k):
        raise OSError(errno.EROFS, "Read-only file system")

    check_writable(tmp_path / "new" / "deeper", "LUMINA_RESULTS")  # creatable: fine, and nothing is created
    assert not (tmp_path / "new").exists() and not list(tmp_path.iterdir())
    monkeypatch.setattr(paths_module.tempfile, "mkstemp", read_only)
    with pytest.raises(ValueError) as err:
        check_writable(tmp_path / "x", "LUMINA_RUNS")
    assert str(err.value) == (f"{tmp_path} is not writable (Read-only file system), so {tmp_path / 'x'} cannot be "
                              "written; point LUMINA_RUNS at a writable folder")


def test_a_file_replaced_while_it_is_read_is_never_taken_for_corrupt(tmp_path):
    """Another process keeps replacing a file (a run checkpointing) while this one reads it: every read gets
    one whole file, never one file's checksum with the next file's tensors."""
    path = tmp_path / "ckpt.safetensors"
    writer = textwrap.dedent(f"""
        import itertools, torch
        from lumina.checkpoint import save_tensors
        for i in itertools.count():  # same names and shapes each time, other bytes: only the checksum tells them apart
            save_tensors({str(path)!r}, {{"w": torch.full((64, 64), float(i)), "b": torch.arange(4096) + i}},
                         {{"state": str(i % 7)}})
    """)
    checkpoint_module.save_tensors(path, {"w": torch.zeros(64, 64), "b": torch.arange(4096)}, {"state": "0"})
    child = subprocess.Popen([sys.executable, "-c", writer], cwd=ROOT)
    try:
        seen, started, end = set(), time.monotonic(), None
        while end is None or time.monotonic() < end:
            tensors, meta = load_tensors(path)
            i = int(tensors["w"][0, 0].item())
            assert torch.equal(tensors["b"], torch.arange(4096) + i) and meta["state"] == str(i % 7)
            seen.add(i)
            if end is None and len(seen) > 1:  # the writer has started: read for 3 more seconds
                end = time.monotonic() + 3.0
            assert child.poll() is None and time.monotonic() - started < 120, "the writer did not start"
        assert len(seen) > 20  # the file really was replaced under the reads
    finally:
        child.kill()
        child.wait()


def test_a_run_parked_at_a_deadline_resumes_on_another_machine_to_the_uninterrupted_result(tmp_path, monkeypatch):
    """A run longer than the machine is lent for: stopped at its deadline with `park`, its checkpoint is copied
    into its results folder (committed with the results); another machine, with the results but an empty
    `runs/`, resumes from it, reaches the uninterrupted result exactly, and deletes the parked copy."""
    import shutil

    from lumina.results import PARKED

    cfg = resolve("synthetic", "smoke", epochs=4.0, threads=1, eval_every=10)
    lines = []
    monkeypatch.setenv("LUMINA_RESULTS", str(tmp_path / "results"))
    monkeypatch.setenv("LUMINA_RUNS", str(tmp_path / "runs_a"))
    ticks = iter(range(10**6))  # the deadline comes after 23 steps (time.time() as a step counter)
    monkeypatch.setattr("lumina.loop.time.time", lambda: float(next(ticks)))
    assert train_or_load_state(cfg, park=True, deadline=23.0, log=lines.append) == ("stopped", {})
    monkeypatch.undo()
    parked = tmp_path / "results" / cfg.experiment / cfg.profile / cfg.key() / PARKED
    assert parked.exists() and load_result(cfg) is None and any("parked" in line for line in lines)
    assert 0 < load_checkpoint(parked, cfg.key())["state"]["step"] < 64
    monkeypatch.setenv("LUMINA_RESULTS", str(tmp_path / "results"))
    monkeypatch.setenv("LUMINA_RUNS", str(tmp_path / "runs_b"))  # the other machine: no checkpoint of its own
    state, _ = train_or_load_state(cfg, log=lines.append)
    assert state == "resumed" and not parked.exists() and any("parked checkpoint" in line for line in lines)
    shutil.rmtree(tmp_path / "runs_a")
    monkeypatch.setenv("LUMINA_RESULTS", str(tmp_path / "straight_results"))
    monkeypatch.setenv("LUMINA_RUNS", str(tmp_path / "straight_runs"))
    train_or_load(cfg, **QUIET)
    _assert_same(_stored(tmp_path / "results", cfg), _stored(tmp_path / "straight_results", cfg))
