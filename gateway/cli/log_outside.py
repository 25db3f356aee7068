"""What `ketenpoort audit verify` and `audit acknowledge` read outside the database: the
gateway's checkpoint files, the standing log alarm, and the witnesses' registered keys."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from gateway.crypto.keyids import key_pin
from gateway.registry.entries import KeyStatus, RegistryError
from gateway.registry.files import read_registry
from gateway.server.config import GatewayConfig
from gateway.store.checkpoint_file import CheckpointFileError, read_notes
from gateway.tlog.cosignature import cosignatures_of
from gateway.tlog.notes import CheckpointError, open_checkpoint


@dataclass(frozen=True, slots=True)
class OutsideNotes:
    directory: Path
    notes: list[str]


def checkpoint_notes(config: GatewayConfig) -> OutsideNotes:
    """Every checkpoint in the gateway's checkpoint files; SystemExit when they are damaged
    (a damaged file is no reason to pass a log)."""
    directory = config.checkpoints_path
    try:
        return OutsideNotes(directory, read_notes(directory))
    except CheckpointFileError as exc:
        raise SystemExit(f"ketenpoort audit: {exc}") from exc


def witness_keys(config: GatewayConfig) -> Mapping[str, Sequence[Ed25519PublicKey]]:
    """Partner id -> its active registered Ed25519 token keys (what cosignatures are checked
    with); empty when the registry cannot be read."""
    try:
        entries = read_registry(config.registry_path)
    except (RegistryError, OSError):
        return {}
    keys: dict[str, list[Ed25519PublicKey]] = {}
    for partner_id, entry in entries.items():
        if not entry.active:
            continue
        found = [
            k.key
            for k in entry.token_keys
            if k.status is KeyStatus.ACTIVE and isinstance(k.key, Ed25519PublicKey)
        ]
        if found:
            keys[partner_id] = found
    return keys


def witnesses_at(
    cosigned: Sequence[str],
    tree_size: int,
    keys: Mapping[str, Sequence[Ed25519PublicKey]],
) -> list[str]:
    """The witnesses whose cosignature on the checkpoint at ``tree_size`` verifies."""
    names: set[str] = set()
    for note in cosigned:
        try:
            checkpoint = open_checkpoint(note, (), require_signature=False)
        except CheckpointError:
            continue
        if checkpoint.tree_size == tree_size:
            names.update(c.witness for c in cosignatures_of(note, keys, key_pin))
    return sorted(names)


def newest_witnessed(
    cosigned: Sequence[str], keys: Mapping[str, Sequence[Ed25519PublicKey]]
) -> tuple[int, list[str]]:
    """The largest tree size any known witness cosigned, and who did (0, [] when none)."""
    best: tuple[int, list[str]] = (0, [])
    for note in cosigned:
        try:
            checkpoint = open_checkpoint(note, (), require_signature=False)
        except CheckpointError:
            continue
        if checkpoint.tree_size > best[0] and cosignatures_of(note, keys, key_pin):
            best = (checkpoint.tree_size, witnesses_at(cosigned, checkpoint.tree_size, keys))
    return best
