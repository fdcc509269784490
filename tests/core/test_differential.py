"""Differential tests: the Rust core against the pure-Python reference
(`tests/mapping_reference.py`, orjson + csv) on generated records."""

from __future__ import annotations

import contextlib
import json
from typing import Any

import orjson
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from mapping_reference import ReferenceMapping, canonical_headers
from pushstream import Mapping, Record

keys = st.text(st.characters(blacklist_characters=".[]", blacklist_categories=("Cs",)), min_size=1, max_size=8)
scalars = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**63), max_value=2**64 - 1)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(st.characters(blacklist_categories=("Cs",)), max_size=20)
)
documents = st.recursive(
    scalars, lambda inner: st.lists(inner, max_size=4) | st.dictionaries(keys, inner, max_size=5), max_leaves=25
)
header_names = st.text(st.sampled_from("abcXYZ-_0"), min_size=1, max_size=10)
header_values = st.text(st.characters(min_codepoint=32, max_codepoint=126), max_size=20)


def paths_of(doc: Any, prefix: str = "") -> list[str]:
    """Every path that exists in `doc`, in Keboola syntax."""
    found = []
    if isinstance(doc, dict):
        for k, v in doc.items():
            p = f"{prefix}.{k}" if prefix else k
            found += [p, *paths_of(v, p)]
    elif isinstance(doc, list) and prefix:
        for i, v in enumerate(doc):
            p = f"{prefix}[{i}]"
            found += [p, *paths_of(v, p)]
    return found


@st.composite
def cases(draw: st.DrawFn) -> tuple[list[dict[str, Any]], bytes, dict[str, str], str, int]:
    doc = draw(st.dictionaries(keys, documents, min_size=1, max_size=6))
    existing = paths_of(doc)
    columns: list[dict[str, Any]] = [
        {"type": "datetime", "name": "dt"},
        {"type": "ip", "name": "ip"},
        {"type": "body", "name": "body"},
        {"type": "headers", "name": "headers"},
    ]
    for i in range(draw(st.integers(1, 4))):
        column: dict[str, Any] = {"type": "path", "name": f"p{i}", "path": draw(st.sampled_from(existing))}
        if draw(st.booleans()):
            column["rawString"] = True
        if draw(st.booleans()):
            column["path"] = column["path"] + ".zz-missing"
            column["defaultValue"] = draw(st.text(max_size=5))
        columns.append(column)
    headers = draw(st.dictionaries(header_names, header_values, max_size=4))
    headers["Content-Type"] = "application/json"
    body = orjson.dumps(doc) if draw(st.booleans()) else json.dumps(doc, ensure_ascii=False, indent=1).encode()
    ip = draw(st.sampled_from(["10.0.0.1", "::1", "2001:db8::7"]))
    received_at_ns = draw(st.integers(0, 4_102_444_800_000_000_000))
    return columns, body, headers, ip, received_at_ns


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(cases())
def test_rows_match_the_reference(case: tuple[list[dict[str, Any]], bytes, dict[str, str], str, int]) -> None:
    columns, body, headers, ip, received_at_ns = case
    record = Record(body, headers, ip, received_at_ns)
    assert Mapping(columns).map(record) == ReferenceMapping(columns).map(body, headers, ip, received_at_ns)


@settings(max_examples=100, deadline=None)
@given(st.lists(cases(), min_size=1, max_size=5))
def test_csv_batches_match_the_reference(
    batch: list[tuple[list[dict[str, Any]], bytes, dict[str, str], str, int]],
) -> None:
    columns = batch[0][0]
    # Use the first case's columns for all records; records missing a path fail in both.
    records = [(body, headers, ip, at) for _, body, headers, ip, at in batch]
    reference = ReferenceMapping(columns)
    expected = b""
    for rec in records:
        with contextlib.suppress(KeyError):  # the reference raises where the core reports a failed record
            expected += reference.encode_batch([rec])
    encoded = Mapping(columns).encode_batch([Record(*rec) for rec in records])
    assert encoded.csv == expected
    assert encoded.rows + len(encoded.errors) == len(records)


@given(st.lists(st.tuples(header_names, header_values), max_size=6))
def test_header_canonicalisation_matches(headers: list[tuple[str, str]]) -> None:
    record = Record(b"", headers, "", 0)
    assert dict(record.headers) == canonical_headers(headers)


@given(st.floats(allow_nan=False, allow_infinity=False))
def test_float_formatting_matches_orjson(value: float) -> None:
    body = orjson.dumps({"v": value})
    assert Mapping([{"type": "path", "name": "v", "path": "v"}]).map(
        Record(body, {"Content-Type": "application/json"})
    ) == [orjson.dumps(value).decode()]
