"""The "Midjourney" gallery in a real browser: a real Airflow stack (api-server with the plugin
under a ``base_url`` prefix, real users, scheduler, triggerer, dag-processor) runs the example
DAGs on the emulator; headless Chromium logs in, opens the task-instance and run tabs, checks that
every picture rendered and the prompt is shown, and saves screenshots in ``test-artifacts/``.

The human pick of ``midjourney_pick`` is answered through Airflow's REST API.

Needs Debian's ``chromium`` and Playwright from PyPI (``make e2e`` installs both; no browser is
downloaded). Every wait is bounded; the stack is torn down even on failure.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import quote

import httpx
import pytest

from airflow_provider_midjourney.testing import JobTimings, MidjourneyEmulator
from tests.e2e.stack import AirflowStack

pytestmark = pytest.mark.e2e

REPO = Path(__file__).resolve().parents[2]
ARTIFACTS = REPO / "test-artifacts"
CHROMIUM = os.environ.get("CHROMIUM", "/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
TOKEN = "e2e-ui-SECRET-token-51c0ffee"
PREFIX = "/airflow"
PASSWORDS = {"admin": "admin-e2e-pw", "viewer": "viewer-e2e-pw", "noxcom": "noxcom-e2e-pw"}
ROLES = {"admin": "admin", "viewer": "viewer", "noxcom": "viewer"}
# As in test_e2e.py: a trigger must not fire before the deferring task process has exited.
TIMINGS = JobTimings(start_after=0.5, progress_after=1.0, complete_after=(8.0, 9.0))
WAIT_MS = 60_000


class AuthStack(AirflowStack):
    """The e2e stack with real users (no all-admins) and ``base_url`` under :data:`PREFIX`."""

    def __init__(self, home: Path, emulator: MidjourneyEmulator) -> None:
        dags = [REPO / "example_dags" / "midjourney_imagine_upscale.py", REPO / "example_dags" / "midjourney_pick.py"]
        connection = {"conn_type": "midjourney", "host": emulator.base_url, "password": TOKEN}
        passwords = home / "passwords.json"
        passwords.write_text(json.dumps(PASSWORDS))
        super().__init__(home, dags, connection, {"MIDJOURNEY_POLL_INTERVAL": "1"})
        self.base = f"http://127.0.0.1:{self.port}{PREFIX}"
        self.env.update(
            {
                "AIRFLOW__API__BASE_URL": self.base,
                "AIRFLOW__CORE__EXECUTION_API_SERVER_URL": f"{self.base}/execution/",
                "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_ALL_ADMINS": "False",
                "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_USERS": ",".join(f"{u}:{r}" for u, r in ROLES.items()),
                "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_PASSWORDS_FILE": str(passwords),
                "AIRFLOW__CORE__AUTH_MANAGER": "tests.e2e.restricted_auth.RestrictedAuthManager",
                "PYTHONPATH": os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH")])),
                "MIDJOURNEY_DESTINATION": f"file://{home / 'pictures'}",
                # The gallery relays loopback only from hosts this names: the emulator's CDN.
                "AIRFLOW__MIDJOURNEY__RELAY_ALLOWED_HOSTS": f"127.0.0.1:{emulator.port}",
            }
        )
        self.tokens: dict[str, str] = {}

    def token(self, user: str) -> str:
        if user not in self.tokens:
            answer = httpx.post(
                f"{self.base}/auth/token", json={"username": user, "password": PASSWORDS[user]}, timeout=120
            )
            answer.raise_for_status()
            self.tokens[user] = str(answer.json()["access_token"])
        return self.tokens[user]

    def api(self, method: str, path: str, **kwargs: Any) -> Any:
        headers = {"Authorization": f"Bearer {self.token('admin')}", **kwargs.pop("headers", {})}
        response = httpx.request(method, f"{self.base}/api/v2{path}", timeout=120, headers=headers, **kwargs)
        response.raise_for_status()
        return response.json() if response.content else None


@pytest.fixture(scope="module")
def emulator() -> Iterator[MidjourneyEmulator]:
    with MidjourneyEmulator(token=TOKEN, timings=TIMINGS, max_jobs=15, max_image_jobs=12) as emulator:
        yield emulator


@pytest.fixture(scope="module")
def stack(emulator: MidjourneyEmulator, tmp_path_factory: pytest.TempPathFactory) -> Iterator[AuthStack]:
    stack = AuthStack(tmp_path_factory.mktemp("airflow-ui"), emulator)
    try:
        yield stack.start()  # type: ignore[misc]
    finally:
        stack.stop()


@pytest.fixture(scope="module")
def runs(stack: AuthStack) -> dict[str, str]:
    """One run of each example DAG, both finished (the pick answered through the REST API)."""
    upscale_run = stack.trigger("midjourney_imagine_upscale")
    pick_run = stack.trigger("midjourney_pick")
    path = f"/dags/midjourney_pick/dagRuns/{quote(pick_run, safe='')}/taskInstances/pick/-1"

    def asking() -> bool:
        # Airflow 3.3 parks a task that waits for a human in "awaiting_input"; 3.1 and 3.2 keep it
        # "deferred", and its question exists once the HITL trigger has written it.
        state = stack.api("GET", path)["state"]
        if state == "deferred":
            try:
                return bool(stack.api("GET", f"{path}/hitlDetails"))
            except httpx.HTTPStatusError:
                return False
        return bool(state == "awaiting_input")

    try:
        stack.wait_for(asking, 180, "the pick to ask")
    except TimeoutError as exc:
        states = stack.query("SELECT task_id, state, try_number FROM task_instance WHERE run_id = ?", pick_run)
        raise TimeoutError(f"{exc}; the pick run's tasks: {states}\n{stack.log_text()[-6000:]}") from None
    question = stack.api("GET", f"{path}/hitlDetails")
    assert question["options"] == ["U1", "U2", "U3", "U4"] and "![U1](" in question["body"]
    return {"upscale": upscale_run, "pick": pick_run}


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    try:
        from playwright import sync_api
    except ImportError:
        pytest.fail("playwright is missing: make e2e installs it (pip install 'airflow-provider-midjourney[browser]')")
    if not Path(CHROMIUM).exists():
        pytest.fail(f"{CHROMIUM} is missing: make e2e installs Debian's chromium (apt-get install -y chromium)")
    with sync_api.sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            yield browser
        finally:
            browser.close()


@pytest.fixture(scope="module")
def page(browser: Any, stack: AuthStack) -> Iterator[Any]:
    """A logged-in page: through the simple auth manager's own login form."""
    ARTIFACTS.mkdir(exist_ok=True)
    context = browser.new_context(viewport={"width": 1400, "height": 1500}, color_scheme="light")
    page = context.new_page()
    page.set_default_timeout(WAIT_MS)
    page.goto(f"{stack.base}/")
    page.wait_for_url("**/auth/login**")
    page.locator("input[name=username]").fill("viewer")
    page.locator("input[name=password]").fill(PASSWORDS["viewer"])
    page.screenshot(path=str(ARTIFACTS / "00-login.png"))
    page.locator("button[type=submit]").click()
    page.wait_for_url(lambda url: "/auth/login" not in url)
    try:
        yield page
    finally:
        context.close()


def gallery_frame(page: Any) -> Any:
    """The gallery's iframe inside the UI tab, once every picture in it has rendered."""
    page.wait_for_selector("iframe[src*='midjourney/dags/']")  # a relative src: resolved against base_url
    # The iframe element shows before its frame has navigated (about:blank until then): wait for it.
    give_up = time.monotonic() + WAIT_MS / 1000
    while (frame := next((f for f in page.frames if f"{PREFIX}/midjourney/dags/" in f.url), None)) is None:
        assert time.monotonic() < give_up, f"no gallery frame among {[f.url for f in page.frames]}"
        page.wait_for_timeout(100)
    frame.wait_for_selector("section.card")
    frame.wait_for_function(
        "() => document.images.length > 0 && [...document.images].every(i => i.complete && i.naturalWidth > 0)",
        timeout=WAIT_MS,
    )
    return frame


def rendered(frame: Any) -> list[int]:
    return list(frame.evaluate("() => [...document.images].map(i => i.naturalWidth)"))


def ui(stack: AuthStack, dag_id: str, run_id: str, rest: str) -> str:
    return f"{stack.base}/dags/{dag_id}/runs/{quote(run_id, safe='')}/{rest}"


def answer(stack: AuthStack, path: str, body: dict[str, Any], attempts: int = 6) -> None:
    """PATCH the answer; the api-server answered 500 once on a busy SQLite (seen in CI): ask again, bounded."""
    for attempt in range(1, attempts + 1):
        try:
            stack.api("PATCH", path, json=body)
            return
        except httpx.HTTPStatusError as exc:
            if exc.response.status_code == 409 and attempt > 1:
                return  # the earlier try went through after all: the answer is recorded
            if exc.response.status_code < 500 or attempt == attempts:
                raise
            time.sleep(2)


def test_the_pick_question_shows_the_pictures(stack: AuthStack, runs: dict[str, str], page: Any) -> None:
    run_id = runs["pick"]
    page.goto(ui(stack, "midjourney_pick", run_id, "tasks/pick/required_actions"))
    page.get_by_text("Which pictures should be upscaled?").first.wait_for()
    page.wait_for_function(
        "() => [...document.images].filter(i => i.src.includes('/midjourney/dags/')).length === 4"
        " && [...document.images].filter(i => i.src.includes('/midjourney/dags/'))"
        ".every(i => i.complete && i.naturalWidth > 0)",
        timeout=WAIT_MS,
    )
    page.screenshot(path=str(ARTIFACTS / "05-pick-question.png"), full_page=True)
    # Now the human answers (through the REST API) and the run goes on with the chosen upscales.
    path = f"/dags/midjourney_pick/dagRuns/{quote(run_id, safe='')}/taskInstances/pick/-1/hitlDetails"
    answer(stack, path, {"chosen_options": ["U2", "U4"], "params_input": {}})
    assert stack.wait_run("midjourney_pick", run_id, 240) == "success"
    upscales = [ti for ti in stack.task_instances("midjourney_pick", run_id) if ti["task_id"] == "upscale"]
    assert sorted(ti["map_index"] for ti in upscales) == [0, 1]
    page.goto(ui(stack, "midjourney_pick", run_id, "tasks/pick/plugin/midjourney"))
    frame = gallery_frame(page)
    assert frame.locator("figure.chosen").count() == 2
    page.screenshot(path=str(ARTIFACTS / "06-pick-gallery.png"))


def test_task_instance_tab_renders_the_pictures_and_prompt(stack: AuthStack, runs: dict[str, str], page: Any) -> None:
    run_id = runs["upscale"]
    assert stack.wait_run("midjourney_imagine_upscale", run_id, 240) == "success"
    prompt = stack.api(
        "GET",
        f"/dags/midjourney_imagine_upscale/dagRuns/{quote(run_id, safe='')}/taskInstances/imagine/xcomEntries/"
        "return_value?deserialize=true",
    )["value"]
    page.goto(ui(stack, "midjourney_imagine_upscale", run_id, "tasks/imagine/plugin/midjourney"))
    frame = gallery_frame(page)
    widths = rendered(frame)
    assert len(widths) == 5 and all(w > 0 for w in widths)  # the grid and U1-U4
    text = frame.locator("body").inner_text()
    assert "a lighthouse on a cliff at dawn" in text and "completed" in text and "U1" in text
    assert "lighthouse" in str(prompt)
    page.screenshot(path=str(ARTIFACTS / "01-task-instance-imagine.png"))

    page.goto(ui(stack, "midjourney_imagine_upscale", run_id, "tasks/upscale/mapped/2/plugin/midjourney"))
    frame = gallery_frame(page)
    assert len(rendered(frame)) == 1 and frame.locator("section.card").get_attribute("data-map-index") == "2"
    page.screenshot(path=str(ARTIFACTS / "02-task-instance-upscale-mapped.png"))

    page.goto(ui(stack, "midjourney_imagine_upscale", run_id, "tasks/download/plugin/midjourney"))
    frame = gallery_frame(page)
    assert len(rendered(frame)) == 4 and ".png" in frame.locator("body").inner_text()
    page.screenshot(path=str(ARTIFACTS / "03-task-instance-download.png"))


def test_run_tab_shows_every_midjourney_task(stack: AuthStack, runs: dict[str, str], page: Any) -> None:
    run_id = runs["upscale"]
    assert stack.wait_run("midjourney_imagine_upscale", run_id, 240) == "success"
    page.goto(ui(stack, "midjourney_imagine_upscale", run_id, "plugin/midjourney-run"))
    frame = gallery_frame(page)
    cards = frame.locator("section.card[data-task]")
    assert cards.count() == 7  # imagine, 4 upscales, seed, download
    widths = rendered(frame)
    # imagine, upscales, seed, files: each twice, as a thumbnail in the overview and in its card.
    assert len(widths) == 2 * (5 + 4 * 1 + 1 + 4) and all(w > 0 for w in widths)
    assert frame.locator("section.overview li").count() == 7
    assert "a lighthouse on a cliff at dawn" in frame.locator("body").inner_text()
    page.screenshot(path=str(ARTIFACTS / "04-dag-run.png"))
    # The whole gallery page on its own, scrolled out in full.
    page.goto(frame.url)
    page.screenshot(path=str(ARTIFACTS / "04b-dag-run-full-page.png"), full_page=True)


def test_the_gallery_follows_airflows_theme_toggle(stack: AuthStack, runs: dict[str, str], page: Any) -> None:
    """Airflow's own toggle (its <html> class), not the OS preference: the browser says light throughout."""
    run_id = runs["upscale"]
    assert stack.wait_run("midjourney_imagine_upscale", run_id, 240) == "success"
    backgrounds = {"light": "rgb(255, 255, 255)", "dark": "rgb(17, 20, 24)"}
    for theme in ("dark", "light"):
        page.goto(ui(stack, "midjourney_imagine_upscale", run_id, "plugin/midjourney-run"))
        page.evaluate(f"() => localStorage.setItem('theme', '{theme}')")  # what Airflow's toggle stores
        page.reload()
        page.wait_for_function(f"() => document.documentElement.classList.contains('{theme}')")
        frame = gallery_frame(page)
        frame.wait_for_function(f"() => document.documentElement.dataset.theme === '{theme}'")
        assert frame.evaluate("() => getComputedStyle(document.body).backgroundColor") == backgrounds[theme]
        page.screenshot(path=str(ARTIFACTS / f"07-run-tab-{theme}.png"))
    # Toggled while the page is open: the gallery follows without a reload.
    page.evaluate("() => document.documentElement.classList.replace('light', 'dark')")
    frame.wait_for_function("() => getComputedStyle(document.body).backgroundColor === 'rgb(17, 20, 24)'")


def test_unauthenticated_and_unauthorised_requests_are_refused(
    stack: AuthStack, runs: dict[str, str], browser: Any
) -> None:
    run_id = runs["upscale"]
    gallery = f"{stack.base}/midjourney/dags/midjourney_imagine_upscale/runs/{quote(run_id, safe='')}"
    for url in (gallery, f"{gallery}/tasks/imagine", f"{gallery}/tasks/imagine/pictures/0"):
        assert httpx.get(url, timeout=120).status_code == 401
        refused = httpx.get(url, headers={"Authorization": f"Bearer {stack.token('noxcom')}"}, timeout=120)
        assert refused.status_code == 403 and "lighthouse" not in refused.text
        allowed = httpx.get(url, headers={"Authorization": f"Bearer {stack.token('viewer')}"}, timeout=120)
        assert allowed.status_code == 200
    # A browser with no session gets nothing either.
    context = browser.new_context()
    try:
        answer = context.new_page().goto(f"{gallery}/tasks/imagine")
        assert answer is not None and answer.status == 401
    finally:
        context.close()
