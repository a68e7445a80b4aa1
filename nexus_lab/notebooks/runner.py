"""Execute the notebooks with papermill and render them into ``reports/`` for mentors.

``python manage.py run_notebooks --profile ci`` (``make reports``) does, in order:

1. discover ``notebooks/*.ipynb`` (sorted by name; ``--only`` narrows the set) and their solution notebooks,
   ``notebooks/solutions/<stem>-solutions.ipynb`` (run after the notebooks, without parameters);
2. load each notebook's profile from ``notebooks/params/<stem>.yaml`` and validate **every** notebook's
   parameters against its ``parameters`` cell (:mod:`nexus_lab.notebooks.params`) — one mistake stops
   the run before anything executes;
3. execute each notebook with papermill (kernel ``python3``, cwd = the notebooks folder, as nbval uses),
   writing ``reports/<stem>.ipynb`` even when a cell fails;
4. render ``reports/<stem>.html`` with an offline template (no CDN scripts, images inlined) and a banner
   saying what ran, with which parameters and at which commit;
5. collect each notebook's headline figures (``nb.headline(...)`` outputs) and those of the reference run (the
   committed executed notebook) into ``reports/manifest.json``; write ``reports/index.html``: the course in order
   (title and one line per notebook), then every run with its figures beside the reference's, marked when they
   differ by more than their tolerance.

A failing notebook does not stop the others; the run's exit status says whether all passed.
"""

from __future__ import annotations

import contextlib
import html
import json
import logging
import time
from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import nbformat

from nexus_lab.benchmark import git_commit, write_json
from nexus_lab.notebooks.params import NotebookPlan, ParameterError, plan_notebooks

TEMPLATES_DIR = Path(__file__).resolve().parent / "templates"
SOLUTIONS_DIRNAME = "solutions"
SOLUTIONS_SUFFIX = "-solutions"
TEMPLATE_NAME = "nexus_offline"
MANIFEST_NAME = "manifest.json"
INDEX_NAME = "index.html"
DEFAULT_KERNEL = "python3"

log = logging.getLogger(__name__)


class SelectionError(ParameterError):
    """``--only`` named a notebook that does not exist (one-line message)."""


def project_root() -> Path:
    from django.conf import settings

    return Path(getattr(settings, "NEXUS_PROJECT_ROOT", Path(__file__).resolve().parents[2]))


# --------------------------------------------------------------------------- discovery


def discover_notebooks(notebooks_dir: Path, only: Iterable[str] | None = None) -> list[Path]:
    """``notebooks_dir/*.ipynb`` in name order. ``only`` entries match a file name, a stem or a stem prefix
    (``00``, ``00-tour``, ``00-tour.ipynb``); an entry matching nothing raises :class:`SelectionError`."""
    notebooks_dir = Path(notebooks_dir)
    if not notebooks_dir.is_dir():
        raise SelectionError(f"notebooks folder {notebooks_dir} does not exist")
    found = sorted(p for p in notebooks_dir.glob("*.ipynb") if p.is_file() and not p.name.startswith("."))
    if not only:
        if not found:
            raise SelectionError(f"no notebooks (*.ipynb) in {notebooks_dir}")
        return found
    chosen: list[Path] = []
    for wanted in only:
        key = wanted.removesuffix(".ipynb")
        matches = [p for p in found if p.stem == key] or [p for p in found if p.stem.startswith(key)]
        if not matches:
            names = ", ".join(p.stem for p in found) or "none"
            raise SelectionError(f"--only {wanted}: no such notebook in {notebooks_dir.name}/ (have: {names})")
        chosen.extend(m for m in matches if m not in chosen)
    return sorted(chosen)


def discover_solutions(notebooks_dir: Path, notebooks: Iterable[Path]) -> list[Path]:
    """The solution notebooks of ``notebooks``: ``notebooks_dir/solutions/<stem>-solutions.ipynb`` where one exists."""
    folder = Path(notebooks_dir) / SOLUTIONS_DIRNAME
    found = [folder / f"{nb.stem}{SOLUTIONS_SUFFIX}.ipynb" for nb in notebooks]
    return [p for p in found if p.is_file()]


def course_entry(notebook: Path) -> dict[str, str]:
    """The title and the one-line description of a notebook: its first markdown cell's ``# `` heading and the
    first line of text after it."""
    title, summary = notebook.stem, ""
    with contextlib.suppress(Exception):
        nb = nbformat.read(notebook, as_version=4)
        cell = next(c for c in nb.cells if c.cell_type == "markdown")
        lines = [ln.strip() for ln in cell.source.splitlines() if ln.strip()]
        heading = next((ln for ln in lines if ln.startswith("# ")), None)
        if heading:
            title = heading[2:].strip()
            text = cell.source.split(heading, 1)[1].strip()
            paragraph = " ".join(text.split("\n\n", 1)[0].split()) if text and not text.startswith("#") else ""
            paragraph = paragraph.replace("**", "").strip("*_ ")
            if len(paragraph) > 200 and ". " in paragraph:  # a long paragraph: its first sentence
                paragraph = paragraph.split(". ", 1)[0] + "."
            summary = paragraph
    return {"notebook": notebook.name, "title": title, "summary": summary}


def check_kernel(kernel_name: str) -> None:
    from jupyter_client.kernelspec import KernelSpecManager, NoSuchKernel

    try:
        KernelSpecManager().get_kernel_spec(kernel_name)
    except NoSuchKernel:
        raise SelectionError(
            f"no Jupyter kernel named '{kernel_name}' (install one: python -m ipykernel install --sys-prefix)"
        ) from None


# --------------------------------------------------------------------------- provenance


def _now() -> datetime:
    return datetime.now(UTC).replace(microsecond=0)


# --------------------------------------------------------------------------- results


@dataclass
class NotebookResult:
    notebook: str
    profile: str
    parameters: dict[str, Any]
    status: str  # "ok" | "failed"
    duration_s: float
    started_at: str
    commit: str
    html: str  # relative to the manifest
    ipynb: str  # relative to the manifest
    error: dict[str, Any] | None = None
    kind: str = "notebook"  # "notebook" | "solutions"
    headline: dict[str, float] = field(default_factory=dict)  # figure name -> value found by this run
    headline_tolerance: dict[str, float] = field(default_factory=dict)  # figure name -> relative tolerance
    reference: dict[str, float] = field(default_factory=dict)  # figure name -> value in the committed notebook
    headline_differs: list[str] = field(default_factory=list)  # figures beyond their tolerance of the reference

    @property
    def ok(self) -> bool:
        return self.status == "ok"


@dataclass
class RunSummary:
    results: list[NotebookResult]
    output_dir: Path
    manifest_path: Path
    index_path: Path
    duration_s: float
    commit: str
    profile: str

    @property
    def failed(self) -> list[NotebookResult]:
        return [r for r in self.results if not r.ok]


def _source_cell_index(nb, executed_index: int) -> int:
    """Map a cell index in papermill's output notebook back to the author's notebook (papermill adds an
    ``injected-parameters`` cell and, on failure, red error-banner cells)."""
    skipped = {"injected-parameters", "papermill-error-cell-tag"}
    return sum(1 for cell in nb.cells[:executed_index] if not skipped & set(cell.metadata.get("tags", [])))


def _first_line(text: str, limit: int = 300) -> str:
    line = next((ln.strip() for ln in str(text).splitlines() if ln.strip()), "")
    return line if len(line) <= limit else line[: limit - 1] + "…"


def _failed_cell(nb) -> int | None:
    """Index of the cell that failed: the one papermill marked, else one with an error output (a cell
    timeout), else the last cell that started (the kernel died while running it)."""
    code = [(i, c) for i, c in enumerate(nb.cells) if c.cell_type == "code"]
    for i, cell in code:
        meta = cell.metadata.get("papermill", {})
        if meta.get("exception") or meta.get("status") == "failed":
            return i
    for i, cell in code:
        if any(out.get("output_type") == "error" for out in cell.get("outputs", [])):
            return i
    started = [i for i, c in code if c.metadata.get("papermill", {}).get("start_time")]
    return started[-1] if started else None


def failure_from_notebook(output: Path, exc: BaseException | None = None) -> dict[str, Any]:
    """Where and why the run failed, read from papermill's output notebook (the cell it marked failed)."""
    info: dict[str, Any] = {
        "cell_index": None,
        "execution_count": None,
        "ename": None,
        "evalue": None,
        "source": None,
    }
    nb = None
    with contextlib.suppress(Exception):
        nb = nbformat.read(output, as_version=4)
    failed = _failed_cell(nb) if nb is not None else None
    if nb is not None and failed is not None:
        cell = nb.cells[failed]
        info["cell_index"] = _source_cell_index(nb, failed)
        info["execution_count"] = cell.get("execution_count")
        for out in cell.get("outputs", []):
            if out.get("output_type") == "error":
                info["ename"], info["evalue"] = out.get("ename"), out.get("evalue")
        info["source"] = _first_line(cell.source, 200)
    if exc is not None and (info["ename"] is None or not hasattr(exc, "ename")):
        # A timeout or a dead kernel is the reason, not the KeyboardInterrupt it leaves in the cell.
        info["ename"] = getattr(exc, "ename", None) or type(exc).__name__
        info["evalue"] = getattr(exc, "evalue", None) or _first_line(str(exc))
    exec_count = getattr(exc, "exec_count", None)  # papermill's PapermillExecutionError carries it
    if info["cell_index"] is None and exec_count is not None:
        info["execution_count"] = exec_count
    ename, evalue = info["ename"] or "Error", _first_line(info["evalue"] or "")
    info["summary"] = f"{ename}: {evalue}" if evalue else ename
    return info


# --------------------------------------------------------------------------- headline figures


def headlines(notebook: Path) -> tuple[dict[str, float], dict[str, float]]:
    """The headline figures an executed notebook recorded (``nb.headline``): ``({name: value}, {name: tolerance})``.
    A notebook never executed, or one without figures, gives two empty mappings."""
    from nexus_lab.notebooks.bootstrap import HEADLINE_MIME

    values: dict[str, float] = {}
    tolerances: dict[str, float] = {}
    try:
        nb = nbformat.read(notebook, as_version=4)
    except Exception:
        return values, tolerances
    for cell in nb.cells:
        for out in cell.get("outputs", []) if cell.cell_type == "code" else []:
            record = (out.get("data") or {}).get(HEADLINE_MIME)
            if isinstance(record, dict) and isinstance(record.get("value"), int | float):
                values[record["name"]] = record["value"]
                tolerances[record["name"]] = float(record.get("tolerance", 0.0))
    return values, tolerances


def differs(value: float, reference: float, tolerance: float) -> bool:
    """Is ``value`` further from ``reference`` than ``tolerance`` (relative to the reference; exact when 0)?"""
    if tolerance <= 0:
        return value != reference
    return abs(value - reference) > tolerance * max(abs(reference), 1e-12)


def compare_headlines(found: dict[str, float], tolerances: dict[str, float], reference: dict[str, float]) -> list[str]:
    """The names of the figures that differ from the reference beyond their tolerance (or that it lacks)."""
    return [
        name
        for name, value in found.items()
        if name not in reference or differs(value, reference[name], tolerances.get(name, 0.0))
    ]


# --------------------------------------------------------------------------- execution


def _curve_available() -> bool:
    import zmq
    from jupyter_client.manager import KernelManager

    return zmq.has("curve") and "transport_encryption" in KernelManager.class_trait_names()


def _execute(plan: NotebookPlan, output: Path, *, kernel_name: str, timeout: int | None, progress: bool) -> None:
    import papermill
    from traitlets.config import Config

    config = Config()
    if _curve_available():
        # Manager-provisioned CurveZMQ keys: encrypted kernel sockets, and no plain-TCP warning on stderr.
        config.KernelManager.transport_encryption = "auto"
    papermill.execute_notebook(
        str(plan.path),
        str(output),
        parameters=plan.parameters,
        cwd=str(plan.path.parent),
        kernel_name=kernel_name,
        # per-cell bar on a terminal; tqdm turns itself off (disable=None) when stderr is a log file
        progress_bar={"desc": f"  {plan.stem}", "leave": False, "disable": None} if progress else False,
        log_output=False,
        execution_timeout=timeout,
        config=config,
        # jupyter_client interrupts a kernel before shutting it down, which ipykernel logs as an ERROR on
        # stderr ("KeyboardInterrupt caught in kernel"). Cell errors still land in the notebook and report.
        extra_arguments=["--IPKernelApp.log_level=CRITICAL"],
    )


def run_notebook(
    plan: NotebookPlan,
    output_dir: Path,
    *,
    commit: str,
    kernel_name: str = DEFAULT_KERNEL,
    timeout: int | None = None,
    progress: bool = True,
    kind: str = "notebook",
) -> NotebookResult:
    """Execute one notebook into ``output_dir/<stem>.ipynb`` and render ``output_dir/<stem>.html``."""
    output = output_dir / f"{plan.stem}.ipynb"
    html_path = output_dir / f"{plan.stem}.html"
    started = _now()
    t0 = time.perf_counter()
    error: dict[str, Any] | None = None
    reference, _ = headlines(plan.path)  # read before a write-back replaces the committed notebook
    for stale in (output, html_path):  # a failure must never be read from an earlier run's files
        stale.unlink(missing_ok=True)
    try:
        _execute(plan, output, kernel_name=kernel_name, timeout=timeout, progress=progress)
    except Exception as exc:  # a failed cell, a cell timeout, a dead kernel: all become a failed report
        error = failure_from_notebook(output, exc)
    duration = round(time.perf_counter() - t0, 1)
    found, tolerances = headlines(output)
    result = NotebookResult(
        notebook=plan.name,
        profile=plan.profile,
        parameters=dict(plan.parameters),
        status="ok" if error is None else "failed",
        duration_s=duration,
        started_at=started.isoformat(),
        commit=commit,
        html=html_path.name,
        ipynb=output.name,
        error=error,
        kind=kind,
        headline=found,
        headline_tolerance=tolerances,
        reference=reference,
        headline_differs=compare_headlines(found, tolerances, reference),
    )
    render_html(output if output.exists() else plan.path, html_path, result)
    return result


# --------------------------------------------------------------------------- committing executed notebooks


def _defaults_match(plan: NotebookPlan) -> bool:
    """Do the injected parameters only repeat the notebook's own defaults?"""
    import ast

    for name, value in plan.parameters.items():
        declared = plan.declared.get(name)
        try:
            default = ast.literal_eval(declared.default) if declared else object()
        except (ValueError, SyntaxError):
            return False
        if default != value or type(default) is not type(value):
            return False
    return True


def write_back(executed: Path, plan: NotebookPlan) -> Path:
    """Copy an executed notebook over its source, ready to commit (notebooks are committed executed from the
    ci profile, so nbval has outputs to check). papermill's timing metadata is dropped; its
    ``injected-parameters`` cell too when it only repeats the defaults; execution counts are renumbered."""
    nb = nbformat.read(executed, as_version=4)
    nb.metadata.pop("papermill", None)
    if _defaults_match(plan):
        nb.cells = [c for c in nb.cells if "injected-parameters" not in c.metadata.get("tags", [])]
    count = 0
    for cell in nb.cells:
        cell.metadata.pop("papermill", None)
        cell.metadata.pop("execution", None)
        if cell.metadata.get("tags") == []:
            del cell.metadata["tags"]
        if cell.cell_type == "code":
            if cell.get("execution_count") is not None:
                count += 1
                cell.execution_count = count
            for out in cell.get("outputs", []):
                if "execution_count" in out:
                    out["execution_count"] = cell.execution_count
    nbformat.validate(nb)
    nbformat.write(nb, plan.path)
    return plan.path


# --------------------------------------------------------------------------- rendering


def format_parameters(parameters: dict[str, Any]) -> str:
    return ", ".join(f"{k}={v!r}" for k, v in parameters.items()) or "(defaults)"


def html_exporter():
    from nbconvert import HTMLExporter

    exporter = HTMLExporter(template_name=TEMPLATE_NAME, extra_template_basedirs=[str(TEMPLATES_DIR)])
    exporter.embed_images = True
    exporter.theme = "light"
    return exporter


def render_html(notebook: Path, html_path: Path, result: NotebookResult) -> Path:
    """Render ``notebook`` to a self-contained HTML file with the run banner."""
    nb = nbformat.read(notebook, as_version=4)
    run = asdict(result)
    run["parameters_text"] = format_parameters(result.parameters)
    resources = {"metadata": {"name": Path(result.notebook).stem, "path": str(notebook.parent)}, "nexus": run}
    body, _ = html_exporter().from_notebook_node(nb, resources=resources)
    html_path.write_text(body, encoding="utf-8")
    return html_path


def _load_manifest(path: Path) -> dict[str, Any]:
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def write_manifest(
    output_dir: Path,
    results: list[NotebookResult],
    *,
    all_notebooks: list[str],
    profile: str,
    commit: str,
    course: list[dict[str, str]] | None = None,
) -> dict[str, Any]:
    """Write ``manifest.json``. Entries of earlier runs are kept for notebooks this run skipped (``--only``)
    as long as the notebook still exists and its report is still there."""
    path = output_dir / MANIFEST_NAME
    entries = {r.notebook: asdict(r) for r in results}
    previous = _load_manifest(path).get("notebooks", [])
    for old in previous if isinstance(previous, list) else []:
        name = old.get("notebook") if isinstance(old, dict) else None
        if name and name not in entries and name in all_notebooks and (output_dir / old.get("html", "")).is_file():
            entries[name] = old
    ordered = sorted(entries.values(), key=lambda e: (e.get("kind", "notebook") != "notebook", e["notebook"]))
    manifest = {
        "generated_at": _now().isoformat(),
        "profile": profile,
        "commit": commit,
        "course": course or [],
        "notebooks": ordered,
    }
    write_json(manifest, path)
    return manifest


_INDEX_CSS = """
body { font-family: system-ui, -apple-system, "Segoe UI", Roboto, sans-serif; margin: 2rem auto;
  max-width: 1200px; padding: 0 1rem; color: #1f2328; }
h1 { font-size: 1.6rem; margin-bottom: .2rem; }
.meta { color: #57606a; margin-bottom: 1.2rem; }
table { border-collapse: collapse; width: 100%; font-size: .95rem; }
th, td { text-align: left; padding: .5rem .6rem; border-bottom: 1px solid #d0d7de; vertical-align: top; }
th { background: #f6f8fa; font-weight: 600; }
tr:hover td { background: #fafbfc; }
code { font-family: ui-monospace, SFMono-Regular, Menlo, monospace; font-size: .85rem; }
.status { display: inline-block; padding: .1rem .55rem; border-radius: 1rem; font-weight: 600;
  font-size: .85rem; }
.status.ok { background: #dafbe1; color: #1a7f37; }
.status.failed { background: #ffebe9; color: #cf222e; }
.error { color: #cf222e; font-size: .85rem; margin-top: .3rem; }
.num { text-align: right; white-space: nowrap; }
a { color: #0969da; }
footer { margin-top: 1.5rem; color: #57606a; font-size: .85rem; }
h2 { font-size: 1.2rem; margin-top: 1.6rem; }
ol.course { padding-left: 1.4rem; line-height: 1.6; }
ol.course .summary { color: #57606a; }
table.figures { width: auto; font-size: .85rem; }
table.figures td, table.figures th { padding: .1rem .5rem; border: 0; background: none; }
.differs { color: #9a6700; font-weight: 600; }
"""


def _readable_time(iso: str) -> str:
    try:
        return datetime.fromisoformat(iso).astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S UTC")
    except (TypeError, ValueError):
        return str(iso or "")


def _number(value: Any) -> str:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return "–"
    return f"{value:,}" if isinstance(value, int) else f"{value:.4g}"


def _figures_cell(entry: dict[str, Any]) -> str:
    """The run's headline figures beside the reference's, the ones beyond tolerance marked."""
    e = html.escape
    found = entry.get("headline") or {}
    if not found:
        return "<td>–</td>"
    reference = entry.get("reference") or {}
    tolerances = entry.get("headline_tolerance") or {}
    marked = set(entry.get("headline_differs") or [])
    rows = []
    for name, value in found.items():
        tol = tolerances.get(name, 0.0)
        mark = ' class="differs" title="differs from the reference beyond its tolerance"' if name in marked else ""
        flag = " ≠" if name in marked else ""
        rows.append(
            f'<tr{mark}><td><code>{e(name)}</code></td><td class="num">{e(_number(value))}{flag}</td>'
            f'<td class="num">{e(_number(reference.get(name)))}</td>'
            f'<td class="num">{"exact" if not tol else f"±{tol:.0%}"}</td></tr>'
        )
    head = '<tr><th>figure</th><th class="num">this run</th><th class="num">reference</th><th>tolerance</th></tr>'
    return f'<td><table class="figures">{head}{"".join(rows)}</table></td>'


def _course_section(course: list[dict[str, str]], entries: list[dict[str, Any]]) -> str:
    e = html.escape
    if not course:
        return ""
    reports = {x.get("notebook"): x.get("html") for x in entries}
    items = []
    for item in course:
        link = reports.get(item["notebook"])
        title = f'<a href="{e(link)}">{e(item["title"])}</a>' if link else e(item["title"])
        summary = f' <span class="summary">— {e(item["summary"])}</span>' if item.get("summary") else ""
        items.append(f"<li>{title}{summary}</li>")
    return f'<h2>The course, in order</h2>\n<ol class="course" start="0">\n{chr(10).join(items)}\n</ol>\n'


def write_index(output_dir: Path, manifest: dict[str, Any]) -> Path:
    """A plain, self-contained ``index.html`` (inline CSS, no scripts): the course in order, then every report with
    its status, parameters and headline figures beside the reference run's."""
    e = html.escape
    rows = []
    entries = manifest.get("notebooks", [])
    for entry in entries:
        status = entry.get("status", "failed")
        error = entry.get("error") or {}
        failure = ""
        if status != "ok":
            cell = error.get("cell_index")
            where = f"cell {cell}" if cell is not None else "before any cell"
            if error.get("execution_count"):
                where += f" (In [{error['execution_count']}])"
            failure = f'<div class="error">failed at {e(where)}: <code>{e(error.get("summary", ""))}</code></div>'
        rows.append(
            "<tr>"
            f'<td><a href="{e(entry.get("html", ""))}">{e(entry.get("notebook", ""))}</a>'
            f"{' <small>(solutions, for mentors)</small>' if entry.get('kind') == 'solutions' else ''}"
            f' <small>(<a href="{e(entry.get("ipynb", ""))}">ipynb</a>)</small>{failure}</td>'
            f'<td><span class="status {e(status)}">{e(status)}</span></td>'
            f"<td><code>{e(str(entry.get('profile', '')))}</code></td>"
            f"<td><code>{e(format_parameters(entry.get('parameters') or {}))}</code></td>"
            f'<td class="num">{e(str(entry.get("duration_s", "")))} s</td>'
            f"{_figures_cell(entry)}"
            f"<td><code>{e(str(entry.get('commit', '')))}</code></td>"
            f'<td><time datetime="{e(str(entry.get("started_at", "")))}">'
            f"{e(_readable_time(entry.get('started_at', '')))}</time></td>"
            "</tr>"
        )
    ok = sum(1 for x in entries if x.get("status") == "ok")
    failed = len(entries) - ok
    summary = f"{ok} ok" + (f", {failed} failed" if failed else "")
    page = f"""<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>Nexus notebook reports</title>
<style>{_INDEX_CSS}</style>
</head>
<body>
<h1>Nexus notebook reports</h1>
<div class="meta">Generated {e(_readable_time(manifest.get("generated_at", "")))}
&middot; profile <code>{e(str(manifest.get("profile", "")))}</code>
&middot; commit <code>{e(str(manifest.get("commit", "")))}</code>
&middot; {e(summary)}</div>
{_course_section(manifest.get("course") or [], entries)}<h2>Runs</h2>
<p class="meta">Headline figures are what each notebook exists to find, beside the reference run's (the committed
executed notebook, profile ci). A figure marked ≠ differs from the reference by more than its tolerance (relative;
"exact" for counts a seeded run reproduces): on another profile or a busier machine timings differ, counts should
not.</p>
<table>
<thead><tr><th>Notebook</th><th>Status</th><th>Profile</th><th>Parameters</th><th class="num">Duration</th>
<th>Headline figures</th><th>Commit</th><th>Started</th></tr></thead>
<tbody>
{chr(10).join(rows)}
</tbody>
</table>
<footer>Executed with papermill, rendered with nbconvert; every report opens offline.
Machine-readable: <a href="{MANIFEST_NAME}">{MANIFEST_NAME}</a>.</footer>
</body>
</html>
"""
    path = output_dir / INDEX_NAME
    path.write_text(page, encoding="utf-8")
    return path


# --------------------------------------------------------------------------- the whole run


def plan_run(
    *,
    notebooks_dir: Path,
    profile: str,
    only: Iterable[str] | None = None,
    overrides: list[str] | None = None,
    kernel_name: str = DEFAULT_KERNEL,
) -> list[NotebookPlan]:
    """Everything checkable before executing: selection, profiles, parameter names and types, the kernel.
    Raises :class:`ParameterError` (one-line message)."""
    notebooks = discover_notebooks(notebooks_dir, only)
    plans = plan_notebooks(notebooks, profile, overrides)
    check_kernel(kernel_name)
    return plans


def run_notebooks(
    *,
    notebooks_dir: Path | None = None,
    output_dir: Path | None = None,
    profile: str = "ci",
    only: Iterable[str] | None = None,
    overrides: list[str] | None = None,
    kernel_name: str = DEFAULT_KERNEL,
    timeout: int | None = None,
    progress: bool = True,
    echo: Callable[[str], None] | None = None,
    write_back_passed: bool = False,
) -> RunSummary:
    """Validate every notebook, then execute and render each; write the manifest and the index.
    ``write_back_passed`` copies each passing executed notebook over its source (see :func:`write_back`)."""
    echo = echo or (lambda line: print(line, flush=True))
    root = project_root()
    notebooks_dir = Path(notebooks_dir or root / "notebooks").resolve()
    output_dir = Path(output_dir or root / "reports").resolve()
    plans = plan_run(
        notebooks_dir=notebooks_dir, profile=profile, only=only, overrides=overrides, kernel_name=kernel_name
    )
    output_dir.mkdir(parents=True, exist_ok=True)
    commit = git_commit(root)
    every_notebook = discover_notebooks(notebooks_dir)
    all_solutions = discover_solutions(notebooks_dir, every_notebook)
    all_names = [p.name for p in every_notebook + all_solutions]
    course = [course_entry(p) for p in every_notebook]
    # Solutions run after every notebook, without parameters (they check answers against what the notebooks made).
    solutions = [
        NotebookPlan(path=p, profile=profile) for p in discover_solutions(notebooks_dir, [x.path for x in plans])
    ]
    kinds = {plan.path: "notebook" for plan in plans} | {plan.path: "solutions" for plan in solutions}
    plans = plans + solutions

    t0 = time.perf_counter()
    results: list[NotebookResult] = []
    for i, plan in enumerate(plans, 1):
        echo(f"[{i}/{len(plans)}] {plan.name} (profile {plan.profile}: {format_parameters(plan.parameters)})")
        result = run_notebook(
            plan,
            output_dir,
            commit=commit,
            kernel_name=kernel_name,
            timeout=timeout,
            progress=progress,
            kind=kinds[plan.path],
        )
        results.append(result)
        if result.ok:
            echo(f"      ok in {result.duration_s} s -> {output_dir / result.html}")
            if write_back_passed:
                write_back(output_dir / result.ipynb, plan)
                echo(f"      executed notebook written back to {plan.path}")
        else:
            err = result.error or {}
            where = f"cell {err.get('cell_index')}"
            echo(f"      FAILED at {where} after {result.duration_s} s: {err.get('summary')}")
        manifest = write_manifest(
            output_dir, results, all_notebooks=all_names, profile=profile, commit=commit, course=course
        )
        write_index(output_dir, manifest)

    return RunSummary(
        results=results,
        output_dir=output_dir,
        manifest_path=output_dir / MANIFEST_NAME,
        index_path=output_dir / INDEX_NAME,
        duration_s=round(time.perf_counter() - t0, 1),
        commit=commit,
        profile=profile,
    )
