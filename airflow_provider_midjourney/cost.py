"""What a job cost, or what is left on the account, as a small neutral dict (the result's ``cost``).

Vendors count in their own units (credits, points, quota, fast hours): the dict keeps each in its
own keys, ``<unit>_spent`` (what this job took), ``<unit>_left`` (what the account has left after
it) and ``<unit>_total`` (the plan's allowance), so the job's own figure and an account balance
merge without clashing. Numbers only: the values come from vendor answers, which are untrusted.

A backend reports cost in one or both of two places:

- the job answer: its wire model sets ``MidjourneyJob.cost`` with :func:`cost_entry`
  (useapi v3: the ``info`` job's fast hours);
- an account balance: its hook overrides ``MidjourneyBackendHook.fetch_balance`` (one GET after a
  completed job, bounded in time, no retries; ImaginePro's credits).
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from typing import Any

__all__ = ["MAX_COST_KEYS", "cost_entry", "fast_hours_of_info", "merge_costs", "number"]

#: Keys kept in one ``cost`` dict: a vendor cannot fill the XCom with it.
MAX_COST_KEYS = 12
_UNIT = re.compile(r"[a-z][a-z0-9_]{0,23}\Z")
_KEY = re.compile(r"[a-z][a-z0-9_]{0,23}_(spent|left|total)\Z")
# Midjourney's /info: "**Fast Time Remaining**: 9.34/15.0 hours (62.27%)". Bounded quantifiers only.
_NUMBER = r"([0-9]{1,6}(?:\.[0-9]{1,4})?)"
_FAST_TIME = re.compile(rf"Fast Time Remaining\**:\**\s{{0,4}}{_NUMBER}/{_NUMBER} hours")


def number(value: Any) -> float | int | None:
    """A finite number from a vendor's value (``12``, ``"9.34"``), else None. Never raises."""
    if isinstance(value, bool) or value is None:
        return None
    if isinstance(value, str):
        text = value.strip()
        if not text or len(text) > 32:
            return None
        try:
            value = float(text)
        except ValueError:
            return None
    if not isinstance(value, int | float):
        return None
    if isinstance(value, float):
        if not math.isfinite(value):
            return None
        return int(value) if value.is_integer() and abs(value) < 2**53 else round(value, 6)
    return value if abs(value) < 2**53 else None


def cost_entry(unit: str, *, spent: Any = None, left: Any = None, total: Any = None) -> dict[str, float | int]:
    """``{"<unit>_spent": …, "<unit>_left": …, "<unit>_total": …}`` with the numbers that are known.

    ``unit`` is ours (``credits``, ``points``, ``quota``, ``fast_hours``); values that are not
    finite numbers are left out, so an empty dict means "nothing known".
    """
    if not _UNIT.match(unit):
        raise ValueError(f"unit: lowercase letters, digits and _ only, got {unit!r}")
    entry: dict[str, float | int] = {}
    for suffix, raw in (("spent", spent), ("left", left), ("total", total)):
        value = number(raw)
        if value is not None:
            entry[f"{unit}_{suffix}"] = value
    return entry


def merge_costs(*parts: Mapping[str, Any] | None) -> dict[str, float | int] | None:
    """The parts merged (later ones win), checked again; None when nothing is known."""
    merged: dict[str, float | int] = {}
    for part in parts:
        if not isinstance(part, Mapping):
            continue
        for key, raw in list(part.items())[:MAX_COST_KEYS]:
            value = number(raw)
            if isinstance(key, str) and _KEY.match(key) and value is not None:
                merged[key] = value
    return dict(list(merged.items())[:MAX_COST_KEYS]) or None


def fast_hours_of_info(*texts: str | None) -> dict[str, float | int] | None:
    """Fast hours left and in the plan, from the text of Midjourney's ``/info`` answer; else None."""
    for text in texts:
        match = _FAST_TIME.search((text or "")[:8000])
        if match:
            return cost_entry("fast_hours", left=match.group(1), total=match.group(2)) or None
    return None
