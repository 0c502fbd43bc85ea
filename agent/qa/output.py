"""What a QA run shows: a line per scenario as it finishes, the summary table (``rich``), and JUnit XML.

JUnit: one ``<testsuite name="webcall-agent qa">`` with a ``<testcase>`` per scenario (``classname`` its file,
``time`` its seconds; ``system-out`` lists every check's status, a skipped one with its reason); a failed scenario
carries one ``<failure>`` whose message names the failed checks and whose text lists each with its reason. No secret
is ever part of an outcome, so nothing here needs redacting.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from collections.abc import Sequence
from pathlib import Path

from rich.console import Console
from rich.markup import escape
from rich.table import Table

from agent.qa.checks import Check
from agent.qa.runner import Outcome

SUITE = "webcall-agent qa"


def progress_line(outcome: Outcome, *, console: Console) -> None:
    verdict = "[green]pass[/green]" if outcome.ok else "[red]FAIL[/red]"
    skipped = outcome.skipped()
    note = f"; skipped: {', '.join(check.name for check in skipped)}, {skipped[0].reason}" if skipped else ""
    console.print(f"{verdict} {escape(outcome.scenario.name)} ({outcome.seconds:.1f} s{escape(note)})", highlight=False)


def summary_table(outcomes: Sequence[Outcome]) -> Table:
    table = Table(title=f"{SUITE}: {sum(o.ok for o in outcomes)}/{len(outcomes)} scenarios passed")
    table.add_column("scenario")
    table.add_column("result")
    table.add_column("checks", justify="right")
    table.add_column("time", justify="right")
    table.add_column("failed checks")
    for outcome in outcomes:
        skipped = outcome.skipped()
        passed = sum(check.ok for check in outcome.checks if not check.skipped)
        counted = f"{passed}/{len(outcome.checks) - len(skipped)}"
        table.add_row(
            outcome.scenario.name,
            "[green]pass[/green]" if outcome.ok else "[red]FAIL[/red]",
            f"{counted}, {len(skipped)} skipped" if skipped else counted,
            f"{outcome.seconds:.1f} s",
            "\n".join(f"{check.name}: {check.reason}" for check in outcome.failures()),
        )
    return table


def junit_xml(outcomes: Sequence[Outcome]) -> bytes:
    failed = [outcome for outcome in outcomes if not outcome.ok]
    suite = ET.Element(
        "testsuite",
        name=SUITE,
        tests=str(len(outcomes)),
        failures=str(len(failed)),
        errors="0",
        time=f"{sum(o.seconds for o in outcomes):.3f}",
    )
    for outcome in outcomes:
        case = ET.SubElement(
            suite,
            "testcase",
            name=outcome.scenario.name,
            classname=f"scenarios.{outcome.scenario.path.stem}",
            time=f"{outcome.seconds:.3f}",
        )
        if not outcome.ok:
            failures = outcome.failures()
            failure = ET.SubElement(case, "failure", message=", ".join(check.name for check in failures))
            failure.text = "\n".join(f"{check.name}: {check.reason}" for check in failures)
        ET.SubElement(case, "system-out").text = f"room {outcome.room}; " + ", ".join(
            f"{check.name} {_status_word(check)}" for check in outcome.checks
        )
    root = ET.Element("testsuites")
    root.append(suite)
    ET.indent(root)
    text: bytes = ET.tostring(root, encoding="utf-8", xml_declaration=True)
    return text


def _status_word(check: Check) -> str:
    return f"skipped ({check.reason})" if check.skipped else "ok" if check.ok else "failed"


def write_junit(path: Path, outcomes: Sequence[Outcome]) -> None:
    path.write_bytes(junit_xml(outcomes))
