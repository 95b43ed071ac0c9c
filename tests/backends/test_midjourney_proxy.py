"""The midjourney-proxy backend: contract samples, the hook against the emulator, and dag.test() runs.

Both flavours of the server are exercised: novicezk's original (``/submit/change``, one grid
``imageUrl``, no seed, no cancel) and trueai-org's superset (``buttons[].customId`` through
``/submit/action``, four ``imageUrls``, ``image-seed``, ``cancel``, mode prefixes). The samples in
``tests/fixtures/midjourney_proxy`` come from the servers' docs and sources
(``build_midjourney_proxy_fixtures.py`` says which).
"""

from __future__ import annotations

import asyncio
import importlib.util
import json
from collections.abc import Iterator
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import httpx
import pytest

from airflow_provider_midjourney.exceptions import (
    MidjourneyAuthError,
    MidjourneyBusyError,
    MidjourneyError,
    MidjourneyInvalidRequestError,
    MidjourneyModeratedError,
    MidjourneyNotFoundError,
    MidjourneyServerError,
    MidjourneyTransportError,
    MidjourneyUnsupportedError,
    MidjourneyValidationError,
)
from airflow_provider_midjourney.hooks.base import Capability, hook_for_connection
from airflow_provider_midjourney.hooks.midjourney_proxy import (
    MidjourneyProxyHook,
    proxy_options,
    state_for,
)
from airflow_provider_midjourney.hooks.midjourney_proxy_models import (
    DEFAULT_MODERATION_PATTERNS,
    SubmitResult,
    Task,
    compile_patterns,
    describe_prompts,
)
from airflow_provider_midjourney.job_requests import (
    BlendRequest,
    ButtonRequest,
    DescribeRequest,
    ImagineRequest,
    SeedRequest,
    SettingsRequest,
)
from airflow_provider_midjourney.testing import MidjourneyEmulator
from airflow_provider_midjourney.testing.images import png_bytes
from airflow_provider_midjourney.testing.midjourney_proxy import MidjourneyProxyRoutes, proxy_routes
from airflow_provider_midjourney.vocabulary import JobStatus
from tests.conftest import FAST_RETRY, FAST_TIMINGS, TOKEN
from tests.dag_runs import run_dag, task_states, xcom

FIXTURES = Path(__file__).parents[1] / "fixtures" / "midjourney_proxy"
GRID_CROPPING = importlib.util.find_spec("airflow_provider_midjourney.grid") is not None
MODERATION = compile_patterns(DEFAULT_MODERATION_PATTERNS)
SUBMIT = "/mj/submit/"


def sample(name: str) -> Any:
    return json.loads((FIXTURES / f"{name}.json").read_text(encoding="utf-8"))


def proxy_connection(base_url: str, token: str | None = TOKEN, **extra: object) -> str:
    return json.dumps({"conn_type": "midjourney_proxy", "host": base_url, "password": token, "extra": extra})


def conn(base_url: str, token: str | None = TOKEN, **extra: object) -> SimpleNamespace:
    return SimpleNamespace(
        host=base_url, port=None, password=token, extra_dejson=extra, conn_type="midjourney_proxy", conn_id="x"
    )


@pytest.fixture(params=["original", "superset"])
def flavour(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
def proxy(
    emulator: MidjourneyEmulator, flavour: str, monkeypatch: pytest.MonkeyPatch
) -> Iterator[MidjourneyProxyRoutes]:
    """The session emulator's midjourney-proxy side in ``flavour``; ``midjourney_default`` points at it."""
    routes = proxy_routes(emulator)
    routes.reset()
    routes.superset = flavour == "superset"
    MidjourneyProxyHook.forget_probes()
    monkeypatch.setenv("AIRFLOW_CONN_MIDJOURNEY_DEFAULT", proxy_connection(emulator.base_url))
    yield routes
    routes.reset()
    MidjourneyProxyHook.forget_probes()


@pytest.fixture
def hook(proxy: MidjourneyProxyRoutes, emulator: MidjourneyEmulator) -> Iterator[MidjourneyProxyHook]:
    with MidjourneyProxyHook("x", connection=conn(emulator.base_url), retry=FAST_RETRY) as made:
        yield made


def submits(emulator: MidjourneyEmulator) -> list[Any]:
    return emulator.requests_to("POST", SUBMIT)


def wait_done(hook: MidjourneyProxyHook, job_id: str) -> Any:
    for _ in range(200):  # bounded: 200 x 0.02 s
        job = hook.fetch_job(job_id)
        if job.is_terminal:
            return job
        asyncio.run(asyncio.sleep(0.02))
    raise AssertionError(f"{job_id} did not finish")


# -- contract: the servers' own samples ------------------------------------------------------------


def test_submit_samples_parse_with_their_codes() -> None:
    codes = {name: SubmitResult.model_validate(sample(f"submit-code-{name}")).code for name in (1, 21, 22, 23, 24)}
    assert codes == {1: 1, 21: 21, 22: 22, 23: 23, 24: 24}
    banned = SubmitResult.model_validate(sample("submit-code-24"))
    assert "bannedWord=nude" in banned.text and "banned prompt" in banned.text


@pytest.mark.parametrize(
    ("name", "error", "fragment"),
    [
        ("submit-code-23", MidjourneyBusyError, "queue full"),
        ("submit-code-24", MidjourneyModeratedError, "not resubmitted"),
    ],
)
def test_submit_codes_map_onto_the_exception_tree(name: str, error: type[Exception], fragment: str) -> None:
    made = MidjourneyProxyHook("x", connection=conn("http://127.0.0.1:9"))
    response = httpx.Response(200, json=sample(name), request=httpx.Request("POST", "http://127.0.0.1:9/mj/x"))
    with pytest.raises(error, match=fragment):
        made._raise_for_response(response, "POST", "/mj/submit/imagine")
    for ok in ("submit-code-1", "submit-code-21", "submit-code-22"):
        made._raise_for_response(httpx.Response(200, json=sample(ok)), "POST", "/mj/submit/imagine")


def test_original_describe_task_gives_four_prompts() -> None:
    job = Task.model_validate(sample("describe-task")).normalised("midjourney_proxy", MODERATION)
    assert (job.status, job.verb) == (JobStatus.COMPLETED, "describe")
    assert job.prompts == ["Cat --ar 5:4", "Cat2 --ar 5:4", "Cat3 --ar 5:4", "Cat4 --ar 5:4"]
    assert job.to_xcom()["prompts"] == job.prompts


def test_original_imagine_task_is_one_grid() -> None:
    job = Task.model_validate(sample("callback-imagine-task")).normalised("midjourney_proxy", MODERATION)
    assert (job.status, job.verb, job.prompt) == (JobStatus.COMPLETED, "imagine", "Cat")
    assert job.grid_url and job.grid_url.endswith("xxxx.png") and job.image_urls == [] and job.buttons == []


def test_superset_task_gives_four_images_buttons_and_seed() -> None:
    task = Task.model_validate(sample("superset-imagine-task"))
    job = task.normalised("midjourney_proxy", MODERATION)
    assert len(job.image_urls) == 4 and all(u.endswith(f"0_{i}.png") for i, u in enumerate(job.image_urls))
    assert job.buttons == ["U1", "U2", "U3", "U4", "🔄", "V1", "V2", "V3", "V4"]
    assert job.seed == 3937070146 and job.reply_ref == "airflow:dag/run/task/-1"
    assert (task.custom_id_for("U2") or "").startswith("MJ::JOB::upsample::2::")
    assert (
        task.custom_id_for(
            "🔄",
        )
        and task.custom_id_for("Zoom Out 2x") is None
    )


def test_superset_describe_buttons_are_named_by_their_emoji() -> None:
    task = Task.model_validate({"id": "1", "status": "SUCCESS", "buttons": sample("superset-describe-buttons")})
    assert task.button_names == ["1️⃣", "2️⃣", "3️⃣", "4️⃣", "🔄"]


@pytest.mark.parametrize(
    ("reason", "status"),
    [
        ("可能包含敏感词", "moderated"),
        ("[Banned prompt detected] Sorry! Please try a different prompt.", "moderated"),
        ("Image denied", "moderated"),
        ("提示词未通过审核", "moderated"),
        ("任务超时", "failed"),
        ("取消任务", "failed"),
        ("[Invalid parameter] Invalid value", "failed"),
        (None, "failed"),
    ],
)
def test_failure_reasons_are_classified(reason: str | None, status: str) -> None:
    task = Task.model_validate({"id": "7", "action": "IMAGINE", "status": "FAILURE", "failReason": reason})
    job = task.normalised("midjourney_proxy", MODERATION)
    assert str(job.status) == status and job.is_terminal and job.error == reason


def test_moderation_patterns_are_configurable() -> None:
    custom = proxy_options({"moderation_patterns": "nope|refus"}, "c").moderation
    task = Task.model_validate({"id": "7", "status": "FAILURE", "failReason": "Refused by policy"})
    assert task.normalised("b", custom).status == JobStatus.MODERATED
    assert task.normalised("b", MODERATION).status == JobStatus.FAILED
    listed = proxy_options({"moderation_patterns": ["a+", "b"]}, "c").moderation
    assert [bool(p.fullmatch("aaa")) for p in listed] == [True, False] and listed[1].search("xbx")
    with pytest.raises(MidjourneyError, match=r"moderation_patterns.*'\('"):
        proxy_options({"moderation_patterns": "("}, "c")


@pytest.mark.parametrize(
    ("status", "progress", "expected", "percent"),
    [
        ("NOT_START", None, "created", None),
        ("SUBMITTED", "0%", "started", 0),
        ("MODAL", "0%", "started", 0),
        ("IN_PROGRESS", "37%", "progress", 37),
        ("IN_PROGRESS", 52, "progress", 52),
        ("SUCCESS", "100%", "completed", 100),
        ("CANCEL", "", "failed", None),
        ("SOMETHING_NEW", "5%", "something_new", 5),
    ],
)
def test_statuses_and_progress(status: str, progress: Any, expected: str, percent: int | None) -> None:
    job = Task.model_validate({"id": "9", "status": status, "progress": progress}).normalised("b", MODERATION)
    assert (str(job.status), job.progress_percent) == (expected, percent)
    assert job.is_terminal == (expected in ("completed", "failed"))


def test_describe_prompts_one_per_line_too() -> None:
    assert describe_prompts("a cat\r\nthe dog\r\n\r\n") == ["a cat", "the dog"]


def test_long_reply_refs_become_a_stable_short_state() -> None:
    ref = "airflow:" + "x" * 600
    assert state_for(ref) == state_for(ref) and len(state_for(ref) or "") <= 255
    assert state_for("short") == "short" and state_for(None) is None


# -- connection --------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("extra", "fragment"),
    [
        ({"path_prefix": "mj/../../x"}, "path_prefix"),
        ({"path_prefix": 5}, "path_prefix"),
        ({"flavour": "plus"}, "flavour"),
        ({"moderation_patterns": 3}, "moderation_patterns"),
    ],
)
def test_bad_extras_are_refused_before_any_request(emulator, extra: dict[str, Any], fragment: str) -> None:
    made = MidjourneyProxyHook("x", connection=conn(emulator.base_url, **extra))
    with pytest.raises(MidjourneyError, match=fragment):
        made.submit_job(ImagineRequest.build(prompt="a cat"))
    assert emulator.requests == []


def test_a_connection_without_host_names_it(emulator) -> None:
    made = MidjourneyProxyHook("x", connection=conn(""))
    with pytest.raises(MidjourneyError, match="no host"):
        made.supported_capabilities()
    assert made.test_connection()[0] is False


def test_mode_prefixes_route_as_the_superset_does() -> None:
    assert proxy_options({"path_prefix": "/mj-relax"}, "c").path_prefix == "/mj-relax/mj"
    assert proxy_options({"path_prefix": "/api/mj/"}, "c").path_prefix == "/api/mj"
    assert proxy_options({"path_prefix": ""}, "c").path_prefix == ""
    assert proxy_options({}, "c").path_prefix == "/mj"


def test_hook_for_connection_picks_the_proxy_hook(proxy, emulator) -> None:
    made = hook_for_connection("midjourney_default")
    assert isinstance(made, MidjourneyProxyHook) and made.backend == "midjourney_proxy"
    assert made.connection_settings.base_url == emulator.base_url


def test_test_button_is_honest(proxy, emulator) -> None:
    ok, message = MidjourneyProxyHook("x", connection=conn(emulator.base_url)).test_connection()
    assert ok and "midjourney-proxy" in message and TOKEN not in message
    ok, message = MidjourneyProxyHook("x", connection=conn(emulator.base_url, path_prefix="/v9")).test_connection()
    assert not ok and "does not look like" in message
    ok, message = MidjourneyProxyHook("x", connection=conn(emulator.base_url, token="wrong")).test_connection()
    assert not ok and "401" in message and "wrong" not in message


def test_the_secret_goes_in_mj_api_secret_only_when_set(proxy, emulator) -> None:
    wrong = MidjourneyProxyHook("x", connection=conn(emulator.base_url, token="wrong"), retry=FAST_RETRY)
    with wrong, pytest.raises(MidjourneyAuthError):
        wrong.submit_job(ImagineRequest.build(prompt="a cat"))
    assert all(not r.authorized for r in emulator.requests) and emulator.created_jobs() == []
    without = MidjourneyProxyHook("x", connection=conn(emulator.base_url, token=None))
    assert without._auth(without.connection_settings) is None
    assert isinstance(wrong._auth(wrong.connection_settings), httpx.Auth)


def test_a_server_without_secret_needs_no_password() -> None:
    with MidjourneyEmulator(token=None, timings=FAST_TIMINGS) as open_server:
        made = MidjourneyProxyHook("x", connection=conn(open_server.base_url, token=None), retry=FAST_RETRY)
        with made:
            job = wait_done(made, made.submit_job(ImagineRequest.build(prompt="no secret here")).job_id)
            assert job.status == JobStatus.COMPLETED and made.test_connection()[0]


# -- capabilities ------------------------------------------------------------------------------------


def test_capabilities_are_probed_once_and_cached(hook, emulator, flavour) -> None:
    found = hook.supported_capabilities()
    superset = {Capability.SEED, Capability.CANCEL, Capability.SEPARATE_IMAGES}
    assert (superset <= found) == (flavour == "superset") and Capability.IMAGINE in found
    assert Capability.SETTINGS not in found
    assert ({Capability.VIDEO, Capability.VIDEO_EXTEND} <= found) == (flavour == "superset")  # /submit/video
    probes = len(emulator.requests)
    assert probes == 2
    again = MidjourneyProxyHook("x", connection=conn(emulator.base_url))
    assert again.supported_capabilities() == found and len(emulator.requests) == probes


def test_the_flavour_extra_skips_the_probe(proxy, emulator) -> None:
    made = MidjourneyProxyHook("x", connection=conn(emulator.base_url, flavour="original"))
    assert Capability.SEED not in made.supported_capabilities() and emulator.requests == []


def test_what_the_server_lacks_fails_before_the_job_request(hook, emulator, flavour) -> None:
    with pytest.raises(MidjourneyUnsupportedError, match="settings"):
        hook.submit_job(SettingsRequest.build(command="fast"))
    if flavour == "original":
        with pytest.raises(MidjourneyUnsupportedError, match="'seed' capability"):
            hook.submit_job(SeedRequest.build(job_id="1689231405853400"))
        with pytest.raises(MidjourneyUnsupportedError, match="/submit/action"):
            hook.submit_job(ButtonRequest.build(job_id="1689231405853400", button="Zoom Out 2x"))
        with pytest.raises(MidjourneyUnsupportedError, match="'cancel' capability"):
            hook.cancel("1689231405853400")
    assert submits(emulator) == []


@pytest.mark.parametrize(
    ("request_", "fragment"),
    [
        (ImagineRequest.build(prompt="a", channel="123"), "channel"),
        (ImagineRequest.build(prompt="a", reply_level="all"), "replyLevel"),
        (ButtonRequest.build(job_id="1", button="Vary (Region)", mask="eA=="), "mask"),
        (ButtonRequest.build(job_id="1", button="V1", prompt="remix"), "prompt"),
    ],
)
def test_what_the_api_cannot_take_is_refused_by_name(hook, emulator, request_: Any, fragment: str) -> None:
    with pytest.raises(MidjourneyInvalidRequestError, match=fragment):
        hook.submit_job(request_)
    assert submits(emulator) == []


# -- jobs through the hook -----------------------------------------------------------------------------


def test_imagine_and_upscales(hook, emulator, flavour) -> None:
    emulator.set_channel_limits(emulator.channels[0], max_jobs=4, max_image_jobs=4)  # four at once
    grid = wait_done(hook, hook.submit_job(ImagineRequest.build(prompt="a red fox", reply_ref="ref-a")).job_id)
    assert grid.status == JobStatus.COMPLETED and grid.grid_url and grid.reply_ref == "ref-a"
    assert len(grid.image_urls) == (4 if flavour == "superset" else 0)
    ups = [hook.submit_job(ButtonRequest.build(job_id=grid.job_id, button=f"U{n}")) for n in range(1, 5)]
    done = [wait_done(hook, u.job_id) for u in ups]
    assert all(len(d.image_urls) == 1 and d.verb == "button" for d in done)
    route = "action" if flavour == "superset" else "change"
    sent = [r.json or {} for r in submits(emulator) if r.path.endswith(route)]
    assert len(sent) == 4 and len(emulator.created_jobs("button")) == 4
    if flavour == "superset":
        assert {s["customId"].split("::")[3] for s in sent} == {"1", "2", "3", "4"}
        assert all(s["customId"].startswith("MJ::JOB::upsample::") for s in sent)
    else:
        assert {s.get("index") for s in sent} == {1, 2, 3, 4} and {s.get("action") for s in sent} == {"UPSCALE"}


def test_an_upscale_pressed_twice_reattaches_by_code_21(hook, emulator) -> None:
    grid = wait_done(hook, hook.submit_job(ImagineRequest.build(prompt="twice")).job_id)
    first = hook.submit_job(ButtonRequest.build(job_id=grid.job_id, button="U2"))
    second = hook.submit_job(ButtonRequest.build(job_id=grid.job_id, button="U2"))
    assert first.job_id == second.job_id and len(emulator.created_jobs("button")) == 1


def test_code_24_is_moderated_and_creates_nothing(hook, emulator) -> None:
    with pytest.raises(MidjourneyModeratedError, match="bannedWord=banned"):
        hook.submit_job(ImagineRequest.build(prompt="a banned thing"))
    assert len(submits(emulator)) == 1 and emulator.created_jobs() == []


def test_code_23_is_busy_and_retried(hook, emulator, proxy) -> None:
    proxy.force_code_next(23, 2)
    job = hook.submit_job(ImagineRequest.build(prompt="busy then fine"))
    assert len(submits(emulator)) == 3 and [j["jobid"] for j in emulator.created_jobs()] and job.job_id
    proxy.force_code_next(23, 10)
    with pytest.raises(MidjourneyBusyError, match="queue full"):
        hook.submit_job(ImagineRequest.build(prompt="always busy"))


def test_a_busy_channel_answers_23(hook, emulator) -> None:
    emulator.set_channel_limits(emulator.channels[0], max_jobs=1, max_image_jobs=1)
    emulator.never_finish = True
    hook.submit_job(ImagineRequest.build(prompt="first"))
    with pytest.raises(MidjourneyBusyError):
        hook.submit_job(ImagineRequest.build(prompt="second"))
    assert len(emulator.created_jobs()) == 1


def test_codes_4_and_9_are_clear_errors(hook, emulator) -> None:
    emulator.never_finish = True
    running = hook.submit_job(ImagineRequest.build(prompt="still running"))
    with pytest.raises(MidjourneyValidationError, match="return code 4"):
        hook.submit_job(ButtonRequest.build(job_id=running.job_id, button="U1"))
    emulator.lock_channel(emulator.channels[0])
    with pytest.raises(MidjourneyServerError, match="return code 9"):
        hook.submit_job(ImagineRequest.build(prompt="locked"))


def test_forced_21_and_22_are_created_tasks(hook, emulator, proxy) -> None:
    proxy.force_code_next(21)
    existing = hook.submit_job(ImagineRequest.build(prompt="exists"))
    proxy.force_code_next(22)
    queued = hook.submit_job(ImagineRequest.build(prompt="queued"))
    assert existing.job_id != queued.job_id and queued.status == JobStatus.CREATED
    assert len(submits(emulator)) == 2 and len(emulator.created_jobs()) == 2


def test_failure_with_a_refusal_reason_is_moderated(hook, emulator, proxy, flavour) -> None:
    job = wait_done(hook, hook.submit_job(ImagineRequest.build(prompt="something forbidden")).job_id)
    assert job.status == JobStatus.MODERATED
    assert ("敏感词" in (job.error or "")) == (flavour == "superset")
    failed = wait_done(hook, hook.submit_job(ImagineRequest.build(prompt="explode now")).job_id)
    assert failed.status == JobStatus.FAILED and failed.error


def test_blend_sends_base64_data_urls(hook, emulator, tmp_path: Path) -> None:
    paths = []
    for n in range(3):
        paths.append(tmp_path / f"in{n}.png")
        paths[-1].write_bytes(png_bytes(f"blend-{n}"))
    request = BlendRequest.from_images([str(p) for p in paths], blend_dimensions="Portrait")
    job = wait_done(hook, hook.submit_job(request).job_id)
    assert job.status == JobStatus.COMPLETED and job.verb == "blend"
    [sent] = [r.json for r in submits(emulator)]
    assert sent and sent["dimensions"] == "PORTRAIT" and len(sent["base64Array"]) == 3
    assert all(s.startswith("data:image/png;base64,") for s in sent["base64Array"])


def test_describe_of_a_url_fetches_the_image_first(hook, emulator) -> None:
    grid = wait_done(hook, hook.submit_job(ImagineRequest.build(prompt="describe me")).job_id)
    job = wait_done(hook, hook.submit_job(DescribeRequest.from_image(grid.grid_url)).job_id)
    assert job.verb == "describe" and len(job.prompts) == 4 and all(job.prompts)
    [sent] = [r.json for r in submits(emulator) if r.path.endswith("describe")]
    assert sent and sent["base64"].startswith("data:image/png;base64,")


def test_a_url_that_is_no_image_is_refused(hook, emulator) -> None:
    with pytest.raises(MidjourneyError):
        hook.submit_job(DescribeRequest.from_image(f"{emulator.base_url}/cdn/nothing/here.png"))
    assert [r for r in submits(emulator) if r.path.endswith("describe")] == []


def test_imagine_with_reference_images(hook, emulator, tmp_path: Path) -> None:
    ref = tmp_path / "ref.png"
    ref.write_bytes(png_bytes("ref"))
    hook.imagine("a cat like this", images=[str(ref), png_bytes("other")])
    [sent] = [r.json for r in submits(emulator)]
    assert sent and len(sent["base64Array"]) == 2


def test_seed_and_cancel_on_the_superset(hook, emulator, flavour) -> None:
    if flavour == "original":
        pytest.skip("the original server has neither")
    grid = wait_done(hook, hook.submit_job(ImagineRequest.build(prompt="seeded")).job_id)
    seed = hook.submit_job(SeedRequest.build(job_id=grid.job_id))
    assert seed.verb == "seed" and isinstance(seed.seed, int) and seed.is_terminal
    assert hook.fetch_job(seed.job_id).seed == seed.seed and hook.fetch_job(grid.job_id).seed == seed.seed
    emulator.never_finish = True
    running = hook.submit_job(ImagineRequest.build(prompt="cancel me"))
    hook.cancel(running.job_id)
    job = hook.fetch_job(running.job_id)
    assert job.status == JobStatus.FAILED and job.error == "取消任务"


def test_a_superset_button_by_custom_id(hook, emulator, flavour) -> None:
    if flavour == "original":
        pytest.skip("custom ids are the superset's")
    grid = wait_done(hook, hook.submit_job(ImagineRequest.build(prompt="zoom")).job_id)
    up = wait_done(hook, hook.submit_job(ButtonRequest.build(job_id=grid.job_id, button="U1")).job_id)
    zoom = wait_done(hook, hook.submit_job(ButtonRequest.build(job_id=up.job_id, button="Zoom Out 2x")).job_id)
    assert zoom.status == JobStatus.COMPLETED and len(zoom.buttons) > 0
    with pytest.raises(MidjourneyInvalidRequestError, match="no 'U1' button"):
        hook.submit_job(ButtonRequest.build(job_id=up.job_id, button="U1"))


def test_mode_prefix_on_the_superset(proxy, emulator, flavour) -> None:
    with MidjourneyProxyHook("x", connection=conn(emulator.base_url, path_prefix="/mj-relax"), retry=FAST_RETRY) as h:
        if flavour == "original":
            with pytest.raises(MidjourneyNotFoundError):
                h.submit_job(ImagineRequest.build(prompt="relaxed"))
            return
        job = h.submit_job(ImagineRequest.build(prompt="relaxed"))
        assert proxy.tasks[job.job_id].mode == "relax"
        assert [r.path for r in emulator.requests_to("POST", "/mj-relax/mj/submit/")] == ["/mj-relax/mj/submit/imagine"]


def test_unknown_and_malformed_tasks(hook, emulator) -> None:
    with pytest.raises(MidjourneyNotFoundError):
        hook.fetch_job("1689231405853400")
    with pytest.raises(MidjourneyInvalidRequestError, match="job_id"):
        hook.fetch_job("../../etc")
    emulator.fail_next(1, status=200, path_prefix="/mj/task/", error="not a task")
    with pytest.raises(MidjourneyTransportError, match="not a task"):
        hook.fetch_job("1689231405853400")


def test_list_running_find_by_ref_and_many_in_one_call(hook, emulator, proxy) -> None:
    emulator.never_finish = True
    a = hook.submit_job(ImagineRequest.build(prompt="one", reply_ref="ref-1"))
    b = hook.submit_job(ImagineRequest.build(prompt="two", reply_ref="ref-2"))
    found = hook.find_job_by_reply_ref("ref-2")
    assert found is not None and found.job_id == b.job_id and hook.find_job_by_reply_ref("nope") is None

    async def lists() -> list[set[str] | None]:
        async with MidjourneyProxyHook("x", connection=conn(emulator.base_url)) as ahook:
            seen = [await ahook.alist_running_job_ids()]  # nothing watched yet: nothing asked
            await ahook.afetch_job(a.job_id)  # a trigger's fetch of a running task watches it
            await ahook.afetch_job(b.job_id)
            seen.append(await ahook.alist_running_job_ids())
            emulator.complete_job(proxy.tasks[a.job_id].jobid)
            seen.append(await ahook.alist_running_job_ids())
            seen.append(await ahook.alist_running_job_ids())  # a finished: not asked about any more
            seen.append(set(await ahook.afetch_jobs([a.job_id, b.job_id, "404"])))
            return seen

    before = len(emulator.requests_to("POST", "/mj/task/list-by-condition"))
    assert asyncio.run(lists()) == [set(), {a.job_id, b.job_id}, {b.job_id}, {b.job_id}, {a.job_id, b.job_id}]
    calls = emulator.requests_to("POST", "/mj/task/list-by-condition")[before:]
    assert [(r.json or {})["ids"] for r in calls[:3]] == [[a.job_id, b.job_id], [a.job_id, b.job_id], [b.job_id]]


# -- dag.test() ------------------------------------------------------------------------------------------


def run_proxy_dag(name: str, body: str) -> Any:
    return run_dag(name, body, native=True)


dag_test = pytest.mark.usefixtures("airflow_db")


@dag_test
def test_dag_imagine_upscale_download(proxy, emulator, flavour, tmp_path: Path) -> None:
    # The original server gives only the grid: with grid cropping (grid.py) the download cuts it in four.
    kind = "images" if flavour == "superset" or GRID_CROPPING else "grid"
    dr = run_proxy_dag(
        f"proxy_pipeline_{flavour}",
        f"""
        imagine = MidjourneyImagineOperator(task_id="imagine", prompt="a lighthouse", poll_interval=0.05)
        upscale = MidjourneyButtonOperator.partial(
            task_id="upscale", job_id=imagine.output["job_id"], poll_interval=0.05
        ).expand(button=["U1", "U2", "U3", "U4"])
        pictures = MidjourneyDownloadOperator(
            task_id="pictures", destination={str(tmp_path / "up")!r},
            urls="{{{{ ti.xcom_pull(task_ids='upscale') | map(attribute='image_urls') | map('first') | list }}}}",
        )
        grid = MidjourneyDownloadOperator(
            task_id="grid", job_id=imagine.output["job_id"], kind={kind!r}, destination={str(tmp_path / "grid")!r}
        )
        imagine >> upscale >> pictures
        imagine >> grid
        """,
    )
    assert set(task_states(dr).values()) == {"success"}, task_states(dr)
    pictures = xcom(dr, "pictures")
    assert len(pictures) == 4 and all(f["content_type"] == "image/png" for f in pictures)
    assert len({f["uri"] for f in pictures}) == 4
    assert len(list((tmp_path / "up").glob("*.png"))) == 4
    assert len(list((tmp_path / "grid").glob("*.png"))) == (4 if kind == "images" else 1)
    assert [len(emulator.created_jobs(v)) for v in ("imagine", "button")] == [1, 4]
    assert all(xcom(dr, "upscale", map_index=i)["backend"] == "midjourney_proxy" for i in range(4))


@dag_test
def test_dag_blend_describe_and_seed(proxy, emulator, flavour, tmp_path: Path) -> None:
    for n in range(2):
        (tmp_path / f"b{n}.png").write_bytes(png_bytes(f"dag-blend-{n}"))
    dr = run_proxy_dag(
        f"proxy_blend_describe_{flavour}",
        f"""
        blend = MidjourneyBlendOperator(task_id="blend", images={[str(tmp_path / f"b{n}.png") for n in range(2)]!r},
                                        dimensions="Landscape", poll_interval=0.05)
        describe = MidjourneyDescribeOperator(task_id="describe", poll_interval=0.05,
                                              image="{{{{ ti.xcom_pull(task_ids='blend')['grid_url'] }}}}")
        seed = MidjourneySeedOperator(task_id="seed", job_id=blend.output["job_id"], poll_interval=0.05)
        blend >> [describe, seed]
        """,
    )
    expected = {"blend": "success", "describe": "success", "seed": "success" if flavour == "superset" else "failed"}
    assert task_states(dr) == expected
    assert len(xcom(dr, "describe")["prompts"]) == 4
    if flavour == "superset":
        assert isinstance(xcom(dr, "seed")["seed"], int)
    seed_calls = [r for r in emulator.requests if "image-seed" in r.path and not r.path.startswith("/mj/task/0/")]
    assert len(seed_calls) == (1 if flavour == "superset" else 0)  # the original: refused before any request
    [sent] = [r.json for r in submits(emulator) if r.path.endswith("blend")]
    assert sent and sent["dimensions"] == "LANDSCAPE" and len(sent["base64Array"]) == 2


@dag_test
def test_dag_code_24_and_refusal_never_resubmit(proxy, emulator, flavour) -> None:
    dr = run_proxy_dag(
        f"proxy_moderation_{flavour}",
        """
        MidjourneyImagineOperator(task_id="banned", prompt="a banned word", retries=2, retry_delay=timedelta(0),
                                  poll_interval=0.05)
        MidjourneyImagineOperator(task_id="refused", prompt="a forbidden word", retries=2, retry_delay=timedelta(0),
                                  poll_interval=0.05)
        """,
    )
    assert task_states(dr) == {"banned": "failed", "refused": "failed"}
    sent = [r.json["prompt"] for r in emulator.requests_to("POST", "/mj/submit/imagine") if r.json]
    assert sorted(sent) == ["a banned word", "a forbidden word"]  # one submit each, never again
    [refused] = emulator.created_jobs()
    assert refused["status"] == "moderated"


@dag_test
def test_dag_code_23_then_success_and_code_21(proxy, emulator, flavour) -> None:
    proxy.force_code_next(23, 2)
    dr = run_proxy_dag(
        f"proxy_busy_{flavour}",
        """
        busy = MidjourneyImagineOperator(task_id="busy", prompt="busy first", retry=FAST, poll_interval=0.05)
        """,
    )
    assert task_states(dr) == {"busy": "success"}
    assert len(emulator.requests_to("POST", "/mj/submit/imagine")) == 3 and len(emulator.created_jobs()) == 1
    emulator.reset()
    proxy.reset()
    proxy.superset = flavour == "superset"
    proxy.force_code_next(21)
    dr = run_proxy_dag(
        f"proxy_exists_{flavour}",
        """
        MidjourneyImagineOperator(task_id="exists", prompt="already there", poll_interval=0.05)
        """,
    )
    assert task_states(dr) == {"exists": "success"} and xcom(dr, "exists")["status"] == "completed"
    assert len(emulator.requests_to("POST", "/mj/submit/imagine")) == 1 and len(emulator.created_jobs()) == 1


@dag_test
def test_dag_timeout_cancels_where_supported(proxy, emulator, flavour) -> None:
    emulator.never_finish = True
    dr = run_proxy_dag(
        f"proxy_timeout_{flavour}",
        """
        MidjourneyImagineOperator(task_id="slow", prompt="takes forever", timeout=0.5, poll_interval=0.05)
        """,
    )
    assert task_states(dr) == {"slow": "failed"}
    cancels = [r for r in emulator.requests_to("POST", "/mj/task/") if r.path.endswith("/cancel")]
    [job] = emulator.created_jobs()
    if flavour == "superset":
        assert [r.status for r in cancels if not r.path.startswith("/mj/task/0/")] == [200]
        assert job["status"] == "failed"
    else:
        assert [r for r in cancels if not r.path.startswith("/mj/task/0/")] == []
        assert job["status"] == "progress"


@dag_test
def test_dag_retry_after_a_lost_creation_answer_reattaches(proxy, emulator, flavour) -> None:
    emulator.timings = emulator.timings.__class__(start_after=0.05, progress_after=0.1, complete_after=3.0)
    emulator.drop_next(1, path_prefix="/mj/submit/imagine", after_handling=True)
    dr = run_proxy_dag(
        f"proxy_lost_answer_{flavour}",
        """
        MidjourneyImagineOperator(task_id="lost", prompt="answer lost", retries=1, retry_delay=timedelta(0),
                                  poll_interval=0.05)
        """,
    )
    assert task_states(dr) == {"lost": "success"}
    assert len(emulator.created_jobs()) == 1 and len(emulator.requests_to("POST", "/mj/submit/imagine")) == 1
    [task] = proxy.tasks.values()
    assert (task.state or "").startswith(f"airflow:proxy_lost_answer_{flavour}/")


def test_acancel_in_the_triggerer(hook, emulator, flavour) -> None:
    emulator.never_finish = True
    job = hook.submit_job(ImagineRequest.build(prompt="kill me"))

    async def cancel(**extra: object) -> None:
        async with MidjourneyProxyHook("x", connection=conn(emulator.base_url, **extra)) as ahook:
            await ahook.acancel(job.job_id)

    asyncio.run(cancel(flavour="original"))  # the connection says it cannot: nothing is sent
    assert [r for r in emulator.requests if r.path.endswith("/cancel") and "/task/0/" not in r.path] == []
    asyncio.run(cancel())  # the original answers 404: a warning, no exception
    after = hook.fetch_job(job.job_id)
    assert after.status == JobStatus.FAILED if flavour == "superset" else not after.is_terminal


def test_a_long_reply_ref_is_found_again(hook, emulator) -> None:
    emulator.never_finish = True
    ref = "airflow:" + "d" * 400
    job = hook.submit_job(ImagineRequest.build(prompt="long ref", reply_ref=ref))
    [sent] = [r.json for r in submits(emulator)]
    assert sent and sent["state"] == state_for(ref) and len(sent["state"]) <= 255
    found = hook.find_job_by_reply_ref(ref)
    assert found is not None and found.job_id == job.job_id


def test_the_connection_form(monkeypatch: pytest.MonkeyPatch, emulator) -> None:
    behaviour = MidjourneyProxyHook.get_ui_field_behaviour()
    assert behaviour["relabeling"] == {"host": "Server base URL", "password": "API secret (mj-api-secret)"}
    assert {"path_prefix", "flavour", "moderation_patterns", "timeout"} <= set(behaviour["placeholders"])
    monkeypatch.delenv("MIDJOURNEY_EMULATOR_PROXY_FLAVOUR", raising=False)
    routes = MidjourneyProxyRoutes(emulator)  # the demo's switch: the flavour from the environment
    assert routes.superset is False
    monkeypatch.setenv("MIDJOURNEY_EMULATOR_PROXY_FLAVOUR", "superset")
    routes.reset()
    assert routes.superset is True
