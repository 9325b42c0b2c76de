"""The cgroup drivers against this machine's kernel, without the service.

On this hybrid host the v1 driver does the real work (test_limits.py); the
v2 driver is unit-tested on a fake tree, and here meets the real cgroup2
mount (``/sys/fs/cgroup/unified``) for what needs no controller there:
membership, ``cpu.stat``, ``cgroup.kill`` and removal.  On a pure v2 host
``/sys/fs/cgroup`` itself is that mount, and test_limits.py runs on v2.
"""

from __future__ import annotations

import os
import signal
import subprocess
import time

import pytest

from runtime import cgroups
from runtime.cgroups.fs import CgroupFs
from runtime.spec import Limits

UNIFIED = "/sys/fs/cgroup/unified"


@pytest.mark.skipif(
    cgroups.detect(UNIFIED) != "v2", reason="no cgroup2 mount at /sys/fs/cgroup/unified"
)
def test_v2_driver_on_the_real_cgroup2_mount(tmp_path) -> None:
    own = cgroups.own_cgroups(CgroupFs().read("/proc/self/cgroup")).get("", "/")
    manager = cgroups.V2Manager(UNIFIED, cgroups.parent_name(str(tmp_path)), own)
    cgroup = manager.create("probe", Limits())
    process = None
    try:
        assert os.path.isdir(cgroup.path)
        # The shell stops itself before forking, is moved in, then goes on:
        # its child starts in the cgroup, so two processes are there to kill.
        process = subprocess.Popen(["sh", "-c", "kill -STOP $$; sleep 60 & while :; do :; done"])
        deadline = time.monotonic() + 10
        while _state(process.pid) != "T" and time.monotonic() < deadline:
            time.sleep(0.01)
        cgroup.add(process.pid)
        os.kill(process.pid, signal.SIGCONT)
        while len(cgroup.procs()) < 2 and time.monotonic() < deadline:
            time.sleep(0.01)
        assert cgroup.procs()[0] == process.pid and len(cgroup.procs()) == 2
        time.sleep(0.3)
        stats = cgroup.stats()
        assert stats.cpu_seconds is not None and stats.cpu_seconds > 0
        assert stats.pids == 2  # counted from cgroup.procs: no pids controller here
        assert not cgroup.remove()  # EBUSY while it has processes
        assert cgroup.kill_all()  # cgroup.kill (Linux 5.14)
        assert process.wait(10) == -9
        assert cgroup.remove()
        assert manager.leftovers() == []
    finally:
        if process is not None and process.poll() is None:
            process.kill()
            process.wait()
        cgroup.kill_all()
        cgroup.remove()
        manager.remove_parent()
    assert not os.path.exists(manager.parent)


def _state(pid: int) -> str:
    with open(f"/proc/{pid}/stat") as f:
        return f.read().rsplit(")", 1)[1].split()[0]
