"""The HTTP API as the client sees it: JSON in and out, the contract's error body
turned into ``ApiError``, and SigV4 signing for deployed stages.

Deployed stages require IAM auth on every route and the local stage none, so a request is
signed exactly when it leaves the machine: an ``https`` URL whose host is not a loopback name.
Signing uses botocore's own ``SigV4Auth`` with the standard credential chain, so what works for
the AWS CLI works here (profiles, SSO, instance roles, environment variables).
"""

from __future__ import annotations

import ipaddress
import json
import os
import re
from typing import Any
from urllib.parse import urlsplit

import requests

from sweeps.errors import ApiError

DEFAULT_API = "http://127.0.0.1:8000"
API_ENV = "SWEEP_API_URL"
# <api-id>.execute-api.<region>.amazonaws.com[.cn]
_EXECUTE_API_HOST = re.compile(r"\.execute-api\.([a-z0-9-]+)\.amazonaws\.com(\.cn)?$")
_LOOPBACK_NAMES = {"localhost", "localhost.localdomain"}


def is_local(url: str) -> bool:
    """A loopback host (the local stage) or plain http: never signed."""
    parts = urlsplit(url)
    host = (parts.hostname or "").lower()
    if parts.scheme != "https" or host in _LOOPBACK_NAMES:
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def region_of(url: str) -> str | None:
    """The region an execute-api URL names; None for a custom domain."""
    match = _EXECUTE_API_HOST.search((urlsplit(url).hostname or "").lower())
    return match.group(1) if match else None


class Signer:
    """SigV4 for API Gateway (service ``execute-api``), credentials from botocore's chain."""

    def __init__(self, region: str | None = None, credentials: Any = None) -> None:
        import botocore.session

        session = botocore.session.Session()
        self.credentials = credentials or session.get_credentials()
        self.region = region or session.get_config_variable("region")
        if self.credentials is None:
            raise ApiError(None, "no_credentials", "no AWS credentials found to sign with")
        if not self.region:
            raise ApiError(None, "no_region", "no region: use an execute-api URL or set AWS_REGION")

    def headers(
        self, method: str, url: str, body: bytes | None, headers: dict[str, str]
    ) -> dict[str, str]:
        """The headers to send: the given ones plus X-Amz-Date, the token and Authorization."""
        from botocore.auth import SigV4Auth
        from botocore.awsrequest import AWSRequest

        request = AWSRequest(method=method, url=url, data=body or b"", headers=dict(headers))
        SigV4Auth(self.credentials.get_frozen_credentials(), "execute-api", self.region).add_auth(
            request
        )
        return dict(request.headers.items())


def checked_base(url: str) -> str:
    """``url`` if it is an http(s) URL with a host, else ApiError ``bad_api_url`` (what the
    ``sweep`` command prints as its error line): ``urlsplit`` itself raises ValueError on a
    malformed one (``http://[::1``), which reached a user as a traceback."""
    try:
        parts = urlsplit(url)
        host = parts.hostname
    except ValueError as exc:
        raise ApiError(None, "bad_api_url", f"not a valid URL: {url!r} ({exc})") from None
    if parts.scheme not in ("http", "https") or not host:
        raise ApiError(None, "bad_api_url", f"not an http(s) URL: {url!r}")
    return url


class Api:
    """One API base URL; ``call`` returns the JSON object of a 2xx answer or raises ApiError."""

    def __init__(
        self,
        base: str | None = None,
        *,
        signer: Signer | None = None,
        session: requests.Session | None = None,
        timeout: float = 30,
    ) -> None:
        self.base = checked_base((base or os.environ.get(API_ENV) or DEFAULT_API).rstrip("/"))
        self._signer = signer
        self._needs_signing = not is_local(self.base)
        self.session = session or requests.Session()
        self.timeout = timeout

    @property
    def signer(self) -> Signer | None:
        if self._needs_signing and self._signer is None:
            self._signer = Signer(region_of(self.base))
        return self._signer if self._needs_signing else None

    def call(self, method: str, path: str, body: Any = None) -> Any:
        """``method`` with ``body`` as JSON, or no body if it is None."""
        return self.send(method, path, None if body is None else encode(body))

    def send(self, method: str, path: str, data: bytes | None) -> Any:
        """``method`` with ``data`` (JSON bytes or no body), signed for a deployed stage."""
        url = self.base + path
        headers = {"Accept": "application/json"}
        if data is not None:
            headers["Content-Type"] = "application/json"
        if (signer := self.signer) is not None:
            headers = signer.headers(method, url, data, headers)
        try:
            response = self.session.request(
                method, url, data=data, headers=headers, timeout=self.timeout
            )
        except requests.RequestException as exc:
            raise ApiError(None, "unreachable", f"{method} {url}: {exc}") from exc
        try:
            payload = response.json() if response.content else None
        except ValueError:
            payload = None
        if response.ok:
            return self._object(method, url, response, payload)
        if isinstance(payload, dict) and "error" in payload:
            raise ApiError(
                response.status_code,
                str(payload["error"]),
                str(payload.get("message", "")),
                list(payload.get("problems") or []),
            )
        text = response.text.strip().splitlines()
        message = (payload or {}).get("message") if isinstance(payload, dict) else None
        raise ApiError(
            response.status_code,
            "http_error",  # an answer not from our code (API Gateway's own, a proxy's)
            f"{method} {path}: {message or (text[0] if text else response.reason)}",
        )

    @staticmethod
    def _object(method: str, url: str, response: requests.Response, payload: Any) -> Any:
        """A 2xx answer's JSON object (every route of the API answers one). Anything else, as
        from an ordinary web server at ``--api``, is an ApiError ``not_the_api``: the commands
        read it as the API's and failed with a TypeError or AttributeError traceback."""
        if isinstance(payload, dict):
            return payload
        text = response.text.strip().splitlines()
        start = f" ({text[0][:80]!r})" if text else " (empty)"
        raise ApiError(
            response.status_code,
            "not_the_api",
            f"{method} {url}: the answer is not a JSON object{start}, so not the sweeps API's: "
            "is the URL right?",
        )

    def get(self, path: str) -> Any:
        return self.call("GET", path)

    def post(self, path: str, body: Any) -> Any:
        """POST ``body`` as JSON, whatever it is: None is sent as ``null`` (a request file
        holding null is a body the API answers with its problems), not as no body."""
        return self.send("POST", path, encode(body))


def encode(body: Any) -> bytes:
    """A body's JSON; a value that is not JSON is the API's own answer to it, before sending."""
    try:
        return json.dumps(body).encode()
    except (TypeError, ValueError) as exc:  # e.g. a numpy integer: not JSON
        problem = {"path": "/", "message": f"the body is not JSON: {exc}"}
        raise ApiError(None, "invalid_request", "the request is not JSON", [problem]) from None
