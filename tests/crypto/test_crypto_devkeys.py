from __future__ import annotations

import ipaddress
import os
import stat
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID
from cryptography.x509.verification import PolicyBuilder, Store, VerificationError

from gateway.crypto import (
    DevKeyPaths,
    DevKeysError,
    Keystore,
    KeystoreError,
    SealBinding,
    init_dev_keys,
    key_id,
    load_partner_private_keys,
    load_partner_public_keys,
    open_sealed,
    seal,
)

# The partners the conftest fixtures create.
PARTNERS = ("politie", "ggz-twente")


def _all_files(root: Path) -> list[Path]:
    return sorted(p for p in root.rglob("*") if p.is_file())


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def _cert(path: Path) -> x509.Certificate:
    return x509.load_pem_x509_certificate(path.read_bytes())


def test_creates_the_documented_layout(dev_keys: DevKeyPaths) -> None:
    root = dev_keys.root
    assert tuple(p.partner_id for p in dev_keys.partners) == PARTNERS
    expected = {
        "README.txt",
        "ca/ca.pem",
        "ca/ca.key.pem",
        "gateway/tls.pem",
        "gateway/tls.key.pem",
        "gateway/signing.pub.pem",
        "gateway/signing/current",
        "gateway/hpke.pub.pem",
        "gateway/hpke/current",
        "gateway/pseudonym.key",
        "gateway/kek/current",
    }
    gw = dev_keys.gateway
    signing_id = gw.signing_current.read_text().strip()
    hpke_id = gw.hpke_current.read_text().strip()
    for path in (gw.signing_file(signing_id), gw.signing_pub_file(signing_id),
                 gw.hpke_file(hpke_id), gw.hpke_pub_file(hpke_id)):
        expected.add(path.relative_to(root).as_posix())
    for partner in PARTNERS:
        for name in ("tls.pem", "tls.key.pem", "token.key.pem", "token.pub.pem"):
            expected.add(f"partners/{partner}/{name}")
        expected |= {f"partners/{partner}/hpke.key.pem", f"partners/{partner}/hpke.pub.pem"}
    found = {p.relative_to(root).as_posix() for p in _all_files(root)}
    kek_files = {f for f in found if f.startswith("gateway/kek/kek_")}
    assert len(kek_files) == 1
    assert found - kek_files == expected
    assert set(dev_keys.created) == set(_all_files(root))
    assert "never use in production" in dev_keys.readme.read_text()
    assert "never commit" in dev_keys.readme.read_text()


def test_private_files_are_0600_and_directories_0700(dev_keys: DevKeyPaths) -> None:
    for path in _all_files(dev_keys.root):
        name = path.name
        private = name.endswith((".key.pem", ".key")) and "pub" not in name
        if private:
            assert _mode(path) == 0o600, path
        else:
            assert _mode(path) & 0o022 == 0, path
    for directory in [dev_keys.root, *(p for p in dev_keys.root.rglob("*") if p.is_dir())]:
        assert _mode(directory) == 0o700, directory


def test_modes_do_not_depend_on_the_umask(tmp_path: Path) -> None:
    old = os.umask(0)
    try:
        paths = init_dev_keys(tmp_path / "k", ["om"])
    finally:
        os.umask(old)
    assert _mode(paths.ca.key) == 0o600
    assert _mode(paths.partner("om").directory) == 0o700


def test_ca_verifies_the_server_certificate(dev_keys: DevKeyPaths) -> None:
    ca = _cert(dev_keys.ca.cert)
    server = _cert(dev_keys.gateway.tls_cert)
    verifier = PolicyBuilder().store(Store([ca])).build_server_verifier(x509.DNSName("localhost"))
    chain = verifier.verify(server, [])
    assert chain[-1] == ca
    ip_verifier = (
        PolicyBuilder()
        .store(Store([ca]))
        .build_server_verifier(x509.IPAddress(ipaddress.ip_address("127.0.0.1")))
    )
    ip_verifier.verify(server, [])
    eku = server.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
    # The gateway is also a TLS client of the partners' source systems.
    assert list(eku) == [ExtendedKeyUsageOID.SERVER_AUTH, ExtendedKeyUsageOID.CLIENT_AUTH]
    assert isinstance(server.public_key(), ec.EllipticCurvePublicKey)


def test_server_certificate_does_not_verify_for_another_name(dev_keys: DevKeyPaths) -> None:
    ca = _cert(dev_keys.ca.cert)
    verifier = (
        PolicyBuilder().store(Store([ca])).build_server_verifier(x509.DNSName("evil.example"))
    )
    with pytest.raises(VerificationError):
        verifier.verify(_cert(dev_keys.gateway.tls_cert), [])


@pytest.mark.parametrize("partner", PARTNERS)
def test_ca_verifies_each_client_certificate(dev_keys: DevKeyPaths, partner: str) -> None:
    ca = _cert(dev_keys.ca.cert)
    client = _cert(dev_keys.partner(partner).tls_cert)
    verified = PolicyBuilder().store(Store([ca])).build_client_verifier().verify(client, [])
    assert verified.subjects is not None
    assert verified.subjects[0] == x509.UniformResourceIdentifier(
        f"urn:ketenpoort:partner:{partner}"
    )
    cn = client.subject.get_attributes_for_oid(NameOID.COMMON_NAME)[0].value
    assert cn == partner
    eku = client.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
    # A partner's system also serves the source contract, so its certificate is dual-use.
    assert list(eku) == [ExtendedKeyUsageOID.CLIENT_AUTH, ExtendedKeyUsageOID.SERVER_AUTH]


def test_partner_certificate_does_not_serve_an_unlisted_name(dev_keys: DevKeyPaths) -> None:
    ca = _cert(dev_keys.ca.cert)
    verifier = PolicyBuilder().store(Store([ca])).build_server_verifier(x509.DNSName("politie"))
    with pytest.raises(VerificationError):
        verifier.verify(_cert(dev_keys.partner("politie").tls_cert), [])


def test_certificates_from_another_ca_do_not_verify(dev_keys: DevKeyPaths, tmp_path: Path) -> None:
    other = init_dev_keys(tmp_path / "other", ["politie"])
    ca = _cert(dev_keys.ca.cert)
    verifier = PolicyBuilder().store(Store([ca])).build_client_verifier()
    with pytest.raises(VerificationError):
        verifier.verify(_cert(other.partner("politie").tls_cert), [])


def test_validity_follows_the_given_time(tmp_path: Path) -> None:
    now = datetime(2030, 1, 2, 3, 4, 5, tzinfo=UTC)
    paths = init_dev_keys(tmp_path / "k", ["om"], now=now)
    cert = _cert(paths.partner("om").tls_cert)
    assert cert.not_valid_before_utc <= now < cert.not_valid_after_utc
    assert cert.not_valid_after_utc - now > timedelta(days=300)
    ca = _cert(paths.ca.cert)
    verifier = (
        PolicyBuilder().store(Store([ca])).time(now + timedelta(days=1)).build_client_verifier()
    )
    verifier.verify(cert, [])


@pytest.mark.parametrize(
    "options",
    [{"ip_addresses": ["300.1.1.1"]}, {"hostnames": (), "ip_addresses": ()}],
    ids=["bad-ip", "no-names"],
)
def test_invalid_server_names_are_refused_before_writing(
    tmp_path: Path, options: dict[str, Sequence[str]]
) -> None:
    with pytest.raises(ValueError):
        init_dev_keys(tmp_path / "k", ["om"], **options)  # type: ignore[arg-type]
    assert not (tmp_path / "k").exists()


def test_extra_host_names_and_addresses_are_in_the_server_certificate(tmp_path: Path) -> None:
    paths = init_dev_keys(
        tmp_path / "k", [], hostnames=("gateway.zvh.test", "localhost"), ip_addresses=("::1",)
    )
    san = (
        _cert(paths.gateway.tls_cert)
        .extensions.get_extension_for_class(x509.SubjectAlternativeName)
        .value
    )
    assert san.get_values_for_type(x509.DNSName) == ["gateway.zvh.test", "localhost"]
    assert san.get_values_for_type(x509.IPAddress) == [ipaddress.ip_address("::1")]


def test_naive_time_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="timezone"):
        init_dev_keys(tmp_path / "k", ["om"], now=datetime(2030, 1, 1))


def test_second_run_keeps_everything_and_adds_a_partner(fresh_keys: DevKeyPaths) -> None:
    before = {p: p.read_bytes() for p in _all_files(fresh_keys.root)}
    again = init_dev_keys(fresh_keys.root, PARTNERS)
    assert again.created == ()
    assert {p: p.read_bytes() for p in _all_files(fresh_keys.root)} == before

    added = init_dev_keys(fresh_keys.root, [*PARTNERS, "om"])
    om = added.partner("om")
    assert set(added.created) == {
        om.tls_cert,
        om.tls_key,
        om.token_key,
        om.token_pub,
        om.hpke_key,
        om.hpke_pub,
    }
    for path, content in before.items():
        assert path.read_bytes() == content, path
    ca = _cert(added.ca.cert)
    PolicyBuilder().store(Store([ca])).build_client_verifier().verify(_cert(om.tls_cert), [])


def test_overwrite_replaces_the_keys(fresh_keys: DevKeyPaths) -> None:
    old_ca = fresh_keys.ca.cert.read_bytes()
    old_kek = Keystore.open(fresh_keys.root).current_kek.kek_id
    paths = init_dev_keys(fresh_keys.root, PARTNERS, overwrite=True)
    assert paths.ca.cert.read_bytes() != old_ca
    keystore = Keystore.open(fresh_keys.root)
    assert keystore.current_kek.kek_id != old_kek
    # Data wrapped under the previous key-encryption key still opens.
    assert keystore.kek(old_kek).kek_id == old_kek
    ca = _cert(paths.ca.cert)
    verifier = PolicyBuilder().store(Store([ca])).build_client_verifier()
    verifier.verify(_cert(paths.partner("politie").tls_cert), [])


def test_half_a_key_pair_is_refused(fresh_keys: DevKeyPaths) -> None:
    fresh_keys.partner("politie").token_pub.unlink()
    with pytest.raises(DevKeysError, match="token.pub.pem"):
        init_dev_keys(fresh_keys.root, PARTNERS)


def test_certificate_from_a_replaced_ca_is_refused(fresh_keys: DevKeyPaths) -> None:
    fresh_keys.ca.cert.unlink()
    fresh_keys.ca.key.unlink()
    with pytest.raises(DevKeysError, match="tls.pem was not issued by"):
        init_dev_keys(fresh_keys.root, PARTNERS)


@pytest.mark.parametrize("bad", ["", "../evil", "a/b", ".hidden", "x" * 65, "poli tie"])
def test_invalid_partner_ids_are_refused(tmp_path: Path, bad: str) -> None:
    with pytest.raises(ValueError, match="partner id"):
        init_dev_keys(tmp_path / "k", [bad])
    assert not (tmp_path / "k").exists()


def test_partner_public_keys_load_for_the_gateway(dev_keys: DevKeyPaths) -> None:
    public = load_partner_public_keys(dev_keys.root, "politie")
    private = load_partner_private_keys(dev_keys.root, "politie")
    assert public.token_key_id == private.token_key_id == key_id(public.token_key)
    assert public.hpke_key_id == private.hpke_key_id == key_id(public.hpke_key)
    assert private.ca_pem == dev_keys.ca.cert.read_bytes()
    assert private.tls_cert_pem == dev_keys.partner("politie").tls_cert.read_bytes()
    assert b"PRIVATE KEY" in private.tls_key_pem
    assert "PRIVATE" not in repr(private)


def test_a_partner_opens_what_is_sealed_to_its_public_key(dev_keys: DevKeyPaths) -> None:
    binding = SealBinding("d-1", "politie", "drang-en-dwang")
    box = seal(b"answer", load_partner_public_keys(dev_keys.root, "politie").hpke_key, binding)
    private = load_partner_private_keys(dev_keys.root, "politie")
    assert open_sealed(box, private.hpke_key, binding) == b"answer"


def test_partner_token_key_signs_verifiably(dev_keys: DevKeyPaths) -> None:
    private = load_partner_private_keys(dev_keys.root, "ggz-twente")
    public = load_partner_public_keys(dev_keys.root, "ggz-twente")
    public.token_key.verify(private.token_key.sign(b"jwt"), b"jwt")


def test_partner_private_keys_refuse_a_readable_key(fresh_keys: DevKeyPaths) -> None:
    os.chmod(fresh_keys.partner("politie").hpke_key, 0o644)
    with pytest.raises(KeystoreError, match="hpke.key.pem"):
        load_partner_private_keys(fresh_keys.root, "politie")


def test_unknown_partner_is_named(dev_keys: DevKeyPaths) -> None:
    with pytest.raises(KeystoreError, match="partners/nobody/token.pub.pem"):
        load_partner_public_keys(dev_keys.root, "nobody")
