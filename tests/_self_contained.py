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
import tempfile
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
BESIDE = REPO.parent
_EVENTS = frozenset({"open", "os.listdir", "os.scandir"})


def _allowed_roots() -> tuple[str, ...]:
    """Folders a test may use even when they sit next to the repository: Python itself (a
    virtualenv beside the clone, the import path) and the temporary folder, unless the repository
    is itself inside that folder's subfolder (a fresh copy in /tmp/<x>/: its siblings are refused)."""
    roots = {sys.prefix, sys.base_prefix, sys.exec_prefix, *(p for p in sys.path if p and os.path.isdir(p))}
    tmp = os.path.abspath(tempfile.gettempdir())
    if not str(BESIDE).startswith(tmp + os.sep):
        roots.add(tmp)
    return tuple(os.path.abspath(r) for r in roots if os.path.abspath(r) not in (str(BESIDE), os.sep))


_ALLOWED = _allowed_roots()
#: False where the repository sits directly in the temporary folder (or inside Python's own
#: folders): everything beside it is then fair game for tests, and only a fresh copy can tell.
ACTIVE = str(BESIDE) != os.sep and not any(
    str(BESIDE) == os.path.abspath(r) or str(BESIDE).startswith(os.path.abspath(r) + os.sep)
    for r in (tempfile.gettempdir(), sys.prefix, sys.base_prefix)
)


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
    if not ACTIVE:
        return None
    inside_parent = text == beside or text.startswith(beside + os.sep)  # listing the parent shows its siblings
    inside_repo = text == repo or text.startswith(repo + os.sep)
    if not inside_parent or inside_repo:
        return None
    if any(text == root or text.startswith(root + os.sep) for root in _ALLOWED):
        return None
    sibling = text[len(beside) + 1 :].split(os.sep, 1)[0]
    return None if sibling.startswith(".") else text  # tools' hidden folders (~/.config...) are not sources


def _guard(event: str, args: tuple[Any, ...]) -> None:
    if event in _EVENTS and args and (path := outside_the_repository(args[0])):
        raise ReadBesideRepositoryError(f"{path}: tests must not read beside the repository; use tests/fixtures")


def install() -> None:
    """Audit hooks cannot be removed: installed once per process (conftest may be imported twice)."""
    if not getattr(sys, "_midjourney_beside_guard", False):
        sys.addaudithook(_guard)
        sys._midjourney_beside_guard = True  # type: ignore[attr-defined]
