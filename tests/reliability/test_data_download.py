"""MovieLens downloads against a local HTTP server on 127.0.0.1, never the network.

The server serves archives that the tests build in each release's format: a good one, a truncated one, one with a
wrong checksum, one that resets the connection, and one that accepts the connection and never answers.
"""

import hashlib
import http.server
import io
import os
import socket
import struct
import subprocess
import sys
import threading
import time
import zipfile

import numpy as np
import pytest

import npmf
from npmf.data import movielens as datasets

# --- the archives and the server ----------------------------------------------------------------


def _ratings(n, half_stars=False, seed=0):
    rng = np.random.default_rng(seed)
    stars = rng.integers(2 if half_stars else 1, 11 if half_stars else 6, n) / (2 if half_stars else 1)
    return list(zip(rng.integers(1, 40, n), rng.integers(1, 60, n), stars, rng.integers(8e8, 9e8, n)))


def _fmt(r):
    return f"{r:g}" if r != int(r) else str(int(r))


def build_archive(name, n=300):
    """(zip bytes, ratings) laid out as GroupLens' archive of ``name``, with generated ratings."""
    spec = datasets.MOVIELENS[name]
    rows = _ratings(n, half_stars=name != "ml-100k" and name != "ml-1m")
    folder = spec["folder"]
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        if spec["sep"] == ",":
            text = "userId,movieId,rating,timestamp\n" + "".join(f"{u},{i},{_fmt(r)},{t}\n" for u, i, r, t in rows)
        else:
            text = "".join(spec["sep"].join((str(u), str(i), _fmt(r), str(t))) + "\n" for u, i, r, t in rows)
        zf.writestr(f"{folder}/{spec['file']}", text)
        if name == "ml-100k":
            for s in datasets.SPLITS["ml-100k"]:
                zf.writestr(f"{folder}/{s}.base", "".join(f"{u}\t{i}\t{_fmt(r)}\t{t}\n" for u, i, r, t in rows[:200]))
                zf.writestr(f"{folder}/{s}.test", "".join(f"{u}\t{i}\t{_fmt(r)}\t{t}\n" for u, i, r, t in rows[200:]))
        zf.writestr(f"{folder}/README", "generated for a test")
    return buf.getvalue(), rows


class _Handler(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        mode, body = self.server.routes.get(self.path, ("missing", b""))
        if mode == "silent":  # accept, read the request, never answer
            self.server.release.wait(20)
            return
        if mode == "missing":
            self.send_error(404)
            return
        if mode == "reset":  # close with RST instead of answering
            self.request.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            self.close_connection = True
            return
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if mode == "truncated":  # promise the whole archive, send half, hang up
            self.wfile.write(body[: len(body) // 2])
            self.close_connection = True
        elif mode == "stall":  # headers and the first bytes, then nothing
            self.wfile.write(body[:100])
            self.wfile.flush()
            self.server.release.wait(20)
        else:
            self.wfile.write(body)

    def log_message(self, *args):
        pass


@pytest.fixture
def server():
    """A threaded HTTP server on 127.0.0.1; ``server.serve(path, mode, body)`` adds a route, ``.url(path)``."""
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    httpd.daemon_threads = True
    httpd.routes = {}
    httpd.release = threading.Event()
    httpd.serve = lambda path, mode="good", body=b"": httpd.routes.__setitem__(path, (mode, body))
    httpd.url = lambda path: f"http://127.0.0.1:{httpd.server_address[1]}{path}"
    thread = threading.Thread(target=httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    yield httpd
    httpd.release.set()
    httpd.shutdown()
    httpd.server_close()


def publish(monkeypatch, server, name, body, mode="good", **overrides):
    """Serve ``body`` as ``name``'s archive and point the dataset table at it, with the archive's size and MD5."""
    path = f"/{name}.zip"
    server.serve(path, mode, body)
    spec = dict(datasets.MOVIELENS[name], url=server.url(path), size=len(body), md5=hashlib.md5(body).hexdigest())
    spec.pop("file_md5", None)
    spec.pop("file_size", None)
    spec.update(overrides)
    monkeypatch.setitem(datasets.MOVIELENS, name, spec)
    monkeypatch.setitem(datasets._SPLIT_SIZES, name, {})
    return spec


def listing(folder):
    """Every path under ``folder`` with its bytes: what must not change when a call fails."""
    if not folder.exists():
        return None
    return {str(p.relative_to(folder)): (p.read_bytes() if p.is_file() else None) for p in sorted(folder.rglob("*"))}


# --- good archives, every release -----------------------------------------------------------------


@pytest.mark.parametrize("name", list(datasets.MOVIELENS))
def test_each_release_downloads_verifies_and_reads(name, server, tmp_path, monkeypatch, capsys):
    body, rows = build_archive(name)
    publish(monkeypatch, server, name, body)
    home = tmp_path / "home"
    df = npmf.load_movielens(name, data_home=home, timeout=5)
    assert list(df.columns) == ["user_id", "item_id", "rating", "timestamp"] and len(df) == len(rows)
    np.testing.assert_array_equal(df.user_id, [r[0] for r in rows])
    np.testing.assert_array_equal(df.item_id, [r[1] for r in rows])
    np.testing.assert_array_equal(df.rating, [r[2] for r in rows])
    np.testing.assert_array_equal(df.timestamp, [r[3] for r in rows])
    assert str(home / name) in capsys.readouterr().err  # it says where the data went
    assert sorted(p.name for p in home.iterdir()) == [name]  # no temporary folder left
    assert (home / name / datasets.MANIFEST).is_file()
    # Cached: a second load does not download.
    monkeypatch.setattr(datasets, "_urlopen", lambda *a, **k: pytest.fail("downloaded twice"))
    assert len(npmf.load_movielens(name, data_home=home)) == len(rows)


def test_the_table_holds_the_published_values():
    """Guards the table against edits by accident: the values GroupLens publishes (see the comment in movielens.py)."""
    expected = {
        "ml-100k": ("0e33842e24a9c977be4e0107933c0723", 4_924_029),
        "ml-1m": ("c4d9eecfca2ab87c1945afe126590906", 5_917_549),
        "ml-10m": ("ce571fd55effeba0271552578f2648bd", 65_566_137),
        "ml-25m": ("6b51fb2759a8657d3bfcbfc42b592ada", 261_978_986),
        "ml-latest-small": ("31a303aabbc519bd33d025e44d6c2570", 978_202),
    }
    assert {k: (v["md5"], v["size"]) for k, v in datasets.MOVIELENS.items()} == expected
    for name, spec in datasets.MOVIELENS.items():
        assert spec["url"] == f"https://files.grouplens.org/datasets/movielens/{name}.zip"


def test_folds_from_a_downloaded_archive(server, tmp_path, monkeypatch):
    body, rows = build_archive("ml-100k")
    publish(monkeypatch, server, "ml-100k", body)
    folds = npmf.load_movielens_folds("ml-100k", data_home=tmp_path, splits="ua", timeout=5)
    assert len(folds) == 1 and [len(part) for part in folds[0]] == [200, 100]


def test_a_partial_folder_is_repaired_once(server, tmp_path, monkeypatch):
    """``ml-100k/`` without u.data (a file of the user's in it) gets the missing files, once; nothing is discarded."""
    body, rows = build_archive("ml-100k")
    publish(monkeypatch, server, "ml-100k", body)
    folder = tmp_path / "ml-100k"
    folder.mkdir()
    (folder / "README").write_text("mine")
    assert len(npmf.load_movielens("ml-100k", data_home=tmp_path, timeout=5)) == len(rows)
    assert (folder / "README").read_text() == "mine"  # kept
    assert (folder / "u1.base").is_file() and sorted(p.name for p in tmp_path.iterdir()) == ["ml-100k"]
    calls = []
    monkeypatch.setattr(datasets, "_urlopen", lambda *a, **k: calls.append(a) or pytest.fail("downloaded again"))
    npmf.load_movielens("ml-100k", data_home=tmp_path)
    npmf.load_movielens_folds("ml-100k", data_home=tmp_path)
    assert calls == []


def test_folds_missing_from_a_folder_are_filled_in(server, tmp_path, monkeypatch):
    body, rows = build_archive("ml-100k")
    publish(monkeypatch, server, "ml-100k", body)
    npmf.load_movielens("ml-100k", data_home=tmp_path, timeout=5)
    (tmp_path / "ml-100k" / "u3.test").unlink()
    before = (tmp_path / "ml-100k" / "u.data").stat().st_mtime_ns
    assert len(npmf.load_movielens_folds("ml-100k", data_home=tmp_path, splits=["u3"], timeout=5)) == 1
    assert (tmp_path / "ml-100k" / "u.data").stat().st_mtime_ns == before  # u.data was not replaced


def test_stale_temporary_folders_of_killed_downloads_are_removed(server, tmp_path, monkeypatch):
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    stale = tmp_path / f".ml-100k-download-{int(dead.stdout)}-abc"
    stale.mkdir()
    (stale / "ml-100k.zip").write_bytes(b"half")
    live = tmp_path / f".ml-100k-download-{os.getppid()}-xyz"  # a running process's download is left alone
    live.mkdir()
    body, _ = build_archive("ml-100k")
    publish(monkeypatch, server, "ml-100k", body)
    npmf.load_movielens("ml-100k", data_home=tmp_path, timeout=5)
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(["ml-100k", live.name])


def test_an_interrupted_download_leaves_nothing(tmp_path, monkeypatch):
    class Interrupted:
        def __enter__(self):
            return self

        def __exit__(self, *exc):
            return False

        def read(self, n=-1):
            raise KeyboardInterrupt

    monkeypatch.setattr(datasets, "_urlopen", lambda url, timeout: Interrupted())
    with pytest.raises(KeyboardInterrupt):
        npmf.load_movielens("ml-1m", data_home=tmp_path)
    assert list(tmp_path.iterdir()) == []


def test_the_timeout_reaches_every_network_call(tmp_path, monkeypatch):
    seen = []

    def fake(url, timeout):
        seen.append(timeout)
        raise TimeoutError("timed out")

    monkeypatch.setattr(datasets, "_urlopen", fake)
    for call in (
        lambda: npmf.load_movielens("ml-1m", data_home=tmp_path, timeout=7),
        lambda: npmf.load_movielens_folds("ml-100k", data_home=tmp_path, timeout=8),
        lambda: datasets.download_movielens("ml-25m", data_home=tmp_path, timeout=9),
        lambda: npmf.load_movielens("ml-10m", data_home=tmp_path),
    ):
        with pytest.raises(OSError, match="no answer within"):
            call()
    assert seen == [7.0, 8.0, 9.0, datasets.DEFAULT_TIMEOUT]


# --- faults: each one message, nothing left on disk ----------------------------------------------------


def _fails(name, home, match, timeout=5):
    before = listing(home)
    with pytest.raises(OSError, match=match) as info:
        npmf.load_movielens(name, data_home=home, timeout=timeout)
    message = str(info.value)
    assert listing(home) == before
    return message


def _friendly(message, name, url):
    assert f"could not download {name} from {url}" in message
    assert "offline" in message and "NPMF_DATA_DIR" in message


def test_a_silent_server_fails_within_the_timeout(server, tmp_path, monkeypatch):
    body, _ = build_archive("ml-100k")
    spec = publish(monkeypatch, server, "ml-100k", body, mode="silent")
    tmp_path.joinpath("home").mkdir()
    start = time.monotonic()
    message = _fails("ml-100k", tmp_path / "home", "no answer within 0.3 s", timeout=0.3)
    assert time.monotonic() - start < 5
    _friendly(message, "ml-100k", spec["url"])


def test_a_server_that_stalls_mid_download_fails_within_the_timeout(server, tmp_path, monkeypatch):
    body, _ = build_archive("ml-1m")
    spec = publish(monkeypatch, server, "ml-1m", body, mode="stall")
    start = time.monotonic()
    _friendly(_fails("ml-1m", tmp_path, "no answer within 0.3 s", timeout=0.3), "ml-1m", spec["url"])
    assert time.monotonic() - start < 5


@pytest.mark.parametrize(
    "mode, reason",
    [
        ("truncated", "the connection closed before the whole archive arrived \\([0-9,]+ bytes missing\\)"),
        ("reset", "Connection|connection|reset"),
        ("missing", "HTTP 404"),
    ],
)
def test_network_errors_map_to_one_message(mode, reason, server, tmp_path, monkeypatch):
    body, _ = build_archive("ml-latest-small")
    spec = publish(monkeypatch, server, "ml-latest-small", body, mode=mode)
    _friendly(_fails("ml-latest-small", tmp_path, reason), "ml-latest-small", spec["url"])


def test_an_unreachable_port_maps_to_the_message(tmp_path, monkeypatch):
    with socket.socket() as s:  # a port that was free a moment ago: connection refused
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    url = f"http://127.0.0.1:{port}/ml-1m.zip"
    monkeypatch.setitem(datasets.MOVIELENS, "ml-1m", dict(datasets.MOVIELENS["ml-1m"], url=url))
    _friendly(_fails("ml-1m", tmp_path, "refused"), "ml-1m", url)


def test_a_wrong_checksum_saves_nothing(server, tmp_path, monkeypatch):
    body, _ = build_archive("ml-25m")
    publish(monkeypatch, server, "ml-25m", body, md5="0" * 32)
    _fails("ml-25m", tmp_path, "MD5 .* does not match the published 0{32}; nothing was saved")


def test_a_short_archive_with_a_matching_length_header_fails_the_size_check(server, tmp_path, monkeypatch):
    body, _ = build_archive("ml-10m")
    publish(monkeypatch, server, "ml-10m", body[:-10], size=len(body))
    _fails("ml-10m", tmp_path, f"expected {len(body):,} bytes, got {len(body) - 10:,}")


def test_the_unpacked_file_is_checked_too(server, tmp_path, monkeypatch):
    body, _ = build_archive("ml-100k")
    publish(monkeypatch, server, "ml-100k", body, file_md5="f" * 32)
    _fails("ml-100k", tmp_path, "ml-100k/u.data: MD5 .* does not match the published f{32}")


# --- files on disk are verified on load --------------------------------------------------------------


@pytest.fixture
def downloaded(server, tmp_path, monkeypatch):
    def get(name):
        body, _ = build_archive(name)
        publish(monkeypatch, server, name, body)
        npmf.load_movielens(name, data_home=tmp_path, timeout=5)
        monkeypatch.setattr(datasets, "_urlopen", lambda *a, **k: pytest.fail("must not download"))
        spec = datasets.MOVIELENS[name]
        return tmp_path / name / spec["file"]

    return get


@pytest.mark.parametrize("name", ["ml-1m", "ml-latest-small"])
def test_a_truncated_file_on_disk_is_refused_with_a_hint(name, downloaded, tmp_path):
    path = downloaded(name)
    path.write_bytes(path.read_bytes()[:-7])
    message = _fails(name, tmp_path, "truncated or altered")
    assert str(path) in message and f"delete {path.parent} and load {name} again" in message


def test_an_altered_file_of_the_same_size_is_refused(downloaded, tmp_path):
    path = downloaded("ml-25m")
    data = bytearray(path.read_bytes())
    data[-3] = ord("9") if data[-3] != ord("9") else ord("8")
    path.write_bytes(bytes(data))
    assert str(path) in _fails("ml-25m", tmp_path, "does not match the MD5")


def test_a_truncated_split_file_is_refused(downloaded, tmp_path):
    path = downloaded("ml-100k").parent / "u2.test"
    path.write_bytes(path.read_bytes()[:-1])
    before = listing(tmp_path)
    with pytest.raises(OSError, match="u2.test has .* truncated or altered"):
        npmf.load_movielens_folds("ml-100k", data_home=tmp_path, splits=["u2"])
    assert listing(tmp_path) == before


def test_the_real_table_catches_a_truncated_u_data(tmp_path):
    """ml-100k's u.data is checked against the published file, even without a manifest (files put there by hand)."""
    folder = tmp_path / "ml-100k"
    folder.mkdir()
    (folder / "u.data").write_text("196\t242\t3\t881250949\n186\t302\t3\t891717742\n")
    message = _fails("ml-100k", tmp_path, "has 40 bytes, but ml-100k's u.data has 1,979,173")
    assert "delete" in message


def test_the_fingerprint_of_large_files_reads_16_blocks(tmp_path, monkeypatch):
    monkeypatch.setattr(datasets, "_FULL_MD5_LIMIT", 1 << 20)
    path = tmp_path / "big"
    path.write_bytes(np.random.default_rng(0).bytes(20 << 20))
    fingerprint = datasets._digest(path)
    assert fingerprint != datasets._digest(path, full=True) == hashlib.md5(path.read_bytes()).hexdigest()
    data = bytearray(path.read_bytes())
    data[-1] ^= 1  # the last block is one of the 16
    path.write_bytes(bytes(data))
    assert datasets._digest(path) != fingerprint
