"""`ketenpoort policy matrix`: the disclosure matrix as Markdown and as a printable page."""

from __future__ import annotations

from html.parser import HTMLParser
from pathlib import Path

import pytest

from gateway.cli.main import main
from gateway.server.config import shipped_policy_dir
from tests.cli.policy_samples import edit, write_policy

VOID = {"meta", "br", "hr", "img", "link", "input"}


@pytest.fixture
def policy(tmp_path: Path) -> Path:
    return write_policy(tmp_path / "policy")


def _matrix(capsys: pytest.CaptureFixture[str], policy: Path, *argv: str) -> tuple[int, str, str]:
    status = main(["policy", "matrix", str(policy), *argv])
    captured = capsys.readouterr()
    return status, captured.out, captured.err


def _table(markdown: str) -> list[str]:
    return [line for line in markdown.splitlines() if line.startswith("|")]


def test_markdown_rows_are_fields_by_category_and_columns_partner_types(
    policy: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    status, out, _ = _matrix(capsys, policy, "--purpose", "analysis_and_plan", "--phase", "plan",
                             "--format", "md")
    assert status == 0
    assert out.startswith("# Disclosure matrix: purpose analysis_and_plan, phase plan\n")
    assert "Policy version `sha256:" in out
    assert "- **avg-9-2-g** AVG art. 9(2)(g) with UAVG art. 30 - substantial public interest" in out
    assert "- police: wpg-19\n- ggz: avg-9-2-g\n- zvh: avg-9-2-g\n" in out
    assert _table(out) == [
        "| Field | police | ggz | zvh |",
        "|---|---|---|---|",
        "| **identifying** | | | |",
        "| subject.name | chain_partner M:initials · case_director D | D | D |",
        "| subject.bsn | M:pseudonym | D | D |",
        "| **case_file** | | | |",
        "| case.reason | D | D | D |",
        "| case.notes | M:truncate(length=280) | D | D |",
        "| **health** (art. 9) | | | |",
        "| ggz.diagnosis | W | D | M:presence |",
        "| **justice** (art. 10) | | | |",
        "| justice.convictions | W | W | W |",
        "| **index** | | | |",
        "| triage.role | W | W | W |",
    ]


def test_with_a_role_partner_types_without_it_are_not_applicable(
    policy: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    status, out, _ = _matrix(capsys, policy, "--purpose", "analysis_and_plan", "--phase",
                             "case_meeting", "--role", "chain_partner")
    assert status == 0
    rows = _table(out)
    assert "| subject.name | M:initials | D | — |" in rows
    assert "| ggz.diagnosis | W | D | — |" in rows


def test_a_role_no_partner_type_of_the_purpose_holds_is_refused(
    policy: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    edit(policy, "purposes.yaml", "    partner_types: [police, zvh]\n",
         "    partner_types: [police]\n")
    status, out, err = _matrix(capsys, policy, "--purpose", "acute_safety", "--phase",
                               "registration", "--role", "process_director")
    assert (status, out) == (2, "")
    assert ("no partner type of purpose 'acute_safety' acts in role 'process_director'; "
            "its roles are chain_partner, case_director" in err)
    status, _, err = _matrix(capsys, policy, "--purpose", "triage", "--phase", "triage",
                             "--role", "case_director")
    assert status == 0, err


def test_partner_types_closed_to_the_purpose_are_named(
    policy: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    status, out, _ = _matrix(capsys, policy, "--purpose", "acute_safety", "--phase",
                             "registration")
    assert status == 0
    assert "Not open to: ggz." in out
    assert _table(out)[0] == "| Field | police | zvh |"


def test_a_field_special_on_its_own_is_marked(
    policy: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    edit(policy, "catalogue.yaml", "    description: Working notes.\n",
         "    description: Working notes.\n    special: art9\n")
    edit(policy, "rules/rules.yaml", "    categories: [case_file]\n",
         "    fields: [case.reason]\n")
    edit(policy, "rules/rules.yaml", "    fields: [case.notes]\n    effect: mask\n"
         "    transform: truncate\n    params: {length: 280}\n",
         "    fields: [case.notes]\n    effect: withhold\n")
    status, out, err = _matrix(capsys, policy, "--purpose", "analysis_and_plan", "--phase",
                               "plan")
    assert status == 0, err
    assert "| case.notes (art. 9) | W | W | W |" in _table(out)


class _Page(HTMLParser):
    """Collects tags, checks that they nest, and keeps the text."""

    def __init__(self) -> None:
        super().__init__()
        self.tags: list[tuple[str, dict[str, str | None]]] = []
        self.open: list[str] = []
        self.text: list[str] = []
        self.errors: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append((tag, dict(attrs)))
        if tag not in VOID:
            self.open.append(tag)

    def handle_endtag(self, tag: str) -> None:
        if not self.open or self.open[-1] != tag:
            self.errors.append(f"</{tag}> closes {self.open[-1:]}")
            return
        self.open.pop()

    def handle_data(self, data: str) -> None:
        self.text.append(data)


def _page(html: str) -> _Page:
    page = _Page()
    page.feed(html)
    page.close()
    assert page.errors == [] and page.open == []
    return page


def test_the_html_page_is_self_contained_printable_and_escaped(
    policy: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    edit(policy, "catalogue.yaml", "    description: Working notes.\n",
         "    description: \"Notes <script>alert('x')</script> & more\"\n")
    edit(policy, "catalogue.yaml", "    title: Wpg art. 19 - police data\n",
         "    title: Wpg art. 19 <b>police</b> data\n")
    out_file = tmp_path / "matrix.html"
    status, out, _ = _matrix(capsys, policy, "--purpose", "analysis_and_plan", "--phase", "plan",
                             "-o", str(out_file))
    assert status == 0
    assert out == f"matrix written to {out_file}\n"
    html = out_file.read_text(encoding="utf-8")
    page = _page(html)
    tags = [tag for tag, _ in page.tags]
    assert "script" not in tags and "link" not in tags and "img" not in tags
    assert not any("src" in attrs or "href" in attrs for _, attrs in page.tags)
    assert "url(" not in html and "@import" not in html and "http://" not in html.split(
        "<body>")[0]
    assert "&lt;script&gt;alert(&#x27;x&#x27;)&lt;/script&gt; &amp; more" in html
    assert "Wpg art. 19 &lt;b&gt;police&lt;/b&gt; data" in html
    text = "".join(page.text)
    assert "Disclosure matrix: purpose analysis_and_plan, phase plan" in text
    assert "sha256:" in text
    assert "AVG art. 9(2)(g)" in text
    # Print: landscape, the header row on every page, colours kept.
    assert "size: A4 landscape" in html
    assert "display: table-header-group" in html
    assert "print-color-adjust: exact" in html


def test_the_html_legend_and_cells_read_without_colour(
    policy: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out_file = tmp_path / "matrix.html"
    assert main(["policy", "matrix", str(policy), "--purpose", "analysis_and_plan", "--phase",
                 "case_meeting", "--role", "chain_partner", "--format", "html",
                 "-o", str(out_file)]) == 0
    page = _page(out_file.read_text(encoding="utf-8"))
    legend = [attrs.get("class") for tag, attrs in page.tags if tag == "td"][:4]
    assert legend == ["disclose", "mask", "withhold", "not_applicable"]
    text = "".join(page.text)
    for symbol, meaning in (("●", "disclosed"), ("◐", "masked"), ("○", "withheld"),
                            ("—", "not applicable")):
        assert f"{symbol}" in text and meaning in text
    cells = [attrs.get("class") for tag, attrs in page.tags if tag == "td"][4:]
    assert cells.count("not_applicable") == 7  # zvh has no chain partner: a dash per field
    assert "◐ M:initials" in text


def test_roles_that_differ_are_shown_per_role_in_html(
    policy: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    status, out, _ = _matrix(capsys, policy, "--purpose", "analysis_and_plan", "--phase", "plan",
                             "--format", "html")
    assert status == 0
    assert ('<td class="mixed"><span class="o mask"><span class="s">◐</span> '
            '<span class="r">chain_partner</span> M:initials</span>') in out


def test_a_phase_outside_the_purpose_and_unknown_ids_are_refused(
    policy: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    status, _, err = _matrix(capsys, policy, "--purpose", "triage", "--phase", "plan")
    assert status == 1
    assert "purpose 'triage' does not apply in phase 'plan'; its phases are triage" in err
    status, _, err = _matrix(capsys, policy, "--purpose", "triag", "--phase", "plan")
    assert status == 2
    assert "did you mean 'triage'?" in err


def test_matrix_on_the_shipped_policies(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out_file = tmp_path / "shipped.html"
    status, _, err = _matrix(capsys, shipped_policy_dir(), "--purpose", "analysis_and_plan",
                             "--phase", "case_meeting", "-o", str(out_file))
    assert status == 0, err
    page = _page(out_file.read_text(encoding="utf-8"))
    assert any(tag == "td" for tag, _ in page.tags)


# ---- approaches and person roles ------------------------------------------------------------

def test_the_matrix_of_an_approach_shows_its_table_only(
    capsys: pytest.CaptureFixture[str]
) -> None:
    status, out, _ = _matrix(capsys, shipped_policy_dir(), "--purpose", "analysis_and_plan",
                             "--phase", "case_meeting", "--approach", "code_rood")
    assert status == 0
    assert out.startswith("# Disclosure matrix: purpose analysis_and_plan, phase case_meeting, "
                          "approach code_rood\n")
    header = _table(out)[0]
    assert "housing_corporation" not in header and "| police |" in header
    assert "Not on the table of approach code_rood: dji, housing_corporation" in out
    assert "- ggz: wpg-20, wjsg-39f, avg-10-uavg, avg-9-2-h, meldcode-veilig-thuis\n" in out
    debts = next(line for line in _table(out) if line.startswith("| mun.debts |"))
    assert set(debts.split(" | ")[1:-1]) <= {"W", "process_director W · privacy_officer W"}


def test_the_matrix_for_a_person_role(capsys: pytest.CaptureFixture[str]) -> None:
    args = ("--purpose", "analysis_and_plan", "--phase", "case_meeting")
    _, case_level, _ = _matrix(capsys, shipped_policy_dir(), *args)
    status, child, _ = _matrix(capsys, shipped_policy_dir(), *args, "--person-role", "child")
    assert status == 0
    assert "person role child" in child.splitlines()[0]
    header = _table(child)[0].split(" | ")
    housing = header.index("housing_corporation")

    def name_row(text: str) -> list[str]:
        return next(line for line in _table(text) if line.startswith("| subject.name |")
                    ).split(" | ")

    assert name_row(case_level)[housing] == "D"
    assert name_row(child)[housing] == "W"


def test_the_matrix_refuses_unknown_approaches_and_unused_purposes(
    capsys: pytest.CaptureFixture[str]
) -> None:
    status, _, err = _matrix(capsys, shipped_policy_dir(), "--purpose", "analysis_and_plan",
                             "--phase", "case_meeting", "--approach", "code_blauw")
    assert status == 2 and "approach 'code_blauw'" in err
    status, _, err = _matrix(capsys, shipped_policy_dir(), "--purpose", "acute_safety",
                             "--phase", "triage", "--approach", "mensenhandel")
    assert status == 1 and "approach 'mensenhandel' does not use purpose 'acute_safety'" in err
    status, _, err = _matrix(capsys, shipped_policy_dir(), "--purpose", "analysis_and_plan",
                             "--phase", "case_meeting", "--person-role", "uncle")
    assert status == 2 and "person role 'uncle'" in err
