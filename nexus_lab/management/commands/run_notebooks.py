"""``manage.py run_notebooks``: execute the notebooks with papermill, render ``reports/`` (``make reports``).

Exit status: 0 all notebooks passed; 1 at least one failed (its report is still written, marked failed);
2 nothing ran because a profile, parameter, ``--only`` name or kernel was wrong (one line on stderr).
"""

from __future__ import annotations

from pathlib import Path

from django.core.management.base import BaseCommand, CommandError

from nexus_lab.notebooks.params import ParameterError
from nexus_lab.notebooks.runner import DEFAULT_KERNEL, run_notebooks


class Command(BaseCommand):
    help = (
        "Validate every notebook's parameters against a profile, execute the notebooks with papermill and "
        "render HTML reports with reports/index.html and reports/manifest.json."
    )

    def add_arguments(self, parser):
        parser.add_argument(
            "--profile",
            default="ci",
            help="parameter profile from notebooks/params/<notebook>.yaml (default ci)",
        )
        parser.add_argument(
            "--only",
            nargs="+",
            metavar="NAME",
            help="run only these notebooks (file name, stem or stem prefix: 00-tour.ipynb, 00-tour, 00)",
        )
        parser.add_argument("--output", default=None, help="folder for the reports (default: reports/ in the project)")
        parser.add_argument("--notebooks-dir", default=None, help="folder holding the notebooks (default: notebooks/)")
        parser.add_argument(
            "-p",
            "--parameter",
            action="append",
            default=[],
            dest="overrides",
            metavar="NAME=VALUE",
            help="override a parameter (value read as YAML: 50, 0.5, true, text); "
            "NOTEBOOK:NAME=VALUE targets one notebook; repeatable",
        )
        parser.add_argument("--kernel", default=DEFAULT_KERNEL, help="Jupyter kernel name (default python3)")
        parser.add_argument("--timeout", type=int, default=None, help="seconds a single cell may run before it fails")
        parser.add_argument("--no-progress", action="store_true", help="no per-cell progress bar")
        parser.add_argument(
            "--write-back",
            action="store_true",
            help="copy each passing executed notebook over its source in notebooks/ (to commit it executed)",
        )

    def handle(self, *args, **opts):
        try:
            summary = run_notebooks(
                notebooks_dir=Path(opts["notebooks_dir"]) if opts["notebooks_dir"] else None,
                output_dir=Path(opts["output"]) if opts["output"] else None,
                profile=opts["profile"],
                only=opts["only"],
                overrides=opts["overrides"],
                kernel_name=opts["kernel"],
                timeout=opts["timeout"],
                progress=not opts["no_progress"] and opts["verbosity"] > 0,
                echo=self._echo(opts["verbosity"]),
                write_back_passed=opts["write_back"],
            )
        except ParameterError as exc:
            raise CommandError(str(exc), returncode=2) from None

        total, failed = len(summary.results), summary.failed
        self.stdout.write(
            f"{total - len(failed)} of {total} notebooks passed in {summary.duration_s} s "
            f"(profile {summary.profile}, commit {summary.commit})"
        )
        self.stdout.write(f"reports: {summary.index_path}")
        if failed:
            names = ", ".join(
                f"{r.notebook} (cell {(r.error or {}).get('cell_index')}: {(r.error or {}).get('summary')})"
                for r in failed
            )
            raise CommandError(f"{len(failed)} of {total} notebooks failed: {names}", returncode=1)

    def _echo(self, verbosity: int):
        def echo(line: str) -> None:
            if verbosity > 0:
                self.stdout.write(line)
                self.stdout.flush()

        return echo
