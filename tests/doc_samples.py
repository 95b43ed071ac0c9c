"""The JSON and SSE samples of the vendor's API pages, as the ground truth for the models."""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]


def docs_dir() -> Path:
    configured = os.environ.get("MIDJOURNEY_API_DOCS")
    candidates = [Path(configured)] if configured else []
    candidates += [REPO.parent / "shared" / "api-docs" / "useapi-midjourney-v3"]
    for candidate in candidates:
        if candidate.is_dir():
            return candidate
    raise RuntimeError(f"API docs not found (looked in {candidates}); set MIDJOURNEY_API_DOCS")


@dataclass(frozen=True)
class Sample:
    page: str
    kind: str  # "json" or "sse"
    index: int
    data: Any

    @property
    def id(self) -> str:
        return f"{self.page}:{self.kind}{self.index}"


def _decode_all(text: str, marker: str) -> list[Any]:
    decoder = json.JSONDecoder()
    found = []
    start = 0
    while (at := text.find(marker, start)) >= 0:
        brace = text.find("{", at + len(marker))
        start = at + len(marker)
        if brace < 0 or text[at + len(marker) : brace].strip():
            continue
        try:
            value, end = decoder.raw_decode(text, brace)
        except json.JSONDecodeError:
            continue
        found.append(value)
        start = end
    return found


def samples(page: str | None = None) -> list[Sample]:
    out = []
    for path in sorted(docs_dir().glob("*.md")):
        if page and path.stem != page:
            continue
        text = path.read_text(encoding="utf-8")
        for i, data in enumerate(_decode_all(text, "```json")):
            out.append(Sample(path.stem, "json", i, data))
        for i, data in enumerate(_decode_all(text, "data:")):
            out.append(Sample(path.stem, "sse", i, data))
    return out


def job_samples() -> list[Sample]:
    """Every sample that is a job: JSON answers with a jobid, and the ``job`` of SSE events."""
    jobs = []
    for sample in samples():
        if sample.kind == "json" and isinstance(sample.data, dict) and "jobid" in sample.data:
            jobs.append(sample)
        elif sample.kind == "sse" and "job" in sample.data:
            jobs.append(Sample(sample.page, "sse", sample.index, sample.data["job"]))
    return jobs
