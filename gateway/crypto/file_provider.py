"""Gateway keys as files in the key directory: the file side of the key-provider contract.

Each kind is a ring under ``DIR/gateway``::

    signing/<key_id>.key.pem  <key_id>.pub.pem  current      Ed25519, signs checkpoints
    hpke/<key_id>.key.pem     <key_id>.pub.pem  current      X25519, opens submissions
    kek/<kek_id>.key                            current      AES-256, wraps data keys

``current`` holds the id of the key that signs, is advertised or wraps; the other keys of the
ring stay usable for verifying and opening until they are retired. Signing and HPKE key ids
are derived from the public key (:func:`gateway.crypto.keyids.key_id`) and a file whose name
does not match its key is refused; KEK ids are random.

Permissions, checked on every load:

- a private key file must be mode 0600 or stricter (no group or other access at all): a key
  others could read must be treated as leaked;
- ``gateway/`` and each ring directory must not be writable by group or others, and others
  must have no access to them (0700, or 0750 for an operators' group): whoever can write
  there can put in a key of their own or move ``current`` to it, and the gateway would sign
  and wrap with it.

Rotation writes the new key's files first and then replaces ``current`` by rename, so a
reader (another process sharing the directory) sees the old ring or the new one, never a
``current`` that names a missing file. Retirement refuses the current key; a retired
log-signing key's public half is kept in ``signing/retired/`` so its checkpoints still verify
(:mod:`gateway.crypto.public_exports`).

A key directory of the earlier layout, with a single ``signing.key.pem`` or ``hpke.key.pem``
and no ring directory, is read as a ring of one key. The first rotation of such a kind copies
the single key into the ring, moves ``current`` to the new key, and only then deletes the
single file.
"""

from __future__ import annotations

import os
import re
import stat
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey

from gateway.crypto._files import (
    ensure_private_dir,
    read_private_file,
    read_public_file,
    write_private_file,
    write_public_file,
)
from gateway.crypto._pem import (
    load_ed25519_private_key,
    load_x25519_private_key,
    private_pem,
)
from gateway.crypto.errors import KeystoreError, NoKeyError
from gateway.crypto.keyids import key_id
from gateway.crypto.layout import GatewayKeyPaths
from gateway.crypto.local_keys import (
    KEK_BYTES,
    KEK_ID_PATTERN,
    KeyEncryptionKey,
    LocalHpkeRecipient,
    LocalSigningKey,
    new_kek_id,
)
from gateway.crypto.provider import (
    HpkeRecipient,
    KeyInfo,
    KeyKind,
    KeyRing,
    KeyWrappingKey,
    LogSigningKey,
)
from gateway.crypto.public_exports import (
    drop_public,
    export_current,
    export_public,
    keep_retired_signing_key,
)

__all__ = ["DIRECTORY_FORBIDDEN_BITS", "FileKeyProvider"]

# Group write, and anything for others (see the module docstring).
DIRECTORY_FORBIDDEN_BITS = 0o027
_KEY_ID = re.compile(r"k_[0-9a-f]{16}\Z")
_KEY_SUFFIX = ".key.pem"

_PrivateKey = Ed25519PrivateKey | X25519PrivateKey


@dataclass(frozen=True)
class _Ring:
    """Where one asymmetric kind lives, and how its keys are read and made."""

    kind: KeyKind
    directory: Path
    current: Path
    legacy: Path
    load: Callable[[Path], Any]
    generate: Callable[[], _PrivateKey]

    def key_file(self, key_id: str) -> Path:
        return self.directory / f"{key_id}{_KEY_SUFFIX}"


class FileKeyProvider:
    """Key rings in ``DIR/gateway`` (module docstring). Reads the files on every call; the
    :class:`~gateway.crypto.keystore.Keystore` keeps what it loaded."""

    def __init__(self, keys_dir: Path) -> None:
        self._paths = GatewayKeyPaths.under(keys_dir)
        self._rings = {
            KeyKind.SIGNING: _Ring(
                KeyKind.SIGNING,
                self._paths.signing_dir,
                self._paths.signing_current,
                self._paths.signing_key,
                load_ed25519_private_key,
                Ed25519PrivateKey.generate,
            ),
            KeyKind.HPKE: _Ring(
                KeyKind.HPKE,
                self._paths.hpke_dir,
                self._paths.hpke_current,
                self._paths.hpke_key,
                load_x25519_private_key,
                X25519PrivateKey.generate,
            ),
        }

    @property
    def name(self) -> str:
        return "file"

    @property
    def paths(self) -> GatewayKeyPaths:
        return self._paths

    # -- rings ----------------------------------------------------------------------------

    def signing_keys(self) -> KeyRing[LogSigningKey]:
        current, keys = self._load(self._rings[KeyKind.SIGNING])
        ring: dict[str, LogSigningKey] = {
            kid: LocalSigningKey(key) for kid, key in keys.items()
            if isinstance(key, Ed25519PrivateKey)
        }
        return KeyRing(current, ring)

    def hpke_keys(self) -> KeyRing[HpkeRecipient]:
        current, keys = self._load(self._rings[KeyKind.HPKE])
        ring: dict[str, HpkeRecipient] = {
            kid: LocalHpkeRecipient(key) for kid, key in keys.items()
            if isinstance(key, X25519PrivateKey)
        }
        return KeyRing(current, ring)

    def keks(self) -> KeyRing[KeyWrappingKey]:
        self._check_directories(self._paths.kek_dir)
        if not self._paths.kek_current.exists():
            raise NoKeyError(f"no key-encryption key yet: {self._paths.kek_current} is missing")
        current = self._read_current(self._paths.kek_current, KEK_ID_PATTERN, "key-encryption")
        keks: dict[str, KeyWrappingKey] = {}
        for kek_id, file in self._kek_files().items():
            key = read_private_file(file)
            if len(key) != KEK_BYTES:
                raise KeystoreError(f"key file {file} must hold exactly {KEK_BYTES} bytes")
            keks[kek_id] = KeyEncryptionKey(kek_id, key)
        if current not in keks:
            raise KeystoreError(
                f"{self._paths.kek_current} names {current}, but "
                f"{self._paths.kek_file(current)} is missing"
            )
        return KeyRing(current, keks)

    # -- change ---------------------------------------------------------------------------

    def rotate(self, kind: KeyKind) -> str:
        if kind is KeyKind.KEK:
            return self._rotate_kek()
        spec = self._rings[kind]
        ensure_private_dir(spec.directory)
        self._check_directories(spec.directory)
        legacy: _PrivateKey | None = None
        if not spec.current.exists() and spec.legacy.exists():
            legacy = spec.load(spec.legacy)
            self._write_key(spec, legacy)
        new = spec.generate()
        new_id = self._write_key(spec, new)
        # The key's files exist before `current` names it (rename: atomic for readers).
        write_public_file(spec.current, f"{new_id}\n".encode("ascii"))
        export_current(self._paths, kind, new.public_key())
        if legacy is not None:
            # The ring holds the key now; the single file of the earlier layout would only
            # be a second copy of a private key.
            spec.legacy.unlink()
        return new_id

    def retire(self, kind: KeyKind, key_id: str) -> None:
        if kind is KeyKind.KEK:
            # Loading the ring refuses a broken one before anything is deleted.
            current = self.keks().current_id
            files = self._kek_files()
        else:
            spec = self._rings[kind]
            current, files = self._ring_files(spec)
        if key_id == current:
            raise KeystoreError(
                f"{key_id} is the current {kind} key; rotate first, then retire it"
            )
        if key_id not in files:
            raise KeystoreError(f"no {kind} key with id {key_id!r}")
        if kind is KeyKind.SIGNING:
            key = load_ed25519_private_key(files[key_id])
            keep_retired_signing_key(self._paths, key_id, key.public_key())
        files[key_id].unlink()
        if kind is not KeyKind.KEK:
            drop_public(self._paths, kind, key_id)

    # -- looking --------------------------------------------------------------------------

    def stamp(self, kind: KeyKind) -> object:
        """``stat`` of ``current``, of the single file of the earlier layout, and of every
        entry of the ring directory: equal stamps mean nothing needs reading again."""
        if kind is KeyKind.KEK:
            return (_stat_of(self._paths.kek_current), _entries(self._paths.kek_dir))
        spec = self._rings[kind]
        return (_stat_of(spec.current), _stat_of(spec.legacy), _entries(spec.directory))

    def list_keys(self, kind: KeyKind) -> list[KeyInfo]:
        try:
            if kind is KeyKind.KEK:
                current = self.keks().current_id
                files = self._kek_files()
            else:
                current, files = self._ring_files(self._rings[kind])
        except NoKeyError:
            return []
        infos = [
            KeyInfo(kind, kid, kid == current, _created(file)) for kid, file in files.items()
        ]
        return sorted(infos, key=lambda info: (info.created, info.key_id))

    def close(self) -> None:
        """Nothing is held open."""

    # -- internals ------------------------------------------------------------------------

    def _load(self, spec: _Ring) -> tuple[str, dict[str, _PrivateKey]]:
        current, files = self._ring_files(spec)
        keys: dict[str, _PrivateKey] = {}
        for kid, file in files.items():
            key = spec.load(file)
            actual = key_id(key.public_key())
            if actual != kid:
                raise KeystoreError(f"key file {file} holds key {actual}, not {kid}")
            keys[actual] = key
        if current not in keys:
            raise KeystoreError(
                f"{spec.current} names {current}, but {spec.key_file(current)} is missing"
            )
        return current, keys

    def _ring_files(self, spec: _Ring) -> tuple[str, dict[str, Path]]:
        """The current id and the private file of every key of an asymmetric ring."""
        self._check_directories(spec.directory)
        if not spec.current.exists():
            if spec.legacy.exists():
                key = spec.load(spec.legacy)
                kid = key_id(key.public_key())
                return kid, {kid: spec.legacy}
            raise NoKeyError(
                f"no {spec.kind} key yet: neither {spec.current} nor {spec.legacy} exists"
            )
        current = self._read_current(spec.current, _KEY_ID, spec.kind.value)
        files: dict[str, Path] = {}
        for file in sorted(spec.directory.glob(f"*{_KEY_SUFFIX}")):
            kid = file.name.removesuffix(_KEY_SUFFIX)
            if not _KEY_ID.match(kid):
                raise KeystoreError(f"key file {file} is not named <key_id>{_KEY_SUFFIX}")
            files[kid] = file
        return current, files

    def _kek_files(self) -> dict[str, Path]:
        files: dict[str, Path] = {}
        for file in sorted(self._paths.kek_dir.glob("*.key")):
            kek_id = file.name.removesuffix(".key")
            if not KEK_ID_PATTERN.match(kek_id):
                raise KeystoreError(f"key file {file} is not named <kek_id>.key")
            files[kek_id] = file
        return files

    def _write_key(self, spec: _Ring, key: _PrivateKey) -> str:
        kid = key_id(key.public_key())
        write_private_file(spec.key_file(kid), private_pem(key))
        export_public(self._paths, spec.kind, kid, key.public_key())
        return kid

    def _rotate_kek(self) -> str:
        ensure_private_dir(self._paths.kek_dir)
        self._check_directories(self._paths.kek_dir)
        kek_id = new_kek_id()
        write_private_file(self._paths.kek_file(kek_id), os.urandom(KEK_BYTES))
        write_public_file(self._paths.kek_current, f"{kek_id}\n".encode("ascii"))
        return kek_id

    def _check_directories(self, ring_dir: Path) -> None:
        for directory in (self._paths.directory, ring_dir):
            _check_directory(directory)

    @staticmethod
    def _read_current(path: Path, pattern: re.Pattern[str], what: str) -> str:
        raw = read_public_file(path)
        try:
            current = raw.decode("ascii").strip()
        except UnicodeDecodeError:
            current = ""
        if not pattern.match(current):
            raise KeystoreError(f"{path} does not name a {what} key id")
        return current

    def __repr__(self) -> str:
        return f"FileKeyProvider({self._paths.directory})"


def _check_directory(path: Path) -> None:
    try:
        info = os.stat(path)
    except FileNotFoundError:
        return  # the files it should hold are reported missing instead
    except OSError as exc:
        raise KeystoreError(f"key directory {path} cannot be read: {exc.strerror}") from None
    if not stat.S_ISDIR(info.st_mode):
        raise KeystoreError(f"{path} is not a directory")
    mode = stat.S_IMODE(info.st_mode)
    if mode & DIRECTORY_FORBIDDEN_BITS:
        raise KeystoreError(
            f"key directory {path} has mode {mode:04o}: group or others could put keys in it, "
            "or others could list it; key directories must be mode 0700 (or 0750)"
        )


def _stat_of(path: Path) -> tuple[int, int, int] | None:
    try:
        info = os.stat(path)
    except FileNotFoundError:
        return None
    return (info.st_ino, info.st_size, info.st_mtime_ns)


def _entries(directory: Path) -> tuple[tuple[str, int, int, int], ...]:
    try:
        with os.scandir(directory) as entries:
            found = [
                (e.name, (s := e.stat()).st_ino, s.st_size, s.st_mtime_ns)
                for e in entries
                if e.is_file()
            ]
    except FileNotFoundError:
        return ()
    return tuple(sorted(found))


def _created(file: Path) -> str:
    # Key files are written once (by rename) and never changed: the modification time is the
    # time the key was made.
    moment = datetime.fromtimestamp(file.stat().st_mtime, UTC)
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")
