"""Which provider holds which kind of gateway key, as the configuration says.

::

    [key_provider]
    type = "pkcs11"                         # "file" (default): the key directory
    module = "/usr/lib/softhsm/libsofthsm2.so"
    token_label = "ketenpoort"
    pin_env = "KETENPOORT_PKCS11_PIN"       # or pin_file = "/run/secrets/hsm-pin" (mode 0600)
    kinds = ["signing", "hpke", "kek"]      # kinds kept in the token; the others stay files
    namespace = "ketenpoort"                # prefix of the token objects' labels

The PIN is never part of the configuration file: it comes from the environment variable
named by ``pin_env`` or from ``pin_file``, a file readable by its owner only. The pseudonym
key and the TLS key always stay files.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path
from typing import Any

from gateway.crypto._files import read_private_file
from gateway.crypto.errors import KeystoreError
from gateway.crypto.provider import KeyKind, KeyProvider

__all__ = [
    "DEFAULT_NAMESPACE",
    "DEFAULT_PIN_ENV",
    "KeyProviderSettings",
    "Pkcs11Settings",
    "ProviderType",
    "open_provider",
    "open_providers",
    "settings_from_mapping",
]

DEFAULT_PIN_ENV = "KETENPOORT_PKCS11_PIN"
DEFAULT_NAMESPACE = "ketenpoort"
_NAMESPACE = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,31}\Z")
_ENV_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*\Z")
_KNOWN = {"type", "module", "token_label", "pin_env", "pin_file", "kinds", "namespace"}


class ProviderType(StrEnum):
    FILE = "file"
    PKCS11 = "pkcs11"


@dataclass(frozen=True)
class Pkcs11Settings:
    """A PKCS#11 token: the module to load, the token's label and where its PIN comes from."""

    module: Path
    token_label: str
    pin_env: str | None = DEFAULT_PIN_ENV
    pin_file: Path | None = None
    namespace: str = DEFAULT_NAMESPACE

    def read_pin(self) -> str:
        """The user PIN, from ``pin_file`` or else the ``pin_env`` variable; raise
        KeystoreError naming the source (never the PIN)."""
        if self.pin_file is not None:
            raw = read_private_file(self.pin_file)
            try:
                pin = raw.decode("utf-8").rstrip("\r\n")
            except UnicodeDecodeError:
                pin = ""
            if not pin:
                raise KeystoreError(f"PIN file {self.pin_file} holds no PIN")
            return pin
        name = self.pin_env or DEFAULT_PIN_ENV
        pin = os.environ.get(name, "")
        if not pin:
            raise KeystoreError(f"the PKCS#11 PIN is not set: environment variable {name} is empty")
        return pin

    def __repr__(self) -> str:
        return (
            f"Pkcs11Settings(module={str(self.module)!r}, token_label={self.token_label!r}, "
            f"namespace={self.namespace!r})"
        )


@dataclass(frozen=True)
class KeyProviderSettings:
    """``type`` holds the kinds in ``token_kinds``; every other kind stays a file."""

    type: ProviderType = ProviderType.FILE
    pkcs11: Pkcs11Settings | None = None
    token_kinds: frozenset[KeyKind] = field(default_factory=lambda: frozenset(KeyKind))

    def __post_init__(self) -> None:
        if self.type is ProviderType.PKCS11 and self.pkcs11 is None:
            raise ValueError("a pkcs11 key provider needs its token settings")

    def holds(self, kind: KeyKind) -> ProviderType:
        """The provider type that holds ``kind``."""
        if self.type is ProviderType.PKCS11 and kind in self.token_kinds:
            return ProviderType.PKCS11
        return ProviderType.FILE


def settings_from_mapping(raw: Mapping[str, Any], base: Path) -> KeyProviderSettings:
    """Read a ``[key_provider]`` table; relative paths are taken from ``base``. Raises
    ValueError naming the setting at fault."""
    if "pin" in raw or "user_pin" in raw:
        raise ValueError(
            "key_provider: the PIN never goes in the configuration file; "
            "use pin_env (an environment variable) or pin_file (a file of mode 0600)"
        )
    unknown = sorted(set(raw) - _KNOWN)
    if unknown:
        raise ValueError(f"key_provider: unknown settings: {', '.join(unknown)}")
    try:
        provider = ProviderType(raw.get("type", ProviderType.FILE))
    except ValueError:
        raise ValueError(
            f"key_provider.type must be one of {[t.value for t in ProviderType]}"
        ) from None
    if provider is ProviderType.FILE:
        extra = sorted(set(raw) - {"type"})
        if extra:
            raise ValueError(f"key_provider: {', '.join(extra)}: only for type = \"pkcs11\"")
        return KeyProviderSettings()
    module, label = raw.get("module"), raw.get("token_label")
    if not isinstance(module, str) or not module:
        raise ValueError("key_provider.module must name the PKCS#11 module (a .so file)")
    if not isinstance(label, str) or not label:
        raise ValueError("key_provider.token_label must name the token")
    pin_env, pin_file = raw.get("pin_env"), raw.get("pin_file")
    if pin_env is not None and pin_file is not None:
        raise ValueError("key_provider: give pin_env or pin_file, not both")
    if pin_env is not None and (not isinstance(pin_env, str) or not _ENV_NAME.match(pin_env)):
        raise ValueError("key_provider.pin_env must be an environment variable name")
    if pin_file is not None and (not isinstance(pin_file, str) or not pin_file):
        raise ValueError("key_provider.pin_file must be a path")
    namespace = raw.get("namespace", DEFAULT_NAMESPACE)
    if not isinstance(namespace, str) or not _NAMESPACE.match(namespace):
        raise ValueError(
            "key_provider.namespace must be 1-32 letters, digits, '_', '.' or '-'"
        )
    kinds_raw = raw.get("kinds", [k.value for k in KeyKind])
    try:
        kinds = frozenset(KeyKind(k) for k in kinds_raw)
    except (TypeError, ValueError):
        raise ValueError(
            f"key_provider.kinds must list some of {[k.value for k in KeyKind]}"
        ) from None
    if not kinds:
        raise ValueError("key_provider.kinds is empty: use type = \"file\" instead")
    return KeyProviderSettings(
        type=ProviderType.PKCS11,
        pkcs11=Pkcs11Settings(
            module=_path(module, base),
            token_label=label,
            pin_env=pin_env if pin_env is not None else (None if pin_file else DEFAULT_PIN_ENV),
            pin_file=_path(pin_file, base) if pin_file else None,
            namespace=namespace,
        ),
        token_kinds=kinds,
    )


def open_providers(
    keys_dir: Path, settings: KeyProviderSettings | None = None
) -> dict[KeyKind, KeyProvider]:
    """A provider for every kind; kinds sharing a provider share one instance."""
    from gateway.crypto.file_provider import FileKeyProvider

    settings = settings or KeyProviderSettings()
    files = FileKeyProvider(keys_dir)
    token: KeyProvider | None = None
    providers: dict[KeyKind, KeyProvider] = {}
    for kind in KeyKind:
        if settings.holds(kind) is ProviderType.PKCS11:
            if token is None:
                from gateway.crypto.pkcs11_provider import Pkcs11KeyProvider

                assert settings.pkcs11 is not None
                token = Pkcs11KeyProvider(settings.pkcs11, keys_dir)
            providers[kind] = token
        else:
            providers[kind] = files
    return providers


def open_provider(
    keys_dir: Path, settings: KeyProviderSettings | None, kind: KeyKind
) -> KeyProvider:
    """The provider of one kind only (a token is opened only when it holds ``kind``)."""
    settings = settings or KeyProviderSettings()
    if settings.holds(kind) is ProviderType.PKCS11:
        from gateway.crypto.pkcs11_provider import Pkcs11KeyProvider

        assert settings.pkcs11 is not None
        return Pkcs11KeyProvider(settings.pkcs11, keys_dir)
    from gateway.crypto.file_provider import FileKeyProvider

    return FileKeyProvider(keys_dir)


def _path(value: str, base: Path) -> Path:
    p = Path(value).expanduser()
    return p if p.is_absolute() else base / p
