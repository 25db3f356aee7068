"""Key files on disk: written atomically with tight modes, refused when too widely readable."""

from __future__ import annotations

import os
import stat
import tempfile
from pathlib import Path

from gateway.crypto.errors import KeystoreError

PRIVATE_DIR_MODE = 0o700
PRIVATE_FILE_MODE = 0o600
PUBLIC_FILE_MODE = 0o644
_GROUP_OR_OTHERS = 0o077


def ensure_private_dir(path: Path) -> None:
    """Create ``path`` and missing parents with mode 0700; existing directories are kept."""
    missing: list[Path] = []
    current = path
    while not current.exists():
        missing.append(current)
        current = current.parent
    for directory in reversed(missing):
        directory.mkdir(mode=PRIVATE_DIR_MODE)
        # mkdir's mode is filtered by the umask; set it exactly.
        os.chmod(directory, PRIVATE_DIR_MODE)


def _write_atomically(path: Path, data: bytes, mode: int) -> None:
    # A reader never sees a half-written key, and the file has its final mode before it
    # gets its final name.
    fd, tmp_name = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        os.fchmod(fd, mode)
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp_name, path)
    except BaseException:
        Path(tmp_name).unlink(missing_ok=True)
        raise


def write_private_file(path: Path, data: bytes) -> None:
    _write_atomically(path, data, PRIVATE_FILE_MODE)


def write_public_file(path: Path, data: bytes) -> None:
    _write_atomically(path, data, PUBLIC_FILE_MODE)


def read_private_file(path: Path) -> bytes:
    """Read a secret, refusing a file that group or others could read or write.

    The mode is checked on the opened descriptor, so a file swapped between check and
    read cannot slip through; symbolic links (as in mounted secrets) are followed.
    """
    try:
        fd = os.open(path, os.O_RDONLY)
    except FileNotFoundError:
        raise KeystoreError(f"key file {path} does not exist") from None
    except OSError as exc:
        raise KeystoreError(f"key file {path} cannot be opened: {exc.strerror}") from None
    with os.fdopen(fd, "rb") as handle:
        info = os.fstat(handle.fileno())
        if not stat.S_ISREG(info.st_mode):
            raise KeystoreError(f"key file {path} is not a regular file")
        if info.st_mode & _GROUP_OR_OTHERS:
            raise KeystoreError(
                f"key file {path} has mode {stat.S_IMODE(info.st_mode):04o}, which group or "
                f"others can access; private keys must be mode 0600"
            )
        return handle.read()


def read_public_file(path: Path) -> bytes:
    try:
        return path.read_bytes()
    except FileNotFoundError:
        raise KeystoreError(f"file {path} does not exist") from None
    except OSError as exc:
        raise KeystoreError(f"file {path} cannot be read: {exc.strerror}") from None
