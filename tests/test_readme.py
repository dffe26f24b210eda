"""The README keeps its promises: the commands it marks runnable print what it shows,
and every relative link in README.md and docs/ leads to a file (and heading) that exists.

A runnable command is a one-line ```bash block right after a ``<!-- run -->`` line
(``<!-- run exit=2 -->``: it must exit 2). The ```text block that follows it, if any, is
what it prints: each shown line must match a printed line, in order within stdout and
within stderr, with numbers, run ids and timestamps free to differ and ``…`` standing
for anything (paths, the venv's scripts).
"""

from __future__ import annotations

import re
import shlex
from dataclasses import dataclass
from pathlib import Path

import pytest
from helpers.cli import check_exit, learnai_env, run_python
from helpers.processes import REPO

README = REPO / "README.md"
DOCS = sorted((REPO / "docs").glob("*.md"))
MAX_README_LINES = 220

RUN_MARK = re.compile(r"<!-- run(?: exit=(\d+))? -->")
FENCE = re.compile(r"^\s*```")
# What may differ between the README's run and this one: ellipsis first (anything), then
# run ids, numbers (timestamps, losses, ids of experiments), runs of spaces (table columns).
RUN_ID = r"[0-9a-f]{32}"
NUMBER = r"-?\d+(?:\.\d+)?(?:e[-+]?\d+)?"
TOKEN = re.compile(f"(…|{RUN_ID}|{NUMBER}| +)")


@dataclass
class Block:
    line: int  # 1-based line of the marker in README.md
    command: str
    exit: int
    shown: list[str]


def runnable_blocks(text: str) -> list[Block]:
    """The README's marked commands, each with the output it shows."""
    lines = text.splitlines()
    blocks = []
    for i, line in enumerate(lines):
        mark = RUN_MARK.fullmatch(line.strip())
        if mark is None:
            continue
        assert lines[i + 1].strip() == "```bash", f"README.md:{i + 1}: no ```bash block after it"
        end = _fence_end(lines, i + 2)
        body = [c for c in lines[i + 2 : end] if c.strip()]
        assert len(body) == 1, f"README.md:{i + 1}: a runnable block holds one command"
        shown: list[str] = []
        after = end + 1
        while after < len(lines) and not lines[after].strip():
            after += 1
        if after < len(lines) and lines[after].strip() == "```text":
            shown = lines[after + 1 : _fence_end(lines, after + 1)]
        blocks.append(Block(i + 1, body[0].strip(), int(mark.group(1) or 0), shown))
    return blocks


def _fence_end(lines: list[str], start: int) -> int:
    for j in range(start, len(lines)):
        if FENCE.match(lines[j]):
            return j
    raise AssertionError(f"README.md:{start}: a code block is never closed")


def learnai_args(command: str) -> list[str]:
    """``python -m learnai ...`` / ``learnai ...`` as arguments for ``python``."""
    words = shlex.split(command)
    if words[:3] == ["python", "-m", "learnai"]:
        return words[1:]
    if words[:1] == ["learnai"]:
        return ["-m", "learnai", *words[1:]]
    raise AssertionError(f"not a learnai command: {command!r}")


def shape(shown: str) -> re.Pattern[str]:
    """A shown output line as a pattern: its words literal, its numbers any number."""
    parts = []
    for piece in TOKEN.split(shown.rstrip()):
        if not piece:
            continue
        if piece == "…":
            parts.append(".*")
        elif re.fullmatch(RUN_ID, piece):
            parts.append(RUN_ID)
        elif re.fullmatch(NUMBER, piece):
            parts.append(NUMBER)
        elif not piece.strip():
            parts.append(r"\s+")
        else:
            parts.append(re.escape(piece))
    return re.compile("".join(parts))


def unmatched(shown: list[str], stdout: str, stderr: str) -> list[str]:
    """The shown lines that no printed line matches (in order within each stream)."""
    streams = [
        [line.rstrip() for line in out.replace("\r", "\n").splitlines()] for out in (stdout, stderr)
    ]
    cursors = [0, 0]
    missing = []
    for line in shown:
        if not line.strip() or line.strip() == "...":
            continue
        pattern = shape(line)
        for s, printed in enumerate(streams):
            hit = next(
                (k for k in range(cursors[s], len(printed)) if pattern.fullmatch(printed[k])),
                None,
            )
            if hit is not None:
                cursors[s] = hit + 1
                break
        else:
            missing.append(line)
    return missing


def markdown_files() -> list[Path]:
    return [README, *DOCS]


def links(path: Path) -> list[str]:
    """Link and image targets outside code blocks."""
    text, inside = [], False
    for line in path.read_text().splitlines():
        if FENCE.match(line):
            inside = not inside
        elif not inside:
            text.append(re.sub(r"`[^`]*`", "", line))
    return re.findall(r"!?\[[^\]]*\]\(([^)\s]+)\)", "\n".join(text))


def anchors(path: Path) -> set[str]:
    """GitHub's anchors for the headings of a Markdown file."""
    found: set[str] = set()
    inside = False
    for line in path.read_text().splitlines():
        if FENCE.match(line):
            inside = not inside
        if inside or not line.startswith("#"):
            continue
        slug = re.sub(r"[^\w\- ]", "", line.lstrip("#").strip().lower()).replace(" ", "-")
        n, candidate = 0, slug
        while candidate in found:
            n += 1
            candidate = f"{slug}-{n}"
        found.add(candidate)
    return found


def test_readme_is_short_and_shows_the_two_commands() -> None:
    text = README.read_text()
    assert len(text.splitlines()) <= MAX_README_LINES
    commands = [line.split("#")[0].strip() for line in text.splitlines()]
    assert "make run" in commands and "make test" in commands


def test_readme_marks_a_few_learnai_commands_runnable() -> None:
    blocks = runnable_blocks(README.read_text())
    assert 3 <= len(blocks) <= 6, [b.command for b in blocks]
    for block in blocks:
        learnai_args(block.command)
        for line in block.shown:
            shape(line)  # every shown line makes a pattern


@pytest.mark.parametrize("doc", markdown_files(), ids=lambda p: p.relative_to(REPO).as_posix())
def test_relative_links_lead_somewhere(doc: Path) -> None:
    broken = []
    for target in links(doc):
        if re.match(r"[a-z]+:", target):  # http:, https:, mailto:
            continue
        path, _, anchor = target.partition("#")
        dest = (doc.parent / path).resolve() if path else doc
        found = dest.exists() and REPO in (dest, *dest.parents)
        if found and anchor and dest.suffix == ".md":
            found = anchor in anchors(dest)
        if not found:
            broken.append(target)
    assert not broken, f"{doc.name}: {broken}"


@pytest.mark.e2e
def test_readme_commands_print_what_the_readme_shows(tmp_path: Path) -> None:
    # The README shows a CPU machine's output ("on cpu"); one thread, as tests run in pairs.
    env = {**learnai_env(), "CUDA_VISIBLE_DEVICES": "", "OMP_NUM_THREADS": "1"}
    for block in runnable_blocks(README.read_text()):
        proc = run_python(tmp_path, *learnai_args(block.command), env=env)
        check_exit(proc, block.exit, f"README.md:{block.line}: {block.command}")
        missing = unmatched(block.shown, proc.stdout, proc.stderr)
        assert not missing, (
            f"README.md:{block.line}: {block.command} printed nothing like\n"
            + "\n".join(missing)
            + f"\n--- stdout\n{proc.stdout[-4000:]}\n--- stderr\n{proc.stderr[-4000:]}"
        )
