"""The launcher: the small single-threaded process that clones containers.

Why a separate process (docs/architecture.md): a raw clone(2) from the
multithreaded API process copies locks other threads hold, and its cost grows
with the API's memory.  The launcher has one thread and little memory, is
the containers' parent, reaps them through pidfds and keeps their exit
statuses until the API has recorded them, so containers and exit codes
outlive a restart of the API.

    protocol.py   the wire format (JSON lines over a unix socket)
    server.py     the launcher's event loop (runs in the launcher process)
    client.py     the API side: requests, replies and exit events
"""
