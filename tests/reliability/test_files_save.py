"""Save-file hygiene (issue 12, classes 8 and the "Atomic save" gap): whole or not at all, and tidy.

A write that fails halfway leaves the old file and no temporary file; a
``kill -9`` during save, repeated, leaves the previous file loadable and the
next save removes what the killed ones left; files get numpy's permissions;
``~`` is expanded; errors name the user's path.
"""

import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import numpy as np
import pytest
from helpers import assert_model_unchanged, model_state, planted

import npmf
from npmf.core import persistence


@pytest.fixture(scope="module")
def model():
    u, i, r = planted(n_users=12, n_items=9, n_ratings=200)
    return npmf.MatrixFactorization(epochs=2, random_state=0).fit(u, i, r)


def _temporaries(folder):
    return sorted(p.name for p in Path(folder).iterdir() if p.name.endswith(".tmp"))


@pytest.mark.parametrize(
    "fault", [OSError(28, "No space left on device"), KeyboardInterrupt()], ids=["ENOSPC", "interrupt"]
)
def test_a_save_that_fails_halfway_leaves_the_old_file_and_no_temporary(model, tmp_path, monkeypatch, fault):
    path = tmp_path / "model.npz"
    model.save(path)
    old = path.read_bytes()
    before = model_state(model)

    def half_a_write(f, **arrays):
        f.write(b"PK\x03\x04 half of an archive")
        raise fault

    monkeypatch.setattr(persistence.np, "savez", half_a_write)
    with pytest.raises(type(fault)):
        model.save(path)
    assert path.read_bytes() == old
    assert _temporaries(tmp_path) == []
    assert_model_unchanged(before, model)
    monkeypatch.undo()
    npmf.load(path)


def test_a_failed_rename_leaves_the_old_file_and_no_temporary(model, tmp_path, monkeypatch):
    path = tmp_path / "model.npz"
    model.save(path)
    old = path.read_bytes()

    def refuse(src, dst):
        raise PermissionError(13, "Permission denied")

    monkeypatch.setattr(persistence.os, "replace", refuse)
    with pytest.raises(PermissionError):
        model.save(path)
    assert path.read_bytes() == old and _temporaries(tmp_path) == []


def test_the_file_is_flushed_to_disk_before_the_rename(model, tmp_path, monkeypatch):
    calls = []
    real_fsync, real_replace = os.fsync, os.replace
    monkeypatch.setattr(persistence.os, "fsync", lambda fd: (calls.append("fsync"), real_fsync(fd))[1])
    monkeypatch.setattr(persistence.os, "replace", lambda a, b: (calls.append("replace"), real_replace(a, b))[1])
    model.save(tmp_path / "model.npz")
    assert calls[:2] == ["fsync", "replace"]


@pytest.mark.parametrize("umask", [0o022, 0o077, 0o002])
def test_saved_files_get_numpys_permissions(model, tmp_path, umask):
    old = os.umask(umask)
    try:
        model.save(tmp_path / "model.npz")
        np.save(tmp_path / "numpy.npy", np.zeros(1))
    finally:
        os.umask(old)
    mode = (tmp_path / "model.npz").stat().st_mode & 0o777
    assert mode == 0o666 & ~umask == (tmp_path / "numpy.npy").stat().st_mode & 0o777


def test_home_is_expanded(model, tmp_path, monkeypatch):
    monkeypatch.setenv("HOME", str(tmp_path))
    model.save("~/model.npz")
    assert (tmp_path / "model.npz").is_file() and not Path("~").exists()


def test_a_missing_folder_is_named_not_the_temporary_file(model, tmp_path):
    target = tmp_path / "no" / "such" / "model.npz"
    with pytest.raises(FileNotFoundError) as info:
        model.save(target)
    assert str(target.parent) in str(info.value) and ".tmp" not in str(info.value)


def test_a_folder_as_target_is_named(model, tmp_path):
    with pytest.raises(IsADirectoryError, match=str(tmp_path)):
        model.save(tmp_path)


def test_a_folder_without_write_permission_is_named(model, tmp_path, monkeypatch):
    # (root may write anywhere, so the refusal is simulated where the temporary file is made)
    def refuse(**kw):
        raise PermissionError(13, "Permission denied", str(tmp_path / ".model.npz.1.x.tmp"))

    monkeypatch.setattr(persistence.tempfile, "mkstemp", refuse)
    with pytest.raises(PermissionError) as info:
        model.save(tmp_path / "model.npz")
    assert str(tmp_path / "model.npz") in str(info.value) and ".tmp" not in str(info.value)


def test_stale_temporaries_of_dead_writers_are_removed_and_others_kept(model, tmp_path):
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    dead_pid = int(dead.stdout)
    stale = tmp_path / f".model.npz.{dead_pid}.abc123.tmp"
    live = tmp_path / f".model.npz.{os.getppid()}.def456.tmp"  # a writer that is still running
    other = tmp_path / f".model.npz.1.npz.{dead_pid}.ghi789.tmp"  # a temporary of model.npz.1.npz
    old_style = tmp_path / ".model.npz.jkl012.tmp"  # from before pids were in the name
    for p in (stale, live, other, old_style):
        p.write_bytes(b"partial")
    old = time.time() - 2 * persistence.STALE_SECONDS
    os.utime(old_style, (old, old))
    model.save(tmp_path / "model.npz")
    assert sorted(_temporaries(tmp_path)) == sorted([live.name, other.name])


KILLER = textwrap.dedent(
    """
    import sys
    import numpy as np
    import npmf
    model = npmf.load(sys.argv[1])
    rng = np.random.default_rng(0)
    # A big model, so that a kill lands inside the write.
    model.user_factors_ = rng.normal(size=(400_000, 3))
    model.user_bias_ = np.zeros(400_000)
    model.user_ids_ = np.arange(400_000)
    model._m[0], model._v[0] = model.user_factors_, np.abs(model.user_factors_)
    model._m[2] = model._v[2] = model.user_bias_
    print("ready", flush=True)
    while True:
        model.save(sys.argv[1])
    """
)


@pytest.mark.slow
def test_kill_9_during_save_leaves_a_loadable_file_and_the_next_save_cleans_up(model, tmp_path):
    path = tmp_path / "model.npz"
    model.save(path)
    leftovers = 0
    rng = np.random.default_rng(1)
    for _ in range(8):
        child = subprocess.Popen([sys.executable, "-c", KILLER, str(path)], stdout=subprocess.PIPE, text=True)
        assert child.stdout.readline().strip() == "ready"
        time.sleep(rng.uniform(0.05, 0.6))
        child.send_signal(signal.SIGKILL)
        child.wait()
        loaded = npmf.load(path)  # whole: the previous save or the latest complete one
        assert len(loaded.user_ids_) in (len(model.user_ids_), 400_000)
        leftovers += len(_temporaries(tmp_path))
    assert leftovers > 0, "no kill landed inside a write; the test proved nothing"
    model.save(path)
    assert _temporaries(tmp_path) == []
    npmf.load(path)
