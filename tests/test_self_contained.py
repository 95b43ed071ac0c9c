"""A clone runs its tests with nothing beside it: no test, Makefile target or CI step names a path
outside the repository (the vendor documents the fixtures were made from live elsewhere)."""

from __future__ import annotations

import re
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
# A folder next to the repository, the old environment variable for it, or a path built to reach it.
OUTSIDE = re.compile(r"\.\./shared|shared/api-docs|MIDJOURNEY_API_DOCS|parents\[\d\]\s*/\s*[\"']shared")


def checked_files() -> list[Path]:
    files = [REPO / "Makefile", *sorted((REPO / ".ci").iterdir()), REPO / "pyproject.toml"]
    files += sorted(p for p in (REPO / "tests").rglob("*") if p.is_file() and p.suffix in {".py", ".json", ".toml"})
    return [p for p in files if p.is_file() and p != Path(__file__).resolve()]


def test_no_test_makefile_or_ci_step_reads_outside_the_repository() -> None:
    found = [
        f"{path.relative_to(REPO)}:{number}: {line.strip()[:100]}"
        for path in checked_files()
        for number, line in enumerate(path.read_text(encoding="utf-8", errors="replace").splitlines(), start=1)
        if OUTSIDE.search(line)
    ]
    assert found == [], "\n".join(found)


def test_the_check_sees_what_it_must_refuse() -> None:
    refused = ('DOCS = HERE.parents[2] / "shared" / "api-docs"', "cat ../shared/x", "os.environ['MIDJOURNEY_API_DOCS']")
    for line in refused:
        assert OUTSIDE.search(line), line
    assert len(checked_files()) > 50  # the fixtures and tests are really read
