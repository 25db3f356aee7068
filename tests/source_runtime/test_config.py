"""source.toml: defaults from the key directory, paths relative to the file, strict keys."""

from __future__ import annotations

from pathlib import Path

import pytest

from adapters.source_runtime.config import ConfigError, load_config

MINIMAL = """\
partner_id = "municipality"
listen = "0.0.0.0:50061"
catalogue = "catalogue.json"
mapping = "mapping.yaml"
[keys]
dir = "keys"
"""


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "source.toml"
    path.write_text(text, encoding="utf-8")
    return path


def test_defaults_come_from_the_key_directory(tmp_path: Path) -> None:
    config = load_config(write(tmp_path, MINIMAL))
    keys = tmp_path / "keys"
    assert config.tls.cert == keys / "partners" / "municipality" / "tls.pem"
    assert config.tls.ca == keys / "ca" / "ca.pem"
    assert config.gateway_public_key == keys / "gateway" / "hpke.pub.pem"
    assert config.mapping == tmp_path / "mapping.yaml"
    assert config.access_log is None and config.metrics_address == ""
    assert config.gateway is None and config.gateway_id == "ketenpoort"
    assert config.deadlines.for_call(2.0) == pytest.approx(1.95)
    assert config.deadlines.for_call(None) == 5.0
    assert config.deadlines.for_call(100.0) == 30.0


@pytest.mark.parametrize(("extra", "message"), [
    ("[deadlines]\nmargin = 0.1\n", "unknown key deadlines.'margin', did you mean 'margin_s'?"),
    ("[breaker]\nfailure_threshold = 0\n", "failure_threshold must be more than 0"),
    ('[gateway]\naddress = "g:443"\n', "[gateway] needs address and role"),
    ('[gateway]\naddress = "g:443"\nrole = "r"\n', None),
])
def test_mistakes_are_named(tmp_path: Path, extra: str, message: str | None) -> None:
    path = write(tmp_path, MINIMAL + extra)
    if message is None:
        config = load_config(path)
        assert config.gateway is not None and config.gateway.address == "g:443"
        return
    with pytest.raises(ConfigError) as raised:
        load_config(path)
    assert message in str(raised.value) and str(path) in str(raised.value)


def test_a_key_file_and_a_gateway_address_are_not_both_given(tmp_path: Path) -> None:
    text = MINIMAL.replace('dir = "keys"', 'dir = "keys"\ngateway_public_key = "g.pem"')
    with pytest.raises(ConfigError, match="not both"):
        load_config(write(tmp_path, text + '[gateway]\naddress = "g:443"\nrole = "r"\n'))
