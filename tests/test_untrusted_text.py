"""Untrusted vendor text and what the provider makes of it (classes 3, 7 and 9 of issue #18).

Parsers read crafted text correctly and only a bounded part of it (how fast they are is measured in
benchmarks/hostile_answers.py, not asserted here); moderation patterns that could backtrack are
refused when the connection is read; every backend's job passes one normalisation that drops
script/data/file links, redacts echoed secrets and refuses ids that are not ids.
"""

from __future__ import annotations

import asyncio
import json
from typing import Any

import pytest

from airflow_provider_midjourney.exceptions import (
    AirflowFailException,
    MidjourneyConfigurationError,
    MidjourneyInvalidRequestError,
    MidjourneyMalformedAnswerError,
)
from airflow_provider_midjourney.hooks.imaginepro_models import Message
from airflow_provider_midjourney.hooks.midjourney_proxy import proxy_options
from airflow_provider_midjourney.hooks.midjourney_proxy_models import Task
from airflow_provider_midjourney.hooks.useapi_v2_models import V2Job
from airflow_provider_midjourney.hooks.useapi_v3_models import Job
from airflow_provider_midjourney.job import MidjourneyJob
from airflow_provider_midjourney.job_requests import ImagineRequest
from airflow_provider_midjourney.redaction import register_secret
from airflow_provider_midjourney.text_patterns import (
    MAX_SCANNED_TEXT,
    MODERATION_TEXT_LIMIT,
    compile_moderation_patterns,
    keycap_items,
    labelled_number,
    matches_any,
    moderation_patterns,
)
from airflow_provider_midjourney.vocabulary import JobStatus
from tests.hostile import Answer, hostile_server
from tests.test_hostile_transport import BACKENDS, TOKEN, make_hook

SPACES = " " * 20_000

# -- class 3: linear parsing; moderation patterns that cannot freeze the loop ----------------------

SLOW_PATTERNS = ["(a+)+$", "(a*)*b", "(a|aa)+$", r"(\w+\s?)+$", r"(x)\1", r".*a.*b", r"\s*:\s*x"]


@pytest.mark.parametrize("pattern", SLOW_PATTERNS)
def test_patterns_that_can_backtrack_are_refused_naming_the_field(pattern: str) -> None:
    for read in (
        lambda: moderation_patterns(pattern, "ip"),
        lambda: proxy_options({"moderation_patterns": [pattern]}, "px"),
    ):
        with pytest.raises(MidjourneyConfigurationError, match="moderation_patterns") as refused:
            read()
        assert isinstance(refused.value, AirflowFailException)  # a configuration error: never retried


def test_a_pattern_that_does_not_compile_is_a_configuration_error() -> None:
    for read in (lambda: moderation_patterns("([a", "ip"), lambda: proxy_options({"moderation_patterns": "("}, "px")):
        with pytest.raises(MidjourneyConfigurationError, match=r"moderation_patterns.*invalid regular expression"):
            read()


def test_allowed_patterns_still_match_and_their_repeats_are_capped() -> None:
    [phrase, keyword] = compile_moderation_patterns([r"banned.*prompt", r"\bnsfw\b"], "f")
    assert phrase.search("BANNED this prompt") and keyword.search("was nsfw.")
    assert not phrase.search("banned " + "x" * 40 + " prompt")  # an unbounded repeat matches at most 32
    text = "x" * MODERATION_TEXT_LIMIT + " nsfw"
    assert not matches_any([keyword], text)  # only the start of a reason is read
    assert matches_any([keyword], text[-10:])


def test_parsers_read_crafted_whitespace_right() -> None:
    assert labelled_number("**seed**" + SPACES + ":" + " " * 10 + "42 rest", "seed") is None  # past the bound
    assert labelled_number("**Seed** :  3937070146 --v 6", "seed") == 3937070146
    assert labelled_number("**seed**" + " " * 100 + "x", "seed") is None
    items = keycap_items("1️⃣ a cat" + " " * 5000 + "2️⃣ a dog 3⃣  " + SPACES)
    assert items == ["a cat", "a dog", ""]
    late = keycap_items("2️⃣ x" * 10 + "x" * MAX_SCANNED_TEXT + "1️⃣ late")
    assert len(late) == 10 and "late" not in "".join(late)  # text past the bound is not read


def test_every_backends_model_reads_crafted_content() -> None:
    """The regexes these replace took seconds on this text; the answers must still be read right."""
    content = "**a cat**" + SPACES + "**seed** " + SPACES
    v3 = Job.model_validate(
        {"jobid": "j1", "verb": "seed", "status": "completed", "created": "x", "response": {"content": content}}
    )
    assert v3.normalised().seed is None and v3.echoed_prompt == "a cat"
    v2 = V2Job.model_validate({"jobid": "j2", "verb": "seed", "status": "completed", "content": content})
    assert v2.normalised("useapi_v2").seed is None
    describe = "1. a cat" + SPACES[:5000] + "2. a dog" + SPACES
    message = Message.model_validate({"messageId": "m-1234567", "status": "DONE", "prompt": describe})
    assert message.describe_prompts() == ["a cat", "a dog"]
    task = Task.model_validate({"id": "7", "status": "IN_PROGRESS", "progress": "5" + SPACES + "x"})
    assert task.progress_percent is None
    assert Task.model_validate({"id": "7", "status": "IN_PROGRESS", "progress": " 42.5 % "}).progress_percent == 42
    crafted = Message.model_validate({"messageId": "m-1234567", "status": "PROCESSING", "progress": "5" + SPACES + "x"})
    assert crafted.progress is None
    assert Message.model_validate({"messageId": "m-1234567", "status": "PROCESSING", "progress": " 7 %"}).progress == 7


# -- class 7: echoed secrets; class 9: links, ids and text ----------------------------------------


def echoing_server(backend: str) -> Any:
    """A running job whose every text echoes the token and whose links are hostile."""
    job_id = BACKENDS[backend][2]
    echo = f"token {TOKEN} and half of it {TOKEN[4:16]}"
    bad = ["javascript:alert(1)", "data:text/html,<script>", "file:///etc/passwd", "https://cdn.example/ok.png"]
    answers = {
        "useapi_v3": {
            "jobid": job_id,
            "verb": "imagine",
            "status": "completed",
            "created": "x",
            "request": {"prompt": echo},
            "response": {"content": f"**{echo}**", "attachments": [{"url": u} for u in bad]},
            "error": echo,
        },
        "useapi_v2": {
            "jobid": job_id,
            "verb": "imagine",
            "status": "completed",
            "prompt": echo,
            "content": f"**{echo}**",
            "attachments": [{"url": u} for u in bad],
            "imageUrls": bad,
        },
        "imaginepro": {"messageId": job_id, "status": "DONE", "prompt": echo, "uri": bad[0], "images": bad},
        "midjourney_proxy": {
            "id": job_id,
            "status": "SUCCESS",
            "prompt": echo,
            "promptEn": echo,
            "imageUrl": bad[1],
            "imageUrls": [{"url": u} for u in bad],
            "description": echo,
        },
    }
    body = json.dumps(answers[backend]).encode()
    return lambda seen: Answer(body=body)


@pytest.mark.parametrize("backend", sorted(BACKENDS))
def test_echoed_tokens_and_hostile_links_never_reach_results(backend: str) -> None:
    register_secret(TOKEN)
    job_id = BACKENDS[backend][2]
    with hostile_server(echoing_server(backend)) as api:
        job = make_hook(backend, api.base_url).fetch_job(job_id)

        async def poll() -> MidjourneyJob:
            async with make_hook(backend, api.base_url, shared=True) as trigger_hook:
                return await trigger_hook.afetch_job(job_id)

        polled = asyncio.run(poll())
    for result in (job, polled):
        shown = json.dumps([result.to_xcom(), result.to_event()])
        assert TOKEN not in shown and TOKEN[4:16] not in shown, shown
        for scheme in ("javascript:", "data:", "file:"):
            assert scheme not in shown, shown
        assert all(u.startswith(("http://", "https://")) for u in [*result.image_urls, result.grid_url or "http://"])


@pytest.mark.parametrize("backend", sorted(BACKENDS))
def test_a_poll_answered_about_another_job_is_refused(backend: str) -> None:
    asked = BACKENDS[backend][2]
    other = {
        "useapi_v3": "j1202005345571271493i-u12345-c1000000000000000001-bot:other",
        "useapi_v2": "job-9999999999",
        "imaginepro": "ffffffff-229a-442b-9873-d3494dede12a",
        "midjourney_proxy": "1799999999999999",
    }[backend]
    id_key = {"useapi_v3": "jobid", "useapi_v2": "jobid", "imaginepro": "messageId", "midjourney_proxy": "id"}[backend]
    answer = {
        "useapi_v3": {"verb": "imagine", "status": "started", "created": "x"},
        "useapi_v2": {"verb": "imagine", "status": "started"},
        "imaginepro": {"status": "PROCESSING"},
        "midjourney_proxy": {"status": "IN_PROGRESS"},
    }[backend] | {id_key: other}
    with hostile_server(lambda seen: Answer(body=json.dumps(answer).encode())) as api:
        with pytest.raises(MidjourneyMalformedAnswerError, match="answered about job"):
            make_hook(backend, api.base_url).fetch_job(asked)

        async def poll() -> None:
            async with make_hook(backend, api.base_url, shared=True) as trigger_hook:
                with pytest.raises(MidjourneyMalformedAnswerError, match="answered about job"):
                    await trigger_hook.afetch_job(asked)

        asyncio.run(poll())


@pytest.mark.parametrize("bad_id", ["../../admin", "a/b", "x?y=1", "%2e%2e", "", "a" * 300])
def test_ids_with_path_characters_are_refused(bad_id: str) -> None:
    with pytest.raises(MidjourneyMalformedAnswerError, match="not a job id"):
        MidjourneyJob(job_id=bad_id, backend="x", status=JobStatus.CREATED, verb="imagine")
    for backend in BACKENDS:  # the fetch refuses before any request: the server is never asked
        with (
            hostile_server(lambda seen: Answer()) as api,
            pytest.raises(MidjourneyInvalidRequestError, match=r"job_?id"),
        ):
            make_hook(backend, api.base_url).fetch_job(bad_id)
        assert api.seen == []


@pytest.mark.parametrize("backend", sorted(BACKENDS))
def test_a_submit_answered_with_a_path_as_id_is_not_a_job(backend: str) -> None:
    answers = {
        "useapi_v3": {"jobid": "../../x", "verb": "imagine", "status": "created", "created": "x"},
        "useapi_v2": {"jobid": "../../x", "verb": "imagine", "status": "created"},
        "imaginepro": {"success": True, "messageId": "../../x"},
        "midjourney_proxy": {"code": 1, "description": "ok", "result": "../../x"},
    }
    server = hostile_server(lambda seen: Answer(body=json.dumps(answers[backend]).encode()))
    with server as api, pytest.raises((MidjourneyMalformedAnswerError, MidjourneyInvalidRequestError)):
        make_hook(backend, api.base_url).submit_job(ImagineRequest.build(prompt="a cat"))


@pytest.mark.parametrize("prompt", ["a \ud800 cat", None, 3, ["a"]])
def test_a_prompt_that_is_not_text_is_an_invalid_request_naming_the_field(prompt: Any) -> None:
    with pytest.raises(MidjourneyInvalidRequestError, match="prompt"):
        ImagineRequest.build(prompt=prompt)
