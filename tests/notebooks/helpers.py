"""Small throwaway notebooks for runner tests (real kernels; each runs in about a second)."""

from __future__ import annotations

from pathlib import Path

import nbformat
import yaml


def write_notebook(
    folder: Path,
    name: str,
    *,
    parameters: str | None,
    cells: list[str],
    profiles: dict | None = None,
    markdown: str = "# A test notebook",
) -> Path:
    """Write ``folder/name`` (a markdown cell, the parameters cell if given, then ``cells``) and, when
    ``profiles`` is given, ``folder/params/<stem>.yaml``."""
    folder.mkdir(parents=True, exist_ok=True)
    nb = nbformat.v4.new_notebook()
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    nb.cells.append(nbformat.v4.new_markdown_cell(markdown))
    if parameters is not None:
        nb.cells.append(nbformat.v4.new_code_cell(parameters, metadata={"tags": ["parameters"]}))
    nb.cells.extend(nbformat.v4.new_code_cell(src) for src in cells)
    path = folder / name
    nbformat.write(nb, path)
    if profiles is not None:
        (folder / "params").mkdir(exist_ok=True)
        (folder / "params" / f"{path.stem}.yaml").write_text(yaml.safe_dump(profiles, sort_keys=False))
    return path


TOUR_LIKE_PARAMETERS = "seed = 7  # the seed\nvoters = 30  # how many voters\n"
