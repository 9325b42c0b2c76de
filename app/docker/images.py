"""``/images``: the runtime's image store as Docker clients see it.

    GET    /images/json?filters=             filters: reference, dangling, label
    GET    /images/{name}/json, /images/{name}/history
    POST   /images/create?fromImage=&tag=   a pull, streaming Docker's JSON progress
           (``docker pull`` draws its bars from it); ``fromSrc=-`` is ``docker import``
           (a new image with a config: ``changes``, ``message``; untagged without ``repo``)
    POST   /images/{name}/tag?repo=&tag=
    DELETE /images/{name}?force=             Docker's list of Untagged / Deleted
    POST   /images/prune?filters=            dangling=false: every unused image
    GET    /images/get, /images/{name}/get, POST /images/load   docker save / load; a
           load that fails answers 200 with an ``errorDetail`` line, as Docker does
    GET    /distribution/{name}/json         the registry's descriptor, no pull

Every ``{name}`` goes through ``resolve``: a name, a tag, a digest, an id
(``sha256:…``) or a short id (12+ hex digits), whatever the image's kind.

Credentials come in ``X-Registry-Auth`` (base64url JSON, as the CLI and
docker-py send them) and go to the registry client, never to a log.
Built-in images and those of the native import keep their names (``busybox``
is ``busybox:latest``); their id is the hash of the name.
"""

from __future__ import annotations

import base64
import binascii
import fnmatch
import json
from typing import Annotated, Any

from fastapi import APIRouter, Header, Query, Request, Response, status
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import StreamingResponse

from app import pulls
from app.deps import RuntimeDep
from app.docker.errors import DockerError
from app.docker.params import parse_filters
from app.docker.views import epoch, image_id
from app.uploads import build_body, load_body
from runtime.api import RuntimeApi
from runtime.errors import (
    DigestMismatch,
    InvalidArchive,
    InvalidArgument,
    NotFound,
    RuntimeFailure,
    TooLarge,
)
from runtime.images import Image, normalize_name
from runtime.images.building import BuildRequest
from runtime.images.oci import ImageConfig
from runtime.images.reference import parse
from runtime.images.registry import Credentials
from runtime.imaging import Removal

router = APIRouter(tags=["docker images"])


def normalize(name: str) -> str:
    """The store's name for a reference; the reference itself if it has none."""
    try:
        return normalize_name(name)
    except ValueError:
        return name


def resolve(runtime: RuntimeApi, name: str) -> Image:
    """The local image a client means, or Docker's 404 (which makes the CLI try a pull).

    Every image is found by the id this API shows for it (``docker_id``: the
    config digest, or the hash of a built-in or native import's name) and by
    12 or more of its hex digits, as docker-py's ``images.list`` looks them up."""
    try:
        return runtime.get_image(name)
    except NotFound:
        wanted = name.removeprefix("sha256:")
        if len(wanted) >= 12 and all(c in "0123456789abcdef" for c in wanted):
            for image in runtime.list_images():
                if docker_id(image)[7:].startswith(wanted):
                    return image
        raise


def store_ref(runtime: RuntimeApi, name: str) -> str:
    """What the runtime knows ``name``'s image by: a tag or digest as given,
    else its id (pulled, loaded, imported and committed images) or its name."""
    try:
        runtime.get_image(name)
        return name
    except NotFound:
        image = resolve(runtime, name)
        return image.id or image.name


def _is_id(text: str) -> bool:
    return text.startswith("sha256:")


def docker_id(image: Image) -> str:
    return image.id or image_id(image.name)


def summary(image: Image) -> dict[str, Any]:
    return {
        "Id": docker_id(image),
        "ParentId": "",
        "RepoTags": list(image.tags) or ([f"{image.name}:latest"] if not image.id else []),
        "RepoDigests": list(image.digests),
        "Created": epoch(image.created_at),
        "Size": image.size_bytes or 0,
        "SharedSize": -1,
        "Labels": dict(image.config.labels) if image.config else {},
        "Containers": -1,
    }


@router.get("/images/json")
def list_images(
    runtime: RuntimeDep, filters: str | None = None, filter: str = ""
) -> list[dict[str, Any]]:
    """``filter`` is the old API's name for a ``reference`` filter."""
    wanted = parse_filters(filters)
    if filter:
        wanted.setdefault("reference", []).append(filter)
    unknown = set(wanted) - {"reference", "dangling", "label"}
    if unknown:
        raise DockerError(400, f"invalid filter {sorted(unknown)[0]!r}")
    return [summary(i) for i in runtime.list_images() if _listed(summary(i), wanted)]


def _listed(listed: dict[str, Any], wanted: dict[str, list[str]]) -> bool:
    """Docker's image filters: ``reference`` globs a repository or repo:tag,
    ``dangling`` (true/false) an untagged image, ``label`` ``k`` or ``k=v``."""
    tags: list[str] = listed["RepoTags"]
    refs = wanted.get("reference")
    if refs and not any(_reference_matches(tag, ref) for tag in tags for ref in refs):
        return False
    for value in wanted.get("dangling", []):
        if value.lower() not in ("true", "false", "1", "0"):
            raise DockerError(400, f"invalid filter 'dangling={value}'")
        if (value.lower() in ("true", "1")) == bool(tags):
            return False
    labels: dict[str, str] = listed["Labels"]
    for label in wanted.get("label", []):
        key, sep, value = label.partition("=")
        if key not in labels or (sep and labels[key] != value):
            return False
    return True


def _reference_matches(tag: str, pattern: str) -> bool:
    """moby's reference filter: the pattern against ``repo:tag`` if it has a
    tag, else against the repository (``alpine`` matches ``alpine:3.10``)."""
    repo = tag.rsplit(":", 1)[0]
    if ":" in pattern.rsplit("/", 1)[-1]:
        return fnmatch.fnmatchcase(tag, pattern)
    return fnmatch.fnmatchcase(repo, pattern)


def _config(config: ImageConfig | None) -> dict[str, Any]:
    if config is None:  # built-in and imported images: the command comes from the create
        return {"Cmd": None, "Env": None, "Entrypoint": None, "WorkingDir": "", "Labels": {}}
    return {
        "Cmd": list(config.cmd) if config.cmd is not None else None,
        "Entrypoint": list(config.entrypoint) if config.entrypoint is not None else None,
        "Env": list(config.env),
        "WorkingDir": config.working_dir,
        "User": config.user,
        "ExposedPorts": {p: {} for p in config.exposed_ports} or None,
        "Volumes": {v: {} for v in config.volumes} or None,
        "Labels": dict(config.labels),
        "StopSignal": config.stop_signal or None,
        "Healthcheck": config.healthcheck.to_json() if config.healthcheck else None,
    }


@router.get("/images/get")
def save_images(runtime: RuntimeDep, names: Annotated[list[str], Query()]) -> StreamingResponse:
    """``docker save``: the named images in one tarball."""
    refs = [store_ref(runtime, name) for name in names]
    return StreamingResponse(runtime.save_images(refs), media_type="application/x-tar")


@router.post("/images/load")
async def load_images(request: Request, runtime: RuntimeDep, quiet: bool = False) -> Response:
    """``docker load``: the progress stream the CLI prints (``Loaded image: …``).

    A refused archive is a 200 whose line carries ``errorDetail``: Docker
    answers so (the status is sent before the archive is read), and its
    clients read the error from the stream (docker-py's ``ImageLoadError``)."""
    try:
        loaded = await load_body(runtime, request)
    except (InvalidArchive, InvalidArgument, TooLarge, DigestMismatch) as err:
        message = str(err)
        line = {"errorDetail": {"message": message}, "error": message}
        return Response(json.dumps(line) + "\n", media_type="application/json")
    # An archive that names no tag for an image: Docker's "Loaded image ID: sha256:…".
    lines = [
        json.dumps({"stream": f"Loaded image: {tag}\n"})
        if tag
        else json.dumps({"stream": f"Loaded image ID: {image.id}\n"})
        for image in loaded
        for tag in image.tags or ("",)
    ]
    return Response("\n".join(lines) + "\n", media_type="application/json")


@router.get("/images/{name:path}/get")
def save_image(name: str, runtime: RuntimeDep) -> StreamingResponse:
    refs = [store_ref(runtime, name)]
    return StreamingResponse(runtime.save_images(refs), media_type="application/x-tar")


@router.get("/images/{name:path}/json")
def inspect_image(name: str, runtime: RuntimeDep) -> dict[str, Any]:
    image = resolve(runtime, name)
    listed = summary(image)
    return {
        "Id": listed["Id"],
        "RepoTags": listed["RepoTags"],
        "RepoDigests": listed["RepoDigests"],
        "Parent": image.config.parent if image.config else "",
        "Comment": image.config.comment if image.config else "",
        "Author": image.config.author if image.config else "",
        "Created": image.created_at or "0001-01-01T00:00:00Z",
        "Config": _config(image.config),
        "Architecture": (image.config.architecture if image.config else "") or "amd64",
        "Os": "linux",
        "Size": image.size_bytes or 0,
        "RootFS": {"Type": "layers", "Layers": list(image.diff_ids)},
        "Metadata": {"LastTagTime": "0001-01-01T00:00:00Z"},
    }


@router.get("/images/{name:path}/history")
def image_history(name: str, runtime: RuntimeDep) -> list[dict[str, Any]]:
    """One entry per layer, newest first, as ``docker history`` lists them."""
    image = resolve(runtime, name)
    created = epoch(image.created_at)
    layers = list(reversed(image.diff_ids)) or [docker_id(image)]
    return [
        {
            "Id": docker_id(image) if index == 0 else "<missing>",
            "Created": created,
            "CreatedBy": layer,
            "Tags": list(image.tags) if index == 0 else None,
            "Size": 0,
            "Comment": image.config.comment if image.config and index == 0 else "",
        }
        for index, layer in enumerate(layers)
    ]


def registry_auth(header: str | None) -> Credentials | None:
    """``X-Registry-Auth``: base64url JSON with ``username`` and ``password``."""
    if not header:
        return None
    try:
        padded = header + "=" * (-len(header) % 4)
        doc = json.loads(base64.urlsafe_b64decode(padded))
    except (binascii.Error, ValueError):
        raise DockerError(400, "X-Registry-Auth is not base64url JSON") from None
    if not isinstance(doc, dict) or not doc.get("username") or not doc.get("password"):
        return None  # {} (docker-py's default) or an identity token: anonymous
    return Credentials(str(doc["username"]), str(doc["password"]))


def _pull_reference(from_image: str, tag: str) -> str:
    if not tag:
        return from_image
    return f"{from_image}@{tag}" if tag.startswith("sha256:") else f"{from_image}:{tag}"


def _docker_final(image: Image | None, error: RuntimeFailure | None) -> dict[str, Any]:
    if error is not None or image is None:
        assert error is not None
        return pulls.docker_error(error)
    digest = image.digests[0].split("@", 1)[1] if image.digests else image.id
    return {"status": f"Digest: {digest}\nStatus: Downloaded newer image for {image.name}"}


@router.post("/images/create")
async def create_image(
    request: Request,
    runtime: RuntimeDep,
    from_image: Annotated[str, Query(alias="fromImage")] = "",
    from_src: Annotated[str, Query(alias="fromSrc")] = "",
    repo: str = "",
    tag: str = "",
    changes: Annotated[list[str], Query()] = [],  # noqa: B006 - FastAPI copies defaults
    message: str = "",
    x_registry_auth: Annotated[str | None, Header()] = None,
) -> Response:
    """A pull (``fromImage``), streaming Docker's progress, or ``docker import``
    (``fromSrc=-``, the tar in the body) into the runtime's image import."""
    if from_src:
        ref = (f"{repo}:{tag}" if tag else repo) or None
        wanted = BuildRequest(ref=ref, changes=tuple(c for c in changes if c), comment=message)
        return await _import(request, runtime, from_src, wanted)
    if not from_image:
        raise DockerError(400, "give fromImage (a pull) or fromSrc (an import)")
    reference = _pull_reference(from_image, tag)
    try:
        parse(reference)
    except RuntimeFailure as err:
        raise DockerError(400, str(err)) from None
    creds = registry_auth(x_registry_auth)
    lines = pulls.progress_lines(runtime, reference, creds, pulls.docker_step, _docker_final)
    return StreamingResponse(lines, media_type="application/json")


async def _import(
    request: Request, runtime: RuntimeApi, from_src: str, wanted: BuildRequest
) -> Response:
    if from_src != "-":
        raise DockerError(501, "importing from a URL is not supported; send the tar (fromSrc=-)")
    image = await build_body(runtime, request, wanted)
    # The progress stream `docker import` reads; the last status is the id.
    body = json.dumps({"status": docker_id(image)}) + "\n"
    return Response(content=body, media_type="application/json")


@router.post("/images/prune")
def prune_images(runtime: RuntimeDep, filters: str | None = None) -> dict[str, Any]:
    """Dangling images no container uses; with ``dangling=false`` every unused one."""
    wanted = parse_filters(filters)
    unknown = set(wanted) - {"dangling"}
    if unknown:
        raise DockerError(400, f"unsupported filter for an image prune: {sorted(unknown)[0]!r}")
    values = {v.lower() for v in wanted.get("dangling", ["true"])}
    if not values <= {"true", "false", "1", "0"} or len(values) > 1:
        raise DockerError(400, f"invalid filter 'dangling={','.join(sorted(values))}'")
    removed = runtime.prune_images(dangling_only=values <= {"true", "1"})
    return {
        "ImagesDeleted": [{r.action: _shown(r)} for r in removed] or None,
        "SpaceReclaimed": sum(r.size for r in removed),
    }


@router.post("/images/{name:path}/tag", status_code=status.HTTP_201_CREATED)
def tag_image(name: str, runtime: RuntimeDep, repo: str = "", tag: str = "") -> Response:
    if not repo:
        raise DockerError(400, "repository name (repo) is required")
    runtime.tag_image(store_ref(runtime, name), f"{repo}:{tag or 'latest'}")
    return Response(status_code=status.HTTP_201_CREATED)


@router.delete("/images/{name:path}")
def remove_image(name: str, runtime: RuntimeDep, force: bool = False) -> list[dict[str, str]]:
    """A tag, or the image; built-in ones are a 403, images in use a 409."""
    removed = runtime.delete_image(store_ref(runtime, name), force)
    return [{r.action: _shown(r)} for r in removed]


def _shown(removal: Removal) -> str:
    """A removal as Docker lists it: a natively imported image's id is the hash of its name."""
    if removal.action == "Deleted" and not _is_id(removal.what):
        return image_id(removal.what)
    return removal.what


@router.get("/distribution/{name:path}/json")
async def distribution(
    name: str,
    runtime: RuntimeDep,
    x_registry_auth: Annotated[str | None, Header()] = None,
) -> dict[str, Any]:
    """The registry's descriptor of ``name`` and the platform it was pulled for."""
    creds = registry_auth(x_registry_auth)
    found = await run_in_threadpool(runtime.resolve_remote, name, creds)
    return {
        "Descriptor": {
            "mediaType": found.media_type,
            "digest": found.digest,
            "size": found.size,
        },
        "Platforms": [{"architecture": found.architecture, "os": found.os}],
    }
