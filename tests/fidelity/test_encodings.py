"""The corpus' stored bytes are what each stack's JSON writer produces, and the corpus covers
what it promises (sources, APIs, operations, outcomes).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from tests.fidelity.corpus import Row, load_rows
from tests.fidelity.encoders import encode

ROWS = load_rows()
ENCODED = [row for row in ROWS if row.encoder is not None]


@pytest.mark.parametrize("row", ENCODED, ids=[row.id for row in ENCODED])
def test_body_is_what_its_stack_writes(row: Row) -> None:
    """Parsing a row's body and writing it again in its stack's style gives the same bytes."""
    assert row.encoder is not None
    assert encode(row.encoder, json.loads(row.body)) == row.body, row.describe()


STYLE_CASES = [
    ("php", {"u": "https://a.no/b", "n": "blå"}, rb'{"u":"https:\/\/a.no\/b","n":"bl\u00e5"}'),
    ("php", {"v": 49900.0}, b'{"v":49900}'),
    ("newtonsoft", {"v": 49900.0, "n": "blå"}, '{"v":49900.0,"n":"blå"}'.encode()),
    ("system-text-json", {"n": "blå+<&'\""}, rb'{"n":"bl\u00E5\u002B\u003C\u0026\u0027\u0022"}'),
    ("python", {"a": 1, "n": "blå"}, rb'{"a": 1, "n": "bl\u00e5"}'),
    ("go", {"u": "https://a.no/?x=1&y=<2>"}, rb'{"u":"https://a.no/?x=1\u0026y=\u003c2\u003e"}'),
    ("js", {"v": 49900.0, "n": "blå"}, '{"v":49900,"n":"blå"}'.encode()),
]


@pytest.mark.parametrize(("style", "value", "expected"), STYLE_CASES)
def test_encoder_styles(style: str, value: Any, expected: bytes) -> None:
    """Each style writes the escapes and number forms of its stack."""
    assert encode(style, value) == expected


def test_unknown_style_is_refused() -> None:
    """A row naming an encoder the corpus does not know is an error, not a silent pass."""
    with pytest.raises(ValueError, match="unknown encoder style"):
        encode("cobol", {})


def test_corpus_covers_what_it_promises() -> None:
    """At least 60 rows from at least 8 integrations in several languages, every outcome kind,
    and the operations the corpus is for."""
    assert len(ROWS) >= 60
    assert len({row.source.repo for row in ROWS}) >= 8
    assert len({row.source.language for row in ROWS}) >= 5
    assert {row.expect for row in ROWS} == {"forward", "block", "repair"}
    operations = {(row.api, row.operation) for row in ROWS}
    for needed in [
        ("access_token", "fetch_access_token"),
        ("epayment", "create_payment"), ("epayment", "capture_payment"),
        ("epayment", "refund_payment"), ("epayment", "cancel_payment"),
        ("epayment", "get_payment"),
        ("ecom", "initiate_payment"), ("ecom", "capture_payment"), ("ecom", "refund_payment"),
        ("ecom", "cancel_payment"), ("ecom", "get_payment_details"),
        ("recurring", "draft_agreement"), ("recurring", "create_charge"),
        ("recurring", "capture_charge"),
        ("checkout", "create_session"), ("order_management", "add_receipt"),
    ]:  # fmt: skip
        assert needed in operations, needed


def test_sources_are_documented() -> None:
    """SOURCES.md names every source commit, every row, and the evidence of every block row."""
    text = (Path(__file__).parent / "SOURCES.md").read_text(encoding="utf-8")
    for row in ROWS:
        assert f"`{row.id}`" in text, row.id
        assert row.source.commit in text, row.source.repo
        if row.expect == "block":
            assert row.evidence is not None
            assert row.evidence in text, row.id


def test_readme_states_the_corpus_as_it_is() -> None:
    """The README's figures for the corpus are the corpus' own counts."""
    readme = (Path(__file__).parents[2] / "README.md").read_text(encoding="utf-8")
    repos = {row.source.repo for row in ROWS}
    assert f"holds {len(ROWS)} requests rebuilt from {len(repos)} public integrations" in readme
    for outcome in ("forward", "block", "repair"):
        count = sum(row.expect == outcome for row in ROWS)
        assert f"{count} `{outcome}`" in readme, outcome
