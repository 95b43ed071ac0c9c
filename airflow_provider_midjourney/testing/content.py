r"""The Discord message a Midjourney job shows (what useapi.net relays as ``response``), built from a :class:`JobView`.

Shaped like the vendors' documented samples; the useapi dialects answer with it and the
midjourney-proxy dialect reads its buttons' ``custom_id``\ s from it.
"""

from __future__ import annotations

import hashlib
import re
from datetime import UTC, datetime
from typing import Any

from airflow_provider_midjourney.testing import images
from airflow_provider_midjourney.testing.jobs import JobView
from airflow_provider_midjourney.testing.settings import USERNAME

MENTION = "<@9876543210123456789>"
SPEED_LABEL = {"fast": "fast", "relax": "relaxed", "turbo": "turbo"}
BLEND_AR = {"Portrait": "--ar 2:3", "Square": "--ar 1:1", "Landscape": "--ar 3:2"}


def iso(wall: float) -> str:
    """``2025-10-24T18:11:05.501Z``"""
    return datetime.fromtimestamp(wall, UTC).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"


def clock(wall: float) -> str:
    """``18:11:05.501`` (the SSE ``ts`` field)."""
    return datetime.fromtimestamp(wall, UTC).strftime("%H:%M:%S.%f")[:-3]


def snowflake(key: str) -> str:
    """A 19-digit Discord-like id derived from ``key``."""
    value = int.from_bytes(hashlib.sha256(key.encode()).digest()[:8], "big")
    return str(10**18 + value % (9 * 10**18))


def prompt_line(prompt: str) -> str:
    """The prompt as Midjourney echoes it, with the default suffix appended."""
    text = prompt.rstrip()
    if not re.search(r"--(v|version|niji)\b", text):
        text += " --v 7.0"
    if not re.search(r"--(s|stylize)\b", text):
        text += " --s 250"
    return text


def _slug(prompt: str) -> str:
    words = re.findall(r"[a-z0-9]+", prompt.lower().split("--")[0])
    return "_".join(words)[:40] or "None"


def _attachment(url: str, filename: str, size: int, width: int, height: int) -> dict[str, Any]:
    content_type = "video/mp4" if url.endswith(".mp4") else "image/png"
    return {
        "id": snowflake(url),
        "filename": filename,
        "url": url,
        "proxy_url": url,
        "size": size,
        "width": width,
        "height": height,
        "content_type": content_type,
    }


def _button(label: str, custom_id: str) -> dict[str, Any]:
    if label in {"🔄", "⬅️", "➡️", "⬆️", "⬇️"}:
        return {"type": 2, "style": 2, "emoji": {"name": label}, "custom_id": custom_id}
    return {"type": 2, "style": 2, "label": label, "custom_id": custom_id}


def components(uid: str, buttons: list[str]) -> list[dict[str, Any]]:
    def custom_id(label: str) -> str:
        if re.fullmatch(r"[UV][1-4]", label):
            action = "upsample" if label[0] == "U" else "variation"
            return f"MJ::JOB::{action}::{label[1]}::{uid}"
        if label == "🔄":
            return f"MJ::JOB::reroll::0::{uid}::SOLO"
        return f"MJ::JOB::{re.sub(r'[^a-z0-9]+', '_', label.lower()).strip('_')}::1::{uid}"

    rows = [buttons[i : i + 5] for i in range(0, len(buttons), 5)]
    out: list[dict[str, Any]] = [{"type": 1, "components": [_button(b, custom_id(b)) for b in row]} for row in rows]
    link = {"type": 2, "style": 5, "label": "", "url": f"https://www.midjourney.com/jobs/{uid}"}
    if out:
        out[-1]["components"].append(link)
    return out


def _media(view: JobView) -> dict[str, Any]:
    """``attachments`` + ``imageUx``/``videoUx`` of a finished grid, upscale or clip."""
    uid, url = view.uid, view.primary_url or ""
    filename = f"{USERNAME}_{_slug(view.prompt)}_{uid}.png"
    if view.kind in ("grid", "video_grid"):
        size = images.png_length(f"{uid}/grid_0", images.GRID_SIZE, images.GRID_SIZE)
        media: dict[str, Any] = {"attachments": [_attachment(url, filename, size, images.GRID_SIZE, images.GRID_SIZE)]}
    elif view.kind == "video":
        media = {"attachments": [_attachment(url, f"{uid}.mp4", images.mp4_length(f"{uid}/0"), 512, 512)]}
    else:
        size = images.png_length(f"{uid}/0_0")
        media = {"attachments": [_attachment(url, filename, size, images.CELL_SIZE, images.CELL_SIZE)]}
    if view.video_urls:
        media["videoUx"] = [{"id": k + 1, "url": clip} for k, clip in enumerate(view.video_urls)]
    else:
        media["imageUx"] = [{"id": k + 1, "url": cell} for k, cell in enumerate(view.image_urls)]
    return media


def media_response(view: JobView) -> dict[str, Any]:
    """Completed message of the kinds ``grid``, ``video_grid``, ``upscale``, ``video``."""
    line, speed_label, button = prompt_line(view.prompt), SPEED_LABEL.get(view.speed, view.speed), view.button
    if view.kind in {"upscale", "video"}:
        index = button[1] if button and re.fullmatch(r"U[1-4]", button) else "1"
        content = f"**{line}** - Image #{index} {MENTION}"
    else:
        by = f" {button} by" if button and button not in {"🔄"} else ""
        content = f"**{line}** -{by} {MENTION} ({speed_label})"
    return {
        "type": 0,
        "content": content,
        "progress_percent": 100,
        "embeds": [],
        "components": components(view.uid, list(view.buttons)),
        **_media(view),
        "buttons": list(view.buttons),
    }


def progress_content(prompt: str, speed: str, percent: int | None, button: str | None, kind: str) -> dict[str, Any]:
    """``response`` while started (``percent`` None) or in progress."""
    if kind not in {"grid", "video_grid", "upscale", "video"}:
        return {"content": "", "components": []}
    line = prompt_line(prompt)
    if percent is None:
        prefix = f"Upscaling image #{button[1]} with " if button and button[0] == "U" else ""
        return {"content": f"{prefix}**{line}** - {MENTION} (Waiting to start)"}
    label = SPEED_LABEL.get(speed, speed)
    return {"content": f"**{line}** - {MENTION} ({percent}%) ({label})", "progress_percent": percent}


def seed_response(view: JobView) -> dict[str, Any]:
    parent_uid = view.parent_uid or ""
    content = f"**{prompt_line(view.prompt)}**\n**Job ID**: {parent_uid}\n**seed** {view.seed}"
    attachments = [
        _attachment(
            url,
            f"{USERNAME}_{_slug(view.prompt)}_{k}_{parent_uid}.png",
            images.png_length(f"{parent_uid}/0_{k}"),
            images.CELL_SIZE,
            images.CELL_SIZE,
        )
        for k, url in enumerate(view.image_urls)
    ]
    return {"content": content, "attachments": attachments}


KEYCAPS = ("1️⃣", "2️⃣", "3️⃣", "4️⃣")


def describe_text(prompts: tuple[str, ...]) -> str:
    """The describe answer as the bot writes it: each prompt after its keycap, a blank line between."""
    return "\n\n".join(f"{emoji} {prompt}" for emoji, prompt in zip(KEYCAPS, prompts, strict=False))


def describe_response(view: JobView) -> dict[str, Any]:
    description = describe_text(view.describe_prompts)
    picker = [{"custom_id": f"MJ::Job::PicReader::{n}", "type": 2, "style": 2, "label": str(n)} for n in range(1, 5)]
    picker.append({"custom_id": "MJ::Picread::Retry", "type": 2, "style": 2, "emoji": {"name": "🔄"}})
    return {
        "embeds": [{"type": "rich", "description": description, "color": 0}],
        "content": description,
        "components": [
            {"type": 1, "components": picker},
            {
                "type": 1,
                "components": [{"custom_id": "MJ::Job::PicReader::all", "type": 2, "style": 2, "label": "Imagine all"}],
            },
        ],
    }


def moderation_embed(view: JobView) -> dict[str, Any]:
    """The message of a moderated job: the bot's refusal embed."""
    embed = {
        "type": "rich",
        "title": view.failure.title if view.failure else "Banned prompt detected",
        "description": view.failure.details if view.failure else "",
        "color": 16711680,
        "footer": {"text": f"/imagine {view.prompt}"},
    }
    return {"content": "", "embeds": [embed]}


def message(view: JobView) -> dict[str, Any] | None:
    """The job's message now (None while only created, or after a failure without one)."""
    if view.status in ("started", "progress"):
        return progress_content(view.prompt, view.speed, view.percent, view.button, view.kind)
    if view.status == "moderated":
        return moderation_embed(view)
    if view.status != "completed":
        return None
    if view.media:
        return media_response(view)
    if view.verb == "seed":
        return seed_response(view)
    if view.verb == "describe":
        return describe_response(view)
    return dict(view.settings_reply or {})
