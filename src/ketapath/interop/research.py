"""The research export as files: a zip of CSV files or of Parquet files, with its data
dictionary and the Safe Harbor table.

The tables come from ``ketapath.services.research_export`` (already de-identified, in the data
dictionary's columns); this module only writes and reads them:

- ``csv``: one file per table (``patients.csv`` ...), a header row of the column names, one
  row per record, RFC 4180 quoting by the ``csv`` module, UTF-8. An empty cell is an empty
  value; booleans are ``true``/``false``; numbers are written as Python writes the nearest
  float (``repr``), so they read back exactly.
- ``parquet``: one file per table (``patients.parquet`` ...), written by pyarrow with each
  column's type from the dictionary (string, int64, double, bool) and its unit, meaning and
  de-identification in the field's metadata. Parquet's own compression is off: the zip
  compresses the files, and the values stay readable to a scan of the bytes.

Both archives hold ``data_dictionary.csv`` (table, column, type, unit, meaning,
de-identification), ``safe_harbor.csv`` (the 18 identifiers of 45 CFR 164.514(b)(2)(i) and
what ketapath does with each) and ``README.txt``. Nothing in an archive says when it was made:
every member carries the zip format's earliest time (1980-01-01), because the moment of an
export next to day numbers would let a reader date a patient's recent records.

pyarrow is imported only when Parquet is written or read.
"""

from __future__ import annotations

import contextlib
import csv
import io
import shutil
import tempfile
import zipfile
from collections.abc import Mapping, Sequence
from typing import IO, Any

from ketapath.domain import research as rules
from ketapath.domain.research import DICTIONARY_COLUMNS, Table
from ketapath.knowledge.bibliography import bibliography
from ketapath.knowledge.safe_harbor import HANDLING_WORDS, SafeHarbor, safe_harbor

MEDIA_TYPE = "application/zip"
# The zip format's earliest time: no member says when the export was made.
ZIP_TIME = (1980, 1, 1, 0, 0, 0)
SAFE_HARBOR_COLUMNS = ("letter", "identifier", "handling", "in_ketapath", "source")

README = """ketapath research export ({fmt})

De-identified by the HIPAA Safe Harbor method (45 CFR 164.514(b)(2)); safe_harbor.csv lists
the 18 identifiers and what ketapath does with each. data_dictionary.csv describes every
column of every table: its type, unit, meaning and the de-identification applied.

- Patients appear under a research code (patient_code), never a record number or a name.
- Every date of a patient is a day number counted from the day the patient was registered
  (day 0), the same in every table: intervals are kept, calendar dates are not exported.
  registration_year is the only calendar element.
- Ages are whole years up to 89 and ten-year bands; from 90 on they are one category,
  "90 or older".
- ZIP codes are three digits, or 000 for an area of 20,000 or fewer people.
- Free text (notes, descriptions, names typed into fields) is withheld and only counted.
- Lists inside a cell are separated by "; ".

Tables: {tables}
"""


def filename(fmt: str) -> str:
    """The archive's file name: no date, no clinic, no user."""
    return f"ketapath-research-export-{fmt}.zip"


def archive(fmt: str, tables: Mapping[str, Sequence[Mapping[str, Any]]]) -> bytes:
    """The zip of one export held in memory (small registries, tests): each table as ``fmt``
    (csv or parquet), the data dictionary, the Safe Harbor table and a README. The same
    writer as a streamed export (:class:`ArchiveWriter`), given every row at once."""
    out = io.BytesIO()
    with ArchiveWriter(fmt) as writer:
        for name in rules.TABLE_NAMES:
            writer.add(name, tables[name])
        writer.finish(out)
    return out.getvalue()


class ArchiveWriter:
    """An export's zip written table by table without holding the tables: rows are added in
    batches (each table's rows in their final order, batch after batch), each table spooled
    to a temporary file of its own (CSV rows, or one Parquet row group a batch), and
    :meth:`finish` writes the zip, copying each spooled file into its member in blocks. What
    it holds in memory is one batch; the temporary files are anonymous and vanish on close.
    """

    def __init__(self, fmt: str, *, directory: str | None = None) -> None:
        if fmt not in ("csv", "parquet"):
            raise ValueError(f"format {fmt!r}: csv or parquet")
        self.format = fmt
        self.counts: dict[str, int] = {name: 0 for name in rules.TABLE_NAMES}
        self._directory = directory
        self._spools: dict[str, IO[bytes]] = {}
        self._csv: dict[str, tuple[io.TextIOWrapper, Any]] = {}
        self._parquet: dict[str, Any] = {}

    def __enter__(self) -> ArchiveWriter:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()

    def add(self, name: str, rows: Sequence[Mapping[str, Any]]) -> None:
        """Append ``rows`` (the dictionary's columns) to table ``name``."""
        spec = rules.table(name)
        if name not in self._spools:
            self._open(spec)
        if self.format == "csv":
            _, writer = self._csv[name]
            names = spec.column_names
            writer.writerows([_text(row[c]) for c in names] for row in rows)
        elif rows:
            import pyarrow as pa

            columns = {c: [row[c] for row in rows] for c in spec.column_names}
            self._parquet[name].write_table(pa.Table.from_pydict(columns, schema=_schema(spec)))
        self.counts[name] += len(rows)

    def _open(self, spec: Table) -> None:
        spool = tempfile.TemporaryFile(dir=self._directory)  # noqa: SIM115 (closed by close())
        self._spools[spec.name] = spool
        if self.format == "csv":
            text = io.TextIOWrapper(spool, encoding="utf-8", newline="", write_through=False)
            writer = csv.writer(text)
            writer.writerow(spec.column_names)
            self._csv[spec.name] = (text, writer)
        else:
            import pyarrow.parquet as pq

            self._parquet[spec.name] = pq.ParquetWriter(spool, _schema(spec), compression="none")

    def finish(self, out: IO[bytes]) -> None:
        """Write the zip to ``out``: the README (with each table's rows), the dictionary, the
        Safe Harbor table, then each table's file in the dictionary's order."""
        counts = ", ".join(f"{name} ({self.counts[name]} rows)" for name in rules.TABLE_NAMES)
        members: list[tuple[str, bytes]] = [
            ("README.txt", README.format(fmt=self.format, tables=counts).encode("utf-8")),
            ("data_dictionary.csv", _csv(DICTIONARY_COLUMNS, rules.dictionary_rows())),
            ("safe_harbor.csv", _csv(SAFE_HARBOR_COLUMNS, safe_harbor_rows(safe_harbor()))),
        ]
        with zipfile.ZipFile(out, "w", compression=zipfile.ZIP_DEFLATED) as bundle:
            for name, data in members:
                bundle.writestr(_member(name), data)
            for spec in rules.TABLES:
                if spec.name not in self._spools:
                    self._open(spec)  # a table with no row: its header (or schema) only
                spool = self._spool_done(spec.name)
                size = spool.seek(0, io.SEEK_END)
                spool.seek(0)
                member = f"{spec.name}.{self.format}"
                with bundle.open(
                    _member(member), "w", force_zip64=size >= zipfile.ZIP64_LIMIT
                ) as target:
                    shutil.copyfileobj(spool, target, COPY_BLOCK)

    def _spool_done(self, name: str) -> IO[bytes]:
        """The table's spooled file, complete (the CSV's text flushed, the Parquet footer
        written)."""
        if name in self._csv:
            text, _ = self._csv.pop(name)
            text.flush()
            text.detach()
        elif name in self._parquet:
            self._parquet.pop(name).close()
        return self._spools[name]

    def close(self) -> None:
        """Remove the spooled files."""
        for name in list(self._spools):
            with contextlib.suppress(Exception):
                self._spool_done(name)
            self._spools.pop(name).close()


COPY_BLOCK = 1 << 20


def _member(name: str) -> zipfile.ZipInfo:
    info = zipfile.ZipInfo(name, date_time=ZIP_TIME)
    info.compress_type = zipfile.ZIP_DEFLATED
    return info


def safe_harbor_rows(rules_: SafeHarbor) -> list[dict[str, str]]:
    """The 18 identifiers as rows: letter, identifier, handling, what ketapath does, source."""
    bib = bibliography()
    return [
        {
            "letter": item.letter,
            "identifier": item.identifier,
            "handling": f"{item.handling} ({HANDLING_WORDS[item.handling]})",
            "in_ketapath": item.how,
            "source": "; ".join(bib.short(c) for c in item.source.cite),
        }
        for item in sorted(rules_.identifiers, key=lambda i: i.letter)
    ]


# ------------------------------------------------------------------ CSV


def _text(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        return repr(value)
    return str(value)


def _csv(columns: Sequence[str], rows: Sequence[Mapping[str, Any]]) -> bytes:
    out = io.StringIO(newline="")
    writer = csv.writer(out)
    writer.writerow(columns)
    for row in rows:
        writer.writerow([_text(row[name]) for name in columns])
    return out.getvalue().encode("utf-8")


def table_csv(spec: Table, rows: Sequence[Mapping[str, Any]]) -> bytes:
    """One table as CSV (the dictionary's columns, in order)."""
    return _csv(spec.column_names, rows)


def _value(text: str, kind: str) -> Any:
    if text == "":
        return None
    if kind == "integer":
        return int(text)
    if kind == "number":
        return float(text)
    if kind == "boolean":
        if text not in ("true", "false"):
            raise ValueError(f"{text!r} is not true or false")
        return text == "true"
    return text


def read_table_csv(spec: Table, data: bytes) -> list[dict[str, Any]]:
    """A table's CSV read back into typed values (the dictionary's types)."""
    reader = csv.reader(io.StringIO(data.decode("utf-8"), newline=""))
    header = next(reader)
    if tuple(header) != spec.column_names:
        raise ValueError(f"{spec.name}.csv: the columns are not the data dictionary's")
    kinds = [c.type for c in spec.columns]
    return [
        {name: _value(text, kind) for name, text, kind in zip(header, line, kinds, strict=True)}
        for line in reader
    ]


# ------------------------------------------------------------------ Parquet


def _schema(spec: Table) -> Any:
    import pyarrow as pa

    types = {"string": pa.string(), "integer": pa.int64(), "number": pa.float64()}
    types["boolean"] = pa.bool_()
    return pa.schema(
        [
            pa.field(
                c.name,
                types[c.type],
                nullable=True,
                metadata={
                    "unit": c.unit,
                    "meaning": c.meaning,
                    "deidentification": c.deidentification,
                },
            )
            for c in spec.columns
        ],
        metadata={"table": spec.name, "row": spec.row, "deidentification": "HIPAA Safe Harbor"},
    )


def table_parquet(spec: Table, rows: Sequence[Mapping[str, Any]]) -> bytes:
    """One table as a Parquet file (uncompressed: the zip compresses it)."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    schema = _schema(spec)
    columns = {name: [row[name] for row in rows] for name in spec.column_names}
    table = pa.Table.from_pydict(columns, schema=schema)
    out = io.BytesIO()
    pq.write_table(table, out, compression="none")
    return out.getvalue()


def read_table_parquet(spec: Table, data: bytes) -> list[dict[str, Any]]:
    """A table's Parquet file read back (pyarrow) as rows of Python values."""
    import pyarrow.parquet as pq

    table = pq.read_table(io.BytesIO(data))
    if tuple(table.column_names) != spec.column_names:
        raise ValueError(f"{spec.name}.parquet: the columns are not the data dictionary's")
    rows: list[dict[str, Any]] = table.to_pylist()
    return rows


def read_archive(data: bytes) -> dict[str, list[dict[str, Any]]]:
    """Every table of an export's zip (CSV or Parquet), read back into typed rows."""
    with zipfile.ZipFile(io.BytesIO(data)) as bundle:
        names = set(bundle.namelist())
        out = {}
        for spec in rules.TABLES:
            if f"{spec.name}.parquet" in names:
                out[spec.name] = read_table_parquet(spec, bundle.read(f"{spec.name}.parquet"))
            else:
                out[spec.name] = read_table_csv(spec, bundle.read(f"{spec.name}.csv"))
        return out
