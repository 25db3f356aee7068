"""Registry entries for development keys, so a development gateway runs without onboarding."""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

from gateway.registry.edits import entry_from_dev_keys
from gateway.registry.entries import RegistryError
from gateway.registry.files import entry_path, read_entry, write_entry

__all__ = ["register_dev_partners"]


def register_dev_partners(
    keys_dir: Path, registry_dir: Path, partner_ids: Iterable[str]
) -> list[Path]:
    """Write an entry for each partner from its development keys where the registry has
    none, or has one that does not know the partner's current development certificate
    (the keys were made again). Returns the files written."""
    written: list[Path] = []
    for partner_id in partner_ids:
        fresh = entry_from_dev_keys(keys_dir, partner_id)
        path = entry_path(registry_dir, partner_id)
        if path.exists():
            try:
                kept = read_entry(path)
            except RegistryError:
                kept = None
            if kept is not None and {c.thumbprint for c in kept.certificates} >= {
                c.thumbprint for c in fresh.certificates
            }:
                continue
        written.append(write_entry(registry_dir, fresh))
    return written
