"""Every failure code an outcome can carry is documented for operators."""

from __future__ import annotations

from chalicelib.config import PROJECT_ROOT
from chalicelib.execution import failure_codes


def test_every_code_is_documented() -> None:
    doc = (PROJECT_ROOT / "docs" / "error-codes.md").read_text()
    missing = [e.code for e in failure_codes.ALL if f"`{e.code}`" not in doc]
    assert missing == []


def test_codes_are_unique_and_only_storage_errors_are_retried() -> None:
    codes = [e.code for e in failure_codes.ALL]
    assert len(codes) == len(set(codes))
    assert [e.code for e in failure_codes.ALL if e.retryable] == ["STORAGE_ERROR"]
