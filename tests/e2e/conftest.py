"""The e2e suite prints its reliability table at the end of the run."""

from __future__ import annotations

from typing import Any

from tests.e2e.stack import RESULTS


def pytest_terminal_summary(terminalreporter: Any) -> None:
    if not RESULTS:
        return
    terminalreporter.section("reliability (tests/e2e)")
    header = "| scenario | what happened | jobs created | requests sent (POST/GET/DELETE) | result |"
    terminalreporter.write_line(header)
    terminalreporter.write_line("| --- | --- | --- | --- | --- |")
    for row in RESULTS:
        terminalreporter.write_line(
            f"| {row['scenario']} | {row['happened']} | {row['jobs']} | {row['requests']} | {row['result']} |"
        )
