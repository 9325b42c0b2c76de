"""runtime/images/reference.py: Docker's reference grammar and defaults."""

from __future__ import annotations

import pytest

from runtime.errors import InvalidArgument
from runtime.images.reference import Reference, parse

DIGEST = "sha256:" + "ab" * 32


@pytest.mark.parametrize(
    ("text", "registry", "repository", "tag", "digest"),
    [
        ("busybox", "docker.io", "library/busybox", "latest", None),
        ("busybox:1.36", "docker.io", "library/busybox", "1.36", None),
        ("me/app", "docker.io", "me/app", "latest", None),
        ("docker.io/busybox", "docker.io", "library/busybox", "latest", None),
        ("index.docker.io/busybox", "docker.io", "library/busybox", "latest", None),
        ("docker.io/library/busybox:latest", "docker.io", "library/busybox", "latest", None),
        ("localhost/x", "localhost", "x", "latest", None),
        ("localhost:5000/x", "localhost:5000", "x", "latest", None),
        ("localhost:5000/x:v1", "localhost:5000", "x", "v1", None),
        ("a.b/c", "a.b", "c", "latest", None),
        ("a/b/c", "docker.io", "a/b/c", "latest", None),
        ("127.0.0.1:5000/ns/name", "127.0.0.1:5000", "ns/name", "latest", None),
        ("[::1]:5000/x", "[::1]:5000", "x", "latest", None),
        (f"busybox@{DIGEST}", "docker.io", "library/busybox", None, DIGEST),
        (f"host:1/ns/name:tag@{DIGEST}", "host:1", "ns/name", "tag", DIGEST),
        ("Host.Example/x", "Host.Example", "x", "latest", None),
        ("x:Tag_1.2-b", "docker.io", "library/x", "Tag_1.2-b", None),
        ("a__b/c-d.e---f", "docker.io", "a__b/c-d.e---f", "latest", None),
    ],
)
def test_parse(text: str, registry: str, repository: str, tag: str | None, digest: str | None):
    assert parse(text) == Reference(registry, repository, tag, digest)


@pytest.mark.parametrize(
    ("text", "familiar", "canonical"),
    [
        ("busybox", "busybox:latest", "docker.io/library/busybox:latest"),
        ("docker.io/library/busybox", "busybox:latest", "docker.io/library/busybox:latest"),
        ("me/app:1", "me/app:1", "docker.io/me/app:1"),
        ("library/a/b", "library/a/b:latest", "docker.io/library/a/b:latest"),
        ("localhost:5000/x", "localhost:5000/x:latest", "localhost:5000/x:latest"),
        (f"busybox@{DIGEST}", f"busybox@{DIGEST}", f"docker.io/library/busybox@{DIGEST}"),
        ("quay.io/a/b:t", "quay.io/a/b:t", "quay.io/a/b:t"),
    ],
)
def test_familiar_and_canonical(text: str, familiar: str, canonical: str):
    ref = parse(text)
    assert ref.familiar() == familiar == str(ref)
    assert ref.canonical() == canonical
    assert parse(ref.canonical()) == ref
    assert parse(ref.familiar()) == ref


def test_api_host_and_target():
    assert parse("busybox").api_host == "registry-1.docker.io"
    assert parse("localhost:5000/x").api_host == "localhost:5000"
    assert parse("busybox:1").target == "1"
    assert parse(f"busybox:1@{DIGEST}").target == DIGEST


@pytest.mark.parametrize(
    ("text", "why"),
    [
        ("", "empty"),
        ("BusyBox", "must be lowercase"),
        ("me/App", "must be lowercase"),
        ("localhost:5000/Upper", "must be lowercase"),
        ("a" * 64, "image id"),
        ("busybox:", "tag ''"),
        ("busybox:-x", "tag '-x'"),
        ("busybox:" + "t" * 129, "at most 128"),
        ("busybox@sha256:abc", "not sha256"),
        ("busybox@md5:" + "0" * 32, "not sha256"),
        (f"busybox@sha256:{'AB' * 32}", "not sha256"),
        ("@" + DIGEST, "missing"),
        (":tag", "missing"),
        ("a//b", "path component ''"),
        ("a/b/", "path component ''"),
        ("-a", "path component '-a'"),
        ("a_", "path component 'a_'"),
        ("a___b", "path component"),
        ("host:port/x", "not a valid registry"),
        ("-host.com/x", "not a valid registry"),
        ("x/" + "a" * 260, "longer than 255"),
        ("a b", "path component"),
    ],
)
def test_invalid(text: str, why: str):
    with pytest.raises(InvalidArgument) as info:
        parse(text)
    assert info.value.field == "image"
    assert why in str(info.value)
    assert repr(text) in str(info.value)


def test_field_is_named():
    with pytest.raises(InvalidArgument) as info:
        parse("X", field="from_image")
    assert str(info.value).startswith("from_image: ")
