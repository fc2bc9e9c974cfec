"""load_tutorial against a local HTTP server on 127.0.0.1: never the real network."""
import hashlib
import http.server
import io
import os
import socket
import stat
import threading

import numpy as np
import pytest

from hypermorph_nb.data import DataUnavailableError, TutorialSource, cache_dir, load_tutorial

N_IMAGES, SHAPE = 6, (16, 16)


def _npz_bytes(n_images=N_IMAGES, shape=SHAPE, with_labels=True):
    rng = np.random.default_rng(0)
    arrays = {"images": rng.random((n_images, *shape)).astype(np.float32)}
    if with_labels:
        arrays["segs"] = rng.integers(0, 4, (n_images, *shape)).astype(np.uint8)
    buffer = io.BytesIO()
    np.savez(buffer, **arrays)
    return buffer.getvalue()


GOOD = _npz_bytes()
GOOD_SHA256 = hashlib.sha256(GOOD).hexdigest()


class _Handler(http.server.BaseHTTPRequestHandler):
    routes = {}   # path -> (body, declared Content-Length)
    hits = []

    def do_GET(self):
        self.hits.append(self.path)
        if self.path not in self.routes:
            self.send_error(404)
            return
        body, declared = self.routes[self.path]
        self.send_response(200)
        self.send_header("Content-Length", str(declared))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


@pytest.fixture
def server():
    """A local server: ``/good.npz``, ``/truncated.npz`` (half the bytes), ``/wrong.npz`` (other shape)."""
    _Handler.routes = {
        "/good.npz": (GOOD, len(GOOD)),
        "/truncated.npz": (GOOD[: len(GOOD) // 2], len(GOOD)),
        "/wrong.npz": (_npz_bytes(n_images=3), len(_npz_bytes(n_images=3))),
        "/garbage.npz": (b"<html>maintenance</html>", 24),
    }
    _Handler.hits = []
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    thread = threading.Thread(target=httpd.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}"
    httpd.shutdown()
    httpd.server_close()


@pytest.fixture(autouse=True)
def isolated_cache(tmp_path, monkeypatch):
    """Cache in a temporary folder; a temporary home so ~/.neurite is empty; no proxies."""
    monkeypatch.setenv("HYPERMORPH_NB_DATA", str(tmp_path / "cache"))
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    for name in ("http_proxy", "HTTP_PROXY", "all_proxy", "ALL_PROXY"):
        monkeypatch.delenv(name, raising=False)
    return tmp_path / "cache"


def _source(base, path="/good.npz", **changes):
    fields = dict(url=base + path, filename="tiny.npz", n_images=N_IMAGES, shape=SHAPE)
    return TutorialSource(**{**fields, **changes})


def _cache_entries(folder):
    return sorted(p.name for p in folder.iterdir()) if folder.exists() else []


def test_download_caches_records_the_checksum_and_is_reused_offline(server, isolated_cache):
    data = load_tutorial(source=_source(server), progress=False)
    assert data.images.shape == (N_IMAGES, *SHAPE, 1) and data.images.dtype == np.float32
    assert data.labels.shape == (N_IMAGES, *SHAPE) and np.issubdtype(data.labels.dtype, np.integer)
    assert _cache_entries(isolated_cache) == ["tiny.npz", "tiny.npz.sha256"]
    assert (isolated_cache / "tiny.npz").read_bytes() == GOOD
    assert (isolated_cache / "tiny.npz.sha256").read_text().split()[0] == GOOD_SHA256
    again = load_tutorial(source=_source("http://127.0.0.1:9"), download=False, progress=False)
    np.testing.assert_array_equal(again.images, data.images)
    assert _Handler.hits == ["/good.npz"]


@pytest.mark.parametrize("umask", [0o022, 0o077])
def test_the_cached_download_follows_the_umask(server, isolated_cache, umask):
    previous = os.umask(umask)
    try:
        load_tutorial(source=_source(server), progress=False)
    finally:
        os.umask(previous)
    assert stat.S_IMODE((isolated_cache / "tiny.npz").stat().st_mode) == 0o666 & ~umask


def test_download_with_the_right_checksum_is_accepted(server, isolated_cache):
    data = load_tutorial(source=_source(server), sha256=GOOD_SHA256, progress=False)
    assert len(data) == N_IMAGES


def test_checksum_mismatch_caches_nothing(server, isolated_cache):
    with pytest.raises(DataUnavailableError, match=rf"has sha256 {GOOD_SHA256}, expected 0+; nothing was cached"):
        load_tutorial(source=_source(server, sha256="0" * 64), progress=False)
    assert _cache_entries(isolated_cache) == []


def test_truncated_download_never_poisons_the_cache(server, isolated_cache):
    with pytest.raises(DataUnavailableError, match=rf"stopped after {len(GOOD) // 2} of {len(GOOD)} bytes"):
        load_tutorial(source=_source(server, "/truncated.npz"), progress=False)
    assert _cache_entries(isolated_cache) == []
    assert len(load_tutorial(source=_source(server), progress=False)) == N_IMAGES


@pytest.mark.parametrize("path, message", [
    ("/wrong.npz", r"holds 3 images of \(16, 16\), expected 6 of \(16, 16\)"),
    ("/garbage.npz", r"is not a valid tutorial file"),
    ("/missing.npz", r"could not download .*missing.npz \(HTTPError: Not Found\)"),
])
def test_wrong_content_or_http_errors_cache_nothing(server, isolated_cache, path, message):
    with pytest.raises(DataUnavailableError, match=message):
        load_tutorial(source=_source(server, path), progress=False)
    assert _cache_entries(isolated_cache) == []


def test_offline_error_names_every_alternative(isolated_cache):
    with socket.socket() as probe:            # a port nobody listens on: connection refused
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    with pytest.raises(DataUnavailableError) as error:
        load_tutorial(source=_source(f"http://127.0.0.1:{port}"), timeout=5, progress=False)
    message = str(error.value)
    assert "could not download" in message
    for alternative in ("load_tutorial(path=", str(isolated_cache), "HYPERMORPH_NB_DATA",
                        "load_npz('../shared/data/oasis2d/oasis2d_300.npz')", "load_folder(",
                        "synthetic(64, (64, 64), seed=0)"):
        assert alternative in message
    assert _cache_entries(isolated_cache) == []


def test_download_false_without_a_cached_copy_raises(isolated_cache):
    with pytest.raises(DataUnavailableError, match="not cached at .*download=False"):
        load_tutorial(source=_source("http://127.0.0.1:9"), download=False)


def test_a_cached_file_that_changed_after_verification_is_refused(server, isolated_cache):
    load_tutorial(source=_source(server), progress=False)
    (isolated_cache / "tiny.npz").write_bytes(_npz_bytes(with_labels=False))
    with pytest.raises(DataUnavailableError, match=r"tiny.npz has sha256 .* expected .*delete it"):
        load_tutorial(source=_source(server), progress=False)


def test_a_file_placed_in_the_cache_by_hand_is_verified_and_recorded(isolated_cache):
    isolated_cache.mkdir()
    (isolated_cache / "tiny.npz").write_bytes(GOOD)
    assert len(load_tutorial(source=_source("http://127.0.0.1:9"), download=False)) == N_IMAGES
    assert (isolated_cache / "tiny.npz.sha256").read_text().split()[0] == GOOD_SHA256


def test_local_path_and_neurite_cache_are_used_and_checked(tmp_path, isolated_cache):
    local = tmp_path / "copy.npz"
    local.write_bytes(GOOD)
    assert len(load_tutorial(local, source=_source("http://127.0.0.1:9"), sha256=GOOD_SHA256)) == N_IMAGES
    with pytest.raises(DataUnavailableError, match="copy.npz has sha256"):
        load_tutorial(local, source=_source("http://127.0.0.1:9"), sha256="f" * 64)
    with pytest.raises(DataUnavailableError, match="(?s)nope.npz does not exist.*Alternatives"):
        load_tutorial(tmp_path / "nope.npz")
    neurite = tmp_path / "home" / ".neurite"
    neurite.mkdir(parents=True)
    (neurite / "tiny.npz").write_bytes(GOOD)
    data = load_tutorial(source=_source("http://127.0.0.1:9"), download=False)
    assert len(data) == N_IMAGES and ".neurite" in data.source


def test_cache_dir_follows_the_environment(tmp_path, monkeypatch):
    assert cache_dir() == tmp_path / "cache"
    monkeypatch.delenv("HYPERMORPH_NB_DATA")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert cache_dir() == tmp_path / "xdg" / "hypermorph-nb"
    monkeypatch.delenv("XDG_CACHE_HOME")
    assert cache_dir() == tmp_path / "home" / ".cache" / "hypermorph-nb"
