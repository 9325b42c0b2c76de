"""The launcher: the small single-threaded process that clones containers.

Why a separate process (docs/architecture.md): a raw clone(2) from the
multithreaded API process copies locks other threads hold, and its cost grows
with the API's memory.  The launcher has one thread and little memory, is
the containers' parent, reaps them through pidfds and keeps their exit
statuses until the API has recorded them, so containers and exit codes
outlive a restart of the API.

    protocol.py   the wire format's map and the requests: a frozen dataclass per op
    messages.py   the replies, refusals (ErrorKind) and events: one frozen dataclass each
    framing.py    JSON lines over a stream socket
    client.py     the API side: typed requests and replies, exit events
  the launcher process (python -m runtime.launcher):
    startup.py    lock, socket, leftover cgroups, then the loop
    server.py     the selectors loop and the dispatch of requests
    ops.py        what each op does
    transport.py  client sockets and their queued output
    spawn.py      clone, fork for exec, cgroup join, release, error pipe
    reaper.py     reap, accounting, cgroup removal
    ptyio.py      pty masters and stdin pipes
    watch.py      inotify log index, timeout and output limits
    entry.py      one child's record, in cohesive sub-records
    ready.py      what the selector holds for each fd
    pool.py       the warm pool: children cloned ahead of demand
    claim.py      a pooled child taken for a container
    poollayers.py the pooled overlay children's layer dirs, moved at the claim
"""
