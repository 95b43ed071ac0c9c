"""Secret redaction: every token the provider reads is remembered here and hidden from its outputs.

Every token a hook reads (API tokens, Discord tokens) is registered, and every exception, trigger
event, log line and result the provider writes passes through :func:`redact`: an API that echoes a
token, or part of it, cannot leak it into task logs, scheduler logs, the Test button or XCom.
"""

from __future__ import annotations

import threading
from typing import Any

__all__ = ["ECHO_LENGTH", "redact", "redact_value", "register_secret"]


#: A run of this many characters of a secret, anywhere in a text, counts as an echo of it.
ECHO_LENGTH = 8
_secrets: set[str] = set()
_grams: set[str] = set()
_secrets_lock = threading.Lock()


def register_secret(value: str | None) -> None:
    """Remember ``value`` (and each run of :data:`ECHO_LENGTH` of its characters) to redact it."""
    if not isinstance(value, str) or len(value) < ECHO_LENGTH:
        return  # real tokens are far longer; hiding every "t" of a message would hide nothing
    with _secrets_lock:
        if value in _secrets:
            return
        _secrets.add(value)
        for start in range(len(value) - ECHO_LENGTH + 1):
            _grams.add(value[start : start + ECHO_LENGTH])


def redact(text: str) -> str:
    """``text`` with every registered secret, and every echo of 8+ of its characters, as ``***``."""
    if not _secrets or not isinstance(text, str) or not text:
        return text
    for secret in sorted(_secrets, key=len, reverse=True):
        if secret in text:
            text = text.replace(secret, "***")
    if not _grams or len(text) < ECHO_LENGTH:
        return text
    hidden = bytearray(len(text))
    found = False
    for start in range(len(text) - ECHO_LENGTH + 1):
        if text[start : start + ECHO_LENGTH] in _grams:
            hidden[start : start + ECHO_LENGTH] = b"\x01" * ECHO_LENGTH
            found = True
    if not found:
        return text
    out: list[str] = []
    for index, char in enumerate(text):
        if not hidden[index]:
            out.append(char)
        elif index == 0 or not hidden[index - 1]:
            out.append("***")
    return "".join(out)


def redact_value(value: Any) -> Any:
    """:func:`redact` applied to every string inside ``value`` (dicts, lists, tuples)."""
    if isinstance(value, str):
        return redact(value)
    if isinstance(value, dict):
        return {key: redact_value(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return type(value)(redact_value(item) for item in value)
    return value
