"""Every code block of README.md and docs/ is run, or is an include of a file CI runs.

* ``--8<-- "path"`` includes: the file exists and a test runs it (example DAGs are run by name).
* ``python`` blocks: DAG code is parsed into a DAG (operators check their arguments there, before
  any HTTP call); hook code runs against the emulator.
* ``bash`` blocks: each command is a ``make`` target of the Makefile, a module or script of the
  repository, a pip install of files and extras that exist, or an ``AIRFLOW_CONN_*`` /
  ``AIRFLOW__MIDJOURNEY__*`` variable whose value the provider accepts.
* ``ini`` blocks: ``[midjourney]`` options the provider declares, with values it accepts.
* ``text`` and unmarked blocks are program output or diagrams, not code; a block of comments only is
  prose.
"""

from __future__ import annotations

import importlib.util
import json
import re
import shlex
import textwrap
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from airflow_provider_midjourney import config
from airflow_provider_midjourney.get_provider_info import CONNECTION_TYPES, get_provider_info
from tests.conftest import TOKEN, load_dag, write_dag

ROOT = Path(__file__).resolve().parent.parent
PAGES = sorted([ROOT / "README.md", *(ROOT / "docs").rglob("*.md")])
_FENCE = re.compile(r"^```(\w*)[^\n]*\n(.*?)^```", re.M | re.S)
# Configuration of other systems shown for reference (a StatsD exporter mapping, Prometheus queries).
OTHER_SYSTEMS = ("yaml", "promql")
_INCLUDE = re.compile(r'^--8<-- "([^"]+)"$')


@dataclass(frozen=True)
class Block:
    page: str
    index: int
    language: str
    code: str

    def __str__(self) -> str:
        return f"{self.page}#{self.index}-{self.language or 'plain'}"


def _blocks() -> list[Block]:
    found = []
    for page in PAGES:
        text = page.read_text(encoding="utf-8")
        for index, match in enumerate(_FENCE.finditer(text)):
            found.append(Block(str(page.relative_to(ROOT)), index, match.group(1), match.group(2)))
    return found


BLOCKS = _blocks()


def _includes(block: Block) -> list[str] | None:
    lines = [line.strip() for line in block.code.splitlines() if line.strip()]
    paths = [m.group(1) for m in map(_INCLUDE.match, lines) if m]
    return paths if paths and len(paths) == len(lines) else None


def _tests_source() -> str:
    return "\n".join(p.read_text(encoding="utf-8") for p in (ROOT / "tests").rglob("*.py"))


def _check_include(path: str) -> None:
    file = ROOT / path.split(":")[0]
    assert file.is_file(), f"included file {path} does not exist"
    if file.parent.name == "example_dags":
        assert f'"{file.stem}"' in _tests_source(), f"no test runs {path}"


def _make_targets() -> set[str]:
    makefile = (ROOT / "Makefile").read_text(encoding="utf-8")
    return {m.group(1) for m in re.finditer(r"^([A-Za-z][\w-]*):", makefile, re.M)}


def _commands(code: str) -> list[str]:
    joined = re.sub(r"\\\n\s*", " ", code)
    commands = []
    for line in joined.splitlines():
        line = re.sub(r"(^|\s)#.*$", "", line).strip()  # shell comments (not inside a URL fragment)
        if line:
            commands.append(line)
    return commands


def _check_variable(name: str, value: str, monkeypatch: pytest.MonkeyPatch) -> None:
    if name.startswith("AIRFLOW_CONN_"):
        conn = json.loads(value)
        entry = next(e for e in CONNECTION_TYPES if e["connection-type"] == conn["conn_type"])
        unknown = set(conn.get("extra", {})) - set(entry["conn-fields"])
        assert not unknown, f"{name}: extras {sorted(unknown)} are not fields of {conn['conn_type']}"
        from airflow_provider_midjourney.hooks.base import hook_for_connection

        monkeypatch.setenv(name, value.replace("<token>", TOKEN))
        with hook_for_connection(name.removeprefix("AIRFLOW_CONN_").lower()) as hook:
            assert hook.conn_type == conn["conn_type"]
    elif name.startswith("AIRFLOW__MIDJOURNEY__"):
        option = name.removeprefix("AIRFLOW__MIDJOURNEY__").lower()
        declared = get_provider_info()["config"][config.SECTION]["options"]
        assert option in declared, f"{name}: no option [midjourney] {option}"
        if option in config.OPTIONS:  # the gallery relay's allow-list is read (and checked) by plugins/addresses.py
            monkeypatch.setenv(name, value)
            getattr(config, option)()
    else:
        assert name.startswith("MIDJOURNEY_"), f"unknown variable {name}"
        assert name in (ROOT / "airflow_provider_midjourney" / "demo.py").read_text() + _ui_source(), name


def _ui_source() -> str:
    path = ROOT / ".ci" / "ui"
    return path.read_text(encoding="utf-8") if path.exists() else ""


def _check_pip_install(words: list[str]) -> None:
    args = iter(words[2:])
    for arg in args:
        if arg in ("-c", "--constraint"):
            assert (ROOT / next(args)).is_file()
        elif arg.startswith("apache-airflow=="):
            assert (ROOT / ".ci" / f"constraints-airflow-{arg.split('==')[1]}.txt").is_file(), arg
        elif arg.startswith("dist/"):
            assert arg.endswith(".whl")
        elif arg.startswith("airflow-provider-midjourney[") or arg.startswith(".["):
            extras = arg[arg.index("[") + 1 : -1].split(",")
            pyproject = (ROOT / "pyproject.toml").read_text()
            assert all(re.search(rf"^{e} = \[", pyproject, re.M) for e in extras), arg
        else:
            assert arg in (".", "-e", "-q"), f"pip install argument {arg!r} is not checked here"


def _check_command(command: str, monkeypatch: pytest.MonkeyPatch) -> None:
    words = shlex.split(command)
    while words and re.match(r"^[A-Z_][A-Z0-9_]*=", words[0]):  # VAR=value make demo
        name, _, value = words.pop(0).partition("=")
        _check_variable(name, value, monkeypatch)
    if words[:1] == ["export"]:
        name, _, value = words[1].partition("=")
        _check_variable(name, value, monkeypatch)
    elif words[:1] == ["make"]:
        assert set(words[1:]) <= _make_targets(), f"{command}: no such make target"
    elif words[:2] == ["python", "-m"] and words[2] != "pip":
        assert importlib.util.find_spec(words[2]) is not None, f"{command}: no module {words[2]}"
    elif words[:1] == ["python"]:
        assert (ROOT / words[1]).is_file(), f"{command}: no file {words[1]}"
    elif words[:2] == ["pip", "install"]:
        _check_pip_install(words)
    elif words[:3] == ["airflow", "connections", "add"]:
        options = dict(zip(words[4::2], words[5::2], strict=False))
        entry = next((e for e in CONNECTION_TYPES if e["connection-type"] == options.get("--conn-type")), None)
        assert entry is not None, f"{command}: not one of this provider's connection types"
        unknown = set(json.loads(options.get("--conn-extra", "{}"))) - set(entry["conn-fields"])
        assert not unknown, f"{command}: extras {sorted(unknown)} are not fields of {entry['connection-type']}"
    elif words[0].startswith(".ci/"):
        assert (ROOT / words[0]).is_file(), command
    else:
        pytest.fail(f"{command!r}: a documented command the test neither runs nor checks")


def _check_ini(code: str, monkeypatch: pytest.MonkeyPatch) -> None:
    section = None
    for line in code.splitlines():
        line = line.strip()
        if line.startswith("["):
            section = line.strip("[]")
        elif "=" in line:
            assert section == config.SECTION, f"{line}: only [midjourney] options are documented here"
            key, _, value = (part.strip() for part in line.partition("="))
            _check_variable(f"AIRFLOW__MIDJOURNEY__{key.upper()}", value, monkeypatch)


def _run_python(block: Block, emulator: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    code = textwrap.dedent(block.code)
    if "hook_for_connection" in code:
        for entry in CONNECTION_TYPES:
            conn = {"conn_type": entry["connection-type"], "host": emulator.base_url, "password": TOKEN}
            monkeypatch.setenv(f"AIRFLOW_CONN_{entry['connection-type'].upper()}_DEFAULT", json.dumps(conn))
        exec(compile(code, str(block), "exec"), {})
        return
    # DAG code: in a DAG with the operators imported and an imagine task for the block to use.
    uses_imagine = re.search(r"^imagine\s*=", code, re.M) is None and "imagine." in code
    body = ("imagine = MidjourneyImagineOperator(task_id='imagine', prompt='x')\n" if uses_imagine else "") + code
    dag_id = "doc_" + re.sub(r"\W", "_", str(block))
    source = (
        "from datetime import datetime, timedelta\nfrom airflow.sdk import DAG\n"
        "from airflow_provider_midjourney.operators import *\n"
        f"with DAG(dag_id={dag_id!r}, schedule=None, start_date=datetime(2026, 1, 1)) as dag:\n"
        + textwrap.indent(body, "    ")
    )
    dag = load_dag(write_dag(dag_id, source), dag_id)
    assert dag.task_ids, f"{block}: defines no task"


@pytest.mark.parametrize("block", BLOCKS, ids=str)
def test_every_code_block_is_run_or_included(block: Block, emulator: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    if (paths := _includes(block)) is not None:
        for path in paths:
            _check_include(path)
    elif block.language in ("text", "", *OTHER_SYSTEMS):  # program output, diagrams, other tools' config
        return
    elif all(not line.strip() or line.lstrip().startswith("#") for line in block.code.splitlines()):
        return  # only comments: nothing to run
    elif block.language == "python":
        _run_python(block, emulator, monkeypatch)
    elif block.language in ("bash", "sh"):
        for command in _commands(block.code):
            _check_command(command, monkeypatch)
    elif block.language == "ini":
        _check_ini(block.code, monkeypatch)
    else:
        pytest.fail(f"{block}: a {block.language or 'plain'} block is neither run nor checked")


def test_the_pages_have_code_blocks_to_check() -> None:
    assert len(BLOCKS) > 20 and {b.page for b in BLOCKS} >= {"README.md", "docs/getting-started.md"}


def test_every_option_is_documented() -> None:
    page = (ROOT / "docs" / "configuration.md").read_text(encoding="utf-8")
    assert all(f"`{option}`" in page for option in config.OPTIONS)


# --8<-- [start:emulator]
@pytest.mark.usefixtures("airflow_db")
def test_a_dag_against_the_emulator(monkeypatch: pytest.MonkeyPatch) -> None:
    from airflow_provider_midjourney.testing import JobTimings, MidjourneyEmulator
    from tests.conftest import example_dag

    with MidjourneyEmulator(token="t", timings=JobTimings(complete_after=0.2)) as emulator:
        monkeypatch.setenv(
            "AIRFLOW_CONN_MIDJOURNEY_DEFAULT",
            json.dumps({"conn_type": "imaginepro", "host": emulator.base_url, "password": "t"}),
        )
        monkeypatch.setenv("MIDJOURNEY_POLL_INTERVAL", "0.2")
        dag_run = example_dag("midjourney_describe_to_imagine").test()
        assert dag_run.state == "success"
        assert len(emulator.created_jobs("imagine")) == 1


# --8<-- [end:emulator]
