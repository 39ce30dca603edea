"""JUnit XML for CI systems: one testsuite per validation area, one testcase per check."""

from __future__ import annotations

import os
import tempfile
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from envplane.validate.checks import Report


def write_junit(report: Report, path: str | os.PathLike[str]) -> None:
    suites = ET.Element("testsuites", name=f"envplane validate {report.environment}")
    by_area: dict[str, ET.Element] = {}
    for check in report.checks:
        suite = by_area.get(check.category)
        if suite is None:
            suite = ET.SubElement(suites, "testsuite", name=check.category)
            by_area[check.category] = suite
        case = ET.SubElement(
            suite,
            "testcase",
            classname=f"{report.environment}.{check.category}",
            name=check.name,
            time=f"{check.seconds:.3f}",
        )
        if check.status == "fail":
            ET.SubElement(case, "failure", message=check.detail).text = check.detail
        elif check.status == "skip":
            ET.SubElement(case, "skipped", message=check.detail)
    for suite in by_area.values():
        cases = list(suite)
        suite.set("tests", str(len(cases)))
        suite.set("failures", str(sum(1 for c in cases if c.find("failure") is not None)))
        suite.set("skipped", str(sum(1 for c in cases if c.find("skipped") is not None)))
    target = Path(path)
    fd, tmp = tempfile.mkstemp(dir=target.parent if str(target.parent) else ".", prefix=".junit-")
    with os.fdopen(fd, "wb") as f:
        ET.ElementTree(suites).write(f, encoding="utf-8", xml_declaration=True)
    os.replace(tmp, target)
