"""runtime/images/instructions.py: Dockerfile instructions as changes to an image config."""

from __future__ import annotations

import pytest

from runtime.errors import InvalidArgument
from runtime.images.instructions import apply_changes
from runtime.images.oci import ImageConfig

BASE = ImageConfig(
    cmd=("sh",),
    env=("PATH=/bin", "A=1"),
    working_dir="/srv",
    exposed_ports=("80/tcp",),
    labels={"keep": "yes"},
)


def test_cmd_and_entrypoint_exec_and_shell_forms() -> None:
    assert apply_changes(BASE, ['CMD ["echo", "hi"]']).cmd == ("echo", "hi")
    assert apply_changes(BASE, ["CMD echo $HOME"]).cmd == ("/bin/sh", "-c", "echo $HOME")
    changed = apply_changes(BASE, ['ENTRYPOINT ["cat"]'])
    assert (changed.entrypoint, changed.cmd) == (("cat",), None)  # ENTRYPOINT drops the Cmd
    both = apply_changes(BASE, ['ENTRYPOINT ["cat"]', 'CMD ["/f"]'])
    assert (both.entrypoint, both.cmd) == (("cat",), ("/f",))


def test_env_and_label_pairs_replace_in_place() -> None:
    changed = apply_changes(BASE, ["ENV A=2 B='two words'", "env C 3 and more"])
    assert changed.env == ("PATH=/bin", "A=2", "B=two words", "C=3 and more")
    labelled = apply_changes(BASE, ['LABEL tier=web "with space"=x'])
    assert labelled.labels == {"keep": "yes", "tier": "web", "with space": "x"}


def test_user_workdir_stopsignal() -> None:
    changed = apply_changes(BASE, ["USER app:staff", "WORKDIR sub", "STOPSIGNAL SIGQUIT"])
    assert (changed.user, changed.working_dir, changed.stop_signal) == (
        "app:staff",
        "/srv/sub",
        "SIGQUIT",
    )
    assert apply_changes(BASE, ["WORKDIR /abs/../x"]).working_dir == "/x"


def test_expose_and_volume_are_unions() -> None:
    changed = apply_changes(BASE, ["EXPOSE 8000 53/udp", 'VOLUME ["/a", "/b"]', "VOLUME /c"])
    assert changed.exposed_ports == ("53/udp", "80/tcp", "8000/tcp")
    assert changed.volumes == ("/a", "/b", "/c")


def test_blank_lines_are_skipped_and_the_config_is_not_mutated() -> None:
    assert apply_changes(BASE, ["", "  "]) == BASE
    apply_changes(BASE, ["ENV A=9", "LABEL x=y"])
    assert BASE.env == ("PATH=/bin", "A=1") and BASE.labels == {"keep": "yes"}


@pytest.mark.parametrize(
    ("line", "why"),
    [
        ("RUN echo hi", "RUN is not a valid change command"),
        ("ONBUILD RUN x", "ONBUILD is not a valid change command"),
        ("EXPOSE 70000", "is not a port"),
        ("EXPOSE 80/icmp", "tcp, udp or sctp"),
        ("ENV", "needs KEY=VALUE"),
        ("ENV =x", "is not KEY=VALUE"),
        ("LABEL lonely", "is not KEY=VALUE"),
        ("USER", "needs an argument"),
        ("CMD", "needs an argument"),
        ('VOLUME ["/a", 1]', "neither a JSON list"),
    ],
)
def test_bad_changes_name_the_field_and_the_line(line: str, why: str) -> None:
    with pytest.raises(InvalidArgument) as caught:
        apply_changes(BASE, [line])
    assert caught.value.field == "changes"
    assert why in str(caught.value) and repr(line) in str(caught.value)
