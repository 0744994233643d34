"""What goes wrong around ``sweep`` (a malformed URL, an unwritable file, a file that is not
UTF-8, a server that is not the API) ends it with one ``error:`` line and exit status 1, the
command's documented answer, never a Python traceback; the client raises ``ApiError``."""

from __future__ import annotations

import pytest
from click.testing import CliRunner, Result

from chalicelib.config import PROJECT_ROOT
from sweeps import cli

EXAMPLE = str(PROJECT_ROOT / "examples" / "option-pricing.json")


def sweep(*args: str, env: dict[str, str] | None = None, stdin: str | None = None) -> Result:
    return CliRunner().invoke(cli.main, list(args), env=env, input=stdin)


def assert_error_line(answer: Result, *words: str) -> None:
    """Exit status 1, no traceback (the runner caught no exception), stderr's first line an
    ``error:`` naming ``words``."""
    assert answer.exception is None or isinstance(answer.exception, SystemExit), answer.exception
    assert answer.exit_code == 1, answer.output
    first = answer.stderr.splitlines()[0]
    assert first.startswith("error: "), answer.stderr
    for word in words:
        assert word in first, first
    assert "Traceback" not in answer.output


@pytest.mark.parametrize(
    ("args", "env"),
    [
        (["--api", "http://[::1", "simulations"], None),
        (["runs"], {"SWEEP_API_URL": "http://[::1"}),
        (["estimate", EXAMPLE], {"SWEEP_API_URL": "https://[::1"}),
        (["--api", "ftp://example.com", "simulations"], None),
    ],
)
def test_a_malformed_api_url_is_an_error_line(args: list[str], env: dict[str, str] | None) -> None:
    assert_error_line(sweep(*args, env=env), "bad_api_url", "URL")
