"""Request bodies -> the runtime's one typed input, each in one place.

    create_request         ContainerCreate (native)        -> CreateRequest
    exec_request           ExecCreate (native)             -> ExecRequest
    docker_create_request  Docker's create body (models)   -> ContainerCreate -> CreateRequest
    docker_exec_request    Docker's exec body (models)     -> ExecCreate -> ExecRequest

The Docker bodies are first mapped onto the native models, so the native
schema's rules (app/schemas/) validate both APIs alike; what breaks one of
them is Docker's 400 naming the field.  The native and the Docker routers
call these and nothing else to build what they hand ``Runtime.create`` and
``Runtime.exec``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

from pydantic import BaseModel, ValidationError

from app.docker import models, networking
from app.docker.errors import DockerError
from app.schemas import ContainerCreate, ExecCreate, TtySize
from runtime.errors import InvalidArgument
from runtime.images import Image
from runtime.network.attachment import EndpointOptions
from runtime.spec import (
    CreateRequest,
    ExecRequest,
    ExecSpec,
    InvalidField,
    Limits,
    RestartPolicy,
    SecurityRequest,
)

M = TypeVar("M", bound=BaseModel)


def _limits(body: ContainerCreate) -> Limits:
    if body.limits is None:
        return Limits()
    try:
        return Limits(**body.limits.model_dump(exclude_none=True))
    except InvalidField as err:  # the schema has the same bounds: only if they drift
        raise InvalidArgument(err.field, err.message) from err


def create_request(
    body: ContainerCreate, *, start: bool = True, stdin_once: bool = False
) -> CreateRequest:
    """A validated native body as the runtime's request; ``start`` and
    ``stdin_once`` are what only the Docker API sets (``docker create``,
    ``docker run -i``)."""
    return CreateRequest(
        command=tuple(body.command),
        entrypoint=tuple(body.entrypoint) if body.entrypoint is not None else None,
        name=body.name,
        hostname=body.hostname,
        env=dict(body.env),
        workdir=body.workdir,
        labels=dict(body.labels),
        auto_remove=body.auto_remove,
        limits=_limits(body),
        image=body.image,
        read_only=body.read_only,
        mounts=tuple(m.to_runtime() for m in body.mounts),
        volumes_from=tuple(body.volumes_from),
        init=body.init,
        restart_policy=body.restart_policy.to_runtime() if body.restart_policy else RestartPolicy(),
        security=SecurityRequest(
            user=body.user,
            cap_add=tuple(body.cap_add),
            cap_drop=tuple(body.cap_drop),
            seccomp=body.seccomp,
            no_new_privileges=body.no_new_privileges,
            userns=body.userns,
        ),
        tty=body.tty,
        stdin=body.stdin,
        stdin_once=stdin_once,
        tty_size=body.tty_size.pair() if body.tty_size else None,
        start=start,
        options=body.options,
        network=body.network,
        ports=tuple(p.to_runtime() for p in body.ports),
        network_aliases=tuple(body.network_aliases),
        endpoint=body.endpoint.to_runtime() if body.endpoint else EndpointOptions(),
    )


def exec_request(body: ExecCreate) -> ExecRequest:
    """A validated native exec body as the runtime's request."""
    try:
        spec = ExecSpec(
            command=tuple(body.command),
            env=dict(body.env),
            workdir=body.workdir,
            user=body.user,
            tty=body.tty,
            stdin=body.stdin,
        )
    except ValueError as err:  # the schema checks the same: only if they drift
        raise InvalidArgument("command", str(err)) from err
    return ExecRequest(spec=spec, tty_size=body.tty_size.pair() if body.tty_size else None)


def _validated(model: type[M], values: Callable[[], dict[str, Any]], what: str) -> M:
    """``model`` from what ``values`` gives, or Docker's 400 naming the first
    bad field (of the model, or of a part ``values`` validates on its way)."""
    try:
        return model.model_validate(values())
    except ValidationError as err:
        first = err.errors()[0]
        field = ".".join(str(p) for p in first["loc"])
        raise DockerError(400, f"invalid {field or what}: {first['msg']}") from err


def docker_create_request(
    config: models.ContainerConfig, name: str, image: Image, network: str = "none"
) -> CreateRequest:
    """Docker's create body (``docker create``: not started) as the runtime's
    request; ``models.refuse_unsupported`` has looked at it first.  ``network``
    is what an unnamed (default) network means."""
    host = config.host()
    body = _validated(
        ContainerCreate,
        lambda: {
            **_argv(config, image),
            "name": name.removeprefix("/") or None,
            "hostname": config.Hostname or None,
            "env": models.environment(config.Env),
            "workdir": config.WorkingDir or None,
            "user": models.user(config.User),
            "cap_add": host.CapAdd or [],
            "cap_drop": host.CapDrop or [],
            "tty": config.Tty,
            "stdin": config.OpenStdin,
            "tty_size": models.tty_size(config),
            "limits": models.limits(config),
            "image": config.Image if image.kind == "pulled" else image.name,
            "read_only": host.ReadonlyRootfs,
            "mounts": models.mounts(host, config.Volumes),
            "volumes_from": host.VolumesFrom or [],
            "init": bool(host.Init),
            "restart_policy": models.restart_policy(host),
            "labels": config.Labels or {},
            "auto_remove": host.AutoRemove,
            "options": models.options(config),
            **models.security_options(host.SecurityOpt),
            **networking.create_fields(config, network, _image_ports(image)),
        },
        "container config",
    )
    return create_request(body, start=False, stdin_once=config.OpenStdin and config.StdinOnce)


def _image_ports(image: Image) -> tuple[str, ...]:
    """The image's ExposedPorts (``8080/tcp``), which ``PublishAllPorts`` publishes too."""
    return image.config.exposed_ports if image.config is not None else ()


def _argv(config: models.ContainerConfig, image: Image) -> dict[str, Any]:
    """Docker's Entrypoint and Cmd: one argv for an image without a config;
    for a pulled one, apart, so that the runtime combines them with the
    image's by Docker's rules (runtime/imagedefaults.py)."""
    if image.config is None:
        return {"command": models.command(config)}
    entrypoint = config.Entrypoint
    return {
        "command": config.Cmd or [],
        # `docker run --entrypoint ""` sends [""]: clear the image's.
        "entrypoint": [a for a in entrypoint if a] if entrypoint is not None else None,
    }


def docker_exec_request(config: models.ExecConfig) -> ExecRequest:
    """Docker's exec body as the runtime's request (refusing options we lack)."""
    models.refuse_unsupported_exec(config)
    size = config.ConsoleSize
    body = _validated(
        ExecCreate,
        lambda: {
            "command": config.Cmd,
            "tty": config.Tty,
            "stdin": config.AttachStdin,
            "env": models.environment(config.Env),
            "workdir": config.WorkingDir or None,
            "user": config.User or None,
            "tty_size": TtySize(rows=size[0], cols=size[1])
            if config.Tty and size and len(size) == 2 and all(size)
            else None,
        },
        "exec config",
    )
    return exec_request(body)
