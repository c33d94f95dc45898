"""Errors for people: every mistake a user can type reaches them as one `error:` line and exit status 2.

Each case runs the real command line (`python -m lumina ...`) in a subprocess, with the results store and
the runs folder in temporary folders and a network guard (see `_no_network`) that records any attempt to
connect, so "missing data" is proven not to try a download. Also: `parse_overrides` and relative paths.
"""
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from lumina.config import parse_overrides, resolve
from lumina.paths import data_root
from lumina.published import RUN_SETS

ROOT = Path(__file__).resolve().parents[1]
CIFAR_FILES = ("data_batch_1", "data_batch_2", "data_batch_3", "data_batch_4", "data_batch_5", "test_batch",
               "batches.meta")

_GUARD = '''
import socket
def _refuse(self, address, *a, **k):
    with open({log!r}, "a") as f:
        f.write(repr(address) + "\\n")
    raise OSError("network use is not allowed in this test")
socket.socket.connect = _refuse
socket.socket.connect_ex = _refuse
'''


@pytest.fixture
def lumina(tmp_path):
    """Run `python -m lumina ARGS` with LUMINA_RESULTS/LUMINA_RUNS in tmp_path and no network; returns
    (exit status, stdout, stderr lines). `env` adds variables, `cwd` sets the working directory."""
    guard = tmp_path / "guard"
    guard.mkdir()
    attempts = tmp_path / "network_attempts.log"
    (guard / "sitecustomize.py").write_text(_GUARD.format(log=str(attempts)))

    def run(*args, env=None, cwd=ROOT):
        e = {k: v for k, v in os.environ.items() if k not in ("LUMINA_DOWNLOAD", "PYTHONPATH")}
        e.update(LUMINA_RESULTS=str(tmp_path / "results"), LUMINA_RUNS=str(tmp_path / "runs"), LUMINA_PROGRESS="0",
                 PYTHONPATH=str(guard), OMP_NUM_THREADS="1", **(env or {}))
        p = subprocess.run([sys.executable, "-m", "lumina", *args], cwd=cwd, env=e, capture_output=True,
                           text=True, timeout=300)
        assert not attempts.exists(), f"tried the network: {attempts.read_text()}"
        return p.returncode, p.stdout, p.stderr.splitlines()

    return run


def assert_user_error(result, *fragments):
    """Exit status 2, exactly one stderr line, starting `error:`, holding every fragment; no traceback."""
    rc, out, err = result
    assert rc == 2, (rc, out, err)
    assert len(err) == 1 and err[0].startswith("error: "), err
    assert "Traceback" not in out
    for frag in fragments:
        assert frag in err[0], (frag, err[0])
    return err[0]


# ---- names and values ---------------------------------------------------------------------------
def test_unknown_experiment(lumina):
    assert_user_error(lumina("train", "cifar"), "unknown experiment 'cifar'", "valid:", "cifar10", "synthetic")


def test_unknown_profile(lumina):
    assert_user_error(lumina("train", "synthetic", "--profile", "fast"), "unknown profile 'fast'",
                      "smoke, full, paper")


def test_bad_overrides(lumina):
    assert_user_error(lumina("train", "synthetic", "--set", "width=3"), "unknown config field 'width'", "d_hidden")
    assert_user_error(lumina("train", "synthetic", "--set", "d_hidden=0"), "d_hidden=0 must be > 0")
    assert_user_error(lumina("train", "synthetic", "--set", "d_hidden=3x"), "d_hidden", "'3x'")
    assert_user_error(lumina("train", "synthetic", "--set", "d_hidden"), "--set expects KEY=VALUE")


def test_unknown_run_set_and_launcher(lumina):
    assert_user_error(lumina("run-set", "cifar"), "unknown run set 'cifar'; valid: " + ", ".join(RUN_SETS))
    assert_user_error(lumina("run-set", "cifar10", "--launcher", "slurm"), "unknown launcher 'slurm'; valid: local, submitit")


def test_show(lumina, tmp_path):
    assert_user_error(lumina("show", "bogus"), "unknown experiment 'bogus'", "cifar10_baseline")
    rc, out, err = lumina("show", "cifar10", "--profile", "full")
    assert rc == 0 and out.strip() == f"no stored results for cifar10/full under {tmp_path / 'results' / 'cifar10' / 'full'}"


# ---- data ---------------------------------------------------------------------------------------------
def test_missing_dataset_names_the_folder_and_never_downloads(lumina, tmp_path):
    """A relative LUMINA_DATA pointing at an empty folder: the message names the absolute folder it looked in,
    the variable and the download switch; the network guard proves nothing was fetched."""
    (tmp_path / "empty").mkdir()
    line = assert_user_error(lumina("train", "cifar10", env={"LUMINA_DATA": "empty"}, cwd=tmp_path),
                             "CIFAR-10", "is missing", "LUMINA_DATA", "LUMINA_DOWNLOAD=1")
    assert str(tmp_path / "empty" / "cifar10" / "cifar-10-batches-py") in line


def test_corrupt_cifar_file_is_named(lumina, tmp_path):
    folder = tmp_path / "data" / "cifar10" / "cifar-10-batches-py"
    folder.mkdir(parents=True)
    for name in CIFAR_FILES:
        (folder / name).write_bytes(b"half a download")
    assert_user_error(lumina("train", "cifar10", env={"LUMINA_DATA": str(tmp_path / "data")}),
                      f"{folder / 'data_batch_1'} is corrupt (md5 mismatch")


# ---- units ----------------------------------------------------------------------------------------------
def test_parse_overrides():
    assert parse_overrides(None) == {} and parse_overrides("") == {} and parse_overrides(" ") == {}
    assert parse_overrides({"d_hidden": 32}) == {"d_hidden": 32}
    assert parse_overrides('{"connect_k": 8, "lr": 0.01}') == {"connect_k": 8, "lr": 0.01}
    with pytest.raises(ValueError, match="not valid JSON.*such as"):
        parse_overrides("{connect_k: 8}")
    with pytest.raises(ValueError, match="must be a JSON object"):
        parse_overrides("[8]")
    with pytest.raises(ValueError, match="must be a JSON object"):
        parse_overrides(8)


def test_resolve_takes_overrides_as_papermill_passes_them():
    """`-p overrides '{"connect_k": 8}'` reaches a notebook as a string; resolve accepts it as is."""
    base = resolve("synthetic", "smoke")
    assert resolve("synthetic", "smoke", overrides='{"connect_k": 3}').evolution.connect_k == 3
    assert resolve("synthetic", "smoke", overrides={"d_hidden": 12}, seed=4).model.d_hidden == 12
    assert resolve("synthetic", "smoke", overrides=None) == base
    assert resolve("synthetic", "smoke", **parse_overrides('{"seed": 2}')).train.seed == 2
    with pytest.raises(ValueError, match="unknown config field 'bogus'; valid fields: .*d_hidden"):
        resolve("synthetic", "smoke", overrides=json.dumps({"bogus": 1}))
    with pytest.raises(ValueError, match="not valid JSON"):
        resolve("synthetic", "smoke", overrides="{'connect_k': 8}")
    with pytest.raises(ValueError, match="unknown experiment 'bogus'; valid: .*synthetic"):
        resolve("bogus")
    with pytest.raises(ValueError, match="unknown profile 'big'; valid: smoke, full, paper"):
        resolve("synthetic", "big")


def test_relative_data_root_is_resolved_once(tmp_path, monkeypatch):
    """Read once from where it was set, then written back absolute: a notebook kernel started later in
    book/chapters/ sees the same folder instead of creating a stray one."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("LUMINA_DATA", "rel/data")
    assert data_root() == tmp_path / "rel" / "data"
    assert os.environ["LUMINA_DATA"] == str(tmp_path / "rel" / "data")
    monkeypatch.chdir(ROOT / "book")
    assert data_root() == tmp_path / "rel" / "data"
    monkeypatch.setenv("LUMINA_DATA", "~/x")
    assert data_root() == Path.home() / "x"
    monkeypatch.delenv("LUMINA_DATA")
    assert data_root() == ROOT / "data"
