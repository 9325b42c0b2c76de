"""What keeps a container in: the last steps of the child before execve.

capabilities   names, Docker's default set, cap_add/cap_drop, and applying
               them to the bounding, ambient, permitted, effective and
               inheritable sets
identity       "uid[:gid]" and setgroups/setgid/setuid
seccomp        the default syscall filter (libseccomp) and loading it
userns         the uid/gid maps the launcher writes for ``"userns": true``
devices        the devices cgroup (v1) that keeps the host's disks out
paths          masked and read-only paths of /proc and /sys
"""
