"""Builders of the Discord-message-like ``response`` objects, shaped like the docs' samples."""

from __future__ import annotations

import hashlib
import re
from datetime import UTC, datetime
from typing import Any

from airflow_provider_midjourney.testing import images

MENTION = "<@9876543210123456789>"
USERNAME = "emulator_user"
SPEED_LABEL = {"fast": "fast", "relax": "relaxed", "turbo": "turbo"}
GRID_BUTTONS = ["U1", "U2", "U3", "U4", "🔄", "V1", "V2", "V3", "V4"]
UPSCALED_BUTTONS = [
    "Upscale (Subtle)",
    "Upscale (Creative)",
    "Vary (Subtle)",
    "Vary (Strong)",
    "Vary (Region)",
    "Zoom Out 2x",
    "Zoom Out 1.5x",
    "Custom Zoom",
    "⬅️",
    "➡️",
    "⬆️",
    "⬇️",
    "Animate (High motion)",
    "Animate (Low motion)",
]
VIDEO_GRID_BUTTONS = ["U1", "U2", "U3", "U4", "🔄"]
VIDEO_SINGLE_BUTTONS = ["Extend (High motion)", "Extend (Low motion)"]
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


def _components(uid: str, buttons: list[str]) -> list[dict[str, Any]]:
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


def grid_media(cdn: str, uid: str, prompt: str, video: bool) -> dict[str, Any]:
    """``attachments`` + ``imageUx``/``videoUx`` of a 2x2 grid job."""
    grid_url = f"{cdn}/attachments/{uid}/grid_0.png"
    size = images.png_length(f"{uid}/grid_0", images.GRID_SIZE, images.GRID_SIZE)
    filename = f"{USERNAME}_{_slug(prompt)}_{uid}.png"
    media: dict[str, Any] = {"attachments": [_attachment(grid_url, filename, size, images.GRID_SIZE, images.GRID_SIZE)]}
    if video:
        media["videoUx"] = [{"id": k + 1, "url": f"{cdn}/video/{uid}/{k}.mp4"} for k in range(4)]
    else:
        media["imageUx"] = [{"id": k + 1, "url": f"{cdn}/{uid}/0_{k}.png"} for k in range(4)]
    return media


def single_media(cdn: str, uid: str, prompt: str, video: bool) -> dict[str, Any]:
    """``attachments`` + one-entry ``imageUx``/``videoUx`` of an upscaled image or video."""
    if video:
        url = f"{cdn}/video/{uid}/0.mp4"
        att = _attachment(url, f"{uid}.mp4", images.mp4_length(f"{uid}/0"), 512, 512)
        return {"attachments": [att], "videoUx": [{"id": 1, "url": url}]}
    size = images.png_length(f"{uid}/0_0")
    filename = f"{USERNAME}_{_slug(prompt)}_{uid}.png"
    url = f"{cdn}/attachments/{uid}/0_0.png"
    return {
        "attachments": [_attachment(url, filename, size, images.CELL_SIZE, images.CELL_SIZE)],
        "imageUx": [{"id": 1, "url": f"{cdn}/{uid}/0_0.png"}],
    }


def media_response(
    kind: str, cdn: str, uid: str, prompt: str, speed: str, button: str | None, buttons: list[str]
) -> dict[str, Any]:
    """Completed ``response`` for the kinds ``grid``, ``video_grid``, ``upscale``, ``video``."""
    line, speed_label = prompt_line(prompt), SPEED_LABEL.get(speed, speed)
    if kind in {"upscale", "video"}:
        index = button[1] if button and re.fullmatch(r"U[1-4]", button) else "1"
        content = f"**{line}** - Image #{index} {MENTION}"
        media = single_media(cdn, uid, prompt, video=kind == "video")
    else:
        by = f" {button} by" if button and button not in {"🔄"} else ""
        content = f"**{line}** -{by} {MENTION} ({speed_label})"
        media = grid_media(cdn, uid, prompt, video=kind == "video_grid")
    return {
        "type": 0,
        "content": content,
        "progress_percent": 100,
        "embeds": [],
        "components": _components(uid, buttons),
        **media,
        "buttons": list(buttons),
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


def seed_response(cdn: str, parent_uid: str, prompt: str, seed: int) -> dict[str, Any]:
    content = f"**{prompt_line(prompt)}**\n**Job ID**: {parent_uid}\n**seed** {seed}"
    attachments = [
        _attachment(
            f"{cdn}/attachments/{parent_uid}/0_{k}.png",
            f"{USERNAME}_{_slug(prompt)}_{k}_{parent_uid}.png",
            images.png_length(f"{parent_uid}/0_{k}"),
            images.CELL_SIZE,
            images.CELL_SIZE,
        )
        for k in range(4)
    ]
    return {"content": content, "attachments": attachments}


_ADJECTIVES = ["vintage", "luminous", "minimalist", "surreal", "weathered", "vivid", "serene"]
_SUBJECTS = ["lighthouse", "motorcycle", "tea house", "fox", "greenhouse", "sailing boat"]
_STYLES = ["studio lighting", "film photography", "watercolor", "isometric render", "oil paint"]


def describe_response(source: str) -> dict[str, Any]:
    digest = hashlib.sha256(source.encode()).digest()
    prompts = []
    for n, emoji in enumerate(["1️⃣", "2️⃣", "3️⃣", "4️⃣"]):
        adj = _ADJECTIVES[digest[n] % len(_ADJECTIVES)]
        subject = _SUBJECTS[digest[n + 4] % len(_SUBJECTS)]
        style = _STYLES[digest[n + 8] % len(_STYLES)]
        prompts.append(f"{emoji} a {adj} {subject} on a plain background, {style} --ar 1:1")
    description = "\n\n".join(prompts)
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


def moderated_fields(prompt: str, word: str) -> dict[str, Any]:
    details = (
        "Sorry! Please try a different prompt. We've detected that you may be trying to use a "
        f"word that is not allowed: `{word}`. Please review our community guidelines."
    )
    embed = {
        "type": "rich",
        "title": "Banned prompt detected",
        "description": details,
        "color": 16711680,
        "footer": {"text": f"/imagine {prompt}"},
    }
    return {
        "error": "Banned prompt detected",
        "errorDetails": details,
        "code": 422,
        "response": {"content": "", "embeds": [embed]},
    }


def failed_fields(word: str | None) -> dict[str, Any]:
    why = f" (failure word `{word}`)" if word else ""
    return {
        "error": "Midjourney job failed",
        "errorDetails": f"There was an error processing your request. Try again later.{why}",
        "code": 500,
    }


CANCELLED_FIELDS: dict[str, Any] = {
    "error": "Job cancelled by user",
    "errorDetails": "The job was cancelled with DELETE /v3/midjourney/jobs/<jobid>",
    "code": 499,
}
TIMED_OUT_FIELDS: dict[str, Any] = {
    "error": "Job timed out",
    "errorDetails": "The SSE client disconnected before the job finished; the job got stuck",
    "code": 504,
}
