"""``manage.py run_notebooks``: validation before execution, failed notebooks reported, offline HTML."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import nbformat
import pytest
from django.conf import settings
from django.core.management import call_command
from django.core.management.base import CommandError

from nexus_lab.notebooks import runner

from .helpers import TOUR_LIKE_PARAMETERS, write_notebook

MARKER = "executed.marker"

# A passing notebook with a chart and a table (so the HTML has an image and a DataFrame in it).
PASSING_CELLS = [
    f"open({MARKER!r}, 'a').write('a-ok ran\\n')  # proves the kernel ran in the notebooks folder",
    "import matplotlib.pyplot as plt\nplt.bar(['x', 'y'], [seed, voters])\nplt.show()",
    "import pandas as pd\npd.DataFrame({'seed': [seed], 'voters': [voters]})",
    "assert voters == 5",
]
FAILING_CELLS = [
    "print('before the failure')",
    "assert voters == 4, 'voters should be 4'",
    "print('never runs')",
]
FAILING_CELL_INDEX = 3  # markdown 0, parameters 1, print 2, the assert 3


def run(*args: str) -> None:
    call_command("run_notebooks", "--no-progress", *args, verbosity=0)


@pytest.fixture(scope="module")
def reports(tmp_path_factory):
    """One real run over a passing and a failing notebook; tests below read what it wrote."""
    folder = tmp_path_factory.mktemp("notebooks")
    out = tmp_path_factory.mktemp("reports")
    write_notebook(
        folder,
        "a-ok.ipynb",
        parameters=TOUR_LIKE_PARAMETERS,
        cells=PASSING_CELLS,
        profiles={"ci": {"voters": 5}},
    )
    write_notebook(
        folder,
        "b-fail.ipynb",
        parameters=TOUR_LIKE_PARAMETERS,
        cells=FAILING_CELLS,
        profiles={"ci": {"seed": 1}},
    )
    with pytest.raises(CommandError) as exc:
        run("--notebooks-dir", str(folder), "--output", str(out), "--profile", "ci")
    manifest = json.loads((out / "manifest.json").read_text())
    entries = {e["notebook"]: e for e in manifest["notebooks"]}
    return {"folder": folder, "out": out, "error": exc.value, "manifest": manifest, "entries": entries}


# --------------------------------------------------------------------------- validation before execution


@pytest.fixture
def two_notebooks(tmp_path):
    """``a`` is valid and would leave a marker if executed; ``b``'s profile is wrong in the test."""
    folder = tmp_path / "notebooks"
    write_notebook(folder, "a-ok.ipynb", parameters=TOUR_LIKE_PARAMETERS, cells=PASSING_CELLS, profiles={"ci": {}})
    return folder


@pytest.mark.parametrize(
    ("profiles", "args", "message"),
    [
        (
            {"ci": {"votrs": 3}},
            [],
            "b-bad.ipynb: unknown parameter 'votrs' in profile 'ci' (known: seed, voters); did you mean 'voters'?",
        ),
        (
            {"ci": {"voters": "many"}},
            [],
            "b-bad.ipynb: parameter 'voters' in profile 'ci' must be int (default 30), got str 'many'",
        ),
        (
            {"ci": {}, "full": {}},
            ["--profile", "nightly"],
            "a-ok.ipynb: unknown profile 'nightly' (available: ci)",
        ),
        ({"ci": {}}, ["-p", "voters=lots"], "parameter 'voters' in -p override must be int"),
        ({"ci": {}}, ["--only", "zz"], "--only zz: no such notebook"),
    ],
)
def test_a_bad_parameter_stops_the_run_before_anything_executes(two_notebooks, tmp_path, profiles, args, message):
    write_notebook(two_notebooks, "b-bad.ipynb", parameters=TOUR_LIKE_PARAMETERS, cells=[], profiles=profiles)
    out = tmp_path / "reports"
    with pytest.raises(CommandError) as exc:
        run("--notebooks-dir", str(two_notebooks), "--output", str(out), *args)
    assert exc.value.returncode == 2
    assert "\n" not in str(exc.value)
    assert message in str(exc.value)
    assert not (two_notebooks / MARKER).exists(), "a-ok ran although b-bad's parameters were wrong"
    assert not out.exists()


def manage(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONWARNINGS": "ignore"}
    return subprocess.run(
        [sys.executable, str(Path(settings.BASE_DIR) / "manage.py"), *args],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_command_line_parameter_error_is_one_line_exit_2_no_traceback(two_notebooks, tmp_path):
    write_notebook(
        two_notebooks, "b-bad.ipynb", parameters=TOUR_LIKE_PARAMETERS, cells=[], profiles={"ci": {"votrs": 1}}
    )
    proc = manage("run_notebooks", "--notebooks-dir", str(two_notebooks), "--output", "out", cwd=tmp_path)
    assert proc.returncode == 2, proc.stderr
    assert "Traceback" not in proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1, proc.stderr
    assert "b-bad.ipynb: unknown parameter 'votrs'" in lines[0]
    assert proc.stdout == ""
    assert not (two_notebooks / MARKER).exists()
    assert not (tmp_path / "out").exists()


def test_command_line_unknown_profile(two_notebooks, tmp_path):
    proc = manage(
        "run_notebooks",
        "--notebooks-dir",
        str(two_notebooks),
        "--profile",
        "huge",
        "--output",
        "o",
        cwd=tmp_path,
    )
    assert proc.returncode == 2
    assert "Traceback" not in proc.stderr
    assert proc.stderr.strip().splitlines() == ["CommandError: a-ok.ipynb: unknown profile 'huge' (available: ci)"]


# --------------------------------------------------------------------------- a run with a failure


def test_a_failing_notebook_fails_the_run_after_the_others_ran(reports):
    assert reports["error"].returncode == 1
    assert "b-fail.ipynb (cell 3: AssertionError: voters should be 4)" in str(reports["error"])
    assert (reports["folder"] / MARKER).read_text() == "a-ok ran\n"  # cwd was the notebooks folder


def test_manifest_records_the_failure_with_its_cell(reports):
    entry = reports["entries"]["b-fail.ipynb"]
    assert entry["status"] == "failed"
    assert entry["error"]["cell_index"] == FAILING_CELL_INDEX
    assert entry["error"]["ename"] == "AssertionError"
    assert entry["error"]["summary"] == "AssertionError: voters should be 4"
    assert entry["error"]["source"].startswith("assert voters == 4")
    assert (reports["out"] / entry["html"]).is_file()  # the failed notebook still has its report
    html = (reports["out"] / entry["html"]).read_text()
    assert 'class="nexus-banner failed"' in html
    assert "voters should be 4" in html
    assert "never runs" in html  # the cells after the failure are shown, not executed


def test_manifest_entry_of_a_passing_notebook_has_every_field(reports):
    entry = reports["entries"]["a-ok.ipynb"]
    assert set(entry) == {
        "notebook",
        "profile",
        "parameters",
        "status",
        "duration_s",
        "started_at",
        "commit",
        "html",
        "ipynb",
        "error",
        "kind",
        "headline",
        "headline_tolerance",
        "reference",
        "headline_differs",
    }
    assert entry["status"] == "ok" and entry["error"] is None
    assert entry["profile"] == "ci"
    assert entry["parameters"] == {"voters": 5}
    assert isinstance(entry["duration_s"], float) and entry["duration_s"] > 0
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\+00:00", entry["started_at"])
    assert re.fullmatch(r"[0-9a-f]{7,}(\+dirty)?|unknown", entry["commit"])
    assert entry["html"] == "a-ok.html" and (reports["out"] / "a-ok.html").is_file()
    assert (reports["out"] / entry["ipynb"]).is_file()
    assert reports["manifest"]["profile"] == "ci"
    assert reports["manifest"]["generated_at"]


def test_index_lists_every_notebook_with_status_and_failing_cell(reports):
    index = (reports["out"] / "index.html").read_text()
    assert '<a href="a-ok.html">a-ok.ipynb</a>' in index
    assert '<a href="b-fail.html">b-fail.ipynb</a>' in index
    assert '<span class="status ok">ok</span>' in index
    assert '<span class="status failed">failed</span>' in index
    assert "failed at cell 3" in index and "AssertionError: voters should be 4" in index
    assert "voters=5" in index
    assert "1 ok, 1 failed" in index


# --------------------------------------------------------------------------- offline HTML

REMOTE = re.compile(r"^\s*(https?:)?//", re.IGNORECASE)


def remote_references(html: str) -> list[str]:
    """Every script, stylesheet, CSS import/url or image that would be fetched from the network."""
    found = []
    for tag, attr in (("script", "src"), ("link", "href"), ("img", "src"), ("iframe", "src")):
        for match in re.finditer(rf"<{tag}\b[^>]*\b{attr}\s*=\s*[\"']?([^\"' >]+)", html, re.IGNORECASE):
            if REMOTE.match(match.group(1)):
                found.append(match.group(0))
    without_comments = re.sub(r"/\*.*?\*/", "", html, flags=re.DOTALL)
    found += re.findall(r"@import\s+(?:url\()?\s*[\"']?(?:https?:)?//[^\s;]*", without_comments, re.IGNORECASE)
    found += re.findall(r"url\(\s*[\"']?(?:https?:)?//[^)]*\)", without_comments, re.IGNORECASE)
    return found


def test_the_checker_catches_cdn_references():
    assert remote_references('<script src="https://cdn.example/require.js"></script>')
    assert remote_references("<link rel=stylesheet href=//fonts.example/a.css>")
    assert remote_references("<style>@import url('https://fonts.example/x.css');</style>")
    assert not remote_references("<style>/* see https://example.org */ a { color: red }</style>")


@pytest.mark.parametrize("name", ["a-ok.html", "b-fail.html", "index.html"])
def test_reports_render_offline(reports, name):
    html = (reports["out"] / name).read_text()
    assert remote_references(html) == []
    assert not re.search(r"<script\b[^>]*\bsrc=", html, re.IGNORECASE)  # no external scripts at all


def test_images_are_embedded(reports):
    html = (reports["out"] / "a-ok.html").read_text()
    images = re.findall(r"<img\b[^>]*>", html)
    assert images, "the chart is missing"
    assert all('src="data:image/png;base64,' in img and "alt=" in img for img in images)


# --------------------------------------------------------------------------- smaller pieces


def test_only_selects_by_stem_prefix_and_keeps_other_entries(reports, tmp_path):
    folder, out = tmp_path / "notebooks", tmp_path / "reports"
    shutil.copytree(reports["folder"], folder)
    shutil.copytree(reports["out"], out)
    before = json.loads((out / "manifest.json").read_text())
    run("--notebooks-dir", str(folder), "--output", str(out), "--only", "a", "-p", "voters=5")
    after = json.loads((out / "manifest.json").read_text())
    assert [e["notebook"] for e in after["notebooks"]] == ["a-ok.ipynb", "b-fail.ipynb"]
    b_before = next(e for e in before["notebooks"] if e["notebook"] == "b-fail.ipynb")
    assert after["notebooks"][1] == b_before  # kept from the earlier run, not re-run


def test_git_commit_outside_a_repository_is_unknown(tmp_path):
    assert runner.git_commit(tmp_path) == "unknown"


def test_git_commit_marks_a_dirty_tree(tmp_path):
    def git(*args):
        subprocess.run(["git", "-C", str(tmp_path), *args], check=True, capture_output=True)

    git("init", "-q")
    (tmp_path / "f.txt").write_text("1")
    git("add", "f.txt")
    git("-c", "user.name=t", "-c", "user.email=t@example.com", "commit", "-q", "-m", "one")
    clean = runner.git_commit(tmp_path)
    assert re.fullmatch(r"[0-9a-f]{7,}", clean)
    (tmp_path / "f.txt").write_text("2")
    assert runner.git_commit(tmp_path) == f"{clean}+dirty"


def test_write_back_keeps_outputs_and_drops_papermill_noise(tmp_path):
    folder = tmp_path / "nbs"
    source = write_notebook(
        folder,
        "w.ipynb",
        parameters=TOUR_LIKE_PARAMETERS,
        cells=["print(seed * 2)"],
        profiles={"ci": {"seed": 7}},
    )
    run("--notebooks-dir", str(folder), "--output", str(tmp_path / "out"), "--write-back")

    nb = nbformat.read(source, as_version=4)
    assert "papermill" not in nb.metadata
    assert not any("injected-parameters" in c.metadata.get("tags", []) for c in nb.cells)  # ci == defaults
    assert [c.execution_count for c in nb.cells if c.cell_type == "code"] == [1, 2]
    assert nb.cells[-1].outputs[0]["text"] == "14\n"
    assert all("papermill" not in c.metadata and "execution" not in c.metadata for c in nb.cells)


def test_a_cell_timeout_and_a_dead_kernel_are_reported_at_their_cell(tmp_path):
    folder, out = tmp_path / "notebooks", tmp_path / "reports"
    params = "n = 1  # unused\n"
    write_notebook(
        folder, "a-slow.ipynb", parameters=params, cells=["import time\ntime.sleep(30)"], profiles={"ci": {}}
    )
    write_notebook(folder, "b-dies.ipynb", parameters=params, cells=["import os\nos._exit(3)"], profiles={"ci": {}})
    with pytest.raises(CommandError) as exc:
        run("--notebooks-dir", str(folder), "--output", str(out), "--timeout", "2")
    assert exc.value.returncode == 1
    entries = {e["notebook"]: e for e in json.loads((out / "manifest.json").read_text())["notebooks"]}
    slow, dies = entries["a-slow.ipynb"], entries["b-dies.ipynb"]
    assert slow["status"] == dies["status"] == "failed"
    assert slow["error"]["cell_index"] == dies["error"]["cell_index"] == 2
    assert slow["error"]["ename"] == "CellTimeoutError"
    assert dies["error"]["ename"] == "DeadKernelError"
    assert (out / "a-slow.html").is_file() and (out / "b-dies.html").is_file()
