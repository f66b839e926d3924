"""Targets for the Python compat suites.

`compat/run` starts a real PostgreSQL 15 and a real Tarn server and names them
in COMPAT_TARGETS (`name=host:port:user:dbname,…`). Every test runs against each
target, so a test that PostgreSQL fails is a wrong test, and a test that only
Tarn fails is a Tarn bug.
"""
import os

import pytest


def _targets():
    spec = os.environ.get("COMPAT_TARGETS")
    if not spec:
        raise pytest.UsageError("COMPAT_TARGETS is not set: run the suites through compat/run")
    out = {}
    for item in spec.split(","):
        name, addr = item.split("=", 1)
        host, port, user, dbname = addr.split(":")
        out[name] = dict(host=host, port=int(port), user=user, dbname=dbname)
    return out


TARGETS = _targets()


@pytest.fixture(params=sorted(TARGETS), ids=sorted(TARGETS))
def target(request):
    """Connection parameters of one server: host, port, user, dbname."""
    return dict(TARGETS[request.param], name=request.param)


def dsn(t):
    return f"host={t['host']} port={t['port']} user={t['user']} dbname={t['dbname']}"


def known_gaps(suite):
    """Patterns (fnmatch, over `file.py::test[params]`) of `suite`'s tests that Tarn is known to fail yet,
    from compat/known-gaps.txt. Marked xfail(strict): one that starts passing
    fails the run until its line is removed."""
    path = os.path.join(os.path.dirname(__file__), "..", "known-gaps.txt")
    gaps = []
    with open(path) as f:
        for line in f:
            line = line.split("#", 1)[0].strip()
            if line and line.startswith(suite + ":"):
                gaps.append(line[len(suite) + 1:].strip())
    return gaps


def pytest_collection_modifyitems(config, items):
    import fnmatch
    gaps = known_gaps("python")
    for item in items:
        callspec = getattr(item, "callspec", None)
        if not callspec or not str(callspec.params.get("target", "")).startswith("tarn"):
            continue
        name = item.nodeid.rsplit("/", 1)[-1]  # file.py::test[params]
        if any(fnmatch.fnmatchcase(name, g) for g in gaps):
            item.add_marker(pytest.mark.xfail(strict=True, reason="known gap (compat/known-gaps.txt)"))
