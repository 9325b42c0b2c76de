"""The mydocker benchmark: mydocker against unshare(1), crun and runc, side by side.

``bench/run`` (or ``python -m bench``) installs the peers, starts its own
services on loopback with their own state dirs, and measures in one run,
round-robin between the peers so that machine noise hits all of them alike:

    latency     POST /containers?wait=true of /bin/true vs unshare(1), the
                busybox image vs crun/runc on an OCI bundle of the same
                rootfs, the runtime called in-process (what HTTP adds), and a
                service grown by ballast (MYDOCKER_BENCH_BALLAST_MB)
    throughput  launches/s at 1, 4 and 16 concurrent clients
    scale       N containers running ``sleep`` at once: start, RSS and
                threads, then one bulk kill of their label (--scale-kill each:
                one kill request per container) and the reaping

Modules: ``service`` (a service process and /proc figures), ``peers`` (one
launch of each peer), ``bundle`` (the busybox rootfs and OCI bundles),
``rawhttp`` (a light keep-alive client for the load parts), ``parts`` (the
measurements), ``report`` (statistics, the table, the JSON).
"""
