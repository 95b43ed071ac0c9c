"""Reading untrusted vendor text in linear time, and moderation patterns that cannot freeze a loop.

Vendor answers (a job's Discord ``content``, a describe embed, a failure reason) are untrusted: a
regular expression that backtracks turns a few KB of crafted spaces into seconds of CPU on every
poll, on the triggerer's one event loop. So:

* parsers here find fixed markers with backtrack-free patterns and slice between them (no lazy
  ``.*?`` racing a lookahead), and look at most :data:`MAX_SCANNED_TEXT` characters;
* a connection's ``moderation_patterns`` (regular expressions from the connection owner) are
  checked once when the connection is read — no nested or repeated-alternation quantifiers, no
  backreferences, at most one unbounded repeat per alternative, which matches at most
  :data:`MODERATION_REPEAT_CAP` characters — and run on at most :data:`MODERATION_TEXT_LIMIT`
  characters. A pattern that breaks a rule or does not compile is a
  :class:`~airflow_provider_midjourney.exceptions.MidjourneyConfigurationError` naming the field.

New backends: :func:`compile_moderation_patterns` reads the extra, :func:`matches_any` applies it,
:func:`keycap_items` / :func:`numbered_items` / :func:`labelled_number` read Midjourney's texts.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Sequence
from typing import Any

from airflow_provider_midjourney.exceptions import MidjourneyConfigurationError

try:  # Python 3.11+
    from re import _compiler as sre_compile  # type: ignore[attr-defined]
    from re import _constants as sre_constants  # type: ignore[attr-defined]
    from re import _parser as sre_parse  # type: ignore[attr-defined]
except ImportError:  # pragma: no cover - Python 3.10
    import sre_compile
    import sre_constants
    import sre_parse

__all__ = [
    "DEFAULT_MODERATION_PATTERNS",
    "MAX_SCANNED_TEXT",
    "MODERATION_TEXT_LIMIT",
    "compile_moderation_patterns",
    "describe_prompts",
    "is_moderation",
    "keycap_items",
    "labelled_number",
    "labelled_word",
    "leading_bold",
    "matches_any",
    "moderation_patterns",
    "numbered_items",
    "percent",
]

#: Characters of one vendor text any parser here looks at (a Discord message holds at most 2,000,
#: an embed 4,096).
MAX_SCANNED_TEXT = 16_384
#: Characters of a failure reason the moderation patterns run on (the vendors' reasons are a line).
MODERATION_TEXT_LIMIT = 500
MAX_PATTERNS, MAX_PATTERN_LENGTH = 20, 500
#: What an unbounded repeat (``*``, ``+``, ``{n,}``) of a moderation pattern matches at most: with
#: one such repeat per alternative, a search costs at most text × this many steps per pattern.
MODERATION_REPEAT_CAP = 32
#: A counted repeat above this many counts as unbounded in the one-per-alternative rule.
_LARGE_REPEAT = 8

# Case-insensitive regular expressions; an error text matching any of them is moderation. They
# cover Midjourney's own wordings ("Banned prompt detected", "a word that is not allowed",
# "community guidelines", "Job action restricted" by the AI moderator, "Request cancelled due to
# image filters") and the generic words a relaying API uses ("moderation", "content policy",
# "NSFW", "prohibited", "violates"). A vendor's exact wording is often not documented.
DEFAULT_MODERATION_PATTERNS: tuple[str, ...] = (
    r"banned",
    r"not allowed",
    r"community guidelines",
    r"moderat",
    r"content polic",
    r"inappropriate",
    r"\bnsfw\b",
    r"prohibited",
    r"violat",
    r"(image|output) filters?",
    r"job action restricted",
)

_KEYCAP = re.compile("([1-4])\ufe0f?\u20e3")
_NUMBERED = re.compile(r"(?:^|(?<=\s))([1-4])[.)](?=\s)")
_PERCENT = re.compile(r"\d{1,3}(?:\.\d{1,6})?")


def bounded(text: Any, limit: int = MAX_SCANNED_TEXT) -> str:
    """``text`` cut to ``limit`` characters; anything that is not text is empty."""
    return text[:limit] if isinstance(text, str) else ""


def leading_bold(text: Any) -> str | None:
    """The text between the ``**`` that open ``text`` and the next ``**`` (Midjourney's echoed prompt)."""
    text = bounded(text)
    if not text.startswith("**"):
        return None
    end = text.find("**", 3)  # the bold text is at least one character
    return text[2:end] if end > 2 else None


def _items(text: str, markers: Iterable[re.Match[str]]) -> list[str]:
    found = list(markers)
    items = []
    for index, marker in enumerate(found):
        end = found[index + 1].start() if index + 1 < len(found) else len(text)
        items.append(text[marker.end() : end].strip())
    return items


def keycap_items(text: Any) -> list[str]:
    """The texts after 1️⃣ … 4️⃣ (Midjourney's /describe answer), each stripped; [] without any."""
    text = bounded(text)
    return _items(text, _KEYCAP.finditer(text))


def numbered_items(text: Any) -> list[str]:
    """The texts after ``1.`` … ``4.`` (or ``1)``) at the start of a word, each stripped."""
    text = bounded(text)
    return _items(text, _NUMBERED.finditer(text))


def describe_prompts(text: Any) -> list[str]:
    """/describe's prompts in a text: after 1️⃣ … 4️⃣, else after ``1.`` … ``4.`` (two markers at least;
    empty items dropped); [] when neither list is there."""
    for split in (keycap_items, numbered_items):
        found = split(text)
        if len(found) >= 2:
            return [item for item in found if item]
    return []


def percent(value: Any) -> int | None:
    """A progress of 0-100 from a number, ``"45"``, ``"45%"`` or ``"45.5"`` (vendors type it both
    ways); anything else is unknown (None)."""
    if value is None or isinstance(value, bool):
        return None
    if isinstance(value, int | float):
        return max(0, min(100, int(value)))
    raw = str(value)[:41]  # longer is no percentage; cutting it could make one out of junk
    match = _PERCENT.fullmatch(raw.strip().removesuffix("%").rstrip()) if len(raw) <= 40 else None
    return max(0, min(100, int(float(match.group(0))))) if match else None


def _after_label(text: Any, label: str) -> str | None:
    """What follows the first ``**label**`` (any case), past spaces and one optional colon."""
    scanned = bounded(text)
    start = scanned.lower().find(f"**{label.lower()}**")
    if start < 0:
        return None
    rest = scanned[start + len(label) + 4 :].lstrip()
    return rest[1:].lstrip() if rest.startswith(":") else rest


def labelled_number(text: Any, label: str, max_digits: int = 20) -> int | None:
    """The number after ``**label**`` (``**seed** 3937070146``, ``**seed**: 12``), or None."""
    rest = _after_label(text, label)
    if not rest:
        return None
    digits = rest[: max_digits + 1]
    count = len(digits) - len(digits.lstrip("0123456789"))
    return int(digits[:count]) if 0 < count <= max_digits else None


def labelled_word(text: Any, label: str, words: Sequence[str]) -> str | None:
    """Which of ``words`` (any case) follows ``**label**`` (``**Job Mode**: Fast``), or None."""
    rest = _after_label(text, label)
    if not rest:
        return None
    head = rest[: max(len(w) for w in words)].lower()
    for word in sorted(words, key=len, reverse=True):
        if head.startswith(word.lower()):
            return word
    return None


# -- moderation patterns ---------------------------------------------------------------------------


def compile_moderation_patterns(value: Any, field: str, default: Sequence[str] = ()) -> tuple[re.Pattern[str], ...]:
    """The connection extra ``field`` as safe, compiled, case-insensitive patterns.

    Accepted: a regular expression, a JSON list of them, one per line, a list; empty means
    ``default``. Refused (naming ``field`` and the pattern): text that does not compile, and
    patterns whose matching time can grow faster than the text (see the module's rules).
    """
    raw = _pattern_list(value, field, default)
    if len(raw) > MAX_PATTERNS:
        raise MidjourneyConfigurationError(f"{field}: at most {MAX_PATTERNS} patterns, got {len(raw)}")
    compiled = []
    for pattern in raw:
        if not isinstance(pattern, str) or not pattern.strip():
            raise MidjourneyConfigurationError(
                f"{field}: each pattern must be a non-empty regular expression, got {str(pattern)[:80]!r}"
            )
        if len(pattern) > MAX_PATTERN_LENGTH:
            raise MidjourneyConfigurationError(
                f"{field}: a pattern may be at most {MAX_PATTERN_LENGTH} characters, got {len(pattern)}"
            )
        try:
            parsed = sre_parse.parse(pattern, re.IGNORECASE)
        except (re.error, OverflowError, RecursionError) as exc:
            raise MidjourneyConfigurationError(
                f"{field}: {pattern[:80]!r} is an invalid regular expression ({exc})"
            ) from None
        problem = _slow_construct(parsed)
        if problem:
            raise MidjourneyConfigurationError(
                f"{field}: {pattern[:80]!r} is refused: {problem}. Patterns may use at most one unbounded"
                " repeat (*, +, {n,}) per alternative, no repeat inside a repeated group, no repeated"
                " alternation and no backreference: those can take exponential time on crafted text"
            )
        _cap_repeats(parsed.data)
        compiled.append(sre_compile.compile(parsed, re.IGNORECASE))
    return tuple(compiled)


def matches_any(patterns: Sequence[re.Pattern[str]], text: Any) -> bool:
    """Whether any pattern is found in the first :data:`MODERATION_TEXT_LIMIT` characters of ``text``."""
    text = bounded(text, MODERATION_TEXT_LIMIT)
    return bool(text) and any(p.search(text) for p in patterns)


def _pattern_list(value: Any, field: str, default: Sequence[str]) -> list[Any]:
    if value is None or (isinstance(value, str) and not value.strip()):
        return list(default)
    if isinstance(value, str):
        text = value.strip()
        if text.startswith("["):
            try:
                loaded = json.loads(text)
            except ValueError:
                loaded = None
            if isinstance(loaded, list):
                return loaded
        return [line.strip() for line in text.splitlines() if line.strip()]
    if isinstance(value, list | tuple):
        return list(value)
    raise MidjourneyConfigurationError(
        f"{field}: must be a regular expression, a list of them or one per line, got {type(value).__name__}"
    )


_REPEATS = {sre_constants.MAX_REPEAT, sre_constants.MIN_REPEAT, getattr(sre_constants, "POSSESSIVE_REPEAT", None)}
_BACKREFS = {sre_constants.GROUPREF, sre_constants.GROUPREF_EXISTS, getattr(sre_constants, "GROUPREF_IGNORE", None)}


def _slow_construct(parsed: Any) -> str | None:
    """Why ``parsed`` (an sre parse tree) may backtrack super-linearly, or None."""
    try:
        _degree(parsed, in_repeat=False)
    except _Slow as slow:
        return str(slow)
    return None


class _Slow(Exception):
    pass


def _degree(items: Any, *, in_repeat: bool) -> int:
    """Unbounded repeats in sequence along the worst path of ``items``; raises :class:`_Slow`."""
    total = 0
    for op, arg in items:
        if op in _BACKREFS:
            raise _Slow("a backreference")
        if op in _REPEATS:
            _low, high, body = arg
            if in_repeat and high > 1:
                raise _Slow("a repeat inside a repeated group (nested quantifier)")
            many = high > 1
            if many and any(sub_op == sre_constants.BRANCH for sub_op, _ in _flat(body)):
                raise _Slow("a repeated alternation")
            _degree(body, in_repeat=in_repeat or many)
            total += 1 if high == sre_constants.MAXREPEAT or high > _LARGE_REPEAT else 0
        elif op == sre_constants.SUBPATTERN:
            total += _degree(arg[-1], in_repeat=in_repeat)
        elif op == sre_constants.BRANCH:
            total += max((_degree(branch, in_repeat=in_repeat) for branch in arg[1]), default=0)
        elif op in (sre_constants.ASSERT, sre_constants.ASSERT_NOT):
            total += _degree(arg[1], in_repeat=in_repeat)
        if total > 1:
            raise _Slow("more than one unbounded repeat in a row")
    return total


def _cap_repeats(items: list[Any]) -> None:
    """Unbounded repeats of a parsed pattern made to match at most :data:`MODERATION_REPEAT_CAP` times."""
    for index, (op, arg) in enumerate(items):
        if op in _REPEATS:
            low, high, body = arg
            if high == sre_constants.MAXREPEAT:
                items[index] = (op, (low, max(low, MODERATION_REPEAT_CAP), body))
            _cap_repeats(body.data)
        elif op == sre_constants.SUBPATTERN:
            _cap_repeats(arg[-1].data)
        elif op == sre_constants.BRANCH:
            for branch in arg[1]:
                _cap_repeats(branch.data)
        elif op in (sre_constants.ASSERT, sre_constants.ASSERT_NOT):
            _cap_repeats(arg[1].data)


def _flat(items: Any) -> Iterable[tuple[Any, Any]]:
    """Every node of ``items`` and of the groups inside it (not of nested repeats: those are refused)."""
    for op, arg in items:
        yield op, arg
        if op == sre_constants.SUBPATTERN:
            yield from _flat(arg[-1])
        elif op == sre_constants.BRANCH:
            for branch in arg[1]:
                yield from _flat(branch)


def is_moderation(error: str | None, patterns: Sequence[re.Pattern[str]]) -> bool:
    return matches_any(patterns, error)


def moderation_patterns(value: Any, conn_id: str) -> tuple[re.Pattern[str], ...]:
    """The connection's ``moderation_patterns`` extra: a regular expression (alternatives with
    ``|``), a JSON list of them, one per line, or empty for :data:`DEFAULT_MODERATION_PATTERNS`."""
    field = f"Connection {conn_id!r}: extra 'moderation_patterns'"
    return compile_moderation_patterns(value, field, DEFAULT_MODERATION_PATTERNS)
