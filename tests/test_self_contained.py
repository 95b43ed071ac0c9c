"""A clone runs its tests with nothing beside it (the vendor documents the fixtures were made
from live elsewhere; ``tests/fixtures`` holds what the tests need).

Two guards: every test process refuses to read beside the repository (``tests/_self_contained.py``,
installed by conftest; ``make test-fresh-copy`` runs the suite in a copy that has nothing beside
it, which also covers the subprocesses tests start), and the Makefile and CI scripts name no path
that climbs out of the repository.
"""

from __future__ import annotations

import os
import re
import tempfile
from pathlib import Path

import pytest

from airflow_provider_midjourney.backends import BACKENDS
from airflow_provider_midjourney.testing import MidjourneyEmulator

try:
    from tests._self_contained import ACTIVE, BESIDE, REPO, ReadBesideRepositoryError
except ImportError:
    from _self_contained import ACTIVE, BESIDE, REPO, ReadBesideRepositoryError  # type: ignore[no-redef]

CLIMBS_OUT = re.compile(r"\.\./|\$\(dir \$\(CURDIR\)\)|dirname \"\$\(dirname")


@pytest.mark.skipif(not ACTIVE, reason="the repository sits in the temporary folder: only a fresh copy can tell")
def test_reading_beside_the_repository_fails_naming_the_path() -> None:
    missing = BESIDE / "vendor-docs-a-clone-does-not-have" / "sample.json"
    with pytest.raises(ReadBesideRepositoryError, match="vendor-docs-a-clone-does-not-have"):
        missing.read_text()  # refused before the file system is asked: not a FileNotFoundError
    with pytest.raises(ReadBesideRepositoryError):
        open(os.path.join(REPO, os.pardir, "anything"), "rb")  # noqa: SIM115 - never opened
    with pytest.raises(ReadBesideRepositoryError):
        os.listdir(BESIDE)


def test_the_repository_and_temporary_files_stay_readable() -> None:
    assert (REPO / "pyproject.toml").read_text().startswith("[")
    assert "tests" in os.listdir(REPO)
    with tempfile.NamedTemporaryFile("w+") as tmp:
        tmp.write("ok")
        tmp.flush()
        assert Path(tmp.name).read_text() == "ok"


def test_the_fixtures_alone_feed_the_emulator_and_the_vendor_tests() -> None:
    """The vendor samples the backend tests use are in the repository (one of each backend)."""
    for backend in BACKENDS:
        samples = list((REPO / "tests" / "fixtures" / backend.name).glob("*.json"))
        assert samples, backend.name
    assert MidjourneyEmulator  # the emulator ships in the package, not beside it


def test_makefile_and_ci_name_no_path_outside_the_repository() -> None:
    files = [REPO / "Makefile", REPO / "pyproject.toml", *sorted(p for p in (REPO / ".ci").rglob("*") if p.is_file())]
    found = [
        f"{path.relative_to(REPO)}:{number}: {line.strip()[:100]}"
        for path in files
        for number, line in enumerate(path.read_text().splitlines(), start=1)
        if CLIMBS_OUT.search(line)
    ]
    assert found == [], "\n".join(found)
    assert CLIMBS_OUT.search("cat ../docs/x.json") and CLIMBS_OUT.search("$(dir $(CURDIR))docs")
