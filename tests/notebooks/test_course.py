"""The course around the notebooks: headline figures in the manifest beside the reference run's, the course list
and the solutions in the index, the course index that `make lab` opens, and the frame of every course notebook."""

from __future__ import annotations

import json
import re
import subprocess
from pathlib import Path

import nbformat
import pytest
from django.conf import settings
from django.core.management import call_command

from nexus_lab.notebooks import runner

from .helpers import write_notebook

ROOT = Path(settings.BASE_DIR)
NOTEBOOKS = ROOT / "notebooks"
FRAMED = [p.stem for p in sorted(NOTEBOOKS.glob("0[0-9]-*.ipynb"))]
# Every profile is seeded: the seed parameters, per notebook (02 seeds each of its two worlds).
SEEDS = {"02-suspicious-ip-replay": {"tune_seed": 7, "test_seed": 11}}

PARAMETERS = "voters = 5  # how many voters\n"
HEADLINE_CELLS = [
    "import nexus_lab.notebooks.bootstrap as nb",
    "nb.headline('votes', voters * 2, tolerance=0)\nnb.headline('latency_ms', 10.0, tolerance=0.5, unit='ms')",
]
TITLE = "# 07 · A course notebook\n\n*What it teaches, in one line.*\n\n**After this notebook you can** count."


def run(*args: str) -> None:
    call_command("run_notebooks", "--no-progress", *args, verbosity=0)


@pytest.fixture(scope="module")
def course(tmp_path_factory):
    """A notebook with headline figures and its solution notebook: run once with --write-back (that run becomes the
    reference), then again with another parameter, so that one figure differs from the reference."""
    folder = tmp_path_factory.mktemp("notebooks")
    out = tmp_path_factory.mktemp("reports")
    write_notebook(
        folder, "07-course.ipynb", parameters=PARAMETERS, cells=HEADLINE_CELLS, profiles={"ci": {}}, markdown=TITLE
    )
    write_notebook(folder / "solutions", "07-course-solutions.ipynb", parameters=None, cells=["assert 1 + 1 == 2"])
    run("--notebooks-dir", str(folder), "--output", str(out), "--write-back")
    first = json.loads((out / "manifest.json").read_text())
    run("--notebooks-dir", str(folder), "--output", str(out), "-p", "voters=6")
    manifest = json.loads((out / "manifest.json").read_text())
    return {"first": first, "manifest": manifest, "index": (out / "index.html").read_text(), "out": out}


def test_every_manifest_entry_has_a_headline_mapping_of_names_to_numbers(course):
    for entry in course["manifest"]["notebooks"]:
        assert isinstance(entry["headline"], dict)
        assert all(isinstance(k, str) and isinstance(v, int | float) for k, v in entry["headline"].items())
    notebook = course["manifest"]["notebooks"][0]
    assert notebook["notebook"] == "07-course.ipynb"
    assert notebook["headline"] == {"votes": 12, "latency_ms": 10.0}
    assert notebook["headline_tolerance"] == {"votes": 0.0, "latency_ms": 0.5}


def test_the_reference_is_the_committed_executed_notebook(course):
    first = course["first"]["notebooks"][0]
    assert first["reference"] == {} and first["headline"] == {"votes": 10, "latency_ms": 10.0}  # never executed
    second = course["manifest"]["notebooks"][0]
    assert second["reference"] == {"votes": 10, "latency_ms": 10.0}  # what --write-back committed
    assert second["headline_differs"] == ["votes"]  # 12 against 10 with an exact tolerance; the latency agrees


def test_the_index_shows_figures_beside_the_reference_and_marks_the_difference(course):
    index = course["index"]
    row = index[index.index('<a href="07-course.html">') : index.index("</tr></table></td>", index.index("latency_ms"))]
    assert re.search(
        r'<tr class="differs"[^>]*><td><code>votes</code></td><td class="num">12 ≠</td>'
        r'<td class="num">10</td><td class="num">exact</td>',
        row,
    )
    assert re.search(
        r'<tr><td><code>latency_ms</code></td><td class="num">10</td><td class="num">10</td>'
        r'<td class="num">±50%</td>',
        row,
    )
    assert "differs from the reference by more than its tolerance" in index


def test_the_index_starts_with_the_course_in_order(course):
    index = course["index"]
    assert index.index("The course, in order") < index.index("<h2>Runs</h2>")
    assert (
        '<a href="07-course.html">07 · A course notebook</a> <span class="summary">— What it teaches, in one line.'
        in index
    )
    assert course["manifest"]["course"] == [
        {"notebook": "07-course.ipynb", "title": "07 · A course notebook", "summary": "What it teaches, in one line."}
    ]


def test_solutions_run_after_the_notebooks_and_are_marked(course):
    entries = course["manifest"]["notebooks"]
    assert [(e["notebook"], e["kind"], e["status"]) for e in entries] == [
        ("07-course.ipynb", "notebook", "ok"),
        ("07-course-solutions.ipynb", "solutions", "ok"),
    ]
    assert "07-course-solutions.ipynb</a> <small>(ipynb)" not in course["index"]
    assert "(solutions, for mentors)" in course["index"]
    assert (course["out"] / "07-course-solutions.html").is_file()


def test_differs_is_relative_and_exact_at_zero_tolerance():
    assert not runner.differs(11.0, 10.0, 0.25) and runner.differs(13.0, 10.0, 0.25)
    assert runner.differs(3, 2, 0) and not runner.differs(2, 2, 0)
    assert runner.compare_headlines({"a": 1, "b": 2}, {"a": 0, "b": 0}, {"a": 1}) == ["b"]  # no reference: marked


# --------------------------------------------------------------------------- the real course


def test_make_lab_opens_the_course_index():
    out = subprocess.run(
        ["make", "-n", "lab", "STAMP=", "VENV=/nonexistent"], cwd=ROOT, capture_output=True, text=True, check=True
    ).stdout
    [command] = [line for line in out.splitlines() if "jupyter lab" in line]
    assert "--notebook-dir=notebooks" in command and "--LabApp.default_url=/lab/tree/README.md" in command
    assert (NOTEBOOKS / "README.md").is_file()


def test_the_course_index_lists_every_notebook_in_order():
    readme = (NOTEBOOKS / "README.md").read_text()
    listed = re.findall(r"\]\((\d\d-[\w-]+\.ipynb)\)", readme)
    assert listed == [p.name for p in sorted(NOTEBOOKS.glob("*.ipynb"))]
    assert len(listed) == 7


@pytest.mark.parametrize("stem", FRAMED)
def test_a_course_notebook_has_its_frame(stem):
    cells = nbformat.read(NOTEBOOKS / f"{stem}.ipynb", as_version=4).cells
    title = cells[0]
    assert title.cell_type == "markdown" and title.source.startswith(f"# {stem[:2]} · ")
    for part in ("**After this notebook you can**", "**Prerequisites**", "**Estimated time**", "](../nexus_backend/"):
        assert part in title.source, part
    assert "parameters" in cells[2].metadata.get("tags", [])  # title, bootstrap, parameters
    text = "\n".join(c.source for c in cells if c.cell_type == "markdown")
    assert "## Summary" in text and "## Exercises" in text and ("**Next**" in text or "last notebook" in text)
    assert "nb.headline(" in "\n".join(c.source for c in cells if c.cell_type == "code")


@pytest.mark.parametrize("stem", FRAMED)
def test_a_committed_notebook_records_its_headline_figures(stem):
    """The committed executed notebook is the reference run: it must hold the figures the index compares with."""
    figures, _ = runner.headlines(NOTEBOOKS / f"{stem}.ipynb")
    assert figures, f"{stem}.ipynb has no headline figures: commit it executed (run_notebooks --write-back --only ..)"


def test_committed_notebooks_print_no_absolute_paths_of_this_machine():
    for path in [*NOTEBOOKS.glob("0[0-9]-*.ipynb"), *NOTEBOOKS.glob("solutions/*.ipynb")]:
        outputs = json.dumps([c.get("outputs", []) for c in nbformat.read(path, as_version=4).cells])
        assert str(ROOT) not in outputs and "/tmp/" not in outputs, path.name


@pytest.mark.parametrize("stem", FRAMED)
def test_the_ci_and_full_profiles_fit_the_parameters_cell(stem):
    from nexus_lab.notebooks.params import plan_notebook

    for profile in ("ci", "full"):
        plan = plan_notebook(NOTEBOOKS / f"{stem}.ipynb", profile)
        for name, seed in SEEDS.get(stem, {"seed": 7}).items():
            assert plan.parameters.get(name) == seed, (profile, name)  # every profile is seeded


def test_a_worker_dies_with_the_process_that_started_it(tmp_path):
    """A notebook that fails before its clean-up cell must not leave its Celery worker running: the kernel's exit
    stops it (``Worker.start`` registers ``atexit``)."""
    import os
    import sys
    import time

    script = (
        "import nexus_lab.notebooks.bootstrap\n"
        "from nexus_lab.notebooks.workers import Worker, new_queue\n"
        f"worker = Worker(log={str(tmp_path / 'w.log')!r}, queue=new_queue(), pool='solo').start()\n"
        "worker.wait_ready(90)\n"
        "print(worker.proc.pid, flush=True)\n"
        "raise SystemExit(1)  # no clean-up of its own, like a failed notebook\n"
    )
    result = subprocess.run([sys.executable, "-c", script], cwd=ROOT, capture_output=True, text=True, timeout=180)
    pid = int(result.stdout.split()[0])

    def alive() -> bool:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return False
        return True

    deadline = time.monotonic() + 30
    while alive() and time.monotonic() < deadline:
        time.sleep(0.2)
    assert not alive(), "the worker outlived the process that started it"
