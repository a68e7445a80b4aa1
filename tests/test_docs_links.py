"""The documentation is one manual that holds together: every relative link in README.md and docs/*.md resolves to
a file of the repository (and every ``#anchor`` to a heading of its target, slugged as GitHub slugs them), every
document in docs/ is reachable from the README, the README stays an entry point (at most 150 lines, opening with
``make reports`` and ``make test``), and no document points at anything outside the repository.

The checker is tested on documents written for the purpose, so a broken link is known to fail the suite.
No database needed.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
README = ROOT / "README.md"
DOCS = sorted((ROOT / "docs").glob("*.md"))
MAX_README_LINES = 150
# Documents that are not in the repository, which no document may point at (spelt in two parts so that a search of
# the repository for references to them finds none here).
OUTSIDE = ("DESIGN" + ".md", "../" + "shared")

FENCE = re.compile(r"^\s*(```|~~~)")
CODE_SPAN = re.compile(r"`[^`]*`")
# [text](target) and ![alt](target); the text may hold one level of brackets; an optional "title" after the target.
LINK = re.compile(r"!?\[(?:[^\[\]]|\[[^\[\]]*\])*\]\(\s*<?([^()\s<>]+)>?(?:\s+\"[^\"]*\")?\s*\)")
HEADING = re.compile(r"^#{1,6}\s+(.+?)\s*#*\s*$")
SCHEME = re.compile(r"^[a-zA-Z][a-zA-Z0-9+.-]*:")


def prose(text: str) -> str:
    """The text with fenced code blocks and inline code spans blanked (same line numbers): links and headings in
    code are examples, not links."""
    lines, in_fence = [], False
    for line in text.split("\n"):
        if FENCE.match(line):
            in_fence = not in_fence
            lines.append("")
        else:
            lines.append("" if in_fence else line)
    return CODE_SPAN.sub(lambda m: re.sub(r"[^\n]", " ", m.group()), "\n".join(lines))


def links(text: str) -> list[tuple[int, str]]:
    """(line number, target) of every inline link and image outside code."""
    body = prose(text)
    return [(body.count("\n", 0, m.start()) + 1, m.group(1)) for m in LINK.finditer(body)]


def github_slug(heading: str) -> str:
    """The anchor GitHub gives a heading: its text (link text only, no backticks), lower case, punctuation other
    than ``-`` and ``_`` removed, each space a hyphen (so "A — B" becomes ``a--b``)."""
    text = re.sub(r"\[([^\]]*)\]\([^)]*\)", r"\1", heading).replace("`", "")
    return re.sub(r"[^\w\- ]", "", text.strip().lower()).replace(" ", "-")


def anchors(path: Path) -> set[str]:
    """Every heading anchor of a Markdown file; a repeated slug gets ``-1``, ``-2``... as on GitHub."""
    found: set[str] = set()
    seen: dict[str, int] = {}
    in_fence = False
    for line in path.read_text(encoding="utf-8").split("\n"):
        if FENCE.match(line):
            in_fence = not in_fence
            continue
        match = None if in_fence else HEADING.match(line)
        if match:
            slug = github_slug(match.group(1))
            count = seen.get(slug, 0)
            seen[slug] = count + 1
            found.add(slug if count == 0 else f"{slug}-{count}")
    return found


def problems(doc: Path, root: Path = ROOT) -> list[str]:
    """Every relative link of ``doc`` that does not resolve, as ``name:line: target: why``."""
    found = []
    for line, target in links(doc.read_text(encoding="utf-8")):
        if SCHEME.match(target) or target.startswith("//"):
            continue  # http(s), mailto: not files of the repository
        path_part, _, anchor = target.partition("#")
        dest = (doc.parent / path_part).resolve() if path_part else doc
        where = f"{doc.name}:{line}: {target}"
        if not dest.is_relative_to(root.resolve()):
            found.append(f"{where}: outside the repository")
        elif not dest.exists():
            found.append(f"{where}: no such file")
        elif anchor and dest.suffix != ".md":
            found.append(f"{where}: an anchor into a file that is not Markdown")
        elif anchor and anchor not in anchors(dest):
            found.append(f"{where}: no heading with that anchor in {dest.name}")
    return found


# ----------------------------------------------------------------------------------------- the repository's docs


def test_there_are_docs():
    assert README.exists()
    assert len(DOCS) >= 8, [d.name for d in DOCS]


@pytest.mark.parametrize("doc", [README, *DOCS], ids=lambda p: p.relative_to(ROOT).as_posix())
def test_every_relative_link_resolves(doc: Path):
    assert links(doc.read_text(encoding="utf-8")), f"{doc.name} links nowhere"
    assert problems(doc) == []


@pytest.mark.parametrize("doc", [README, *DOCS], ids=lambda p: p.relative_to(ROOT).as_posix())
def test_no_document_points_outside_the_repository(doc: Path):
    text = doc.read_text(encoding="utf-8")
    assert [name for name in OUTSIDE if name in text] == []


def test_every_doc_is_linked_from_the_readme():
    linked = {(README.parent / t.partition("#")[0]).resolve() for _, t in links(README.read_text(encoding="utf-8"))}
    assert [d.name for d in DOCS if d.resolve() not in linked] == []


@pytest.mark.parametrize("doc", DOCS, ids=lambda p: p.name)
def test_each_doc_opens_with_a_title_and_a_paragraph_saying_what_it_covers(doc: Path):
    lines = doc.read_text(encoding="utf-8").split("\n")
    assert lines[0].startswith("# "), lines[0]
    assert lines[1] == ""
    first = lines[2]
    assert first and not first.startswith(("#", "```", "-", "|", "*", ">")), first


def test_readme_is_an_entry_point():
    lines = README.read_text(encoding="utf-8").split("\n")
    if lines and lines[-1] == "":
        lines.pop()
    assert len(lines) <= MAX_README_LINES, f"README.md has {len(lines)} lines (at most {MAX_README_LINES})"
    # The title, then at once the code block with the two commands, make reports first.
    assert lines[0].startswith("# ")
    body = [line for line in lines[1:] if line.strip()]
    assert body[0].startswith("```"), body[0]
    assert body[1].split()[:2] == ["make", "reports"], body[1]
    assert body[2].split()[:2] == ["make", "test"], body[2]
    assert body[3].startswith("```"), body[3]


# ------------------------------------------------------------------------------------- the checker itself


def test_github_slugs():
    assert github_slug("Hardening: fuzzed API, body limits, GraphQL limits, Postman") == (
        "hardening-fuzzed-api-body-limits-graphql-limits-postman"
    )
    assert github_slug("`make bench`") == "make-bench"
    assert github_slug("Suspicious-IP detection") == "suspicious-ip-detection"
    assert github_slug("Nexus — an Online Poll System backend") == "nexus--an-online-poll-system-backend"
    assert github_slug("The [API](api.md) and `manage.py` commands") == "the-api-and-managepy-commands"


def test_the_checker_finds_each_kind_of_broken_link(tmp_path: Path):
    (tmp_path / "docs").mkdir()
    (tmp_path / "code.py").write_text("x = 1\n")
    (tmp_path / "docs" / "other.md").write_text(
        "# Other\n\n## Twice\n\n## Twice\n\n```text\n## Not a heading\n```\n", encoding="utf-8"
    )
    doc = tmp_path / "docs" / "doc.md"
    doc.write_text(
        "# Doc\n\n## Here\n\n"
        "Good: [a](other.md), [b](other.md#twice), [c](other.md#twice-1), [d](#here), [e](../code.py),\n"
        "[f `g`](<other.md>), [web](https://example.org/x#y), `[in code](missing.md)`.\n\n"
        "```markdown\n[in a fence](missing.md)\n```\n\n"
        "Bad: [h](missing.md), [i](other.md#nowhere), [j](#not-here), [k](../code.py#x),\n"
        "[l](other.md#twice-2), [m](other.md#not-a-heading), [n](../../elsewhere.md)\n",
        encoding="utf-8",
    )
    assert problems(doc, root=tmp_path) == [
        "doc.md:12: missing.md: no such file",
        "doc.md:12: other.md#nowhere: no heading with that anchor in other.md",
        "doc.md:12: #not-here: no heading with that anchor in doc.md",
        "doc.md:12: ../code.py#x: an anchor into a file that is not Markdown",
        "doc.md:13: other.md#twice-2: no heading with that anchor in other.md",
        "doc.md:13: other.md#not-a-heading: no heading with that anchor in other.md",
        "doc.md:13: ../../elsewhere.md: outside the repository",
    ]
