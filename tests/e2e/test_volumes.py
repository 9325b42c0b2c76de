"""Volumes over the native API, with real containers: named and anonymous,
read-only, shared through volumes_from, removed with their container,
in use (409), kept across a service restart, writable from a userns container."""

from __future__ import annotations

from pathlib import Path

import httpx

from tests.e2e.conftest import Service, logs, run


def sh(client: httpx.Client, script: str, **spec: object) -> tuple[int, str, dict]:
    container = run(client, ["sh", "-c", script], image="busybox", **spec)
    assert container["error"] is None, container["error"]
    return int(container["exit_code"]), logs(client, str(container["id"])), container


def vol(source: str | None, target: str = "/data", **extra: object) -> dict[str, object]:
    mount: dict[str, object] = {"type": "volume", "target": target, **extra}
    if source is not None:
        mount["source"] = source
    return mount


def test_a_named_volume_keeps_data_between_containers(client: httpx.Client) -> None:
    created = client.post("/volumes", json={"name": "e2e-keep", "labels": {"k": "v"}})
    assert created.status_code == 201, created.text
    assert created.json()["labels"] == {"k": "v"} and created.json()["anonymous"] is False
    assert client.post("/volumes", json={"name": "e2e-keep"}).status_code == 200

    code, out, first = sh(client, "echo kept > /data/f; echo written", mounts=[vol("e2e-keep")])
    assert (code, out) == (0, "written\n")
    code, out, second = sh(client, "cat /data/f", mounts=[vol("e2e-keep")])
    assert (code, out) == (0, "kept\n")
    mountpoint = Path(created.json()["mountpoint"])
    assert (mountpoint / "f").read_text() == "kept\n"

    # In use by (exited) containers: 409 until they are gone.
    got = client.get("/volumes/e2e-keep").json()
    assert sorted(got["containers"]) == sorted([first["id"], second["id"]])
    refused = client.delete("/volumes/e2e-keep")
    assert refused.status_code == 409 and "in use" in refused.json()["detail"]
    for container in (first, second):
        assert client.delete(f"/containers/{container['id']}").status_code == 204
    assert client.delete("/volumes/e2e-keep").status_code == 204
    assert not mountpoint.exists()
    assert client.get("/volumes/e2e-keep").status_code == 404


def test_a_volume_named_in_a_create_is_made_and_listed(client: httpx.Client) -> None:
    code, _, container = sh(client, "touch /data/x", mounts=[vol("e2e-made")])
    assert code == 0
    names = [v["name"] for v in client.get("/volumes").json()]
    assert "e2e-made" in names
    client.delete(f"/containers/{container['id']}")
    client.delete("/volumes/e2e-made")


def test_bad_volume_names_are_refused_naming_the_field(client: httpx.Client) -> None:
    bad = client.post("/volumes", json={"name": "-bad/name"})
    assert bad.status_code == 422 and bad.json()["detail"][0]["loc"] == ["body", "name"]
    bad = client.post("/containers", json={"command": ["true"], "mounts": [vol("a b")]})
    assert bad.status_code == 422
    assert bad.json()["detail"][0]["loc"][:3] == ["body", "mounts", 0]


def test_a_read_only_volume_cannot_be_written(client: httpx.Client) -> None:
    code, out, container = sh(
        client, "touch /data/x && echo wrote", mounts=[vol("e2e-ro", read_only=True)]
    )
    assert code != 0 and "Read-only file system" in out
    client.delete(f"/containers/{container['id']}")
    client.delete("/volumes/e2e-ro")


def test_anonymous_volumes_go_with_their_container_when_asked(client: httpx.Client) -> None:
    code, _, kept = sh(client, "echo a > /data/a", mounts=[vol(None)])
    assert code == 0
    code, _, dropped = sh(client, "echo b > /data/b", mounts=[vol(None)])
    assert code == 0
    kept_volume, dropped_volume = (c["mounts"][0]["volume"] for c in (kept, dropped))
    assert len(kept_volume) == 64 and kept_volume != dropped_volume
    assert client.get(f"/volumes/{kept_volume}").json()["anonymous"] is True
    removed = client.delete(f"/containers/{dropped['id']}", params={"volumes": "true"})
    assert removed.status_code == 204
    assert client.get(f"/volumes/{dropped_volume}").status_code == 404
    assert client.delete(f"/containers/{kept['id']}").status_code == 204
    # Without volumes=true the anonymous volume stays, unused: prune takes it.
    assert client.get(f"/volumes/{kept_volume}").json()["containers"] == []
    pruned = client.post("/volumes/prune").json()
    assert kept_volume in pruned["removed"] and pruned["space_reclaimed_bytes"] >= 2
    assert client.get(f"/volumes/{kept_volume}").status_code == 404


def test_volumes_from_mounts_another_containers_volumes(client: httpx.Client) -> None:
    code, _, source = sh(client, "echo shared > /data/s", mounts=[vol("e2e-from")])
    assert code == 0
    code, out, reader = sh(client, "cat /data/s", volumes_from=[source["id"]])
    assert (code, out) == (0, "shared\n")
    code, out, ro = sh(client, "touch /data/t", volumes_from=[f"{source['id']}:ro"])
    assert code != 0 and "Read-only file system" in out
    for container in (source, reader, ro):
        client.delete(f"/containers/{container['id']}")
    assert client.delete("/volumes/e2e-from").status_code == 204


def test_a_userns_container_can_write_a_new_volume(client: httpx.Client) -> None:
    code, out, container = sh(
        client, "echo from-userns > /data/u && cat /data/u", mounts=[vol("e2e-userns")], userns=True
    )
    assert (code, out) == (0, "from-userns\n")
    client.delete(f"/containers/{container['id']}")
    client.delete("/volumes/e2e-userns")


def test_volume_data_survives_a_service_restart(own_service: Service) -> None:
    own_service.start()
    with httpx.Client(base_url=own_service.url, timeout=60) as client:
        code, _, container = sh(client, "echo durable > /data/d", mounts=[vol("e2e-durable")])
        assert code == 0
    own_service.stop()
    own_service.start()
    with httpx.Client(base_url=own_service.url, timeout=60) as client:
        assert client.get("/volumes/e2e-durable").json()["containers"] == [container["id"]]
        code, out, _ = sh(client, "cat /data/d", mounts=[vol("e2e-durable")])
        assert (code, out) == (0, "durable\n")


def test_a_new_volume_starts_with_the_images_files(client: httpx.Client) -> None:
    code, out, container = sh(
        client, "ls /bin/sh && echo new > /bin/new-file", mounts=[vol("e2e-bin", "/bin")]
    )
    assert (code, out) == (0, "/bin/sh\n")
    mountpoint = Path(client.get("/volumes/e2e-bin").json()["mountpoint"])
    assert (mountpoint / "sh").exists() and (mountpoint / "new-file").read_text() == "new\n"
    client.delete(f"/containers/{container['id']}")
    client.delete("/volumes/e2e-bin")


def test_volume_events_are_in_the_event_log(client: httpx.Client) -> None:
    import time

    since = time.time()
    client.post("/volumes", json={"name": "e2e-events"})
    client.delete("/volumes/e2e-events")
    got = client.get("/events", params={"since": since, "until": time.time() + 1, "type": "volume"})
    assert got.status_code == 200
    lines = [line for line in got.text.splitlines() if "e2e-events" in line]
    assert ['"create"' in lines[0], '"destroy"' in lines[1]] == [True, True], lines
