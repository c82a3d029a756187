"""Fixtures for tests/interop: the yubin fixtures of tests/integration
(the same code, with its teardown checks: clean SIGTERM exit, no
sanitizer report), and Dovecot in a temporary folder."""

import importlib.util
import sys
from pathlib import Path

import pytest

HERE = Path(__file__).resolve().parent
INTEGRATION = HERE.parent / "integration"
for path in (str(INTEGRATION), str(HERE)):
    if path not in sys.path:
        sys.path.insert(0, path)

_spec = importlib.util.spec_from_file_location(
    "yubin_integration_conftest", INTEGRATION / "conftest.py")
_integration = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(_integration)

yubin_base = _integration.yubin_base
yubin_factory = _integration.yubin_factory
yubin = _integration.yubin
yubin_module_factory = _integration.yubin_module_factory
yubin_module = _integration.yubin_module


def pytest_configure(config):
    _integration.pytest_configure(config)


@pytest.fixture(scope="module")
def dovecot(yubin_base):
    """Debian's dovecot on a free port, in its own folder; skipped, with
    the reason shown, when it is not installed."""
    from dovecot_diff import Dovecot, dovecot_binary
    if not dovecot_binary():
        pytest.skip("DOVECOT NOT INSTALLED: the differential test against "
                    "Dovecot did not run (scripts/deps.sh test installs "
                    "dovecot-imapd)")
    import tempfile
    folder = Path(tempfile.mkdtemp(prefix="dovecot-", dir=str(yubin_base)))
    dove = Dovecot(folder).start()
    yield dove
    dove.stop()
