"""The gateway's TLS certificate, key and CA, taken again from disk when the files change.

grpc asks ``fetch`` before each new TLS handshake. A look costs three ``stat`` calls; the
files are read only when one of them changed (modification time, size or inode: a
certificate renewed by ``mv`` or a Kubernetes secret's symlink swap), and a new
configuration is handed to grpc only when their content differs. A certificate and key that
do not belong together (one file written, the other not yet) are not taken: the pair in force
keeps serving until both are new. Connections already open keep their certificate.

The listening socket is not shared (``grpc.so_reuseport`` = 0): a second gateway started on
an address in use fails to start instead of silently taking half the connections.
"""

from __future__ import annotations

import hashlib
import logging
import threading
from dataclasses import dataclass
from pathlib import Path

import grpc
from cryptography import x509
from cryptography.hazmat.primitives import serialization

from gateway.crypto.layout import CaPaths, GatewayKeyPaths
from gateway.server.config import TlsMode

__all__ = ["LISTEN_OPTIONS", "ReloadingCertificates", "TlsFiles", "check_tls_files", "tls_files"]

log = logging.getLogger("ketenpoort.tls")

# grpc sets SO_REUSEPORT on listening sockets by default; a gateway never shares its address
# with another process (a multi-process mode of one gateway would set it to 1 on purpose).
LISTEN_OPTIONS: tuple[tuple[str, int], ...] = (("grpc.so_reuseport", 0),)


@dataclass(frozen=True)
class TlsFiles:
    cert: Path
    key: Path
    # The CA partners' client certificates must chain to; None without mutual TLS.
    ca: Path | None = None

    def paths(self) -> tuple[Path, ...]:
        return (self.cert, self.key) if self.ca is None else (self.cert, self.key, self.ca)


@dataclass(frozen=True)
class _Material:
    cert: bytes
    key: bytes
    ca: bytes | None

    @property
    def digest(self) -> bytes:
        h = hashlib.sha256()
        for part in (self.cert, self.key, self.ca or b""):
            h.update(len(part).to_bytes(8, "big") + part)
        return h.digest()


class TlsMismatch(ValueError):
    """The key file does not hold the certificate's private key, or a file does not parse."""


def _read(files: TlsFiles) -> _Material:
    material = _Material(
        files.cert.read_bytes(),
        files.key.read_bytes(),
        files.ca.read_bytes() if files.ca is not None else None,
    )
    try:
        cert = x509.load_pem_x509_certificate(material.cert)
        key = serialization.load_pem_private_key(material.key, password=None)
        if material.ca is not None:
            x509.load_pem_x509_certificates(material.ca)
    except (ValueError, TypeError) as exc:
        raise TlsMismatch(f"{type(exc).__name__}: {exc}") from None
    public = serialization.PublicFormat.SubjectPublicKeyInfo
    if cert.public_key().public_bytes(serialization.Encoding.DER, public) != (
        key.public_key().public_bytes(serialization.Encoding.DER, public)
    ):
        raise TlsMismatch(f"{files.key} is not the private key of {files.cert}")
    return material


def tls_files(keys_dir: Path, mode: TlsMode) -> TlsFiles:
    """The gateway's serving certificate and key under ``keys_dir``, and the CA under mutual
    TLS."""
    paths = GatewayKeyPaths.under(keys_dir)
    ca = CaPaths.under(keys_dir).cert if mode is TlsMode.MUTUAL else None
    return TlsFiles(paths.tls_cert, paths.tls_key, ca)


def check_tls_files(files: TlsFiles) -> None:
    """Raise OSError or TlsMismatch (a ValueError) when the files cannot serve TLS."""
    _read(files)


class ReloadingCertificates:
    def __init__(self, files: TlsFiles, *, require_client_auth: bool) -> None:
        self._files = files
        self._require_client_auth = require_client_auth
        self._lock = threading.Lock()
        self._stamp = self._stat()
        self._current = _read(files)
        self.reloads = 0

    def credentials(self) -> grpc.ServerCredentials:
        return grpc.dynamic_ssl_server_credentials(
            self._configuration(self._current),
            # grpc takes None as "keep the configuration in force"; its stubs do not say so.
            self.fetch,  # type: ignore[arg-type]
            require_client_authentication=self._require_client_auth,
        )

    def _configuration(self, material: _Material) -> grpc.ServerCertificateConfiguration:
        return grpc.ssl_server_certificate_configuration(
            [(material.key, material.cert)], root_certificates=material.ca
        )

    def _stat(self) -> tuple[tuple[int, int, int], ...] | None:
        try:
            return tuple(
                (s.st_mtime_ns, s.st_size, s.st_ino)
                for s in (p.stat() for p in self._files.paths())
            )
        except OSError:
            return None

    def fetch(self) -> grpc.ServerCertificateConfiguration | None:
        """grpc's certificate-configuration fetcher: a new configuration, or None to keep the
        one in force. Never raises (grpc would fail the handshake)."""
        try:
            with self._lock:
                stamp = self._stat()
                if stamp is None or stamp == self._stamp:
                    return None
                try:
                    material = _read(self._files)
                except (OSError, TlsMismatch) as exc:
                    # Looked at again on the next handshake; the repeated line is coalesced.
                    log.warning("TLS files not reloaded, the ones in force stay: %s", exc)
                    return None
                self._stamp = stamp
                if material.digest == self._current.digest:
                    return None
                self._current = material
                self.reloads += 1
            log.info("TLS certificate reloaded from %s", self._files.cert)
            return self._configuration(material)
        except Exception:  # pragma: no cover - a handshake must never fail on this
            log.exception("looking at the TLS files failed")
            return None
