"""runtime/images/oci.py: manifests, indexes, configs and platform selection."""

from __future__ import annotations

import json

import pytest

from runtime.errors import InvalidArgument, NotFound
from runtime.images import oci
from runtime.images.oci import Index, Platform, host_platform, select_manifest


def digest(n: int) -> str:
    return f"sha256:{n:064x}"


def entry(n: int, arch: str, variant: str = "", os: str = "linux", media=oci.OCI_MANIFEST):
    plat = {"os": os, "architecture": arch}
    if variant:
        plat["variant"] = variant
    return {"mediaType": media, "digest": digest(n), "size": 10, "platform": plat}


def index(*entries: dict) -> Index:
    doc = json.dumps({"schemaVersion": 2, "manifests": list(entries)}).encode()
    parsed = oci.parse_manifest(doc, oci.OCI_INDEX)
    assert isinstance(parsed, Index)
    return parsed


def pick(idx: Index, arch: str, variant: str = "") -> str:
    return select_manifest(idx, Platform("linux", arch, variant), "x").digest


def test_host_platform():
    assert host_platform("x86_64") == Platform("linux", "amd64")
    assert host_platform("aarch64") == Platform("linux", "arm64", "v8")
    assert host_platform("armv7l") == Platform("linux", "arm", "v7")


def test_select_exact_arch_skipping_attestations_and_other_os():
    idx = index(
        entry(1, "amd64", os="windows"),
        entry(2, "arm64", "v8"),
        {
            "mediaType": oci.OCI_MANIFEST,
            "digest": digest(3),
            "size": 1,
            "platform": {"os": "unknown", "architecture": "unknown"},
        },
        entry(4, "amd64"),
        entry(5, "amd64"),
    )
    assert pick(idx, "amd64") == digest(4)  # first of equals wins
    assert pick(idx, "arm64", "v8") == digest(2)
    assert pick(idx, "arm64") == digest(2)  # arm64 without variant is v8


def test_arm_variants_prefer_exact_then_older():
    idx = index(entry(5, "arm", "v5"), entry(6, "arm", "v6"), entry(8, "arm", "v8"))
    assert pick(idx, "arm", "v7") == digest(6)
    assert pick(idx, "arm", "v6") == digest(6)
    assert pick(idx, "arm", "v8") == digest(8)
    with pytest.raises(NotFound):
        pick(index(entry(7, "arm", "v7")), "arm", "v6")  # v7 code does not run on v6


def test_arm64_variant_v8_matches_empty():
    assert pick(index(entry(1, "arm64")), "arm64", "v8") == digest(1)


def test_no_match_names_platform_and_offer():
    with pytest.raises(NotFound) as info:
        pick(index(entry(1, "arm64", "v8"), entry(2, "s390x")), "amd64")
    message = str(info.value)
    assert "linux/amd64" in message and "linux/arm64/v8" in message and "linux/s390x" in message


def manifest_doc(config_type=oci.OCI_CONFIG, layer_type=oci.OCI_LAYER_GZIP) -> bytes:
    return json.dumps(
        {
            "schemaVersion": 2,
            "config": {"mediaType": config_type, "digest": digest(1), "size": 2},
            "layers": [{"mediaType": layer_type, "digest": digest(2), "size": 3}],
        }
    ).encode()


def test_parse_manifest_both_formats():
    for mt, config, layer in [
        (oci.OCI_MANIFEST, oci.OCI_CONFIG, oci.OCI_LAYER_GZIP),
        (oci.DOCKER_MANIFEST, oci.DOCKER_CONFIG, oci.DOCKER_LAYER_GZIP),
    ]:
        parsed = oci.parse_manifest(manifest_doc(config, layer), mt)
        assert isinstance(parsed, oci.Manifest)
        assert parsed.media_type == mt
        assert parsed.layers[0].digest == digest(2) and parsed.layers[0].size == 3


def test_generic_content_type_falls_back_on_the_document():
    doc = json.loads(manifest_doc())
    doc["mediaType"] = oci.DOCKER_MANIFEST
    parsed = oci.parse_manifest(json.dumps(doc).encode(), "application/json")
    assert parsed.media_type == oci.DOCKER_MANIFEST


@pytest.mark.parametrize(
    ("data", "content_type", "why"),
    [
        (
            b'{"schemaVersion": 1, "fsLayers": []}',
            "application/vnd.docker.distribution.manifest.v1+prettyjws",
            "unsupported media type",
        ),
        (b"not json", oci.OCI_MANIFEST, "not valid JSON"),
        (
            manifest_doc(config_type="application/vnd.cncf.helm.config.v1+json"),
            oci.OCI_MANIFEST,
            "not a container image",
        ),
        (manifest_doc(layer_type="application/x-foo"), oci.OCI_MANIFEST, "unsupported layer"),
        (
            manifest_doc().replace(digest(2).encode(), b"sha256:12"),
            oci.OCI_MANIFEST,
            "not a sha256 digest",
        ),
    ],
)
def test_parse_manifest_refuses(data: bytes, content_type: str, why: str):
    with pytest.raises(InvalidArgument) as info:
        oci.parse_manifest(data, content_type)
    assert why in str(info.value)


def test_parse_config():
    doc = {
        "architecture": "amd64",
        "os": "linux",
        "config": {
            "Entrypoint": ["/entry"],
            "Cmd": "sh",
            "Env": ["PATH=/bin", "A=b"],
            "WorkingDir": "/w",
            "User": "1000:1000",
            "ExposedPorts": {"80/tcp": {}, "53/udp": {}},
            "Volumes": {"/data": {}},
            "Labels": {"k": "v"},
            "StopSignal": "SIGQUIT",
            "Healthcheck": {"Test": ["CMD-SHELL", "true"], "Interval": 10**9, "Retries": 2},
        },
        "rootfs": {"type": "layers", "diff_ids": [digest(7)]},
    }
    conf = oci.parse_config(json.dumps(doc).encode())
    assert conf.healthcheck == oci.ImageHealthcheck(("CMD-SHELL", "true"), 10**9, retries=2)
    assert conf.entrypoint == ("/entry",)
    assert conf.cmd == ("sh",)
    assert conf.env == ("PATH=/bin", "A=b")
    assert (conf.working_dir, conf.user) == ("/w", "1000:1000")
    assert conf.exposed_ports == ("53/udp", "80/tcp")
    assert conf.volumes == ("/data",)
    assert conf.labels == {"k": "v"}
    assert conf.stop_signal == "SIGQUIT"
    assert conf.diff_ids == (digest(7),)


def test_parse_config_defaults():
    conf = oci.parse_config(b'{"rootfs": {"diff_ids": []}}')
    assert conf.entrypoint is None and conf.cmd is None and conf.env == ()


@pytest.mark.parametrize(
    "check",
    [
        {"Test": "CMD true"},
        {"Test": ["CMD", "x"], "Interval": -1},
        {"Test": ["CMD"], "Retries": 1.5},
    ],
)
def test_a_bad_healthcheck_in_a_config_is_refused_naming_it(check: dict[str, object]) -> None:
    doc = {"config": {"Healthcheck": check}}
    with pytest.raises(InvalidArgument) as info:
        oci.parse_config(json.dumps(doc).encode())
    assert info.value.field == "config" and "Healthcheck." in info.value.message
