"""What every wing's wire models share: lenient answer models and the body a request sends."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict

from airflow_provider_midjourney.image_intake import ImageBlob


class OpenModel(BaseModel):
    """Base of every vendor's answer models: unknown fields are kept, never an error.

    ``defer_build``: the validators are built on first use, not when a DAG file imports the
    provider (that would add tens of milliseconds to every parse of every such file).
    """

    model_config = ConfigDict(extra="allow", populate_by_name=True, defer_build=True)


class HttpBody(BaseModel):
    """What a request model sends: a JSON object, or form fields plus files (multipart)."""

    model_config = ConfigDict(defer_build=True)

    json_body: dict[str, Any] | None = None
    data: dict[str, str] | None = None
    files: list[tuple[str, tuple[str, bytes, str]]] | None = None


def multipart_body(fields: dict[str, Any], blobs: dict[str, ImageBlob]) -> HttpBody:
    if not blobs:
        return HttpBody(json_body=fields)
    data = {
        key: ("true" if value is True else "false" if value is False else str(value)) for key, value in fields.items()
    }
    files = [(key, (blob.filename, blob.content, blob.content_type)) for key, blob in blobs.items()]
    return HttpBody(data=data, files=files)
