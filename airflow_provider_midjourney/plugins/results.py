"""What a task instance's XCom says about pictures: a pure reading, shared by the pages and the
picture route (which must agree on what "picture 3 of this task" is).

Three shapes are recognised: a job result (``return_value`` of every Midjourney operator), a
download result (a list of stored files) and a pick (``midjourney_job``: the job a human chose
from). Anything else is "no Midjourney result". Only what these values name can ever be served.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

PictureKind = Literal["grid", "image", "video", "file"]
PICK_XCOM_KEY = "midjourney_job"
JOB_ID_XCOM_KEY = "job_id"
# A stored file or CDN answer is only relayed when it is one of these (never SVG: it can script).
MEDIA_TYPES = frozenset(
    {"image/png", "image/jpeg", "image/webp", "image/gif", "image/avif", "video/mp4", "video/webm", "video/quicktime"}
)
_EXTENSION_TYPES = {
    "png": "image/png",
    "jpg": "image/jpeg",
    "jpeg": "image/jpeg",
    "webp": "image/webp",
    "gif": "image/gif",
    "avif": "image/avif",
    "mp4": "video/mp4",
    "webm": "video/webm",
    "mov": "video/quicktime",
}


@dataclass(frozen=True)
class Picture:
    """One picture a task's result names: where it lives and how to show it."""

    kind: PictureKind
    label: str
    source: str  # an http(s) URL, or a stored file's URI
    fallback_url: str | None = None  # a stored file's original CDN URL
    content_type: str | None = None
    size: int | None = None
    #: a stored file that the task's own asset event lists (XCom alone proves nothing: users may write it)
    stored_by_task: bool = False

    @property
    def is_video(self) -> bool:
        if self.kind == "video":
            return True
        return (self.content_type or guess_type(self.source) or "").startswith("video/")


@dataclass
class TaskPictures:
    """A task instance as the gallery shows it."""

    kind: Literal["job", "download", "pick", "waiting", "none"]
    pictures: list[Picture] = field(default_factory=list)
    job: dict[str, Any] = field(default_factory=dict)
    job_ids: list[str] = field(default_factory=list)
    prompts: list[str] = field(default_factory=list)
    chosen: list[str] | None = None


def guess_type(source: str) -> str | None:
    """A media type from a URL's or path's extension (query and fragment ignored)."""
    path = source.split("?", 1)[0].split("#", 1)[0]
    extension = path.rsplit(".", 1)[-1].lower() if "." in path.rsplit("/", 1)[-1] else ""
    return _EXTENSION_TYPES.get(extension)


def is_job_result(value: Any) -> bool:
    return isinstance(value, dict) and isinstance(value.get("job_id"), str) and "status" in value


def is_download_result(value: Any) -> bool:
    return (
        isinstance(value, list)
        and bool(value)
        and all(isinstance(item, dict) and isinstance(item.get("uri"), str) for item in value)
    )


def _strings(value: Any) -> list[str]:
    return [item for item in value if isinstance(item, str) and item] if isinstance(value, list) else []


def job_pictures(result: dict[str, Any]) -> list[Picture]:
    """Grid first, then the separate images (U1..U4 order), then videos.

    Some backends give only the grid (``image_urls`` empty): the grid is then the only picture.
    A single image (an upscale) is shown once, not again as its attachment.
    """
    pictures: list[Picture] = []
    grid = result.get("grid_url")
    images = _strings(result.get("image_urls"))
    single = len(images) == 1  # an upscale: its "grid" (the attachment) is that same picture
    if isinstance(grid, str) and grid and not single:
        pictures.append(Picture("grid", "grid", grid))
    for number, url in enumerate(images, start=1):
        pictures.append(Picture("image", "image" if single else f"U{number}", url))
    for number, url in enumerate(_strings(result.get("video_urls")), start=1):
        pictures.append(Picture("video", f"video {number}", url))
    return pictures


def download_pictures(files: list[dict[str, Any]], listed: frozenset[str] = frozenset()) -> list[Picture]:
    """The stored files of a download task (each remembers the URL it came from); ``listed``: the
    URIs the task's own asset events name."""
    pictures = []
    for item in files:
        uri = str(item["uri"])
        url = item.get("url")
        size = item.get("size")
        content_type = item.get("content_type")
        pictures.append(
            Picture(
                "file",
                uri.rstrip("/").rsplit("/", 1)[-1],
                uri,
                fallback_url=url if isinstance(url, str) and url.lower().startswith(("http://", "https://")) else None,
                content_type=content_type if isinstance(content_type, str) else None,
                size=size if isinstance(size, int) else None,
                stored_by_task=uri in listed,
            )
        )
    return pictures


def read_task(return_value: Any, *, pick: Any = None, job_id: Any = None, event_extra: Any = None) -> TaskPictures:
    """Classify one task instance's values: XCom ``return_value``, ``midjourney_job`` and ``job_id``,
    and for a download the ``extra`` of the asset events it emitted (its job ids, prompts and the
    files it stored: only those are ever read from storage)."""
    if is_job_result(pick):
        chosen = _strings(return_value) if isinstance(return_value, list) else None
        return TaskPictures("pick", job_pictures(pick), pick, [pick["job_id"]], _prompt_list(pick), chosen)
    if is_job_result(return_value):
        job = return_value
        return TaskPictures("job", job_pictures(job), job, [job["job_id"]], _prompt_list(job))
    if is_download_result(return_value):
        extra = event_extra if isinstance(event_extra, dict) else {}
        ids, texts = _strings(extra.get("job_ids")), _strings(extra.get("prompts"))
        listed = frozenset(_strings(extra.get("files")))
        return TaskPictures("download", download_pictures(return_value, listed), job_ids=ids, prompts=texts)
    if isinstance(job_id, str) and job_id:
        return TaskPictures("waiting", job={"job_id": job_id}, job_ids=[job_id])
    return TaskPictures("none")


def _prompt_list(result: dict[str, Any]) -> list[str]:
    prompt = result.get("prompt")
    return [prompt] if isinstance(prompt, str) and prompt else []
