"""The sealed-answer vectors checked by an independent HPKE implementation, in both directions,
for format version 1 (sealed-answer-v1.json) and version 2 (sealed-answer-v2.json: records and
triage answers bound to the request nonce and case id).

tests/vectors/open_sealed_vectors.mjs opens every case and refuses every negative with the
@hpke/* npm packages (noble-curves X25519, noble-ciphers ChaCha20-Poly1305), computing
``info`` and key ids itself; it also seals fresh boxes, including a challenge chosen here,
which the gateway's opener must open. The pinned packages (tests/vectors/node/package-lock.json,
with integrity hashes) are installed once into a cache directory outside the repository and
reused; the test is skipped, with the reason, where node or npm is missing or the packages
cannot be installed.
"""

from __future__ import annotations

import dataclasses
import fcntl
import hashlib
import json
import os
import re
import secrets
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey

from adapters.sealed import open_disclosure, open_triage
from gateway.api.v1 import common_pb2, exchange_pb2
from gateway.crypto import SealOpenError
from gateway.crypto.sealing import (
    SealBinding,
    SealedBox,
    TriageBinding,
    open_sealed,
    open_sealed_triage,
)

VECTOR_DIR = Path(__file__).resolve().parents[1] / "vectors"
VERSIONS = (1, 2)
SCRIPT = VECTOR_DIR / "open_sealed_vectors.mjs"
PACKAGE_DIR = VECTOR_DIR / "node"
PACKAGE_FILES = ("package.json", "package-lock.json")
CACHE_NAME = "ketenpoort-node-hpke"
MIN_NODE_MAJOR = 18  # util.parseArgs, WebCrypto HMAC
INSTALL_TIMEOUT_S = 300
RUN_TIMEOUT_S = 60
_INSTALLED_MARK = ".installed"


def _cache_root() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / CACHE_NAME


def _npm_env() -> dict[str, str]:
    env = dict(os.environ)
    env.update(
        npm_config_audit="false",
        npm_config_fund="false",
        npm_config_update_notifier="false",
        npm_config_loglevel="error",
        # Offline should mean a quick skip, not minutes of retries.
        npm_config_fetch_timeout="30000",
        npm_config_fetch_retries="1",
    )
    return env


def _last_lines(text: str, n: int = 3) -> str:
    return " | ".join(text.strip().splitlines()[-n:]) or "no output"


def _npm_error(stderr: str) -> str:
    """npm's own error lines (code, reason), without its hints and log path."""
    lines = [line for line in stderr.splitlines() if line.startswith(("npm error", "npm ERR!"))]
    useful = [line for line in lines if "log of this run" not in line and line.strip(" !")]
    return " | ".join(useful[:2]) or _last_lines(stderr)


def _install(node: str, npm: str) -> Path:
    """The pinned packages, installed under the cache root in a directory named by the hash
    of the package files, so a change of pins gets a fresh install and a stale one is never
    used. Concurrent test runs wait for each other on a lock file."""
    digest = hashlib.sha256()
    for name in PACKAGE_FILES:
        digest.update((PACKAGE_DIR / name).read_bytes())
    root = _cache_root()
    target = root / digest.hexdigest()[:16]
    if (target / _INSTALLED_MARK).is_file():
        return target
    root.mkdir(parents=True, exist_ok=True)
    with open(root / ".lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if (target / _INSTALLED_MARK).is_file():
            return target
        shutil.rmtree(target, ignore_errors=True)
        staging = Path(tempfile.mkdtemp(prefix="install-", dir=root))
        try:
            for name in PACKAGE_FILES:
                shutil.copyfile(PACKAGE_DIR / name, staging / name)
            # `npm ci` installs exactly the lock file (integrity-checked); no install scripts.
            done = subprocess.run(
                [npm, "ci", "--ignore-scripts", "--prefer-offline"],
                cwd=staging,
                env=_npm_env(),
                capture_output=True,
                text=True,
                timeout=INSTALL_TIMEOUT_S,
                check=False,
            )
            if done.returncode != 0:
                pytest.skip(f"npm could not install the pinned @hpke packages (offline?): "
                            f"{_npm_error(done.stderr)}")
            (staging / _INSTALLED_MARK).write_text(node + "\n", encoding="utf-8")
            staging.rename(target)
        except subprocess.TimeoutExpired:
            pytest.skip(f"npm ci did not finish within {INSTALL_TIMEOUT_S} s (offline?)")
        finally:
            shutil.rmtree(staging, ignore_errors=True)
    return target


@pytest.fixture(scope="module")
def node_modules() -> Iterator[tuple[str, Path]]:
    node, npm = shutil.which("node"), shutil.which("npm")
    if node is None or npm is None:
        pytest.skip("node and npm are needed for the independent HPKE check")
    version = subprocess.run(
        [node, "--version"], capture_output=True, text=True, timeout=30, check=True
    ).stdout.strip()
    match = re.match(r"v(\d+)\.", version)
    if match is None or int(match.group(1)) < MIN_NODE_MAJOR:
        pytest.skip(f"node {version} is older than v{MIN_NODE_MAJOR}")
    yield node, _install(node, npm)


@pytest.fixture(scope="module")
def challenge() -> bytes:
    return secrets.token_bytes(48)


def _vector_file(version: int) -> Path:
    return VECTOR_DIR / f"sealed-answer-v{version}.json"


@pytest.fixture(scope="module", params=VERSIONS, ids=[f"v{v}" for v in VERSIONS])
def vectors(request: pytest.FixtureRequest) -> dict[str, Any]:
    document: dict[str, Any] = json.loads(_vector_file(request.param).read_text("utf-8"))
    assert document["format_version"] == request.param
    return document


@pytest.fixture(scope="module")
def node_report(
    node_modules: tuple[str, Path], challenge: bytes, vectors: dict[str, Any]
) -> dict[str, Any]:
    node, modules = node_modules
    path = _vector_file(vectors["format_version"])
    done = subprocess.run(
        [node, str(SCRIPT), "--modules", str(modules),
         "--vectors", str(path), "--challenge", challenge.hex()],
        capture_output=True,
        text=True,
        timeout=RUN_TIMEOUT_S,
        check=False,
    )
    assert done.stdout, f"the node check printed nothing: {_last_lines(done.stderr, 10)}"
    report: dict[str, Any] = json.loads(done.stdout)
    report["returncode"] = done.returncode
    return report


def test_node_check_passes_with_the_pinned_packages(node_report: dict[str, Any]) -> None:
    pins = json.loads((PACKAGE_DIR / "package.json").read_text(encoding="utf-8"))
    assert node_report["implementation"]["packages"] == pins["dependencies"]
    assert node_report["suite_ok"]
    assert node_report["ok"] and node_report["returncode"] == 0


def test_node_opens_every_case_to_its_plaintext(
    node_report: dict[str, Any], vectors: dict[str, Any]
) -> None:
    results = {r["name"]: r for r in node_report["cases"]}
    assert set(results) == {c["name"] for c in vectors["cases"]}
    for name, r in results.items():
        assert r["error"] is None, name
        assert r["public_key_ok"] and r["key_id_ok"] and r["info_ok"], name
        assert r["opened"] and r["plaintext_ok"], name


def test_node_refuses_every_negative_at_the_stage_the_file_names(
    node_report: dict[str, Any], vectors: dict[str, Any]
) -> None:
    results = {r["name"]: r for r in node_report["negatives"]}
    assert set(results) == {n["name"] for n in vectors["negatives"]}
    for negative in vectors["negatives"]:
        r = results[negative["name"]]
        assert r["info_ok"], negative["name"]
        assert r["refused"], negative["name"]
        assert r["stage"] == negative["refused_by"], negative["name"]


def _key(vector: dict[str, Any]) -> X25519PrivateKey:
    return X25519PrivateKey.from_private_bytes(bytes.fromhex(vector["recipient_private_key"]))


def _node_box(sealed: dict[str, Any]) -> SealedBox:
    return SealedBox(
        version=sealed["format_version"],
        suite=sealed["suite"],
        recipient_key_id=sealed["recipient_key_id"],
        ciphertext=bytes.fromhex(sealed["ciphertext"]),
    )


def _binding(vector: dict[str, Any]) -> SealBinding | TriageBinding:
    b = vector["binding"]
    common = {
        "recipient_id": b["recipient_id"],
        "purpose": b["purpose"],
        "case_id": b.get("case_id", ""),
        "request_nonce": bytes.fromhex(b.get("request_nonce", "")),
    }
    if vector.get("kind", "record") == "record":
        return SealBinding(disclosure_id=b["disclosure_id"], **common)
    return TriageBinding(triage_id=b["triage_id"], **common)


def _open(box: SealedBox, key: X25519PrivateKey, binding: SealBinding | TriageBinding) -> bytes:
    if isinstance(binding, SealBinding):
        return open_sealed(box, key, binding)
    return open_sealed_triage(box, key, binding)


def _open_as_client(box: SealedBox, key: X25519PrivateKey,
                    binding: SealBinding | TriageBinding) -> bytes:
    """The partner-side opener, from a response as the gateway would send it."""
    sealed = common_pb2.SealedRecord(
        format_version=box.version,
        suite=box.suite,
        recipient_key_id=box.recipient_key_id,
        ciphertext=box.ciphertext,
    )
    expected = {
        "recipient_id": binding.recipient_id,
        "purpose": binding.purpose,
        "case_id": binding.case_id,
        "request_nonce": binding.request_nonce,
    }
    if isinstance(binding, SealBinding):
        response = exchange_pb2.DisclosureResponse(
            disclosure_id=binding.disclosure_id, sealed=sealed
        )
        return open_disclosure(response, key, **expected).SerializeToString(deterministic=True)
    triage = exchange_pb2.TriageResponse(triage_id=binding.triage_id, sealed=sealed)
    return open_triage(triage, key, **expected).SerializeToString(deterministic=True)


def test_the_gateway_opens_what_node_sealed(
    node_report: dict[str, Any], vectors: dict[str, Any]
) -> None:
    cases = vectors["cases"]
    by_case = {c["name"]: c for c in cases}
    sealed = [s for s in node_report["sealed"] if not s.get("challenge")]
    assert [s["case"] for s in sealed] == [c["name"] for c in cases]
    for s in sealed:
        case = by_case[s["case"]]
        # A fresh ephemeral key, not the committed ciphertext handed back.
        assert s["ciphertext"][:64] != case["sealed"]["ciphertext"][:64]
        box = _node_box(s)
        binding = _binding(case)
        assert _open(box, _key(case), binding) == bytes.fromhex(case["plaintext"])
        assert _open_as_client(box, _key(case), binding) == bytes.fromhex(case["plaintext"])


def test_the_gateway_opens_a_challenge_node_sealed(
    node_report: dict[str, Any], challenge: bytes, vectors: dict[str, Any]
) -> None:
    (box,) = [s for s in node_report["sealed"] if s.get("challenge")]
    case = vectors["cases"][0]
    assert box["case"] == case["name"]
    binding = _binding(case)
    assert _open(_node_box(box), _key(case), binding) == challenge
    # Bound like any answer: under another purpose it does not open.
    other = dataclasses.replace(binding, purpose=binding.purpose + "x")
    with pytest.raises(SealOpenError):
        _open(_node_box(box), _key(case), other)
