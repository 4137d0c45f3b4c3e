"""Code comments cite documents inside the repository, and what they cite exists.

A comment that points at a file outside the repository (a design brief, a shared notes
directory) cannot be followed by someone reading a clone; one that names a section the
document does not have misleads.  Checked here for every Python file of the project.
"""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("app", "cti", "routing", "bench", "tests", "migrations")
CAPTURE_NOTES = ROOT / "tests" / "fixtures" / "ami" / "README.md"

# Names of documents that live outside the repository.
OUTSIDE = re.compile(r"AMI-NOTES|DESIGN\.md|shared/|README §|README of the brief")
CITED_PATH = re.compile(r"\b((?:docs|tests/fixtures/ami|deploy/asterisk)/[\w./-]+\.md)\b")
SECTION = re.compile(r"§(\d+)(?:\.(\d+))?")


def python_files() -> list[Path]:
    return sorted(p for pkg in PACKAGES for p in (ROOT / pkg).rglob("*.py"))


def capture_sections() -> tuple[set[int], set[int]]:
    """Top-level section numbers of the recordings' notes, and the items of section 6."""
    text = CAPTURE_NOTES.read_text(encoding="utf-8")
    sections = {int(m) for m in re.findall(r"^## (\d+)\.", text, re.MULTILINE)}
    part6 = text.split("\n## 6.", 1)[1].split("\n## ", 1)[0]
    items = {int(m) for m in re.findall(r"^(\d+)\. ", part6, re.MULTILINE)}
    return sections, items


def test_no_citation_of_a_document_outside_the_repository() -> None:
    me = Path(__file__).resolve()
    offenders = [
        f"{path.relative_to(ROOT)}:{n}: {line.strip()}"
        for path in python_files()
        if path != me
        for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1)
        if OUTSIDE.search(line)
    ]
    assert offenders == []


def test_cited_documents_exist() -> None:
    missing = [
        f"{path.relative_to(ROOT)}: {cited}"
        for path in python_files()
        for cited in CITED_PATH.findall(path.read_text(encoding="utf-8"))
        if not (ROOT / cited).is_file()
    ]
    assert missing == []


def test_cited_sections_of_the_capture_notes_exist() -> None:
    sections, items = capture_sections()
    assert {5, 6} <= sections and len(items) >= 30
    wrong = []
    for path in python_files():
        for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
            for major, minor in SECTION.findall(line):
                if int(major) not in sections or (
                    minor and (int(major) != 6 or int(minor) not in items)
                ):
                    wrong.append(f"{path.relative_to(ROOT)}:{n}: {line.strip()}")
    assert wrong == []


def test_panoramisk_defects_cited_by_number_are_in_the_notes() -> None:
    notes = (ROOT / "docs" / "ami-notes.md").read_text(encoding="utf-8")
    numbered = {int(m) for m in re.findall(r"^(\d+)\. \*\*", notes, re.MULTILINE)}
    assert numbered == set(range(1, 12))
    cited = {
        int(m)
        for path in python_files()
        for m in re.findall(r"\bdefect (\d+)", path.read_text(encoding="utf-8"))
    }
    assert cited and cited <= numbered
