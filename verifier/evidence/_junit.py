"""junit.xml: the run as one JUnit test case, for CI systems (GitHub, GitLab, Jenkins).

The recipe is the test case; its steps are lines of ``<system-out>``. A failed check is a
``<failure>`` (the app is wrong), a run that could not verify is an ``<error>`` (the
environment is wrong), the same split as exit codes 1 and 2. ElementTree does the
escaping; characters XML 1.0 cannot hold at all are removed first.
"""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from datetime import datetime
from pathlib import Path

from verifier.evidence._manifest import Manifest, StepRecord
from verifier.evidence.text import (
    failing_step,
    format_ms,
    one_line,
    step_label,
    step_number,
    write_text,
)

__all__ = ("write_junit",)

_MESSAGE_CHARS = 1_000
_TARGET_CHARS = 300
# XML 1.0 Char: #x9 | #xA | #xD | [#x20-#xD7FF] | [#xE000-#xFFFD] | [#x10000-#x10FFFF]
_NOT_XML = re.compile("[^\t\n\r\u0020-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]")


def xml_text(value: object) -> str:
    """``value`` as text XML 1.0 can hold (control characters, surrogates, U+FFFE/F gone)."""
    return _NOT_XML.sub("", str(value))


def _timestamp(started_at: object) -> str | None:
    """The JUnit schema's timestamp: ISO 8601 to the second, no zone (ours are UTC)."""
    if not isinstance(started_at, str):
        return None
    try:
        when = datetime.fromisoformat(started_at.replace("Z", "+00:00"))
    except ValueError:
        return None
    return when.replace(tzinfo=None, microsecond=0).isoformat()


def _step_line(step: StepRecord) -> str:
    target = one_line(str(step.get("target", "")))
    if len(target) > _TARGET_CHARS:
        target = target[: _TARGET_CHARS - 1] + "…"
    line = f"[{step.get('status')}] step {step_number(step)} {step.get('action')} {target!r}"
    line += f" ({format_ms(step.get('duration_ms'))})"
    if step.get("screenshot"):
        line += f" {step.get('screenshot')}"
    if step.get("error"):
        line += f"\n    {one_line(str(step.get('error')))[:_MESSAGE_CHARS]}"
    return line


def _message(text: str) -> str:
    line = one_line(text)
    return line if len(line) <= _MESSAGE_CHARS else line[: _MESSAGE_CHARS - 1] + "…"


def _earlier_attempts(case: ET.Element, manifest: Manifest) -> None:
    """The attempts before this one, as Maven Surefire writes reruns (which Jenkins,
    GitLab and the JUnit report actions read): ``flakyFailure``/``flakyError`` in a case
    that passed in the end, ``rerunFailure``/``rerunError`` in one that did not."""
    entries = manifest.get("attempts") or []
    prefix = "flaky" if manifest.get("verdict") == "passed" else "rerun"
    for entry in entries:
        if entry.get("run_id") == manifest.get("run_id") or entry.get("verdict") == "passed":
            continue
        kind = "Failure" if entry.get("verdict") == "failed" else "Error"
        text = f"attempt {entry.get('attempt')}: {entry.get('error') or entry.get('verdict')}"
        node = ET.SubElement(case, prefix + kind, {"message": xml_text(_message(text))})
        node.set("type", "CheckFailed" if kind == "Failure" else "Error")
        ET.SubElement(node, "system-out").text = xml_text(f"bundle: {entry.get('bundle')}")


def render_junit(manifest: Manifest) -> str:
    """The run as a JUnit XML document (a string, with its XML declaration)."""
    recipe = manifest.get("recipe") or {"name": "", "path": None, "sha256": ""}
    name = xml_text(recipe.get("name") or "recipe")
    verdict = manifest.get("verdict", "error")
    duration = manifest.get("duration_s")
    seconds = f"{duration:.3f}" if isinstance(duration, int | float) else "0"
    counts = {
        "tests": "1",
        "failures": "1" if verdict == "failed" else "0",
        "errors": "1" if verdict not in ("passed", "failed") else "0",
        "skipped": "0",
        "time": seconds,
    }
    suites = ET.Element("testsuites", {"name": "verifier", **counts})
    suite = ET.SubElement(suites, "testsuite", {"name": name, **counts})
    stamp = _timestamp(manifest.get("started_at"))
    if stamp:
        suite.set("timestamp", stamp)
        suites.set("timestamp", stamp)
    props = ET.SubElement(suite, "properties")
    facts = {
        "run_id": manifest.get("run_id"),
        "recipe.path": recipe.get("path"),
        "recipe.sha256": recipe.get("sha256"),
        **{f"environment.{k}": v for k, v in (manifest.get("environment") or {}).items()},
    }
    for key, value in facts.items():
        if value is not None:
            ET.SubElement(props, "property", {"name": key, "value": xml_text(value)})
    case = ET.SubElement(suite, "testcase", {"classname": "verifier", "name": name})
    case.set("time", seconds)
    if recipe.get("path"):
        case.set("file", xml_text(recipe.get("path")))

    step = failing_step(manifest)
    error = manifest.get("error")
    if verdict == "failed":
        text = str(step.get("error") or "check failed") if step else "a check failed"
        label = f"{step_label(step)}: " if step else ""
        node = ET.SubElement(case, "failure", {"message": xml_text(_message(label + text))})
        node.set("type", "CheckFailed")
        node.text = xml_text(text)
    elif verdict != "passed":
        kind = str(error.get("type", "Error")) if error else "Error"
        text = str(error.get("message", "")) if error else "the run did not finish"
        label = f"{step_label(step)}: " if step else ""
        node = ET.SubElement(case, "error", {"message": xml_text(_message(label + text))})
        node.set("type", xml_text(kind))
        node.text = xml_text(text)

    _earlier_attempts(case, manifest)
    lines = [_step_line(s) for s in manifest.get("steps") or []]
    lines.append("report: report.html")
    ET.SubElement(case, "system-out").text = xml_text("\n".join(lines))
    ET.indent(suites)
    return '<?xml version="1.0" encoding="UTF-8"?>\n' + ET.tostring(suites, encoding="unicode")


def write_junit(root: Path, manifest: Manifest) -> Path:
    """Write ``root/junit.xml``: one ``<testsuite>`` holding one ``<testcase>`` for the recipe.

    :raises BundleError: when the file cannot be written.
    """
    return write_text(root / "junit.xml", render_junit(manifest) + "\n")
