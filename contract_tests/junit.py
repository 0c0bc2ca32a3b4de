"""The JUnit XML both sides of the kit write: one <testsuite> in <testsuites>."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from collections.abc import Iterable
from pathlib import Path


def suite(
    name: str,
    *,
    tests: int,
    failures: int,
    errors: int,
    skipped: int,
    seconds: float,
    properties: Iterable[tuple[str, str]],
) -> ET.Element:
    element = ET.Element(
        "testsuite",
        name=name,
        tests=str(tests),
        failures=str(failures),
        errors=str(errors),
        skipped=str(skipped),
        time=f"{seconds:.3f}",
    )
    listed = ET.SubElement(element, "properties")
    for key, value in properties:
        ET.SubElement(listed, "property", name=key, value=value)
    return element


def case(parent: ET.Element, classname: str, name: str, seconds: float) -> ET.Element:
    return ET.SubElement(parent, "testcase", classname=classname, name=name, time=f"{seconds:.3f}")


def write(element: ET.Element, path: Path) -> None:
    tree = ET.ElementTree(ET.Element("testsuites"))
    tree.getroot().append(element)
    ET.indent(tree)
    path.parent.mkdir(parents=True, exist_ok=True)
    tree.write(path, encoding="utf-8", xml_declaration=True)
