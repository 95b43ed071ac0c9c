"""One honest request behind Airflow's connection "Test" button, shared by every backend's hook.

The button must answer quickly and truthfully, so this probe is deliberately unlike the hooks'
normal transport: exactly one request, no retries, no redirects followed, a hard total deadline
(enforced by waiting on a worker thread, so a server that trickles bytes or a slow DNS lookup
cannot hold the API server's request), at most :data:`MAX_BODY` bytes read, and an answer
accepted only if it is JSON of the shape the caller expects. A web page, a proxy's error page or
another API's 404 under a wrong base path therefore fails instead of reading as "Connected".

Messages name the base URL and what went wrong in plain words. They never contain the secret
header values: those are checked for characters HTTP cannot carry *before* any request (a token
pasted with a trailing line break would otherwise make httpx raise an error quoting it), and every
message is scrubbed of them once more before it is returned.
"""

from __future__ import annotations

import queue
import ssl
import threading
from collections.abc import Callable, Mapping
from typing import Any
from urllib.parse import urlsplit

import httpx

from airflow_provider_midjourney.hooks.answer_limits import load_json

MAX_TIMEOUT = 10.0
MAX_BODY = 1_000_000
USER_AGENT = "airflow-provider-midjourney (connection test)"

ProbeResult = tuple[bool, str]


def probe(
    base_url: str,
    path: str,
    headers: Mapping[str, str],
    *,
    looks_right: Callable[[Any], bool],
    api_name: str,
    method: str = "GET",
    json_body: Any = None,
    timeout: float = 8.0,
    describe: Callable[[Any], str] | None = None,
) -> ProbeResult:
    """Send ``method base_url+path`` once and judge the answer; return ``(ok, message)``.

    :param headers: the request headers, secrets included (``Authorization``, ``x-api-key`` ...):
        every value is treated as secret and never appears in a message.
    :param looks_right: called with the decoded JSON of a 2xx answer; ``False`` means the URL
        answers, but it is not ``api_name``.
    :param api_name: how messages name the service ("the useapi.net Midjourney API v3").
    :param timeout: the whole probe's deadline in seconds, at most :data:`MAX_TIMEOUT`.
    :param describe: makes the success message from the JSON (default: "Connected to ...").
    """
    base = base_url.strip().rstrip("/")
    secrets = _secret_values(headers)
    url_password = urlsplit(base).password  # secret too: messages show user:***@host
    problem = _check_inputs(base, headers, timeout)
    if problem:
        return False, _scrub(problem, secrets, url_password)
    deadline = min(float(timeout), MAX_TIMEOUT)
    url = f"{base}/{path.lstrip('/')}"
    answers: queue.Queue[ProbeResult] = queue.Queue(maxsize=1)

    def work() -> None:
        try:
            result = _send(url, base, method, headers, json_body, deadline, looks_right, api_name, describe)
        except Exception as exc:  # the worker must always report; the message is scrubbed below
            result = (False, f"Testing {base} failed unexpectedly: {type(exc).__name__}: {exc}")
        answers.put(result)

    threading.Thread(target=work, name="midjourney-connection-test", daemon=True).start()
    try:
        ok, message = answers.get(timeout=deadline)
    except queue.Empty:
        ok, message = False, _no_answer(base, deadline)
    return ok, _scrub(message, secrets, url_password)


def _check_inputs(base: str, headers: Mapping[str, str], timeout: float) -> str | None:
    """Reasons to refuse before sending anything (named fields, no secret values)."""
    if not (0 < timeout <= MAX_TIMEOUT):
        return f"timeout must be more than 0 and at most {MAX_TIMEOUT:g} seconds, got {timeout!r}"
    if not base:
        return "The base URL is empty: put the API's address (https://...) in the connection's host."
    scheme = base.split("://", 1)[0].lower() if "://" in base else ""
    if scheme not in ("http", "https"):
        return f"The base URL {base!r} must start with http:// or https://."
    for name, value in headers.items():
        if any(ord(ch) < 32 or ord(ch) == 127 for ch in value):
            return (
                f"The {name} header (from the connection's API token) contains a control character such as a"
                " line break or a tab: paste the token again without it."
            )
        if not value.isascii():
            return (
                f"The {name} header (from the connection's API token) contains a non-ASCII character: tokens"
                " are plain ASCII, paste the token again (look for typographic quotes or spaces)."
            )
    return None


def _send(
    url: str,
    base: str,
    method: str,
    headers: Mapping[str, str],
    json_body: Any,
    deadline: float,
    looks_right: Callable[[Any], bool],
    api_name: str,
    describe: Callable[[Any], str] | None,
) -> ProbeResult:
    request_headers = {"Accept": "application/json", "User-Agent": USER_AGENT, **headers}
    try:
        with (
            httpx.Client(timeout=httpx.Timeout(deadline), follow_redirects=False) as client,
            client.stream(method, url, headers=request_headers, json=json_body) as response,
        ):
            body = b""
            for chunk in response.iter_bytes():
                body += chunk
                if len(body) > MAX_BODY:
                    break
            return _judge(response, body, url, base, looks_right, api_name, describe)
    except httpx.TimeoutException:
        return False, _no_answer(base, deadline)
    except httpx.UnsupportedProtocol:
        return False, f"The base URL {base!r} must start with http:// or https://."
    except httpx.ConnectError as exc:
        return False, _connect_failure(exc, base)
    except (httpx.RemoteProtocolError, httpx.ReadError) as exc:
        hint = " If the server speaks HTTPS, use https://." if base.lower().startswith("http://") else ""
        return False, f"{base} closed the connection or did not answer in HTTP ({type(exc).__name__}).{hint}"
    except httpx.HTTPError as exc:
        return False, f"Could not reach {base}: {type(exc).__name__}: {exc}"


def _no_answer(base: str, deadline: float) -> str:
    return f"No complete answer from {base} within {deadline:g} s: check the base URL, the port and the network."


def _connect_failure(exc: httpx.ConnectError, base: str) -> str:
    text = str(exc)
    cause = exc.__cause__ or exc.__context__
    if isinstance(cause, ssl.SSLError) or "SSL" in text or "TLS" in text:
        hint = " If the server speaks plain HTTP, use http://." if base.lower().startswith("https://") else ""
        return f"Could not open a TLS connection to {base} ({text}).{hint}"
    lowered = text.lower()
    if "refused" in lowered:
        return f"Nothing is listening at {base} (connection refused): check the host and the port."
    if "name or service not known" in lowered or "nodename nor servname" in lowered or "getaddrinfo" in lowered:
        return f"The host of {base} cannot be resolved (DNS): check the spelling of the base URL."
    return f"Could not connect to {base}: {text or type(exc).__name__}."


def _judge(
    response: httpx.Response,
    body: bytes,
    url: str,
    base: str,
    looks_right: Callable[[Any], bool],
    api_name: str,
    describe: Callable[[Any], str] | None,
) -> ProbeResult:
    status = response.status_code
    content_type = response.headers.get("content-type", "").split(";", 1)[0].strip().lower() or "no content type"
    is_json = content_type == "application/json" or content_type.endswith("+json")
    what = f"{response.request.method} {url}"
    title = api_name[:1].upper() + api_name[1:]  # for the start of a sentence
    if status == 401:
        return False, f"{title} at {base} refused the API token (401 Unauthorized): check the connection's password."
    if status == 402:
        return False, f"{title} at {base} answered 402 Payment Required: the account has no active subscription."
    if status == 403:
        return False, (
            f"{base} answered 403 Forbidden to {what}: the token may lack access to {api_name},"
            " or a proxy or firewall blocks the request."
        )
    if status == 404:
        return False, (
            f"This URL does not look like {api_name}: {what} answered 404 Not Found."
            f" Check the base URL ({base}); it should not end with an API path."
        )
    if 300 <= status < 400:
        target = response.headers.get("location", "?").split("?", 1)[0]
        return False, f"{what} redirects ({status}) to {target}: put the final address in the connection's base URL."
    if status == 429:
        return False, f"{title} at {base} is rate-limiting (429 Too Many Requests): test again in a minute."
    if status >= 500:
        return False, f"{title} at {base} answered {status}: the service has a problem right now; try again later."
    if not 200 <= status < 300:
        return False, f"{what} answered {status} {response.reason_phrase}: not what {api_name} answers."
    if not is_json:
        return False, f"This URL does not look like {api_name}: got {content_type} from {url}."
    try:
        data = load_json(body)  # deep nesting is a ValueError here, not a RecursionError
    except ValueError:
        return False, f"This URL does not look like {api_name}: the answer from {url} is not valid JSON."
    if not looks_right(data):
        return False, f"This URL does not look like {api_name}: the JSON answer from {url} has an unexpected shape."
    return True, describe(data) if describe else f"Connected to {api_name} at {base}."


def _secret_values(headers: Mapping[str, str]) -> list[str]:
    """Every header value, and the credential part of ``Bearer <token>``-style values."""
    values = []
    for value in headers.values():
        values += [value, value.strip()]
        _, _, credential = value.partition(" ")
        if credential.strip():
            values.append(credential.strip())
    return sorted({v for v in values if len(v) >= 4}, key=len, reverse=True)


def _scrub(message: str, secrets: list[str], url_password: str | None) -> str:
    if url_password:
        message = message.replace(f":{url_password}@", ":***@")
    for secret in secrets:
        message = message.replace(secret, "***")
    return message
