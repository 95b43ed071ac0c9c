"""The contact sheet: one self-contained HTML page showing every stored file with its prompt and job id."""

from __future__ import annotations

import html
from collections.abc import Sequence
from typing import TYPE_CHECKING
from urllib.parse import quote

if TYPE_CHECKING:
    from airflow_provider_midjourney.downloader import StoredFile

__all__ = ["CONTACT_SHEET_NAME", "contact_sheet_html"]

CONTACT_SHEET_NAME = "index.html"

_SHEET_STYLE = (
    "body{font-family:system-ui,sans-serif;margin:1.5rem;background:#151515;color:#eee}"
    "h1{font-size:1.3rem}.grid{display:grid;grid-template-columns:repeat(auto-fill,minmax(260px,1fr));gap:1rem}"
    "figure{margin:0;background:#222;padding:.5rem;border-radius:6px}"
    "img,video{width:100%;height:auto;display:block;border-radius:4px}"
    "figcaption{font-size:.85rem;margin-top:.4rem;overflow-wrap:anywhere}code{color:#9cf}p.prompt{margin:.3rem 0}"
)


def contact_sheet_html(files: Sequence[StoredFile], title: str = "Midjourney contact sheet") -> str:
    """A self-contained page showing every file (relative links) with its prompt and job id."""
    figures = []
    for stored in files:
        href = "./" + quote(stored.name, safe="")
        if stored.content_type.startswith("video/"):
            media = f'<video src="{href}" controls muted loop preload="metadata"></video>'
        else:
            alt = html.escape(stored.prompt or stored.name)
            media = f'<a href="{href}"><img src="{href}" alt="{alt}" loading="lazy"></a>'
        lines = [f"<b>{html.escape(stored.name)}</b> · {_human_size(stored.size)}"]
        if stored.job_id:
            lines.append(f"job <code>{html.escape(stored.job_id)}</code>")
        if stored.prompt:
            lines.append(f'<p class="prompt">{html.escape(stored.prompt)}</p>')
        figures.append(f"<figure>{media}<figcaption>{'<br>'.join(lines)}</figcaption></figure>")
    jobs = sorted({f.job_id for f in files if f.job_id})
    summary = f"{len(files)} file(s)" + (f" from job {', '.join(html.escape(j) for j in jobs)}" if jobs else "")
    return (
        '<!doctype html>\n<html lang="en"><head><meta charset="utf-8">'
        f'<meta name="viewport" content="width=device-width,initial-scale=1"><title>{html.escape(title)}</title>'
        f"<style>{_SHEET_STYLE}</style></head>\n<body><h1>{html.escape(title)}</h1><p>{summary}</p>\n"
        f'<div class="grid">\n' + "\n".join(figures) + "\n</div></body></html>\n"
    )


def _human_size(size: int) -> str:
    value = float(size)
    for unit in ("B", "KB", "MB"):
        if value < 1024:
            return f"{value:.0f} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1024
    return f"{value:.1f} GB"
