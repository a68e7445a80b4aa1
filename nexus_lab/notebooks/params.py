"""Parameter profiles: ``notebooks/params/<stem>.yaml`` holds named profiles (at least ``ci`` and ``full``).

papermill only *warns* about a parameter the notebook does not declare, and passes any type. Here every
profile value (and every ``-p name=value`` override) is checked against the notebook's one cell tagged
``parameters`` (read with :func:`papermill.inspect_notebook`) before anything runs. Mistakes raise
:class:`ParameterError` with a one-line message naming the notebook and the parameter, e.g.
``00-tour.ipynb: unknown parameter 'votrs' (known: seed, voters)``.
"""

from __future__ import annotations

import ast
import difflib
import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import nbformat
import yaml

PARAMS_DIRNAME = "params"
_TYPES: dict[str, type] = {"int": int, "float": float, "str": str, "bool": bool, "list": list, "dict": dict}


class ParameterError(ValueError):
    """A profile or override does not fit a notebook. ``str()`` is one line, ready for stderr."""


@dataclass(frozen=True)
class NotebookParameter:
    name: str
    type_name: str | None  # int | float | str | bool | list | dict, or None when it cannot be told
    default: str  # the default as written in the cell
    help: str


@dataclass
class NotebookPlan:
    """A notebook, the profile chosen for it and the validated parameters papermill will inject."""

    path: Path
    profile: str
    parameters: dict[str, Any] = field(default_factory=dict)
    declared: dict[str, NotebookParameter] = field(default_factory=dict)

    @property
    def name(self) -> str:
        return self.path.name

    @property
    def stem(self) -> str:
        return self.path.stem


def params_file(notebook: Path) -> Path:
    return notebook.parent / PARAMS_DIRNAME / f"{notebook.stem}.yaml"


def _type_of_annotation(annotation: str) -> str | None:
    base = annotation.strip().split("[", 1)[0].strip().lower()
    return base if base in _TYPES else None


def _type_of_default(default: str) -> str | None:
    try:
        value = ast.literal_eval(default)
    except (ValueError, SyntaxError, TypeError, MemoryError, RecursionError):
        return None
    for name in ("bool", "int", "float", "str", "list", "dict"):  # bool first: it is an int subclass
        if type(value) is _TYPES[name]:
            return name
    if isinstance(value, tuple):
        return "list"
    return None


def notebook_parameters(notebook: Path) -> dict[str, NotebookParameter]:
    """The parameters the notebook declares, with inferred types. Raises ParameterError unless exactly one
    cell is tagged ``parameters``."""
    import papermill

    try:
        nb = nbformat.read(notebook, as_version=4)
    except Exception as exc:  # unreadable JSON, wrong nbformat: still a one-line message
        raise ParameterError(f"{notebook.name}: cannot read the notebook ({type(exc).__name__}: {exc})") from None
    tagged = [i for i, cell in enumerate(nb.cells) if "parameters" in cell.get("metadata", {}).get("tags", [])]
    if len(tagged) != 1:
        where = f"cells {', '.join(str(i) for i in tagged)}" if tagged else "none"
        raise ParameterError(f"{notebook.name}: needs exactly one cell tagged 'parameters' (found {where})")
    papermill_logger = logging.getLogger("papermill")
    level = papermill_logger.level
    papermill_logger.setLevel(logging.WARNING)  # inspect_notebook logs "Input Notebook: ..." at INFO
    try:
        raw = papermill.inspect_notebook(str(notebook))
    finally:
        papermill_logger.setLevel(level)
    declared = {}
    for name, info in raw.items():
        annotated = info.get("inferred_type_name")
        type_name = _type_of_annotation(annotated) if annotated and annotated != "None" else None
        declared[name] = NotebookParameter(
            name=name,
            type_name=type_name or _type_of_default(info.get("default", "")),
            default=info.get("default", ""),
            help=info.get("help", ""),
        )
    return declared


def _fits(value: Any, type_name: str | None) -> bool:
    if type_name is None:
        return True
    if type_name == "float":
        return isinstance(value, int | float) and not isinstance(value, bool)
    if type_name == "int":
        return isinstance(value, int) and not isinstance(value, bool)
    if type_name == "list":
        return isinstance(value, list | tuple)
    return isinstance(value, _TYPES[type_name])


def _type_label(value: Any) -> str:
    if value is None:
        return "null"
    return type(value).__name__


def check_parameters(
    notebook: Path, values: dict[str, Any], declared: dict[str, NotebookParameter], *, source: str
) -> None:
    """Every name in ``values`` must be declared, and its value must fit the declared type."""
    known = ", ".join(declared) or "none"
    for name, value in values.items():
        if name not in declared:
            hint = difflib.get_close_matches(name, list(declared), n=1)
            maybe = f"; did you mean '{hint[0]}'?" if hint else ""
            raise ParameterError(f"{notebook.name}: unknown parameter '{name}' in {source} (known: {known}){maybe}")
        expected = declared[name].type_name
        if not _fits(value, expected):
            raise ParameterError(
                f"{notebook.name}: parameter '{name}' in {source} must be {expected} "
                f"(default {declared[name].default}), got {_type_label(value)} {value!r}"
            )


def load_profiles(notebook: Path) -> dict[str, dict[str, Any]]:
    path = params_file(notebook)
    if not path.is_file():
        raise ParameterError(
            f"{notebook.name}: no parameter file {PARAMS_DIRNAME}/{path.name} (it needs profiles such as ci, full)"
        )
    try:
        data = yaml.safe_load(path.read_text()) or {}
    except yaml.YAMLError as exc:
        first = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise ParameterError(f"{PARAMS_DIRNAME}/{path.name}: invalid YAML ({first})") from None
    if not isinstance(data, dict) or not all(isinstance(v, dict | type(None)) for v in data.values()):
        raise ParameterError(
            f"{PARAMS_DIRNAME}/{path.name}: expected a mapping of profile names to mappings of parameters"
        )
    return {str(name): dict(values or {}) for name, values in data.items()}


def load_profile(notebook: Path, profile: str) -> dict[str, Any]:
    """The parameters of ``profile`` for ``notebook``, validated against its parameters cell."""
    return plan_notebook(notebook, profile).parameters


def plan_notebook(
    notebook: Path,
    profile: str,
    overrides: dict[str, Any] | None = None,
    declared: dict[str, NotebookParameter] | None = None,
) -> NotebookPlan:
    """Load ``profile``, apply ``overrides`` (already meant for this notebook), validate everything."""
    notebook = Path(notebook)
    profiles = load_profiles(notebook)
    if profile not in profiles:
        available = ", ".join(sorted(profiles)) or "none"
        raise ParameterError(f"{notebook.name}: unknown profile '{profile}' (available: {available})")
    if declared is None:
        declared = notebook_parameters(notebook)
    values = dict(profiles[profile])
    check_parameters(notebook, values, declared, source=f"profile '{profile}'")
    overrides = overrides or {}
    check_parameters(notebook, overrides, declared, source="-p override")
    values.update(overrides)
    return NotebookPlan(path=notebook, profile=profile, parameters=values, declared=declared)


def parse_override(text: str) -> tuple[str | None, str, Any]:
    """``name=value`` or ``stem:name=value`` -> (stem or None, name, value). Values are read as YAML, so
    ``-p voters=50`` is an int, ``-p ratio=0.5`` a float, ``-p flag=true`` a bool, ``-p who=ana`` a string."""
    if "=" not in text:
        raise ParameterError(f"-p {text}: expected name=value (or notebook:name=value)")
    key, _, raw = text.partition("=")
    stem, _, name = key.strip().rpartition(":")
    name = name.strip()
    if not name.isidentifier():
        raise ParameterError(f"-p {text}: '{name}' is not a parameter name")
    try:
        value = yaml.safe_load(raw) if raw.strip() else ""
    except yaml.YAMLError:
        value = raw
    return (stem.strip() or None), name, value


def plan_notebooks(notebooks: list[Path], profile: str, overrides: list[str] | None = None) -> list[NotebookPlan]:
    """Validate every notebook's parameters before any runs. A plain ``name=value`` override applies to
    each notebook that declares ``name`` (at least one must); ``stem:name=value`` targets one notebook."""
    parsed = [(text, *parse_override(text)) for text in overrides or []]
    stems = {nb.stem for nb in notebooks}
    for text, stem, _name, _value in parsed:
        if stem is not None and stem not in stems:
            raise ParameterError(f"-p {text}: no notebook '{stem}' in this run (have: {', '.join(sorted(stems))})")

    plans = []
    used: set[str] = set()
    for notebook in notebooks:
        declared = notebook_parameters(notebook)
        mine: dict[str, Any] = {}
        for text, stem, name, value in parsed:
            if stem == notebook.stem or (stem is None and name in declared):
                mine[name] = value
                used.add(text)
        plans.append(plan_notebook(notebook, profile, mine, declared))
    for text, _stem, name, value in parsed:
        if text in used:
            continue
        if len(plans) == 1:  # one notebook: say exactly what it accepts
            check_parameters(plans[0].path, {name: value}, plans[0].declared, source="-p override")
        known = sorted({n for plan in plans for n in plan.declared})
        hint = difflib.get_close_matches(name, known, n=1)
        maybe = f"; did you mean '{hint[0]}'?" if hint else ""
        raise ParameterError(f"-p {text}: unknown parameter '{name}' (no notebook in this run declares it){maybe}")
    return plans
