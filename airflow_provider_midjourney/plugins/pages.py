"""The gallery's HTML: server-rendered, every value escaped; one fixed script (allowed by its hash)
only follows Airflow's light/dark toggle.

Pictures are ``<img>``/``<video>`` elements pointing at the app's own picture route, so they load
with the user's Airflow session and never straight from a CDN.
"""

from __future__ import annotations

import base64
import hashlib
import html
import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from airflow_provider_midjourney.plugins.results import Picture, TaskPictures
from airflow_provider_midjourney.plugins.store import TaskEntry

STYLE = """
:root{color-scheme:light;--bg:#fff;--fg:#1a202c;--muted:#5a6578;--card:#f5f7fa;--line:#dde3ea;--chip:#e6ecf5;
--accent:#3b6fd8}
:root[data-theme=dark]{color-scheme:dark;--bg:#111418;--fg:#e7ebf0;--muted:#9aa6b5;--card:#1b2027;--line:#2c333d;
--chip:#26303c;--accent:#8fb3ff}
@media (prefers-color-scheme:dark){:root:not([data-theme]){color-scheme:dark;--bg:#111418;--fg:#e7ebf0;
--muted:#9aa6b5;--card:#1b2027;--line:#2c333d;--chip:#26303c;--accent:#8fb3ff}}
*{box-sizing:border-box}body{margin:0;padding:16px;font:14px/1.45 system-ui,-apple-system,"Segoe UI",sans-serif;
background:var(--bg);color:var(--fg)}
h1{font-size:18px;margin:0 0 12px}h2{font-size:15px;margin:0}a{color:var(--accent)}
.card{background:var(--card);border:1px solid var(--line);border-radius:8px;padding:14px;margin:0 0 16px}
.head{display:flex;flex-wrap:wrap;gap:8px;align-items:center;margin-bottom:8px}
.chip{display:inline-block;background:var(--chip);border-radius:999px;padding:1px 9px;font-size:12px}
.state-success{background:#cdeccd;color:#14521a}.state-failed{background:#f6cfcf;color:#7a1313}
.state-deferred,.state-running,.state-awaiting_input{background:#d8e6ff;color:#173d85}
.prompt{font-size:15px;margin:6px 0 10px;padding:8px 12px;border-left:3px solid var(--accent);
background:var(--bg);border-radius:4px;overflow-wrap:anywhere}
dl{display:grid;grid-template-columns:max-content 1fr;gap:3px 14px;margin:0 0 12px}
dt{color:var(--muted)}dd{margin:0;overflow-wrap:anywhere}code{font-size:12px}
.pics{display:grid;grid-template-columns:repeat(auto-fill,minmax(220px,1fr));gap:10px}
.pics.grid-first figure.grid{grid-column:1/-1;max-width:460px}
figure{margin:0;background:var(--bg);border:1px solid var(--line);border-radius:6px;padding:6px}
figure.chosen{outline:3px solid var(--accent)}
img,video{display:block;width:100%;height:auto;border-radius:4px;background:var(--line)}
figcaption{font-size:12px;color:var(--muted);margin-top:4px;overflow-wrap:anywhere}
.empty{color:var(--muted)}
.overview ol{list-style:none;margin:0;padding:0}.overview li{display:flex;gap:10px;align-items:center;
padding:4px 0;border-top:1px solid var(--line)}.overview li>a{min-width:11em;overflow-wrap:anywhere}
.strip{display:flex;gap:4px;flex-wrap:wrap}.strip img{width:56px;height:56px;object-fit:cover}
details summary{cursor:pointer;color:var(--muted)}
"""
# The gallery is an iframe of Airflow's own origin: Airflow's UI (next-themes) marks its <html> with
# class "dark" or "light" as the user toggles; this copies that onto the page, live. Outside the UI
# (or if the parent cannot be read) the page follows the OS preference instead.
THEME_SCRIPT = (
    "(function(){var d=document.documentElement;function p(){try{return window.parent.document.documentElement}"
    "catch(e){return null}}function apply(){var r=p(),t=null;if(r&&r!==d){t=r.classList.contains('dark')?'dark':"
    "r.classList.contains('light')?'light':null}if(!t){try{t=localStorage.getItem('theme')}catch(e){}}"
    "if(t==='dark'||t==='light'){d.setAttribute('data-theme',t)}else{d.removeAttribute('data-theme')}}apply();"
    "var r=p();if(r&&r!==d&&window.MutationObserver){new MutationObserver(apply).observe(r,{attributes:true,"
    "attributeFilter:['class','style']})}})();"
)
_SCRIPT_HASH = base64.b64encode(hashlib.sha256(THEME_SCRIPT.encode()).digest()).decode()
CSP = (
    "default-src 'none'; img-src 'self'; media-src 'self'; style-src 'unsafe-inline'; "
    f"script-src 'sha256-{_SCRIPT_HASH}'; "
    "frame-ancestors 'self'; base-uri 'none'; form-action 'none'"
)


@dataclass(frozen=True)
class Links:
    """Where a page's pictures and task links point (paths include Airflow's base path)."""

    picture: Callable[[str, int, int], str]  # (task_id, map_index, number) -> picture route
    task_page: Callable[[str, int], str]  # (task_id, map_index) -> the task instance's UI tab


def _e(value: Any) -> str:
    return html.escape(str(value), quote=True)


def _document(title: str, body: str) -> str:
    return (
        '<!doctype html><html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width,initial-scale=1">'
        f"<title>{_e(title)}</title><style>{STYLE}</style><script>{THEME_SCRIPT}</script></head>"
        f"<body>{body}</body></html>"
    )


def _figure(picture: Picture, src: str, chosen: Sequence[str]) -> str:
    css = " ".join(c for c in (picture.kind, "chosen" if picture.label in chosen else "") if c)
    if picture.is_video:
        media = f'<video src="{_e(src)}" controls muted loop preload="metadata"></video>'
    else:
        media = f'<a href="{_e(src)}" target="_blank"><img src="{_e(src)}" alt="{_e(picture.label)}"></a>'
    caption = _e(picture.label)
    if picture.size is not None:
        caption += f" · {picture.size / 1024:.0f} KB"
    if picture.label in chosen:
        caption += " · chosen"
    return f'<figure class="{css}" data-label="{_e(picture.label)}">{media}<figcaption>{caption}</figcaption></figure>'


def _facts(pictures: TaskPictures) -> str:
    job = pictures.job
    rows: list[tuple[str, str]] = []
    if pictures.job_ids:
        rows.append(("job id", ", ".join(f"<code>{_e(j)}</code>" for j in pictures.job_ids)))
    for key, label in (("backend", "backend"), ("verb", "verb"), ("status", "status"), ("seed", "seed")):
        if job.get(key) not in (None, ""):
            rows.append((label, _e(job[key])))
    buttons = [b for b in job.get("buttons") or [] if isinstance(b, str)]
    if buttons:  # up to a dozen chips per job: folded, so a run of many upscales stays short
        chips = " ".join(f'<span class="chip">{_e(b)}</span>' for b in buttons)
        rows.append(("buttons", f"<details><summary>{len(buttons)} buttons</summary>{chips}</details>"))
    if pictures.chosen is not None:
        chosen = " ".join(f'<span class="chip">{_e(c)}</span>' for c in pictures.chosen) or "nothing"
        rows.append(("chosen", chosen))
    suggestions = [p for p in job.get("prompts") or [] if isinstance(p, str)]
    if suggestions:
        rows.append(("prompts", "<br>".join(f"{n}. {_e(p)}" for n, p in enumerate(suggestions, 1))))
    if isinstance(job.get("settings"), dict) and job["settings"]:
        rows.append(("settings", f"<code>{_e(json.dumps(job['settings'], sort_keys=True))}</code>"))
    if not rows:
        return ""
    return "<dl>" + "".join(f"<dt>{label}</dt><dd>{value}</dd>" for label, value in rows) + "</dl>"


def _anchor(entry: TaskEntry) -> str:
    return f"t-{entry.task_id}-{entry.map_index}"


def task_card(entry: TaskEntry, links: Links, *, link_title: bool, known_prompts: Sequence[str] = ()) -> str:
    """One task instance: its state, the button it pressed on which job, prompt, facts and pictures."""
    pictures = entry.pictures
    name = entry.task_id + (f" [{entry.map_index}]" if entry.map_index >= 0 else "")
    title = f'<a href="{_e(links.task_page(entry.task_id, entry.map_index))}" target="_top">{_e(name)}</a>'
    head = [f"<h2>{title if link_title else _e(name)}</h2>"]
    if entry.state:
        head.append(f'<span class="chip state-{_e(entry.state)}">{_e(entry.state)}</span>')
    if entry.button:
        head.append(f'<span class="chip button">button {_e(entry.button)}</span>')
    if entry.operator:
        head.append(f'<span class="chip">{_e(entry.operator)}</span>')
    parts = [f'<div class="head">{"".join(head)}</div>']
    if entry.parent_job_id:
        parts.append(f'<p class="parent">{_e(entry.button)} of job <code>{_e(entry.parent_job_id)}</code></p>')
    parts += [f'<p class="prompt">{_e(prompt)}</p>' for prompt in pictures.prompts if prompt not in known_prompts]
    parts.append(_facts(pictures))
    if pictures.kind == "waiting":
        parts.append('<p class="empty">The job is still running: its pictures appear here when it ends.</p>')
    elif pictures.kind == "none":
        parts.append('<p class="empty">No Midjourney result for this task instance (yet).</p>')
    elif not pictures.pictures:
        parts.append('<p class="empty">This result has no pictures.</p>')
    else:
        chosen = pictures.chosen or []
        figures = "".join(
            _figure(p, links.picture(entry.task_id, entry.map_index, n), chosen)
            for n, p in enumerate(pictures.pictures)
        )
        grid_first = " grid-first" if pictures.pictures[0].kind == "grid" and len(pictures.pictures) > 1 else ""
        parts.append(f'<div class="pics{grid_first}">{figures}</div>')
    return (
        f'<section class="card" id="{_e(_anchor(entry))}" data-task="{_e(entry.task_id)}"'
        f' data-map-index="{entry.map_index}">' + "".join(parts) + "</section>"
    )


def task_page(dag_id: str, run_id: str, task_id: str, entries: Sequence[TaskEntry], links: Links) -> str:
    title = f"Midjourney · {task_id}"
    if not entries:
        body = f'<h1>{_e(title)}</h1><p class="empty">No such task instance in run {_e(run_id)}.</p>'
        return _document(title, body)
    mapped = len(entries) > 1
    cards = "".join(task_card(entry, links, link_title=mapped) for entry in entries)
    return _document(title, f"<h1>{_e(title)}</h1>{cards}")


def run_page(dag_id: str, run_id: str, entries: Sequence[TaskEntry], links: Links) -> str:
    title = f"Midjourney · {dag_id} · {run_id}"
    shown = [entry for entry in entries if entry.is_midjourney]
    pictures = sum(len(entry.pictures.pictures) for entry in shown)
    summary = f"<p>{len(shown)} Midjourney task instance(s), {pictures} picture(s).</p>"
    prompts = list(dict.fromkeys(p for entry in shown for p in entry.pictures.prompts))
    cards = "".join(task_card(entry, links, link_title=True, known_prompts=prompts) for entry in shown)
    if shown:
        summary += _overview(shown, prompts, links)
    if not shown:
        cards = '<p class="empty">No Midjourney task in this run.</p>'
    return _document(title, f"<h1>{_e(title)}</h1>{summary}{cards}")


def _overview(entries: Sequence[TaskEntry], prompts: Sequence[str], links: Links) -> str:
    """The run at a glance: each prompt once, then one line per task instance (in DAG order,
    upstream first) with its pictures as thumbnails, linking to its card below."""
    rows = []
    for entry in entries:
        name = entry.task_id + (f" [{entry.map_index}]" if entry.map_index >= 0 else "")
        label = f" · {_e(entry.button)}" if entry.button else ""
        thumbs = "".join(
            f'<img src="{_e(links.picture(entry.task_id, entry.map_index, n))}" alt="{_e(p.label)}">'
            for n, p in enumerate(entry.pictures.pictures)
            if not p.is_video
        )
        state = f'<span class="chip state-{_e(entry.state)}">{_e(entry.state)}</span>' if entry.state else ""
        rows.append(
            f'<li><a href="#{_e(_anchor(entry))}">{_e(name)}{label}</a>{state}<span class="strip">{thumbs}</span></li>'
        )
    shown_prompts = "".join(f'<p class="prompt">{_e(p)}</p>' for p in prompts)
    return f'<section class="card overview">{shown_prompts}<ol>{"".join(rows)}</ol></section>'
