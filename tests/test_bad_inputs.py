"""A table-driven corpus of hostile inputs: every one is refused before any HTTP call.

Each case drives a real part (an operator's ``execute``, the sensor's ``poke``, a hook method, a
connection from the environment, the trigger, a retry policy, the download operator) and asserts:
the emulator received no request at all, the exception is a ``MidjourneyError`` that Airflow does
not retry (``AirflowFailException``), and its message names the field. The summary test prints
"tried / rejected before HTTP / field named" for the closing note of issue 10.
"""

from __future__ import annotations

import math
import os
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from airflow_provider_midjourney.exceptions import AirflowFailException, MidjourneyError
from airflow_provider_midjourney.hooks.useapi_v3 import UseapiV3Hook
from airflow_provider_midjourney.operators import (
    MidjourneyBlendOperator,
    MidjourneyButtonOperator,
    MidjourneyDescribeOperator,
    MidjourneyDownloadOperator,
    MidjourneyImagineOperator,
    MidjourneySeedOperator,
    MidjourneySettingsOperator,
)
from airflow_provider_midjourney.retry import HttpRetry
from airflow_provider_midjourney.sensors import MidjourneyJobSensor
from airflow_provider_midjourney.triggers import MidjourneyJobTrigger
from tests.conftest import TOKEN, connection_json

JOB = "j1024181105489769750i-u12345-c1234567890987654321-bot:midjourney"
URL = "https://example.com/a.png"
PNG = b"\x89PNG\r\n\x1a\n" + b"\x00" * 64
BIG = b"\x89PNG\r\n\x1a\n" + b"0" * (10 * 1024 * 1024)

# Local files the image reader must refuse (or, for the PNG, accept).
_DIR = Path(tempfile.mkdtemp(prefix="mj-bad-inputs-"))
TEXT = _DIR / "notes.txt"
TEXT.write_text("a text file, not an image\n")
EMPTY = _DIR / "empty.png"
EMPTY.write_bytes(b"")
FAKE_PNG = _DIR / "fake.png"
FAKE_PNG.write_text("PNG? no: text with a .png name")
HUGE = _DIR / "huge.png"
HUGE.write_bytes(BIG)
REAL_PNG = _DIR / "real.png"
REAL_PNG.write_bytes(PNG)
PASSWD_LINK = _DIR / "passwd.png"
if not PASSWD_LINK.exists():
    os.symlink("/etc/passwd", PASSWD_LINK)
FIFO = _DIR / "pipe.png"
if hasattr(os, "mkfifo") and not FIFO.exists():
    os.mkfifo(FIFO)


class _TI:
    dag_id, run_id, task_id, map_index, try_number = "bad_inputs", "r", "t", -1, 1

    def xcom_push(self, key: str, value: Any) -> None:
        raise AssertionError("nothing may be recorded for a rejected input")


def _ctx() -> dict[str, Any]:
    return {"ti": _TI(), "task_state_store": None}


@dataclass(frozen=True)
class Case:
    name: str
    run: Callable[[], Any]
    field: str


CASES: list[Case] = []


def case(name: str, field: str) -> Callable[[Callable[[], Any]], None]:
    def add(run: Callable[[], Any]) -> None:
        CASES.append(Case(name, run, field))

    return add


def op_case(name: str, operator: type, field: str, **kwargs: Any) -> None:
    CASES.append(Case(name, lambda: operator(task_id="t", **kwargs).execute(_ctx()), field))


# -- prompts (imagine, button) -------------------------------------------------------------------

for label, prompt in [
    ("empty", ""),
    ("spaces", "   "),
    ("newlines and tabs", "\n\t\r\n"),
    ("zero-width spaces", "\u200b\u200b\u200b"),
    ("zero-width joiners and BOM", "\u200d\ufeff\u2060"),
    ("NUL only", "\x00"),
    ("NULs and spaces", "\x00 \x00 "),
    ("NUL inside", "a cat\x00 --v 7"),
    ("escape character inside", "a cat \x1b[31m red"),
    ("over 5000 characters", "x" * 5001),
    ("an int", 123),
    ("None", None),
    ("a list", ["a cat"]),
    ("bytes", b"a cat"),
    ("a dict", {"prompt": "a cat"}),
]:
    op_case(f"imagine prompt {label}", MidjourneyImagineOperator, "prompt", prompt=prompt)

for label, prompt in [("spaces", "   "), ("zero-width", "\u200b"), ("NUL", "\x00"), ("an int", 5)]:
    op_case(
        f"Custom Zoom prompt {label}",
        MidjourneyButtonOperator,
        "prompt",
        job_id=JOB,
        button="Custom Zoom",
        prompt=prompt,
    )
op_case("Custom Zoom without prompt", MidjourneyButtonOperator, "prompt", job_id=JOB, button="Custom Zoom")
op_case("prompt on U3", MidjourneyButtonOperator, "prompt", job_id=JOB, button="U3", prompt="x")
op_case("V1 prompt over 5000", MidjourneyButtonOperator, "prompt", job_id=JOB, button="V1", prompt="x" * 5001)

# -- options every operator takes ------------------------------------------------------------------

BAD_CHANNELS = [
    ("hash name", "#general"),
    ("trailing newline", "1234567890\n"),
    ("Arabic-Indic digits", "\u0661\u0662\u0663"),
    ("full-width digits", "\uff11\uff12\uff13"),
    ("spaces", " 123 "),
    ("33 digits", "1" * 33),
    ("path", "123/../accounts"),
    ("an int", 1234567890),
]
for label, channel in BAD_CHANNELS:
    op_case(f"imagine channel {label}", MidjourneyImagineOperator, "channel", prompt="p", channel=channel)
for label, channel in BAD_CHANNELS[:4]:
    op_case(f"settings channel {label}", MidjourneySettingsOperator, "channel", command="info", channel=channel)
    op_case(f"blend channel {label}", MidjourneyBlendOperator, "channel", images=[URL, URL], channel=channel)

BAD_URLS = [
    ("scheme only", "https://"),
    ("no host", "http:///path"),
    ("mailto", "mailto:me@example.com"),
    ("javascript", "javascript:alert(1)"),
    ("file", "file:///etc/passwd"),
    ("space inside", "https://exa mple.com/hook"),
    ("trailing newline", "https://example.com/hook\n"),
    ("bad port", "https://example.com:99999/hook"),
    ("over 1024", "https://x.example/" + "a" * 1020),
    ("relative", "/webhook"),
]
for label, url in BAD_URLS:
    op_case(f"replyUrl {label}", MidjourneyImagineOperator, "replyUrl", prompt="p", reply_url=url)
for label, url in BAD_URLS[:3]:
    op_case(f"seed replyUrl {label}", MidjourneySeedOperator, "replyUrl", job_id=JOB, reply_url=url)

for label, ref in [("over 1024", "r" * 1025), ("blank", "   "), ("NUL", "ref\x00"), ("newline", "ref\nX")]:
    op_case(f"replyRef {label}", MidjourneyImagineOperator, "replyRef", prompt="p", reply_ref=ref)
for label, level in [("verbose", "verbose"), ("upper case", "ALL"), ("an int", 2)]:
    op_case(f"replyLevel {label}", MidjourneyImagineOperator, "replyLevel", prompt="p", reply_level=level)

BAD_SECONDS = [
    ("zero", 0),
    ("negative", -1),
    ("nan", math.nan),
    ("inf", math.inf),
    ("1e15", 1e15),
    ("a string", "5"),
    ("a bool", True),
    ("None", None),
]
for label, value in BAD_SECONDS:
    if value is not None:  # None means "the [midjourney] poll_interval option" (see test_config.py)
        op_case(f"poll_interval {label}", MidjourneyImagineOperator, "poll_interval", prompt="p", poll_interval=value)
for label, value in [*BAD_SECONDS[:6], ("zero timedelta", timedelta(0)), ("huge timedelta", timedelta(days=9999))]:
    op_case(f"timeout {label}", MidjourneyImagineOperator, "timeout", prompt="p", timeout=value)
for label, value in [("zero", 0), ("negative", -3), ("fraction", 2.5), ("a string", "3"), ("huge", 10**9)]:
    op_case(
        f"max_consecutive_errors {label}",
        MidjourneyImagineOperator,
        "max_consecutive_errors",
        prompt="p",
        max_consecutive_errors=value,
    )
for label, value in [("zero", 0), ("nan", math.nan), ("a string", "600"), ("a year", 3.2e7)]:
    op_case(
        f"transient_error_timeout {label}",
        MidjourneyImagineOperator,
        "transient_error_timeout",
        prompt="p",
        transient_error_timeout=value,
    )
op_case("retry not a policy", MidjourneyImagineOperator, "retry", prompt="p", retry={"max_attempts": 3})
for label, kwargs in [
    ("button poll_interval zero", {"poll_interval": 0}),
    ("describe timeout nan", {"timeout": math.nan}),
    ("blend poll_interval string", {"poll_interval": "1"}),
]:
    operator = {
        "button": MidjourneyButtonOperator,
        "describe": MidjourneyDescribeOperator,
        "blend": MidjourneyBlendOperator,
    }[label.split()[0]]
    args: dict[str, Any] = {
        "button": {"job_id": JOB, "button": "U1"},
        "describe": {"image": URL},
        "blend": {"images": [URL, URL]},
    }[label.split()[0]]
    op_case(label, operator, label.split()[1], **args, **kwargs)

# -- job ids and buttons -------------------------------------------------------------------------

BAD_JOB_IDS = [
    ("empty", ""),
    ("spaces", "   "),
    ("digits only", "12345"),
    ("path traversal", "../accounts"),
    ("trailing newline", JOB + "\n"),
    ("inner newline", JOB[:20] + "\n" + JOB[20:]),
    ("query string", JOB + "?x=1"),
    ("Arabic-Indic digits", "j\u0661\u0662-u1-c1-bot:midjourney"),
    ("an int", 1024181105489769750),
    ("None", None),
]
for label, job_id in BAD_JOB_IDS:
    op_case(f"button job id {label}", MidjourneyButtonOperator, "jobId", job_id=job_id, button="U1")
for label, job_id in BAD_JOB_IDS[:6]:
    op_case(f"seed job id {label}", MidjourneySeedOperator, "jobId", job_id=job_id)
for label, button in [("U5", "U5"), ("empty", ""), ("None", None), ("an int", 1), ("lower case", "u1")]:
    op_case(f"button {label}", MidjourneyButtonOperator, "button", job_id=JOB, button=button)
op_case("Vary (Region) without mask", MidjourneyButtonOperator, "mask", job_id=JOB, button="Vary (Region)")
op_case(
    "Vary (Region) mask of spaces", MidjourneyButtonOperator, "mask", job_id=JOB, button="Vary (Region)", mask="    "
)
op_case(
    "Vary (Region) mask with NUL",
    MidjourneyButtonOperator,
    "mask",
    job_id=JOB,
    button="Vary (Region)",
    mask="iVBOR\x00w0",
)
op_case("mask on U1", MidjourneyButtonOperator, "mask", job_id=JOB, button="U1", mask="iVBOR")

# -- images (blend, describe) ----------------------------------------------------------------------

BAD_IMAGES = [
    ("/etc/passwd", "/etc/passwd"),
    ("/proc/self/environ", "/proc/self/environ"),
    ("a text file", str(TEXT)),
    ("an empty file", str(EMPTY)),
    ("text named .png", str(FAKE_PNG)),
    ("a file over 10 MB", str(HUGE)),
    ("a symlink to /etc/passwd", str(PASSWD_LINK)),
    ("a directory", str(_DIR)),
    ("a missing file", str(_DIR / "missing.png")),
    ("a Path to a text file", TEXT),
    ("a FIFO", str(FIFO)),
    ("/dev/zero", "/dev/zero"),
    ("a blank string", "   "),
    ("NUL in a path", "/tmp/a\x00.png"),
    ("scheme-only URL", "https://"),
    ("ftp URL", "ftp://example.com/a.png"),
    ("URL with a space", "https://exa mple.com/a.png"),
    ("empty bytes", b""),
    ("bytes over 10 MB", BIG),
    ("an int", 42),
    ("None", None),
]
for label, image in BAD_IMAGES:
    op_case(f"describe image {label}", MidjourneyDescribeOperator, "image", image=image)
    op_case(f"blend image {label}", MidjourneyBlendOperator, "images[1]", images=[URL, image])
for label, images in [
    ("one image", [URL]),
    ("six images", [URL] * 6),
    ("a string", URL),
    ("None", None),
    ("a dict", {"a": URL, "b": URL}),
    ("bytes", PNG),
]:
    op_case(f"blend images {label}", MidjourneyBlendOperator, "images", images=images)
for label, dimensions in [("Wide", "Wide"), ("lower case", "square"), ("an int", 3)]:
    op_case(
        f"blend dimensions {label}",
        MidjourneyBlendOperator,
        "blendDimensions",
        images=[URL, URL],
        dimensions=dimensions,
    )

# -- settings commands ---------------------------------------------------------------------------

for label, command in [("stealth", "stealth"), ("empty", ""), ("upper case", "SETTINGS"), ("None", None), ("int", 5)]:
    op_case(f"settings command {label}", MidjourneySettingsOperator, "command", command=command)

# -- the sensor ------------------------------------------------------------------------------------

for label, job_id in BAD_JOB_IDS[:8]:
    CASES.append(
        Case(
            f"sensor job id {label}",
            lambda job_id=job_id: MidjourneyJobSensor(task_id="s", job_id=job_id, deferrable=False).poke({}),
            "job_id",
        )
    )
for label, kwargs, field in [
    ("poll_interval zero", {"poll_interval": 0}, "poll_interval"),
    ("poll_interval negative", {"poll_interval": -5}, "poll_interval"),
    ("poll_interval nan", {"poll_interval": math.nan}, "poll_interval"),
    ("poll_interval string", {"poll_interval": "5"}, "poll_interval"),
    ("poke_interval zero", {"poke_interval": 0}, "poke_interval"),
    ("timeout nan", {"timeout": math.nan}, "timeout"),
    ("timeout 1e15", {"timeout": 1e15}, "timeout"),
    ("timeout negative", {"timeout": -1}, "timeout"),
    ("timeout string", {"timeout": "60"}, "timeout"),
    ("max_consecutive_errors zero", {"max_consecutive_errors": 0}, "max_consecutive_errors"),
    ("transient_error_timeout inf", {"transient_error_timeout": math.inf}, "transient_error_timeout"),
]:
    CASES.append(
        Case(f"sensor {label}", lambda kwargs=kwargs: MidjourneyJobSensor(task_id="s", job_id=JOB, **kwargs), field)
    )

# -- the trigger, the retry policy, the download operator --------------------------------------------

for label, kwargs, field in [
    ("poll_interval zero", {"poll_interval": 0}, "poll_interval"),
    ("poll_interval nan", {"poll_interval": math.nan}, "poll_interval"),
    ("poll_interval string", {"poll_interval": "5"}, "poll_interval"),
    ("deadline nan", {"deadline": math.nan}, "deadline"),
    ("deadline string", {"deadline": "tomorrow"}, "deadline"),
    ("max_consecutive_errors negative", {"max_consecutive_errors": -1}, "max_consecutive_errors"),
    ("transient_error_timeout zero", {"transient_error_timeout": 0}, "transient_error_timeout"),
]:
    CASES.append(Case(f"trigger {label}", lambda kwargs=kwargs: MidjourneyJobTrigger(JOB, **kwargs), field))
for label, kwargs, field in [
    ("max_attempts zero", {"max_attempts": 0}, "max_attempts"),
    ("max_attempts string", {"max_attempts": "3"}, "max_attempts"),
    ("max_seconds nan", {"max_seconds": math.nan}, "max_seconds"),
    ("backoff_initial negative", {"backoff_initial": -1.0}, "backoff_initial"),
    ("backoff_max inf", {"backoff_max": math.inf}, "backoff_max"),
    ("busy_wait reversed", {"busy_wait": (30.0, 10.0)}, "busy_wait"),
    ("busy_wait not a pair", {"busy_wait": 10.0}, "busy_wait"),
]:
    CASES.append(Case(f"retry policy {label}", lambda kwargs=kwargs: HttpRetry(**kwargs), field))
for label, kwargs, field in [
    ("max_concurrency zero", {"max_concurrency": 0}, "max_concurrency"),
    ("max_concurrency string", {"max_concurrency": "4"}, "max_concurrency"),
    ("max_concurrency 1e6", {"max_concurrency": 10**6}, "max_concurrency"),
    ("max_concurrency fraction", {"max_concurrency": 2.5}, "max_concurrency"),
    ("file_timeout zero", {"file_timeout": 0}, "file_timeout"),
    ("file_timeout nan", {"file_timeout": math.nan}, "file_timeout"),
    ("file_timeout string", {"file_timeout": "60"}, "file_timeout"),
]:
    CASES.append(
        Case(
            f"download {label}",
            lambda kwargs=kwargs: MidjourneyDownloadOperator(
                task_id="d", destination=str(_DIR / "out"), job_id=JOB, **kwargs
            ),
            field,
        )
    )

# -- the hook ----------------------------------------------------------------------------------------


def hook_case(name: str, field: str, call: Callable[[UseapiV3Hook], Any]) -> None:
    def run() -> Any:
        with UseapiV3Hook("midjourney_default") as hook:
            return call(hook)

    CASES.append(Case(name, run, field))


def _stream(hook: UseapiV3Hook, url: str, use_proxy: bool = False) -> None:
    with hook.stream_asset(url, use_proxy=use_proxy):
        pass


for label, job_id in BAD_JOB_IDS[:7]:
    hook_case(f"hook get_job {label}", "jobid", lambda h, j=job_id: h.get_job(j))
hook_case("hook cancel_job traversal", "jobid", lambda h: h.cancel_job("../../accounts"))
hook_case("hook fetch_job newline", "jobid", lambda h: h.fetch_job(JOB + "\n"))
for label, channel in BAD_CHANNELS[:6]:
    hook_case(f"hook get_account {label}", "channel", lambda h, c=channel: h.get_account(c))
hook_case("hook reset_account Arabic digits", "channel", lambda h: h.reset_account("\u0661\u0662"))
hook_case("hook delete_account newline", "channel", lambda h: h.delete_account("123\n"))
hook_case("hook account discord blank", "discord", lambda h: h.create_or_update_account("   "))
hook_case("hook account discord non-ASCII", "discord", lambda h: h.create_or_update_account("tok\u00e9n-abcdefgh"))
hook_case("hook account discord newline inside", "discord", lambda h: h.create_or_update_account("abc\ndefghijk"))
hook_case("hook account maxJobs 0", "maxJobs", lambda h: h.create_or_update_account("d" * 20, max_jobs=0))
hook_case("hook account maxJobs 16", "maxJobs", lambda h: h.create_or_update_account("d" * 20, max_jobs=16))
hook_case(
    "hook account replyUrl ftp",
    "replyUrl",
    lambda h: h.create_or_update_account("d" * 20, reply_url="ftp://x.example/hook"),
)
hook_case(
    "hook account replyUrl scheme only",
    "replyUrl",
    lambda h: h.create_or_update_account("d" * 20, reply_url="https://"),
)
hook_case("hook imagine zero-width prompt", "prompt", lambda h: h.imagine("\u200b"))
hook_case("hook describe /etc/shadow", "image", lambda h: h.describe("/etc/shadow"))
hook_case("hook blend a text file", "images[0]", lambda h: h.blend([str(TEXT), URL]))
hook_case("hook settings command", "command", lambda h: h.settings_command("stealth"))  # type: ignore[arg-type]
hook_case("hook stream file URL", "url", lambda h: _stream(h, "file:///etc/passwd"))
hook_case("hook stream scheme-only URL", "url", lambda h: _stream(h, "https://"))
hook_case("hook proxy a non-CDN URL", "url", lambda h: _stream(h, "https://evil.example/x.png", use_proxy=True))
hook_case("hook proxy URL with newline", "url", lambda h: _stream(h, "https://cdn.midjourney.com/x\n.png", True))
for label, timeout in [("zero", 0), ("nan", math.nan), ("string", "30"), ("a day", 86400.0)]:
    CASES.append(
        Case(f"hook timeout {label}", lambda t=timeout: UseapiV3Hook("midjourney_default", timeout=t), "timeout")
    )

# -- connection settings (the Airflow connection is hostile) -----------------------------------------

CONNECTIONS: list[tuple[str, dict[str, Any], str]] = [
    ("token whitespace only", {"token": "  \n\t "}, "token"),
    ("token empty", {"token": ""}, "token"),
    ("token with inner newline", {"token": TOKEN[:8] + "\n" + TOKEN[8:]}, "token"),
    ("token with NUL", {"token": TOKEN + "\x00"}, "token"),
    ("token non-ASCII", {"token": TOKEN + "\u00e9"}, "token"),
    ("token with zero-width space", {"token": TOKEN[:5] + "\u200b" + TOKEN[5:]}, "token"),
    ("timeout extra text", {"extra": {"timeout": "thirty"}}, "timeout"),
    ("timeout extra nan", {"extra": {"timeout": "nan"}}, "timeout"),
    ("timeout extra inf", {"extra": {"timeout": math.inf}}, "timeout"),
    ("timeout extra 1e15", {"extra": {"timeout": 1e15}}, "timeout"),
    ("timeout extra negative", {"extra": {"timeout": -1}}, "timeout"),
    ("timeout extra zero", {"extra": {"timeout": 0}}, "timeout"),
    ("timeout extra a list", {"extra": {"timeout": [30]}}, "timeout"),
    ("timeout extra bool", {"extra": {"timeout": True}}, "timeout"),
    ("channel extra name", {"extra": {"channel": "#art"}}, "channel"),
    ("channel extra newline", {"extra": {"channel": "123\n456"}}, "channel"),
    ("host with a space", {"host": "http://127.0.0.1 :1"}, "host"),
    ("host ftp", {"host": "ftp://api.example"}, "host"),
    ("host broken IPv6", {"host": "http://[::1"}, "host"),
    ("host bad port", {"host": "http://127.0.0.1:99999"}, "host"),
    ("host non-ASCII", {"host": "https://\u0430pi.example"}, "host"),
]


def _connection(base_url: str, spec: dict[str, Any]) -> str:
    import json

    extra = spec.get("extra", {})
    return json.dumps(
        {
            "conn_type": "midjourney",
            "host": spec.get("host", base_url),
            "password": spec.get("token", TOKEN),
            "extra": extra,
        }
    )


for label, _spec, field in CONNECTIONS:
    CASES.append(
        Case(
            f"connection {label}",
            lambda: MidjourneyImagineOperator(task_id="t", prompt="p", midjourney_conn_id="mj_hostile").execute(_ctx()),
            field,
        )
    )
CONNECTION_SPECS = {f"connection {label}": spec for label, spec, _ in CONNECTIONS}


# -- the tests ---------------------------------------------------------------------------------------


def _attempt(c: Case, emulator: Any, monkeypatch: pytest.MonkeyPatch) -> tuple[BaseException | None, bool]:
    """Run one case; (the exception, whether no request reached the emulator)."""
    spec = CONNECTION_SPECS.get(c.name)
    if spec is not None:
        monkeypatch.setenv("AIRFLOW_CONN_MJ_HOSTILE", _connection(emulator.base_url, spec))
    try:
        c.run()
    except BaseException as exc:
        return exc, emulator.requests == []
    return None, emulator.requests == []


def _verdict(c: Case, exc: BaseException | None) -> tuple[bool, bool]:
    """(rejected as a named, non-retryable MidjourneyError, message names the field)."""
    ok = isinstance(exc, MidjourneyError) and isinstance(exc, AirflowFailException)
    return ok, exc is not None and c.field.lower() in str(exc).lower()


@pytest.mark.usefixtures("midjourney_conn")
@pytest.mark.parametrize("c", CASES, ids=[c.name for c in CASES])
def test_bad_input_is_refused_before_any_request(c: Case, emulator, monkeypatch: pytest.MonkeyPatch) -> None:
    exc, silent = _attempt(c, emulator, monkeypatch)
    assert exc is not None, "accepted"
    assert isinstance(exc, MidjourneyError), f"raw {type(exc).__name__}: {exc}"
    assert isinstance(exc, AirflowFailException), f"{type(exc).__name__} would be retried"
    assert c.field.lower() in str(exc).lower(), str(exc)
    assert silent, [(r.method, r.path) for r in emulator.requests]
    assert TOKEN not in str(exc)


def test_the_corpus_is_large_and_distinct() -> None:
    assert len(CASES) >= 150 and len({c.name for c in CASES}) == len(CASES)


@pytest.mark.usefixtures("midjourney_conn")
def test_corpus_summary(emulator, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    """The figures of docs/reliability.md: tried / rejected before HTTP / with the field named."""
    rejected = named = 0
    for c in CASES:
        emulator.reset()
        exc, silent = _attempt(c, emulator, monkeypatch)
        ok, names = _verdict(c, exc)
        rejected += ok and silent
        named += ok and silent and names
    with capsys.disabled():
        print(f"\nbad inputs: tried {len(CASES)}, rejected before HTTP {rejected}, field named {named}")
    assert rejected == named == len(CASES)


# -- what must still be accepted (the checks are not too strict) -----------------------------------


@pytest.mark.usefixtures("midjourney_conn")
@pytest.mark.parametrize(
    ("operator", "kwargs"),
    [
        (MidjourneyImagineOperator, {"prompt": "a cat \u2014 caf\u00e9 \U0001f431 --v 7\n--ar 2:3"}),
        (MidjourneyImagineOperator, {"prompt": "p", "channel": "1234567890", "poll_interval": 0.5, "timeout": 60}),
        (MidjourneyImagineOperator, {"prompt": "p", "reply_url": "https://hooks.example.com:8443/mj?x=1"}),
        (MidjourneyDescribeOperator, {"image": str(REAL_PNG)}),
        (MidjourneyDescribeOperator, {"image": REAL_PNG}),
        (MidjourneyBlendOperator, {"images": [URL, str(REAL_PNG), PNG]}),
    ],
)
def test_good_inputs_still_pass_validation(emulator, operator: type, kwargs: dict[str, Any]) -> None:
    from airflow_provider_midjourney.operators.midjourney import MidjourneyBaseOperator

    op: MidjourneyBaseOperator = operator(task_id="t", **kwargs)
    request, fingerprint = op.prepare_request(_ctx())
    assert len(fingerprint) == 64 and request.reply_ref and request.reply_ref.startswith("airflow:bad_inputs/")
    assert emulator.requests == []


def test_connection_timeout_given_as_text_in_the_form_is_accepted(emulator, monkeypatch) -> None:
    monkeypatch.setenv("AIRFLOW_CONN_MJ_FORM", connection_json(emulator.base_url, timeout=" 12 "))
    assert UseapiV3Hook("mj_form").connection_settings.timeout == 12.0


def test_a_token_with_a_trailing_newline_is_stripped_and_works(emulator, monkeypatch) -> None:
    monkeypatch.setenv("AIRFLOW_CONN_MJ_NL", connection_json(emulator.base_url, token=f"  {TOKEN}\r\n"))
    with UseapiV3Hook("mj_nl") as hook:
        assert hook.list_jobs().total == 0
    assert [r.authorized for r in emulator.requests] == [True]
