"""Parameter profiles are checked against each notebook's ``parameters`` cell before anything runs."""

from __future__ import annotations

import nbformat
import pytest

from nexus_lab.notebooks.params import (
    ParameterError,
    load_profile,
    notebook_parameters,
    parse_override,
    plan_notebooks,
)

from .helpers import TOUR_LIKE_PARAMETERS, write_notebook

TYPED = (
    "count = 3  # an int\n"
    "ratio = 0.5  # a float\n"
    "label = 'x'  # a str\n"
    "flag = False  # a bool\n"
    "names = ['a', 'b']  # a list\n"
    "limits = {'a': 1}  # a dict\n"
    "when: str = None  # annotated, default None\n"
    "anything = None  # unknown type: anything goes\n"
)


def tour(tmp_path, profiles):
    return write_notebook(
        tmp_path, "00-tour.ipynb", parameters=TOUR_LIKE_PARAMETERS, cells=["print(seed)"], profiles=profiles
    )


def one_line(exc: pytest.ExceptionInfo) -> str:
    message = str(exc.value)
    assert "\n" not in message
    return message


def test_types_are_inferred_from_defaults_and_annotations(tmp_path):
    nb = write_notebook(tmp_path, "t.ipynb", parameters=TYPED, cells=[], profiles={"ci": {}})
    declared = notebook_parameters(nb)
    assert {name: p.type_name for name, p in declared.items()} == {
        "count": "int",
        "ratio": "float",
        "label": "str",
        "flag": "bool",
        "names": "list",
        "limits": "dict",
        "when": "str",
        "anything": None,
    }
    assert declared["count"].help == "an int"


def test_a_valid_profile_loads_and_int_is_accepted_for_float(tmp_path):
    profile = {"count": 5, "ratio": 1, "label": "y", "flag": True, "names": [], "limits": {}, "anything": [1]}
    nb = write_notebook(tmp_path, "t.ipynb", parameters=TYPED, cells=[], profiles={"ci": profile, "full": {}})
    assert load_profile(nb, "ci") == profile
    assert load_profile(nb, "full") == {}


def test_unknown_parameter_names_notebook_parameter_and_known_names(tmp_path):
    nb = tour(tmp_path, {"ci": {"seed": 7, "votrs": 3}})
    with pytest.raises(ParameterError) as exc:
        load_profile(nb, "ci")
    assert one_line(exc) == (
        "00-tour.ipynb: unknown parameter 'votrs' in profile 'ci' (known: seed, voters); did you mean 'voters'?"
    )


@pytest.mark.parametrize(
    ("value", "got"),
    [("many", "str 'many'"), (2.5, "float 2.5"), (True, "bool True"), (None, "null None"), ([3], "list [3]")],
)
def test_mistyped_parameter_names_expected_type(tmp_path, value, got):
    nb = tour(tmp_path, {"ci": {"voters": value}})
    with pytest.raises(ParameterError) as exc:
        load_profile(nb, "ci")
    assert one_line(exc) == (f"00-tour.ipynb: parameter 'voters' in profile 'ci' must be int (default 30), got {got}")


def test_bool_and_float_parameters_reject_other_types(tmp_path):
    nb = write_notebook(
        tmp_path, "t.ipynb", parameters=TYPED, cells=[], profiles={"a": {"flag": 1}, "b": {"ratio": "0.5"}}
    )
    with pytest.raises(ParameterError, match=r"'flag' in profile 'a' must be bool"):
        load_profile(nb, "a")
    with pytest.raises(ParameterError, match=r"'ratio' in profile 'b' must be float"):
        load_profile(nb, "b")


def test_unknown_profile_lists_available_profiles(tmp_path):
    nb = tour(tmp_path, {"ci": {}, "full": {"voters": 300}})
    with pytest.raises(ParameterError) as exc:
        load_profile(nb, "nightly")
    assert one_line(exc) == "00-tour.ipynb: unknown profile 'nightly' (available: ci, full)"


def test_missing_parameter_file(tmp_path):
    nb = tour(tmp_path, None)
    with pytest.raises(ParameterError) as exc:
        load_profile(nb, "ci")
    assert one_line(exc).startswith("00-tour.ipynb: no parameter file params/00-tour.yaml")


def test_invalid_yaml_is_one_line(tmp_path):
    nb = tour(tmp_path, None)
    (tmp_path / "params").mkdir()
    (tmp_path / "params" / "00-tour.yaml").write_text("ci: {seed: [\n")
    with pytest.raises(ParameterError) as exc:
        load_profile(nb, "ci")
    assert one_line(exc).startswith("params/00-tour.yaml: invalid YAML")


def test_a_notebook_without_a_parameters_cell_is_refused(tmp_path):
    nb = write_notebook(tmp_path, "t.ipynb", parameters=None, cells=["x = 1"], profiles={"ci": {}})
    with pytest.raises(ParameterError) as exc:
        load_profile(nb, "ci")
    assert one_line(exc) == "t.ipynb: needs exactly one cell tagged 'parameters' (found none)"


def test_two_parameters_cells_are_refused(tmp_path):
    nb = write_notebook(tmp_path, "t.ipynb", parameters="a = 1", cells=["b = 2"], profiles={"ci": {}})
    node = nbformat.read(nb, as_version=4)
    node.cells[2].metadata["tags"] = ["parameters"]
    nbformat.write(node, nb)
    with pytest.raises(ParameterError) as exc:
        load_profile(nb, "ci")
    assert one_line(exc) == "t.ipynb: needs exactly one cell tagged 'parameters' (found cells 1, 2)"


def test_overrides_are_read_as_yaml():
    assert parse_override("voters=50") == (None, "voters", 50)
    assert parse_override("ratio=0.5") == (None, "ratio", 0.5)
    assert parse_override("flag=true") == (None, "flag", True)
    assert parse_override("who=ana") == (None, "who", "ana")
    assert parse_override("00-tour:names=[a, b]") == ("00-tour", "names", ["a", "b"])
    with pytest.raises(ParameterError, match="expected name=value"):
        parse_override("voters")


def test_overrides_apply_to_notebooks_that_declare_them(tmp_path):
    a = tour(tmp_path, {"ci": {"voters": 3}})
    b = write_notebook(tmp_path, "01-other.ipynb", parameters="rows = 10  # rows", cells=[], profiles={"ci": {}})
    plans = plan_notebooks([a, b], "ci", ["voters=9", "01-other:rows=20"])
    assert [p.parameters for p in plans] == [{"voters": 9}, {"rows": 20}]


def test_an_override_nobody_declares_is_an_error(tmp_path):
    a = tour(tmp_path, {"ci": {}})
    with pytest.raises(ParameterError) as exc:
        plan_notebooks([a], "ci", ["votrs=9"])
    assert one_line(exc).startswith("00-tour.ipynb: unknown parameter 'votrs' in -p override (known: seed, voters)")
    b = write_notebook(tmp_path, "01-other.ipynb", parameters="rows = 10  # rows", cells=[], profiles={"ci": {}})
    with pytest.raises(ParameterError, match=r"^-p votrs=9: unknown parameter 'votrs'"):
        plan_notebooks([a, b], "ci", ["votrs=9"])
    with pytest.raises(ParameterError, match=r"must be int"):
        plan_notebooks([a, b], "ci", ["voters=many"])
    with pytest.raises(ParameterError, match=r"no notebook '02-x' in this run"):
        plan_notebooks([a, b], "ci", ["02-x:rows=1"])
