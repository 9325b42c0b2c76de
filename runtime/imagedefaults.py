"""A pulled image's config as the defaults of a create: ``apply(request, image)``.

Docker's rules (docs/images.md, "Image config"):

    argv      an ``entrypoint`` in the request replaces the image's Entrypoint
              and drops the image's Cmd; otherwise the image's Entrypoint stays
              and the request's ``command``, if any, replaces the image's Cmd.
              argv = entrypoint + cmd; empty is a 422 on ``command``.
    env       the image's Env, the request's variables over it
    workdir   the request's, else the image's WorkingDir (made if missing), else /
    user      the request's, else the image's User; a name (``nobody``,
              ``app:staff``) is looked up in the image's /etc/passwd and
              /etc/group, read from its layers without following a link
    labels    the image's Labels, the request's over them

    volumes   each path in the image's Volumes that no mount of the request
              (nor of its ``volumes_from``) targets gets a new anonymous
              volume, as ``docker run -v /path``; it starts with the image's
              files there (runtime/volumecopy.py) and goes with the container
              on ``DELETE ?volumes=true`` or ``auto_remove``
    stop      the request's ``options.stop_signal``, else the image's
              StopSignal, else SIGTERM (a request's explicit SIGTERM is the
              default and so yields to the image's)
    health    the request's ``options.healthcheck``, else (unless
              ``options.no_healthcheck``) the image's Healthcheck: ``CMD``
              runs its argv, ``CMD-SHELL`` its command under ``/bin/sh -c``,
              ``NONE`` none; a zero duration or retries is Docker's default

``ExposedPorts`` is published by the Docker API's ``PublishAllPorts``
(app/docker/networking.py); the native create publishes only the ``ports``
it lists.  Images without a config (built-in, imported) leave the request
as it is.
"""

from __future__ import annotations

import dataclasses
import errno
import os
import stat
from collections.abc import Sequence

from runtime.errors import InvalidArgument
from runtime.images import Image
from runtime.images.oci import ImageConfig
from runtime.options import DEFAULT_STOP_SIGNAL, Healthcheck, Options
from runtime.spec import CreateRequest, InvalidField, Mount

#: An image's /etc/passwd or /etc/group larger than this is not read.
MAX_ID_FILE_BYTES = 1 << 20


def apply(request: CreateRequest, image: Image, inherited: Sequence[Mount] = ()) -> CreateRequest:
    """``request`` with the image config's defaults filled in (``inherited``:
    the mounts its ``volumes_from`` brings)."""
    config = image.config
    if config is None:
        if not request.command and request.entrypoint is None:
            raise InvalidArgument("command", "must not be empty (the image has no default)")
        argv = tuple(request.entrypoint or ()) + tuple(request.command)
        return dataclasses.replace(request, command=argv, entrypoint=None)
    user = request.security.user
    if user is None and config.user:
        user = resolve_user(config.user, image.lowers)
    return dataclasses.replace(
        request,
        command=argv_of(request, config, image.name),
        entrypoint=None,
        env={
            **{
                k: v
                for k, v in environment(config.env).items()
                if k not in request.options.env_unset  # Docker's bare NAME: not the image's
            },
            **request.env,
        },
        workdir=request.workdir or config.working_dir or None,
        labels={**config.labels, **request.labels},
        security=dataclasses.replace(request.security, user=user),
        mounts=request.mounts + image_volumes(config, (*inherited, *request.mounts)),
        options=health(stop_signal(request.options, config), config),
    )


def image_volumes(config: ImageConfig, mounts: Sequence[Mount]) -> tuple[Mount, ...]:
    """An anonymous volume for each of the image's ``Volumes`` nothing else mounts."""
    taken = {os.path.normpath(m.target) for m in mounts}
    result = []
    for path in config.volumes:
        target = os.path.normpath("/" + path.strip().lstrip("/"))
        if target != "/" and target not in taken:
            taken.add(target)
            try:
                result.append(Mount("volume", target))
            except ValueError as err:
                raise InvalidArgument("image", f"its Volumes entry {path!r}: {err}") from None
    return tuple(result)


def stop_signal(options: Options, config: ImageConfig) -> Options:
    """The image's StopSignal when the request leaves the default."""
    if not config.stop_signal or options.stop_signal != DEFAULT_STOP_SIGNAL:
        return options
    try:
        return dataclasses.replace(options, stop_signal=config.stop_signal)
    except InvalidField:
        raise InvalidArgument(
            "image", f"its StopSignal {config.stop_signal!r} is no signal"
        ) from None


def argv_of(request: CreateRequest, config: ImageConfig, name: str) -> tuple[str, ...]:
    if request.entrypoint is not None:
        argv = tuple(request.entrypoint) + tuple(request.command)
    else:
        argv = tuple(config.entrypoint or ()) + tuple(request.command or config.cmd or ())
    if not argv:
        raise InvalidArgument(
            "command", f"the image {name} has no Entrypoint or Cmd: give a command"
        )
    return argv


def environment(env: Sequence[str]) -> dict[str, str]:
    """An image's ``Env`` (``KEY=value`` strings) as a mapping; a bare ``KEY`` is empty."""
    result = {}
    for item in env:
        key, _, value = item.partition("=")
        if key:
            result[key] = value
    return result


def resolve_user(user: str, lowers: Sequence[str]) -> str:
    """The image's ``User`` as ``uid:gid``: numbers pass, names come from its files."""
    name, sep, group = user.partition(":")
    if name.isdigit() and (not sep or group.isdigit()):
        return user
    passwd = _read_image_file(lowers, ("etc", "passwd"))
    uid = gid = None
    if name.isdigit():
        uid = name
    else:
        for line in passwd.splitlines():
            fields = line.split(":")
            if len(fields) >= 4 and fields[0] == name:
                uid, gid = fields[2], fields[3]
                break
        if uid is None:
            raise InvalidArgument("user", f"the image's user {name!r} is not in its /etc/passwd")
    if sep:
        gid = group if group.isdigit() else _group_id(group, lowers)
    return f"{uid}:{gid}" if gid is not None else uid


def _group_id(group: str, lowers: Sequence[str]) -> str:
    for line in _read_image_file(lowers, ("etc", "group")).splitlines():
        fields = line.split(":")
        if len(fields) >= 3 and fields[0] == group:
            return fields[2]
    raise InvalidArgument("user", f"the image's group {group!r} is not in its /etc/group")


def _read_image_file(lowers: Sequence[str], parts: tuple[str, ...]) -> str:
    """A file of the merged image: the topmost layer that has it (or hides it).

    Each component is opened with ``O_NOFOLLOW`` under the layer's fd: a
    symlink in an image never leads the service to a host file."""
    for lower in lowers:
        fd = os.open(lower, os.O_PATH | os.O_DIRECTORY | os.O_CLOEXEC)
        try:
            for part in parts[:-1]:
                next_fd = os.open(part, os.O_PATH | os.O_DIRECTORY | os.O_NOFOLLOW, dir_fd=fd)
                os.close(fd)
                fd = next_fd
            st = os.stat(parts[-1], dir_fd=fd, follow_symlinks=False)
            if not stat.S_ISREG(st.st_mode) or st.st_size > MAX_ID_FILE_BYTES:
                return ""  # a whiteout (or a link, a device): the file is not there
            file_fd = os.open(parts[-1], os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC, dir_fd=fd)
            with os.fdopen(file_fd, "rb") as f:
                return f.read(MAX_ID_FILE_BYTES).decode("utf-8", "replace")
        except OSError as err:
            if err.errno not in (errno.ENOENT, errno.ENOTDIR, errno.ELOOP):
                raise
        finally:
            os.close(fd)
    return ""


def health(options: Options, config: ImageConfig) -> Options:
    """The image's Healthcheck when the request has none and does not refuse it."""
    check = config.healthcheck
    if check is None or options.healthcheck is not None or options.no_healthcheck:
        return options
    kind, args = check.test[0], check.test[1:]
    if kind == "NONE":
        return options
    if kind == "CMD" and args:
        command = args
    elif kind == "CMD-SHELL" and len(args) == 1:
        command = ("/bin/sh", "-c", args[0])
    else:
        raise InvalidArgument(
            "image", f"its Healthcheck.Test {list(check.test)!r}: CMD, CMD-SHELL or NONE"
        )
    default = Healthcheck(command)
    try:
        found = Healthcheck(
            command,
            interval_seconds=check.interval_ns / 1e9 or default.interval_seconds,
            timeout_seconds=check.timeout_ns / 1e9 or default.timeout_seconds,
            retries=check.retries or default.retries,
            start_period_seconds=check.start_period_ns / 1e9,
            start_interval_seconds=check.start_interval_ns / 1e9 or default.start_interval_seconds,
        )
    except InvalidField as err:
        raise InvalidArgument("image", f"its Healthcheck: {err}") from None
    return dataclasses.replace(options, healthcheck=found)
