"""OpenLineage outputs of a download: each stored file as a dataset, in OpenLineage's naming.

Used by :meth:`MidjourneyDownloadOperator.get_openlineage_facets_on_complete`; works when the
``apache-airflow-providers-openlineage`` package is installed and is a no-op otherwise.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any
from urllib.parse import urlsplit

MAX_OUTPUTS = 100  # one event must stay small; a download stores at most a few dozen files


def dataset_name(uri: str) -> tuple[str, str]:
    """OpenLineage (namespace, name) of a stored file: ``file`` + absolute path for local files,
    ``scheme://authority`` + key for object stores (``s3://bucket`` + ``prefix/x.png``)."""
    parts = urlsplit(uri)
    if parts.scheme in ("", "file", "local"):
        return "file", parts.path if parts.scheme else uri
    return f"{parts.scheme}://{parts.netloc}", parts.path.lstrip("/")


def operator_lineage(uris: Iterable[str]) -> Any:
    """``OperatorLineage`` with one output per stored file, or None without the OpenLineage provider."""
    try:
        from airflow.providers.common.compat.openlineage.facet import Dataset
        from airflow.providers.openlineage.extractors import OperatorLineage
    except ImportError:
        return None
    names = list(dict.fromkeys(dataset_name(uri) for uri in uris))[:MAX_OUTPUTS]
    return OperatorLineage(outputs=[Dataset(namespace=namespace, name=name) for namespace, name in names])
