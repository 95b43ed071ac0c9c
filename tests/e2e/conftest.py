"""The e2e suite prints its reliability table at the end of the run."""

from __future__ import annotations

from typing import Any

RESULTS: list[dict[str, Any]] = []


def pytest_terminal_summary(terminalreporter: Any) -> None:
    if not RESULTS:
        return
    terminalreporter.section("reliability (tests/e2e)")
    terminalreporter.write_line("| scenario | what happened | jobs created | requests sent | result |")
    terminalreporter.write_line("| --- | --- | --- | --- | --- |")
    for row in RESULTS:
        terminalreporter.write_line(
            f"| {row['scenario']} | {row['happened']} | {row['jobs']} | {row['requests']} | {row['result']} |"
        )
