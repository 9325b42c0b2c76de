"""The create options Docker keeps as given and shows back, and the ones that
name something we have one of (the runtime ``runc``, the volume driver
``local``, the isolation ``default``).

    check_runtime     ``Runtime``: ``runc`` (the name Docker gives its default
                      runtime, which is what we are) or empty; another is
                      Docker's 400 "unknown or invalid runtime name"
    given_options     the native ``options`` fields kept to be shown back:
                      ``env_unset`` (a bare ``NAME`` in ``Env``), ``isolation``,
                      ``volume_driver``, ``volumes_from``, ``tmpfs_given``
    env_view          ``Config.Env`` as inspect shows it: the variables, then the
                      bare names as given
    volume_labels     the ``VolumeOptions.Labels`` of ``Mounts`` of type volume:
                      the volumes to make with them before the create
    volume_options    a ``Mounts`` entry's ``VolumeOptions``, checked: ``NoCopy``,
                      ``Labels``, ``DriverConfig`` of the ``local`` driver
    check_propagation a bind's propagation: ``rprivate``, what every bind is
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from app.docker.errors import DockerError
from runtime.errors import NotFound
from runtime.options import LOCAL_DRIVER

if TYPE_CHECKING:
    from app.docker.models import ContainerConfig
    from runtime import ContainerRecord

#: The name Docker's inspect gives its default runtime; ours is the only one.
RUNTIME = "runc"


def check_runtime(name: str) -> None:
    if name not in ("", RUNTIME):
        # moby daemon/runtime_unix.go: errdefs.InvalidParameter.
        raise DockerError(400, f"unknown or invalid runtime name: {name}")


#: Bind propagations (mount_namespaces(7)) as Docker names them.
PROPAGATIONS = {"rprivate", "private", "rshared", "shared", "rslave", "slave"}


def check_propagation(given: set[str], where: object) -> None:
    """Only ``rprivate``, what every bind is: the child makes all its mounts
    private before it clones a bind's source (runtime/child.py), so nothing
    propagates between a container and the host either way."""
    refused = sorted(given - {"rprivate"})
    if refused:
        raise DockerError(
            400,
            f"unsupported bind propagation {', '.join(refused)} in {where}: only rprivate "
            "(a container's mounts never propagate to or from the host)",
        )


def bare_names(env: list[str] | None) -> list[str]:
    """The entries of ``Env`` without ``=`` that no later ``NAME=value`` sets
    again: Docker keeps them in ``Config.Env`` and the command does not see
    them (moby container/env.go ReplaceOrAppendEnvValues)."""
    names: list[str] = []
    for entry in env or []:
        key, sep, _ = entry.partition("=")
        if key in names:
            names.remove(key)
        if not sep and key:
            names.append(key)
    return names


def given_options(config: ContainerConfig) -> dict[str, Any]:
    host = config.host()
    check_runtime(host.Runtime)
    check_runtime(config.Runtime)
    given = {
        "env_unset": bare_names(config.Env),
        "isolation": host.Isolation,
        "volume_driver": host.VolumeDriver,
        "volumes_from": host.VolumesFrom,
        "tmpfs_given": host.Tmpfs,
    }
    return {k: v for k, v in given.items() if v}


def env_view(record: ContainerRecord) -> list[str]:
    spec = record.spec
    return [f"{k}={v}" for k, v in spec.env.items()] + list(spec.options.env_unset)


def volume_options(mount: dict[str, Any]) -> dict[str, Any]:
    """``VolumeOptions`` of one mount, without its zero fields; a driver other
    than ``local`` is Docker's missing plugin (404), driver options a 400."""
    options = {k: v for k, v in (mount.get("VolumeOptions") or {}).items() if v}
    driver = options.pop("DriverConfig", None) or {}
    name = driver.get("Name") or LOCAL_DRIVER
    if name != LOCAL_DRIVER:
        raise NotFound("volume plugin", name)
    if driver.get("Options"):
        raise DockerError(
            400, "unsupported option: VolumeOptions.DriverConfig.Options (only plain local volumes)"
        )
    return options


def volume_labels(config: ContainerConfig) -> dict[str, dict[str, str]]:
    """Volume name -> the labels its ``Mounts`` entry gives it when made now."""
    result: dict[str, dict[str, str]] = {}
    for mount in config.host().Mounts or []:
        labels = (mount.get("VolumeOptions") or {}).get("Labels")
        if mount.get("Type") == "volume" and mount.get("Source") and labels:
            if not isinstance(labels, dict) or not all(
                isinstance(k, str) and isinstance(v, str) for k, v in labels.items()
            ):
                raise DockerError(400, "invalid VolumeOptions.Labels: a map of strings")
            result[str(mount["Source"])] = labels
    return result
