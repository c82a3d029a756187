"""pytest fixtures: a real `yubin serve` per test (or per module).

    def test_x(yubin): ...                      # default settings
    @pytest.mark.yubin_config({"pop3": {"login_delay": "10m"}})
    def test_y(yubin): ...                      # with overrides
    def test_z(yubin_factory):
        srv = yubin_factory({"mail": {"quota_tempfail": "yes"}}, start=False)

On teardown every server gets SIGTERM and must exit 0 within 10 s, and its
log and stderr (and the stderr of every CLI run) must hold no sanitizer
report.
"""

import re
import shutil
import tempfile
import time
from pathlib import Path

import pytest

from yubin_fixture import YubinServer, make_root

KEEP_BASES = 3


@pytest.fixture(scope="session")
def yubin_base():
    """/tmp/yubin-it-*: one per test session, which the user yubin drops
    to can enter (pytest's own tmp folders are private to their owner);
    the three newest, and any younger than an hour, are kept."""
    base = Path(tempfile.mkdtemp(prefix="yubin-it-"))
    base.chmod(0o755)
    old = sorted(Path(tempfile.gettempdir()).glob("yubin-it-*"),
                 key=lambda p: p.stat().st_mtime)
    for path in old[:-KEEP_BASES]:
        # not one a concurrent run may still be using
        if time.time() - path.stat().st_mtime > 3600:
            shutil.rmtree(path, ignore_errors=True)
    return base


def pytest_configure(config):
    config.addinivalue_line("markers", "slow: takes tens of seconds")
    config.addinivalue_line(
        "markers", "yubin_config(overrides): settings for the yubin fixture, "
        "as {section: {key: value}}")


def _finish(servers):
    problems = []
    for srv in servers:
        if srv.proc is not None and srv.proc.poll() is None:
            rc = srv.stop(10)
            if rc != 0:
                problems.append("%s: yubin serve exited with %s on SIGTERM "
                                "(None = still running after 10 s)\n%s"
                                % (srv.root, rc, srv.diagnostics()))
        left = srv.wait_group_gone()
        if left:
            problems.append("%s: processes %s outlived the master's exit"
                            % (srv.root, left))
        rep = srv.sanitizer_reports()
        if rep:
            problems.append("%s: sanitizer report:\n%s" % (srv.root, rep))
    if problems:
        pytest.fail("\n\n".join(problems), pytrace=False)


class _Factory:
    def __init__(self, base, name):
        self.base = base
        self.name = name
        self.servers = []

    def __call__(self, overrides=None, start=True, binary=None):
        root = make_root(self.base, self.name)
        srv = YubinServer(root, binary=binary, overrides=overrides)
        self.servers.append(srv)
        if start:
            srv.start()
        return srv


@pytest.fixture
def yubin_factory(request, yubin_base):
    factory = _Factory(yubin_base,
                       re.sub(r"[^A-Za-z0-9_.-]", "_", request.node.name)[:60])
    yield factory
    _finish(factory.servers)


@pytest.fixture
def yubin(request, yubin_factory):
    marker = request.node.get_closest_marker("yubin_config")
    return yubin_factory(marker.args[0] if marker else None)


@pytest.fixture(scope="module")
def yubin_module_factory(request, yubin_base):
    factory = _Factory(yubin_base, request.module.__name__)
    yield factory
    _finish(factory.servers)


@pytest.fixture(scope="module")
def yubin_module(yubin_module_factory):
    """One server shared by the tests of a module that do not interfere."""
    return yubin_module_factory()
