"""What goes wrong around ``sweep`` (a malformed URL, an unwritable file, a file that is not
UTF-8, a server that is not the API) ends it with one ``error:`` line and exit status 1, the
command's documented answer, never a Python traceback; the client raises ``ApiError``."""

from __future__ import annotations

import functools
import threading
from collections.abc import Iterator
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner, Result

from chalicelib.config import PROJECT_ROOT
from sweeps import ApiError, Client, cli

EXAMPLE = str(PROJECT_ROOT / "examples" / "option-pricing.json")


def sweep(
    *args: str, env: dict[str, str] | None = None, stdin: str | bytes | None = None
) -> Result:
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


LATIN1 = b'{"simulation": "option_pricing", "label": "\xe9t\xe9", "shards": {"count": 1}}'


@pytest.mark.parametrize("command", ["submit", "estimate"])
def test_a_request_file_that_is_not_utf8_is_a_usage_error(tmp_path: Path, command: str) -> None:
    """Not UTF-8 is not JSON: the usage error (exit 2) a file that is not JSON gets, before
    anything is sent (nothing answers on the API)."""
    request = tmp_path / "latin1.json"
    request.write_bytes(LATIN1)
    answer = sweep("--api", "http://127.0.0.1:9", command, str(request))
    assert answer.exit_code == 2 and isinstance(answer.exception, SystemExit), answer.exception
    assert "Invalid value for FILE: not JSON: not UTF-8 text" in answer.stderr
    from_stdin = sweep("--api", "http://127.0.0.1:9", command, "-", stdin=LATIN1)
    assert from_stdin.exit_code == 2, from_stdin.exception
    assert "not UTF-8 text" in from_stdin.stderr


def test_the_client_reports_a_file_that_is_not_utf8_as_an_api_error(tmp_path: Path) -> None:
    request = tmp_path / "latin1.json"
    request.write_bytes(LATIN1)
    for given in (request, str(request)):
        with pytest.raises(ApiError) as refused:
            Client("http://127.0.0.1:9").submit(given)
        assert (refused.value.status, refused.value.code) == (None, "invalid_request")
        assert refused.value.problems[0]["message"].startswith("not UTF-8: ")


class QuietHandler(SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:
        """Not on stderr, which the runner captures as the command's."""


@pytest.fixture
def web_server(tmp_path: Path) -> Iterator[str]:
    """An ordinary web server (the standard library's) over a folder holding a page named
    ``simulations`` and a folder ``sweeps``: every answer a 200 of HTML."""
    (tmp_path / "simulations").write_text("<html>hello</html>\n")
    (tmp_path / "sweeps").mkdir()
    handler = functools.partial(QuietHandler, directory=str(tmp_path))
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


@pytest.mark.parametrize("command", ["simulations", "runs"])
def test_an_api_url_that_answers_200_without_json_is_an_error_line(
    web_server: str, command: str
) -> None:
    assert_error_line(sweep("--api", web_server, command), "HTTP 200 not_the_api", "JSON object")


def test_estimating_a_reusing_request_without_the_default_data_root_is_an_error(
    tmp_path: Path,
) -> None:
    """As ``sweep query`` says, not 0 reusable points: the local stage's reuse index is in
    the data root, and the default one (here SWEEP_LOCAL_ROOT) is not there."""
    missing = tmp_path / "no-such-root"
    wider = str(PROJECT_ROOT / "examples" / "option-pricing-wider.json")
    answer = sweep(
        "--api", "http://127.0.0.1:9", "estimate", wider, env={"SWEEP_LOCAL_ROOT": str(missing)}
    )
    assert_error_line(answer, f"no local data root at {missing}", "--root")
