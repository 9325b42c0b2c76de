"""runtime/images/blobs.py: verified ingest, one download per digest, gc."""

from __future__ import annotations

import contextlib
import hashlib
import threading
import time
from pathlib import Path

import pytest

from runtime.errors import DigestMismatch
from runtime.images.blobs import BlobStore
from runtime.images.oci import OCI_LAYER_GZIP, Descriptor


def desc(data: bytes, size: int | None = None) -> Descriptor:
    digest = "sha256:" + hashlib.sha256(data).hexdigest()
    return Descriptor(OCI_LAYER_GZIP, digest, len(data) if size is None else size)


def source(*chunks: bytes, calls: list[int] | None = None, delay: float = 0.0):
    @contextlib.contextmanager
    def opened():
        if calls is not None:
            calls.append(1)
        if delay:
            time.sleep(delay)
        yield iter(chunks)

    return opened


def empty_ingest(store: BlobStore) -> bool:
    return not any((store.root / "ingest").iterdir())


def test_fetch_stores_under_the_digest(tmp_path: Path):
    store = BlobStore(tmp_path / "blobs")
    d = desc(b"hello world")
    path = store.fetch(d, source(b"hello ", b"world"))
    assert path == tmp_path / "blobs" / "sha256" / d.digest.removeprefix("sha256:")
    assert path.read_bytes() == b"hello world" and store.has(d.digest)
    assert path.stat().st_mode & 0o777 == 0o444
    assert b"".join(store.open(d.digest)) == b"hello world"
    calls: list[int] = []
    assert store.fetch(d, source(b"x", calls=calls)) == path and not calls  # already there


@pytest.mark.parametrize(
    ("chunks", "size", "why"),
    [
        ((b"hello", b"worle"), None, "hashes to"),
        ((b"hello",), 10, "5 bytes received"),
        ((b"hello world and more",), None, "more than the"),
    ],
)
def test_mismatch_leaves_nothing(tmp_path: Path, chunks, size, why):
    store = BlobStore(tmp_path / "blobs")
    d = desc(b"helloworld", size)
    with pytest.raises(DigestMismatch, match=why) as info:
        store.fetch(d, source(*chunks))
    assert d.digest in str(info.value)
    assert not store.has(d.digest) and empty_ingest(store)


def test_a_failing_source_leaves_nothing(tmp_path: Path):
    store = BlobStore(tmp_path / "blobs")

    @contextlib.contextmanager
    def broken():
        def chunks():
            yield b"hel"
            raise OSError("connection reset")

        yield chunks()

    with pytest.raises(OSError, match="reset"):
        store.fetch(desc(b"hello"), broken)
    assert empty_ingest(store) and not store.digests()


def test_concurrent_fetches_download_once(tmp_path: Path):
    store = BlobStore(tmp_path / "blobs")
    d = desc(b"shared layer")
    calls: list[int] = []
    results: list[Path] = []
    threads = [
        threading.Thread(
            target=lambda: results.append(
                store.fetch(d, source(b"shared layer", calls=calls, delay=0.2))
            )
        )
        for _ in range(5)
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(calls) == 1 and len(set(results)) == 1 and len(results) == 5


def test_concurrent_waiters_share_the_failure_and_a_retry_works(tmp_path: Path):
    store = BlobStore(tmp_path / "blobs")
    d = desc(b"good")
    errors: list[BaseException] = []

    def fetch_bad():
        try:
            store.fetch(d, source(b"evil", delay=0.2))
        except DigestMismatch as err:
            errors.append(err)

    threads = [threading.Thread(target=fetch_bad) for _ in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(errors) == 3
    assert store.fetch(d, source(b"good")).read_bytes() == b"good"


def test_put_and_gc(tmp_path: Path):
    store = BlobStore(tmp_path / "blobs")
    a, b = desc(b"a"), desc(b"b")
    store.put(a, b"a")
    store.put(b, b"b")
    (tmp_path / "blobs" / "ingest" / "deadbeef.leftover").write_bytes(b"crash")
    assert store.gc(keep=[a.digest]) == [b.digest]
    assert store.digests() == {a.digest} and empty_ingest(store)
