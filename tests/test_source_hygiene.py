"""No control characters in the sources: a tab, bell or backspace in a file is a typo no reader sees.

A docstring that once held LaTeX such as ``h_i^\\top``, ``\\alpha`` and ``\\big(``
written without its ``r`` prefix stores a tab, a bell and a backspace, and
``\\ni`` becomes a line break; the rendered text then says something else.
This test reads every tracked ``.py`` and ``.md`` file of the project and
fails, naming file, line, column and character, on any control character
other than the newline: tabs and carriage returns included.
"""

import subprocess
import unicodedata
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
FOLDERS = ("npmf", "tests", "benchmarks", "examples", "docs")
TOP_FILES = ("README.md", "CHANGELOG.md")
SUFFIXES = (".py", ".md")
ALLOWED = {"\n"}


def source_files():
    """The tracked .py and .md files of FOLDERS and TOP_FILES (all files there when git is unavailable)."""
    try:
        listed = subprocess.run(
            ["git", "ls-files", "-z", "--", *FOLDERS, *TOP_FILES],
            cwd=ROOT,
            capture_output=True,
            check=True,
            text=True,
        ).stdout.split("\0")
        paths = [ROOT / p for p in listed if p]
    except (OSError, subprocess.CalledProcessError):  # not a git checkout, or no git
        paths = [p for folder in FOLDERS for p in (ROOT / folder).rglob("*")] + [ROOT / f for f in TOP_FILES]
    return sorted(p for p in paths if p.suffix in SUFFIXES and p.is_file())


def offences(text):
    """(line, column, description) of every forbidden character in ``text``, 1-based."""
    found = []
    for number, line in enumerate(text.split("\n"), start=1):
        for column, char in enumerate(line, start=1):
            if char not in ALLOWED and unicodedata.category(char) == "Cc":
                found.append((number, column, f"U+{ord(char):04X} {_name(char)}"))
    return found


def _name(char):
    names = {"\t": "TAB", "\r": "CARRIAGE RETURN", "\a": "BEL", "\b": "BACKSPACE", "\f": "FORM FEED", "\v": "VT"}
    return names.get(char, "control character")


def test_the_check_finds_what_it_forbids():
    assert offences("x = 1\n") == []
    assert [c for _, c, _ in offences("h_i^\top \alpha \big(\r")] == [5, 9, 15, 19]


def test_no_control_characters_in_the_sources():
    files = source_files()
    assert ROOT / "npmf" / "__init__.py" in files, "the file listing found no sources"
    problems = []
    for path in files:
        try:
            text = path.read_text(encoding="utf-8")
        except UnicodeDecodeError as exc:
            problems.append(f"{path.relative_to(ROOT)}: not UTF-8 ({exc})")
            continue
        problems += [f"{path.relative_to(ROOT)}:{line}:{col}: {what}" for line, col, what in offences(text)]
    assert not problems, "control characters in the sources:\n" + "\n".join(problems)
