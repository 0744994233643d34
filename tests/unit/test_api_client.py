"""The client's HTTP side without a server: which URLs are signed, and that a signed request's
headers are exactly what botocore's own SigV4 signer gives for the same credentials and time."""

from __future__ import annotations

import datetime
import json
from typing import Any

import pytest
import requests
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials

from sweeps import api
from sweeps.api import Api, Signer
from sweeps.errors import ApiError

DEPLOYED = "https://abc123defg.execute-api.eu-west-3.amazonaws.com/api"
FIXED = datetime.datetime(2026, 11, 26, 12, 30, 45)
CREDS = Credentials("AKIDEXAMPLE", "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY", "session-token")


class Recorded(requests.Session):
    """A session that records the request it is asked to send and answers it."""

    def __init__(self, status: int = 200, body: Any = None) -> None:
        super().__init__()
        self.sent: list[dict[str, Any]] = []
        self.status, self.body = status, body if body is not None else {"ok": True}

    def request(self, method: str | bytes, url: str | bytes, *args: Any, **kw: Any) -> Any:
        self.sent.append({"method": method, "url": url, **kw})
        response = requests.Response()
        response.status_code = self.status
        response._content = json.dumps(self.body).encode()
        response.url = str(url)
        return response


@pytest.fixture
def fixed_time(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("botocore.auth.get_current_datetime", lambda: FIXED)


@pytest.mark.parametrize(
    ("url", "local"),
    [
        ("http://127.0.0.1:8000", True),
        ("http://localhost:8000", True),
        ("https://localhost:8443", True),
        ("https://[::1]:8443", True),
        ("http://example.com", True),  # plain http is never signed: credentials stay off it
        (DEPLOYED, False),
        ("https://sweeps.example.com", False),
    ],
)
def test_what_gets_signed(url: str, local: bool) -> None:
    assert api.is_local(url) is local


def test_region_from_an_execute_api_url() -> None:
    assert api.region_of(DEPLOYED) == "eu-west-3"
    assert api.region_of("https://sweeps.example.com") is None


@pytest.mark.usefixtures("fixed_time")
@pytest.mark.parametrize(("method", "body"), [("GET", None), ("POST", {"simulation": "x"})])
def test_signed_headers_equal_botocores_own(method: str, body: dict[str, Any] | None) -> None:
    session = Recorded()
    client = Api(DEPLOYED, signer=Signer("eu-west-3", CREDS), session=session)
    client.call(method, "/sweeps/20261126T000000000Z-000000000000?limit=5", body)
    (sent,) = session.sent
    data = None if body is None else json.dumps(body).encode()
    assert sent["data"] == data

    reference = AWSRequest(method=method, url=sent["url"], data=data or b"")
    reference.headers["Accept"] = "application/json"
    if data is not None:
        reference.headers["Content-Type"] = "application/json"
    SigV4Auth(CREDS, "execute-api", "eu-west-3").add_auth(reference)
    expected = dict(reference.headers.items())

    assert sent["headers"] == expected
    assert sent["headers"]["X-Amz-Date"] == "20261126T123045Z"
    assert sent["headers"]["X-Amz-Security-Token"] == "session-token"
    authorization = sent["headers"]["Authorization"]
    assert authorization.startswith(
        "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20261126/eu-west-3/execute-api/aws4_request, "
    )


@pytest.mark.usefixtures("fixed_time")
def test_signature_changes_with_the_body() -> None:
    signer = Signer("eu-west-3", CREDS)
    one = signer.headers("POST", DEPLOYED + "/sweeps", b"{}", {})["Authorization"]
    two = signer.headers("POST", DEPLOYED + "/sweeps", b'{"a":1}', {})["Authorization"]
    assert one != two


@pytest.mark.usefixtures("fixed_time")
def test_the_region_and_credentials_come_from_the_chain(monkeypatch: pytest.MonkeyPatch) -> None:
    """conftest sets fake credentials and us-east-1 in the environment, as the chain reads."""
    session = Recorded()
    Api("https://sweeps.example.com", session=session).get("/simulations")
    headers = session.sent[0]["headers"]
    assert "/us-east-1/execute-api/aws4_request" in headers["Authorization"]
    assert "Credential=testing/" in headers["Authorization"]
    # The region in an execute-api URL wins over the configured one.
    session = Recorded()
    Api(DEPLOYED, session=session).get("/simulations")
    assert "/eu-west-3/execute-api/" in session.sent[0]["headers"]["Authorization"]


def test_local_requests_are_not_signed() -> None:
    session = Recorded()
    Api("http://127.0.0.1:8000", session=session).get("/simulations")
    assert "Authorization" not in session.sent[0]["headers"]


def test_no_credentials_is_an_api_error(monkeypatch: pytest.MonkeyPatch, tmp_path: Any) -> None:
    for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "none"))
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "none"))
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    with pytest.raises(ApiError, match="no AWS credentials"):
        Api(DEPLOYED, session=Recorded()).get("/simulations")


def test_the_contracts_error_body_becomes_problems() -> None:
    body = {
        "error": "invalid_request",
        "message": "the request is invalid",
        "problems": [
            {"path": "/shards/count", "message": "must be >= 1"},
            {"path": "/seed", "message": "must be an integer"},
        ],
    }
    with pytest.raises(ApiError) as caught:
        Api("http://127.0.0.1:8000", session=Recorded(400, body)).post("/sweeps", {})
    assert caught.value.lines() == [
        "HTTP 400 invalid_request: the request is invalid",
        "/shards/count: must be >= 1",
        "/seed: must be an integer",
    ]


def test_an_answer_without_the_contracts_body_still_names_status_route_and_message() -> None:
    """API Gateway's own errors (auth 403, throttling 429) are not the app's JSON."""
    with pytest.raises(ApiError) as caught:
        Api("http://127.0.0.1:8000", session=Recorded(403, {"message": "Forbidden"})).get("/sweeps")
    assert (caught.value.status, caught.value.code) == (403, "http_error")
    assert "GET /sweeps: Forbidden" in caught.value.lines()[0]
