"""Arrow arrays from numpy buffers: the same arrays ``pa.array`` would build from the same Python values."""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pytest

from naia_backfill.connectors import pi_web_api_arrow as arrow


@pytest.mark.parametrize("n", [0, 1, 7, 8, 9, 1000])
@pytest.mark.parametrize("value", [True, False])
def test_flag_with_and_without_exceptions(n, value):
    rows = [i for i in range(n) if i % 3 == 1]
    for at in ([], rows):
        expected = [value if i in at else not value for i in range(n)]
        got = arrow.flag(n, at, value)
        got.validate(full=True)
        assert got.to_pylist() == expected and got.null_count == 0


def test_fixed_with_nulls():
    got = arrow.fixed(np.array([1.5, 0.0, -2.0]), np.array([True, False, True]), pa.float64())
    assert got.to_pylist() == [1.5, None, -2.0]


@pytest.mark.parametrize("texts", [[], ["a"], ["2024-01-01T00:00:00Z", "x", ""], ["Überlauf", "状态", "ok"]])
def test_strings(texts):
    got = arrow.strings(texts)
    got.validate(full=True)
    assert got.type == pa.string() and got.to_pylist() == texts


def test_sparse_strings_put_texts_at_their_rows():
    got = arrow.sparse_strings(6, [1, 2, 5], ["a", "", "状态"])
    got.validate(full=True)
    assert got.to_pylist() == [None, "a", "", None, None, "状态"]
    assert arrow.sparse_strings(3, [], []).to_pylist() == [None, None, None]


def test_repeated_names_a_page_stream_by_stream():
    got = arrow.repeated(["A", "Bé", "C"], np.array([2, 0, 3]))
    got.validate(full=True)
    assert got.to_pylist() == ["A", "A", "C", "C", "C"]
    assert arrow.repeated(["A"], np.array([0])).to_pylist() == []


def test_indices_for_take():
    assert pa.array(["a", "b", "c"]).take(arrow.indices([2, 0])).to_pylist() == ["c", "a"]
