"""The policy the case-plan tests run under: the shipped one.

Kept as a module of its own so a test can lay a rule over a copy of policies/ when it needs
one; none does today."""

from __future__ import annotations

from pathlib import Path

from gateway.core import CompiledPolicy
from gateway.policyfiles import load_policy_dir
from gateway.server.config import shipped_policy_dir


def plan_policy(directory: Path) -> CompiledPolicy:
    del directory  # the shipped policy needs no copy
    return load_policy_dir(shipped_policy_dir())
