"""promtool (Debian package prometheus) for the rule tests: skipped where it is missing, unless
CI is set, where a missing promtool fails the test (.ci/run installs it)."""

from __future__ import annotations

import os
import shutil

import pytest


def promtool() -> str:
    found = shutil.which("promtool")
    if found is None:
        if os.environ.get("CI"):
            pytest.fail("promtool is missing (apt-get install prometheus); CI must run this test")
        pytest.skip("promtool is not installed (Debian package prometheus)")
    return found
