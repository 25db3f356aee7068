"""The REST adapter against the loopback police service (real HTTP on 127.0.0.1), configured
by the example mapping deploy/source/police-rest.yaml."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest

from adapters.source_runtime.adapter import NotKnown, Person, SystemUnavailable
from adapters.source_runtime.mapping import MappingError, load_mapping
from adapters.systems.rest import RestAdapter, open_adapter
from gateway.demo_systems.police_rest import PoliceRecord, PoliceRestServer
from tests.source_runtime.http_systems import EXAMPLES, example_mapping, real_catalogue

TOKEN = "s3cret-police-token"
FIELDS = ("police.incidents", "police.antecedents_summary", "police.weapon_flag",
          "police.neighbourhood_officer")
JAN = PoliceRecord(
    id="P-17", role="suspect", name="Jan de Vries", birth_date="1985-03-04", bsn="111222333",
    reference="PL-2026-0042",
    incidents=(("2026-11-14", "threat"), ("2026-10-19", "threat by phone"),
               ("2026-10-02", "domestic violence call-out")),
    antecedents="Suspect of assault in 2019 and 2022",
    weapon="yes: knife found at address 2026-11-14",
    officer=("Wijkagent team Enschede-Zuid", "0900-8844"),
)


@pytest.fixture
def police() -> Iterator[PoliceRestServer]:
    server = PoliceRestServer(token=TOKEN)
    server.add(JAN)
    with server:
        yield server


def _open(tmp_path: Path, police: PoliceRestServer, token: str = TOKEN,
          **system: Any) -> RestAdapter:
    mapping = example_mapping(tmp_path, "police-rest.yaml",
                              {"secrets/police-api-token": token + "\n"})
    return open_adapter(mapping, {"base_url": police.base_url, "tls": {}, **system}, tmp_path)


@pytest.fixture
async def adapter(tmp_path: Path, police: PoliceRestServer) -> AsyncIterator[RestAdapter]:
    rest = _open(tmp_path, police)
    yield rest
    await rest.close()


async def test_the_example_mapping_reads_every_police_field(
    adapter: RestAdapter, police: PoliceRestServer
) -> None:
    found = await adapter.fetch(Person(bsn="111222333"), FIELDS, deadline_s=5)
    assert found.unavailable == frozenset()
    assert found.values == {
        # Three incidents over two pages of two (the server's default page size is 2).
        "police.incidents": "2026-11-14 threat; 2026-10-19 threat by phone; "
                            "2026-10-02 domestic violence call-out",
        "police.antecedents_summary": "Suspect of assault in 2019 and 2022",
        "police.weapon_flag": "yes: knife found at address 2026-11-14",
        "police.neighbourhood_officer": "Wijkagent team Enschede-Zuid, 0900-8844",
    }


async def test_only_the_requests_the_asked_fields_need_are_made(
    adapter: RestAdapter, police: PoliceRestServer
) -> None:
    found = await adapter.fetch(Person(bsn="111222333"), ["police.weapon_flag"], deadline_s=5)
    assert found.values == {"police.weapon_flag": "yes: knife found at address 2026-11-14"}
    assert dict(police.counts) == {"persons": 1, "profile": 1}
    police.counts.clear()
    await adapter.fetch(Person(bsn="111222333"), ["police.incidents"], deadline_s=5)
    assert dict(police.counts) == {"persons": 1, "incidents": 1}  # per_page 50: one page


async def test_a_person_is_found_by_name_and_a_partial_date_of_birth(
    adapter: RestAdapter
) -> None:
    found = await adapter.fetch(Person(name="Jan de Vries", date_of_birth="1985"),
                                ["police.antecedents_summary"], deadline_s=5)
    assert found.values == {"police.antecedents_summary": "Suspect of assault in 2019 and 2022"}
    assert await adapter.lookup(Person(reference="PL-2026-0042"), deadline_s=5) == (
        True, "suspect")


async def test_a_person_the_system_does_not_know_is_not_known(adapter: RestAdapter) -> None:
    with pytest.raises(NotKnown):
        await adapter.fetch(Person(bsn="999999990"), FIELDS, deadline_s=5)
    assert await adapter.lookup(Person(bsn="999999990"), deadline_s=5) == (False, "")
    # Identifiers the mapping searches by were not given: not known, nothing asked.
    with pytest.raises(NotKnown):
        await adapter.fetch(Person(postcode="7511 AB"), FIELDS, deadline_s=5)


async def test_two_persons_fitting_the_identifiers_is_not_known_never_a_guess(
    adapter: RestAdapter, police: PoliceRestServer
) -> None:
    police.add(PoliceRecord(id="P-18", role="victim", name="Jan de Vries",
                            birth_date="1985-11-30"))
    with pytest.raises(NotKnown):
        await adapter.fetch(Person(name="Jan de Vries", date_of_birth="1985"), FIELDS,
                            deadline_s=5)


async def test_identifiers_are_percent_encoded_and_cannot_reshape_the_url(
    adapter: RestAdapter, police: PoliceRestServer
) -> None:
    odd = PoliceRecord(id="P-19", role="witness", name="Ann & Bo/../x?y=1",
                       birth_date="1990-01-01", reference="../P-17?a=b&c")
    police.add(odd)
    assert await adapter.lookup(Person(name=odd.name, date_of_birth="1990-01-01"),
                                deadline_s=5) == (True, "witness")
    assert await adapter.lookup(Person(reference="../P-17?a=b&c"), deadline_s=5) == (
        True, "witness")


async def test_a_slow_system_is_unavailable_within_the_deadline(
    adapter: RestAdapter, police: PoliceRestServer
) -> None:
    police.faults.delay_s = 1.0
    with pytest.raises(SystemUnavailable, match="deadline"):
        await adapter.fetch(Person(bsn="111222333"), FIELDS, deadline_s=0.2)


async def test_a_5xx_makes_the_system_or_just_its_fields_unavailable(
    adapter: RestAdapter, police: PoliceRestServer
) -> None:
    police.faults.status = 503
    with pytest.raises(SystemUnavailable, match="503"):
        await adapter.fetch(Person(bsn="111222333"), FIELDS, deadline_s=5)
    police.faults.only = ("incidents",)  # one request of the answer fails, the rest answers
    found = await adapter.fetch(Person(bsn="111222333"), FIELDS, deadline_s=5)
    assert found.unavailable == {"police.incidents"}
    assert "police.incidents" not in found.values
    assert found.values["police.weapon_flag"].startswith("yes: knife")


async def test_a_malformed_answer_makes_the_system_unavailable(
    adapter: RestAdapter, police: PoliceRestServer
) -> None:
    police.faults.malformed = True
    with pytest.raises(SystemUnavailable, match="not JSON"):
        await adapter.fetch(Person(bsn="111222333"), FIELDS, deadline_s=5)


async def test_a_value_that_does_not_convert_makes_only_that_field_unavailable(
    adapter: RestAdapter, police: PoliceRestServer
) -> None:
    police.add(PoliceRecord(
        id="P-17", role="suspect", name="Jan de Vries", birth_date="1985-03-04",
        bsn="111222333", antecedents="none",
        raw={"warnings": {"weapon": ["yes", "no"]},            # two values where one is due
             "neighbourhood_officer": {"team": {"nested": 1}}},  # an object, not text
    ))
    found = await adapter.fetch(Person(bsn="111222333"), FIELDS, deadline_s=5, explain=True)
    assert found.unavailable == {"police.weapon_flag", "police.neighbourhood_officer"}
    assert found.values == {"police.antecedents_summary": "none"}  # no incidents held
    readings = {r.field: r for r in found.readings}
    assert readings["police.weapon_flag"].raw == '["yes", "no"]'
    assert "several values" in readings["police.weapon_flag"].problem
    assert readings["police.antecedents_summary"].value == "none"


async def test_refused_credentials_and_a_refused_connection_are_unavailable(
    tmp_path: Path, police: PoliceRestServer
) -> None:
    wrong = _open(tmp_path, police, token="not-the-token")
    try:
        with pytest.raises(SystemUnavailable, match="credentials"):
            await wrong.fetch(Person(bsn="111222333"), FIELDS, deadline_s=5)
    finally:
        await wrong.close()
    rest = _open(tmp_path / "again", police)
    police.stop()
    try:
        with pytest.raises(SystemUnavailable, match="reached"):
            await rest.lookup(Person(bsn="111222333"), deadline_s=5)
    finally:
        await rest.close()


async def test_basic_authentication_reads_the_password_file(tmp_path: Path) -> None:
    server = PoliceRestServer(token="unused")
    server.http.token = None
    server.http.basic = ("zvh-gateway", "pa55word")
    server.add(JAN)
    mapping = example_mapping(tmp_path, "police-rest.yaml", {"secrets/pw": "pa55word\n"})
    with server:
        rest = open_adapter(mapping, {
            "base_url": server.base_url, "tls": {},
            "auth": {"basic": {"username": "zvh-gateway", "password_file": "secrets/pw"}},
        }, tmp_path)
        try:
            assert await rest.lookup(Person(bsn="111222333"), deadline_s=5) == (True, "suspect")
            (tmp_path / "secrets/pw").write_text("rotated", encoding="utf-8")
            with pytest.raises(SystemUnavailable, match="credentials"):
                await rest.lookup(Person(bsn="111222333"), deadline_s=5)
        finally:
            await rest.close()


def test_the_mapping_check_names_the_place_of_each_problem(tmp_path: Path) -> None:
    text = (EXAMPLES / "police-rest.yaml").read_text(encoding="utf-8")
    text = text.replace("    request: profile\n    path: antecedents.summary",
                        "    request: profil\n    paht: antecedents.summary")
    text = text.replace("/api/v1/persons/{id}\n", "/api/v1/persons/{ident}\n")
    path = tmp_path / "police-rest.yaml"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(MappingError) as caught:
        load_mapping(path, real_catalogue())
    problems = [str(p) for p in caught.value.problems]
    assert any("unknown key 'paht', did you mean 'path'?" in p for p in problems), problems
    assert all(p.startswith(f"{path}:") for p in problems)
    lines = text.splitlines()
    paht = next(i for i, line in enumerate(lines, 1) if "paht:" in line)
    assert any(p.startswith(f"{path}:{paht}:5: unknown key 'paht'") for p in problems)
    text = text.replace("paht:", "path:")
    path.write_text(text, encoding="utf-8")
    with pytest.raises(MappingError) as caught:
        load_mapping(path, real_catalogue())
    messages = " | ".join(str(p) for p in caught.value.problems)
    assert "unknown placeholder {ident}" in messages
    assert "request 'profil' is not declared under requests, did you mean 'profile'?" in messages


async def test_an_answer_larger_than_allowed_is_refused(
    tmp_path: Path, police: PoliceRestServer
) -> None:
    rest = _open(tmp_path, police, max_response_bytes=64)
    try:
        with pytest.raises(SystemUnavailable, match="larger than allowed"):
            await rest.fetch(Person(bsn="111222333"), FIELDS, deadline_s=5)
    finally:
        await rest.close()


async def test_a_next_link_to_another_origin_is_not_followed(
    adapter: RestAdapter, police: PoliceRestServer
) -> None:
    original = police._incidents

    def elsewhere(record: PoliceRecord, request: Any) -> Any:
        reply = original(record, request)
        reply.body["next"] = "http://198.51.100.7/steal?token=1"  # a link off the API's origin
        return reply

    police._incidents = elsewhere  # type: ignore[method-assign]
    found = await adapter.fetch(Person(bsn="111222333"), ["police.incidents",
                                                          "police.weapon_flag"], deadline_s=5)
    assert found.unavailable == {"police.incidents"}
    assert "police.weapon_flag" in found.values


async def test_a_match_not_carrying_the_identifiers_asked_by_is_not_the_person(
    adapter: RestAdapter, police: PoliceRestServer
) -> None:
    police.ignore_search = True  # an API answering its one person whatever is searched for
    with pytest.raises(NotKnown):
        await adapter.fetch(Person(bsn="999999990"), FIELDS, deadline_s=5)
    with pytest.raises(NotKnown):
        await adapter.fetch(Person(name="Piet Jansen", date_of_birth="1985"), FIELDS,
                            deadline_s=5)
    assert "profile" not in police.counts  # nothing was asked about the wrong person
    assert await adapter.lookup(Person(bsn="111222333"), deadline_s=5) == (True, "suspect")


async def test_no_log_line_carries_the_identifiers_a_url_was_built_from(
    adapter: RestAdapter, caplog: pytest.LogCaptureFixture
) -> None:
    # The HTTP stack logs each request's URL at INFO, and the URL holds the BSN or the name:
    # at any log level, none of it may reach a log.
    caplog.set_level(logging.DEBUG)
    await adapter.fetch(Person(bsn="111222333"), FIELDS, deadline_s=5)
    await adapter.fetch(Person(name="Jan de Vries", date_of_birth="1985"), FIELDS, deadline_s=5)
    text = caplog.text
    for identifier in ("111222333", "Jan", "Vries", "1985"):
        assert identifier not in text
