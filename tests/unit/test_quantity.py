"""Quantities as the API server accepts them, so a valid size never crashes a step."""

from __future__ import annotations

import pytest

from bosun.errors import PermanentError
from bosun.operations.database_ctx import quantity


@pytest.mark.parametrize(
    ("text", "value"),
    [("1T", 1e12), ("500m", 0.5), ("1e3", 1000.0), ("10Gi", 10 * 2**30), ("2", 2.0), ("1Pi", 2**50), ("3E", 3e18)],
)
def test_every_suffix_the_api_server_accepts(text: str, value: float) -> None:
    assert quantity(text) == value


@pytest.mark.parametrize("text", ["lots", "1 GB", "", "Gi"])
def test_a_non_quantity_is_a_clear_permanent_error(text: str) -> None:
    with pytest.raises(PermanentError, match="not a Kubernetes quantity"):
        quantity(text)
