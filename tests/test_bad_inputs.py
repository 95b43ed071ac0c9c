"""Fault scenario 9: bad inputs are rejected before any HTTP call, naming the field.

Each case runs the operator's ``execute`` against the emulator and then checks that the emulator
received nothing at all.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from airflow_provider_midjourney.exceptions import MidjourneyInvalidRequestError
from airflow_provider_midjourney.operators import (
    MidjourneyBlendOperator,
    MidjourneyButtonOperator,
    MidjourneyDescribeOperator,
    MidjourneyImagineOperator,
    MidjourneySeedOperator,
    MidjourneySettingsOperator,
)
from airflow_provider_midjourney.sensors import MidjourneyJobSensor

JOB = "j1024181105489769750i-u12345-c1234567890987654321-bot:midjourney"
URL = "https://example.com/a.png"
BIG = b"0" * (10 * 1024 * 1024 + 1)

CASES: list[tuple[str, type, dict[str, Any], str]] = [
    ("empty prompt", MidjourneyImagineOperator, {"prompt": ""}, "prompt"),
    ("blank prompt", MidjourneyImagineOperator, {"prompt": "   \n"}, "prompt"),
    ("prompt over 5000", MidjourneyImagineOperator, {"prompt": "x" * 5001}, "5000"),
    (
        "replyUrl over 1024",
        MidjourneyImagineOperator,
        {"prompt": "p", "reply_url": "https://x/" + "a" * 1020},
        "replyUrl",
    ),
    ("replyUrl not http", MidjourneyImagineOperator, {"prompt": "p", "reply_url": "mailto:me"}, "replyUrl"),
    ("replyRef over 1024", MidjourneyImagineOperator, {"prompt": "p", "reply_ref": "r" * 1025}, "replyRef"),
    ("bad replyLevel", MidjourneyImagineOperator, {"prompt": "p", "reply_level": "verbose"}, "replyLevel"),
    ("channel not an id", MidjourneyImagineOperator, {"prompt": "p", "channel": "#general"}, "channel"),
    ("unknown button", MidjourneyButtonOperator, {"job_id": JOB, "button": "U5"}, "button"),
    ("button job id missing", MidjourneyButtonOperator, {"job_id": "", "button": "U1"}, "jobId"),
    ("button job id malformed", MidjourneyButtonOperator, {"job_id": "12345", "button": "U1"}, "jobId"),
    ("path traversal job id", MidjourneyButtonOperator, {"job_id": "../accounts", "button": "U1"}, "jobId"),
    ("Vary (Region) without mask", MidjourneyButtonOperator, {"job_id": JOB, "button": "Vary (Region)"}, "mask"),
    ("mask on U1", MidjourneyButtonOperator, {"job_id": JOB, "button": "U1", "mask": "iVBOR"}, "mask"),
    ("Custom Zoom without prompt", MidjourneyButtonOperator, {"job_id": JOB, "button": "Custom Zoom"}, "prompt"),
    ("prompt on U3", MidjourneyButtonOperator, {"job_id": JOB, "button": "U3", "prompt": "x"}, "prompt"),
    (
        "button prompt over 5000",
        MidjourneyButtonOperator,
        {"job_id": JOB, "button": "V1", "prompt": "x" * 5001},
        "prompt",
    ),
    ("blend of 1", MidjourneyBlendOperator, {"images": [URL]}, "images"),
    ("blend of 6", MidjourneyBlendOperator, {"images": [URL] * 6}, "images"),
    ("blend not a list", MidjourneyBlendOperator, {"images": URL}, "images"),
    ("blend bad dimensions", MidjourneyBlendOperator, {"images": [URL, URL], "dimensions": "Wide"}, "blendDimensions"),
    ("blend missing file", MidjourneyBlendOperator, {"images": [URL, "/no/such/image.png"]}, "images[1]"),
    ("blend blob over 10 MB", MidjourneyBlendOperator, {"images": [URL, BIG]}, "images[1]"),
    ("describe missing file", MidjourneyDescribeOperator, {"image": "/no/such/image.png"}, "image"),
    ("describe blob over 10 MB", MidjourneyDescribeOperator, {"image": BIG}, "image"),
    ("describe non-http URL", MidjourneyDescribeOperator, {"image": "ftp://example.com/a.png"}, "image"),
    ("seed without job id", MidjourneySeedOperator, {"job_id": ""}, "jobId"),
    ("seed malformed job id", MidjourneySeedOperator, {"job_id": "j1-bot"}, "jobId"),
    ("unknown settings command", MidjourneySettingsOperator, {"command": "stealth"}, "command"),
    ("settings bad channel", MidjourneySettingsOperator, {"command": "info", "channel": "abc"}, "channel"),
]


class _TI:
    dag_id, run_id, task_id, map_index, try_number = "bad_inputs", "r", "t", -1, 1

    def xcom_push(self, key: str, value: Any) -> None:
        raise AssertionError("nothing may be recorded for a rejected input")


@pytest.mark.usefixtures("midjourney_conn")
@pytest.mark.parametrize(("case", "operator", "kwargs", "field"), CASES, ids=[c[0] for c in CASES])
def test_bad_input_is_rejected_before_any_request(emulator, case, operator, kwargs, field) -> None:
    with pytest.raises(MidjourneyInvalidRequestError) as info:
        operator(task_id="t", **kwargs).execute({"ti": _TI(), "task_state_store": None})
    assert field in str(info.value), str(info.value)
    assert emulator.requests == []


@pytest.mark.usefixtures("midjourney_conn")
def test_sensor_with_a_bad_job_id_makes_no_request(emulator) -> None:
    with pytest.raises(MidjourneyInvalidRequestError, match="jobid"):
        MidjourneyJobSensor(task_id="s", job_id="../../v1/proxy").poke({})
    assert emulator.requests == []


def test_there_are_at_least_25_distinct_cases() -> None:
    assert len({c[0] for c in CASES}) >= 25 and len({(c[1], repr(c[2])) for c in CASES}) == len(CASES)


def test_local_directory_is_not_an_image(tmp_path: Path, emulator, midjourney_conn) -> None:
    with pytest.raises(MidjourneyInvalidRequestError, match="no such local file"):
        MidjourneyDescribeOperator(task_id="t", image=str(tmp_path)).execute({"ti": _TI()})
    assert emulator.requests == []
