"""Notebook 02 as committed: its profiles never write a rules file, its asserts only look at held-out data, and its
outputs name files relative to the project (never this machine's paths)."""

from __future__ import annotations

import ast

import nbformat
from django.conf import settings

from nexus_lab.notebooks.params import load_profile, notebook_parameters

NOTEBOOK = settings.NEXUS_PROJECT_ROOT / "notebooks" / "02-suspicious-ip-replay.ipynb"


def test_no_profile_writes_the_recommended_rules_file():
    assert ast.literal_eval(notebook_parameters(NOTEBOOK)["write_rules"].default) is False
    for profile in ("ci", "full"):
        assert load_profile(NOTEBOOK, profile).get("write_rules", False) is False, profile


def test_tuning_and_held_out_worlds_differ_in_every_profile():
    for profile in ("ci", "full"):
        params = load_profile(NOTEBOOK, profile)
        assert params["tune_world"] != params["test_world"] and params["tune_seed"] != params["test_seed"], profile


def test_committed_outputs_use_project_relative_paths():
    nb = nbformat.read(NOTEBOOK, as_version=4)
    text = nbformat.writes(nb)
    assert str(settings.NEXUS_PROJECT_ROOT) not in text
    assert "/work/" not in text and "/home/" not in text
    executed = [c for c in nb.cells if c.cell_type == "code" and c.get("outputs")]
    assert executed, "the committed notebook is executed (make notebooks) so nbval has outputs to compare"
