"""Every failure code an outcome can carry is documented for operators."""

from __future__ import annotations

from chalicelib.config import PROJECT_ROOT
from chalicelib.execution.failure_codes import FailureCode


def test_every_code_is_documented() -> None:
    doc = (PROJECT_ROOT / "docs" / "failure-codes.md").read_text()
    missing = [e.code for e in FailureCode if f"`{e.code}`" not in doc]
    assert missing == []


def test_codes_are_their_names_and_only_storage_errors_are_retried() -> None:
    assert [e.code for e in FailureCode] == [e.name for e in FailureCode]
    assert len(FailureCode) == 11
    assert [e.code for e in FailureCode if e.retryable] == ["STORAGE_ERROR"]
