"""Generated traffic on disk: the log (Apache/Nginx combined, gzip when the name ends in ``.gz``) and its labels
CSV (``ip,label,population,family,hard_benign,world``; files with only the first three columns read too)."""

from __future__ import annotations

import csv
import gzip
import zlib
from collections.abc import Iterator
from pathlib import Path

from nexus_backend.tracking.detection.parsers import Record, format_combined
from nexus_lab.traffic.core import Label
from nexus_lab.traffic.worlds import Traffic

LABEL_COLUMNS = ["ip", "label", "population", "family", "hard_benign", "world"]


def iter_lines(records: list[Record]) -> Iterator[str]:
    for rec in records:
        size = 0 if rec.status >= 300 or rec.method == "HEAD" else 300 + zlib.crc32(rec.path.encode()) % 60_000
        yield format_combined(rec, size=size)


def write_traffic(traffic: Traffic, log_path: str | Path, labels_path: str | Path) -> tuple[Path, Path]:
    log_path, labels_path = Path(log_path), Path(labels_path)
    log_path.parent.mkdir(parents=True, exist_ok=True)
    labels_path.parent.mkdir(parents=True, exist_ok=True)
    with open(log_path, "wb") as raw:
        # no name, mtime 0 in the gzip header: the same traffic gives the same bytes
        fh = gzip.GzipFile(filename="", fileobj=raw, mode="wb", mtime=0) if log_path.suffix == ".gz" else raw
        with fh:
            for line in iter_lines(traffic.records):
                fh.write(line.encode("utf-8") + b"\n")
    with open(labels_path, "w", encoding="utf-8", newline="") as out:
        w = csv.writer(out, lineterminator="\n")
        w.writerow(LABEL_COLUMNS)
        for ip, label in sorted(traffic.labels.items()):
            w.writerow([ip, label.label, label.population, label.family, int(label.hard_benign), label.world])
    return log_path, labels_path


def read_labels(path: str | Path) -> dict[str, Label]:
    """``ip -> Label``; raises ``ValueError`` naming the file when the ``ip,label,population`` columns are missing."""
    with open(path, encoding="utf-8", newline="") as fh:
        reader = csv.DictReader(fh)
        missing = {"ip", "label", "population"} - set(reader.fieldnames or [])
        if missing:
            raise ValueError(f"{path}: a labels file needs the columns ip,label,population (missing {sorted(missing)})")
        return {
            row["ip"]: Label(
                row["label"],
                row["population"],
                row.get("family") or "",
                (row.get("hard_benign") or "0").strip().lower() in {"1", "true", "yes"},
                row.get("world") or "",
            )
            for row in reader
        }
