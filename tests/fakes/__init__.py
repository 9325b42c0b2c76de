"""Fakes the tests share: the runtime behind the API, a cgroup file system."""
