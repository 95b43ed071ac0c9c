"""A guard installed for the whole test session: nothing may be read from beside the repository.

A clone must pass its tests with nothing next to it; vendor documents live in a sibling folder of
our workspace, and a test that read them would pass here and fail in every clone. Text checks
only catch the paths someone thought of, so every ``open`` (and directory listing) of the test
process is checked instead: a path inside the folder that holds the repository, but outside the
repository itself, raises at once, naming the path.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
BESIDE = REPO.parent
_EVENTS = frozenset({"open", "os.listdir", "os.scandir"})


class ReadBesideRepositoryError(PermissionError):
    """A test touched a path next to the repository, which a clone does not have."""


def outside_the_repository(path: Any) -> str | None:
    """``path`` as an absolute string if it lies beside the repository, else None."""
    if isinstance(path, int) or path is None:
        return None
    try:
        text = os.path.abspath(os.fsdecode(path))
    except (TypeError, ValueError):
        return None
    beside, repo = str(BESIDE), str(REPO)
    if beside == os.sep:  # a repository at the root: nothing is "beside" it
        return None
    inside_parent = text == beside or text.startswith(beside + os.sep)  # listing the parent shows its siblings
    inside_repo = text == repo or text.startswith(repo + os.sep)
    return text if inside_parent and not inside_repo else None


def _guard(event: str, args: tuple[Any, ...]) -> None:
    if event in _EVENTS and args and (path := outside_the_repository(args[0])):
        raise ReadBesideRepositoryError(f"{path}: tests must not read beside the repository; use tests/fixtures")


def install() -> None:
    """Audit hooks cannot be removed: installed once per process (conftest may be imported twice)."""
    if not getattr(sys, "_midjourney_beside_guard", False):
        sys.addaudithook(_guard)
        sys._midjourney_beside_guard = True  # type: ignore[attr-defined]
