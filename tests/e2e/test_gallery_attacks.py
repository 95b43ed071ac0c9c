"""One slow picture source must not take the Airflow API down: a real api-server process (one
worker) relays 60 pictures of a source that drips a byte every 2 s to one viewer, while Airflow's
own health and DAG routes keep answering. Also on the real server: a user role's forged result
pointing at an internal service gets the one refusal. Latencies go to benchmarks/gallery_relay.py."""

# ruff: noqa: F811 - fixtures imported from tests.hostile_http
from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from airflow_provider_midjourney.plugins import media
from tests.e2e.gallery_attack import Attack, GalleryStack
from tests.hostile_http import HostileServer, cdn, internal  # noqa: F401 - the fixtures

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module")
def stack(cdn: HostileServer, tmp_path_factory: pytest.TempPathFactory) -> Iterator[GalleryStack]:
    stack = GalleryStack(Path(tmp_path_factory.mktemp("gallery-attack")), f"127.0.0.1:{cdn.port}")
    try:
        yield stack.start()
    finally:
        stack.stop()


def test_a_slow_source_leaves_airflow_answering(stack: GalleryStack, cdn: HostileServer) -> None:
    attack = Attack().run(stack, cdn)
    assert [status for status, _ in attack.health] == [200] * attack.probes, attack.health
    assert [status for status, _ in attack.dags] == [200] * attack.probes, attack.dags
    # The viewer's slots were relayed (until the source stopped), the rest refused for lack of slots.
    assert len(attack.statuses) == attack.count and set(attack.statuses) == {200, 503}, attack.statuses
    assert attack.statuses.count(200) <= media.MAX_RELAYS_PER_VIEWER


def test_a_forged_internal_target_gets_the_one_refusal(stack: GalleryStack, internal: HostileServer) -> None:
    answers = []
    for url in (f"{internal.base_url}/secret", f"ftp://127.0.0.1:{internal.port}/x", "http://169.254.169.254/"):
        assert stack.forge({"job_id": "target", "status": "completed", "image_urls": [url]}).status_code == 200
        answer = stack.get(stack.picture_path(0), "viewer")
        answers.append((answer.status_code, answer.text))
    assert set(answers) == {(404, "picture unavailable")} and internal.hits == {}
    assert stack.forge({"job_id": "x", "status": "completed"}, user="viewer").status_code == 403  # viewers may not
