"""Read a user's review export (CSV, TSV or Parquet) into the two columns the pipeline needs.

Every column is read as text first and checked here, so a bad file stops with one line that
names the file, the row or column and what was expected, instead of a parser traceback later.
"""

from __future__ import annotations

import io
from pathlib import Path
from typing import Callable, TypeVar

import polars as pl

from reviewlstm.config import IngestConfig
from reviewlstm.errors import InputError

TABLE_SUFFIXES = {".csv": ",", ".tsv": "\t", ".tab": "\t", ".txt": None}
PARQUET_SUFFIXES = {".parquet", ".pq"}
T = TypeVar("T")


def read_table(path: str | Path, cfg: IngestConfig | None = None) -> pl.DataFrame:
    """The file as a table of strings (Parquet keeps its types); InputError if it is not one.
    cfg: how the export is written (encoding, separator, quoting); the defaults read a UTF-8 CSV
    or TSV."""
    return _first_readable(path, cfg or IngestConfig(), pl.LazyFrame.collect)


def load(path: str | Path, cfg: IngestConfig) -> pl.LazyFrame:
    """The file's validated (text, label) rows as a lazy table: checked in one streaming pass,
    then read again, chunk by chunk, by whoever sinks it."""
    return _first_readable(path, cfg, lambda table: reviews(table, cfg, str(path)))


def _first_readable(path: str | Path, cfg: IngestConfig, use: Callable[[pl.LazyFrame], T]) -> T:
    """use(the file as a lazy table), with the first quoting that parses it (for a TSV: CSV quoting,
    then quotes as text); CSV parse errors surface only when `use` reads the rows."""
    path = Path(path)
    if not path.exists():
        raise InputError(f"{path}: no such file; expected a CSV, TSV or Parquet table of reviews")
    if path.is_dir():
        raise InputError(f"{path}: is a directory; expected a CSV, TSV or Parquet file")
    if path.stat().st_size == 0:
        raise InputError(f"{path}: file is empty; expected a header row and at least one review")
    with path.open("rb") as f:
        head = f.read(65536)
    if path.suffix.lower() in PARQUET_SUFFIXES or head[:4] == b"PAR1":
        try:
            return use(pl.scan_parquet(path))
        except InputError:
            raise
        except Exception as e:  # pyarrow and polars raise several types for a corrupt file
            raise InputError(f"{path}: not a readable Parquet file ({type(e).__name__})") from None
    source: Path | io.BytesIO = path
    if cfg.encoding == "utf-8":
        _check_utf8(path)
    else:  # polars reads UTF-8 only: decode here (in memory)
        source = io.BytesIO(_decoded(path, cfg.encoding).encode("utf-8"))
        head = source.getvalue()[:65536]
    _check_line_endings(path, head)
    separator = cfg.separator or _sniff_separator(head) or TABLE_SUFFIXES.get(path.suffix.lower()) or ","
    tsv = separator == "\t"
    quotes = {"double": ['"'], "none": [None]}.get(cfg.quote, ['"', None] if tsv else ['"'])
    for quote in quotes:  # TSV, auto: CSV quoting (Excel quotes a field holding a tab), else quotes as text
        if isinstance(source, io.BytesIO):
            source.seek(0)
        try:
            table = pl.scan_csv(source, separator=separator, quote_char=quote, encoding="utf8",
                                infer_schema=False)  # all strings: labels are validated with row numbers
            # A blank line (often the last one of an export) reads as a row of nulls: not a review.
            # Filtering on every column also makes every query parse every field, where quoting fails.
            width = len(table.collect_schema())
            return use(table.filter(~pl.all_horizontal(pl.all().is_null())) if width else table)
        except pl.exceptions.PolarsError as e:
            error = e
    reason = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
    kind = "TSV" if tsv else f"{separator!r}-separated" if separator != "," else "CSV"
    hint = "ingest.quote=none (quotes as text)" if quotes[-1] else "ingest.quote=double (CSV quoting)"
    raise InputError(f"{path}: not a readable {kind} table ({reason}); expected one row per line "
                     f"(set ingest.separator, or {hint})") from None


def _decoded(path: Path, encoding: str) -> str:
    data = path.read_bytes()
    try:
        return data.decode(encoding)
    except UnicodeDecodeError as e:
        line = data[: e.start].count(b"\n") + 1
        raise InputError(f"{path}: line {line}, byte {e.start}: not {encoding} (0x{data[e.start]:02x}); "
                         f"expected text in ingest.encoding={encoding}") from None


def _check_line_endings(path: Path, head: bytes) -> None:
    """LF and CRLF (also mixed) are read as is; a header ended by a lone CR is an old Mac export,
    which the CSV reader would take for one long line."""
    cr, lf = head.find(b"\r"), head.find(b"\n")
    if cr != -1 and (lf == -1 or cr < lf) and head[cr + 1 : cr + 2] != b"\n" and b'"' not in head[:cr]:
        raise InputError(f"{path}: line 1 ends with a lone CR (old Mac line endings); expected LF or CRLF "
                         f"line endings (convert the file, e.g. with `tr '\\r' '\\n'`)")


def _sniff_separator(head: bytes) -> str | None:
    """The one of , ; tab | the header line holds most; None when it holds none."""
    first_line = head.split(b"\n", 1)[0]
    counts = {sep: first_line.count(sep.encode()) for sep in (",", ";", "\t", "|")}
    best = max(counts, key=counts.get)
    return best if counts[best] else None


def _check_utf8(path: Path, chunk: int = 1 << 20) -> None:
    """Stream the bytes through a UTF-8 decoder; report the line of the first bad byte."""
    import codecs

    decoder = codecs.getincrementaldecoder("utf-8")()
    offset, lines = 0, 1
    with path.open("rb") as f:
        while block := f.read(chunk):
            try:
                decoder.decode(block)
            except UnicodeDecodeError as e:
                # e.object is the decoder's pending bytes (a character cut by the last read,
                # never a newline) followed by this block: positions count from there.
                line = lines + e.object[: e.start].count(b"\n")
                raise InputError(
                    f"{path}: line {line}, byte {offset - (len(e.object) - len(block)) + e.start}: not UTF-8 "
                    f"(0x{e.object[e.start]:02x}); expected a UTF-8 text file, or set ingest.encoding "
                    f"(e.g. latin-1, cp1252, utf-16)"
                ) from None
            offset += len(block)
            lines += block.count(b"\n")
        try:
            decoder.decode(b"", final=True)
        except UnicodeDecodeError:
            raise InputError(f"{path}: ends inside a multi-byte character; expected UTF-8 text") from None


def checked_columns(table: T, wanted: list[str], source: str, what: str = "columns") -> T:
    """The table with a header BOM dropped; InputError when a wanted column is missing or repeated."""
    names = table.collect_schema().names() if isinstance(table, pl.LazyFrame) else table.columns
    columns = [c.lstrip("\ufeff") for c in names]  # a BOM some exporters leave on the header
    if columns != names:  # ("\ufeffTitle", "Title") stay as they are: see `repeated`
        table = table.rename({old: new for old, new in zip(names, columns) if old != new and columns.count(new) == 1})
        names = [new if columns.count(new) == 1 else old for old, new in zip(names, columns)]
    # The CSV reader renames a repeated header name to NAME_duplicated_0, ...: which one is meant?
    repeated = [c for c in wanted if columns.count(c) > 1 or f"{c}_duplicated_0" in columns]
    if repeated:
        raise InputError(f"{source}: column {repeated[0]!r} appears more than once in the header; "
                         f"expected each of {wanted} once")
    missing = [c for c in wanted if c not in names]
    if missing:
        found = ", ".join(repr(c) for c in names[:12])
        raise InputError(f"{source}: column {missing[0]!r} not found; expected {what} {wanted}, found {found}")
    return table


def reviews(table: T, cfg: IngestConfig, source: str) -> T:
    """Validated (text, label) rows: text columns joined by spaces, label as class 0..K-1; a lazy
    table is checked in one pass and stays lazy.

    Rows whose text is empty are kept, as in the study; `figures` counts them.
    """
    lazy = table.lazy()
    try:
        lazy = checked_columns(lazy, [*cfg.text_columns, cfg.label_column], source)
    except InputError:
        if lazy.select(pl.len()).collect().item() == 0:
            raise InputError(f"{source}: has a header but no rows; expected at least one review") from None
        raise
    schema = lazy.collect_schema()
    texts = [_as_text(schema, c, source) for c in cfg.text_columns]
    label = _as_text(schema, cfg.label_column, source).str.strip_chars()
    # Integers, also when an export wrote them as floats ("4.0"); anything else is an error.
    number = label.cast(pl.Float64, strict=False)
    bad = number.is_null() | number.is_nan() | (number != number.floor())
    outside = (number < cfg.label_min) | (number > cfg.label_max)
    try:
        rows, first_bad, first_outside = lazy.select(
            pl.len(), bad.arg_true().first().alias("bad"), outside.arg_true().first().alias("outside"),
            *[t.null_count().alias(f"_{i}") for i, t in enumerate(texts)],  # casts every text column
        ).collect().row(0)[:3]
    except pl.exceptions.PolarsError:  # a Parquet column of bytes that are not UTF-8; a CSV that does not parse
        column = next((c for c in [*cfg.text_columns, cfg.label_column] if schema[c] == pl.Binary), None)
        if column is None:
            raise
        raise InputError(f"{source}: column {column!r} holds {schema[column]} values that are not UTF-8 "
                         f"text; expected text") from None
    if rows == 0:
        raise InputError(f"{source}: has a header but no rows; expected at least one review")
    if first_bad is not None:
        value = lazy.select(label).slice(first_bad, 1).collect().item()
        value = "an empty value" if value in (None, "") else repr(value)
        raise InputError(f"{source}: row {first_bad + 1}, column {cfg.label_column!r}: {value} is not an "
                         f"integer; expected a rating {cfg.label_min}..{cfg.label_max}")
    if first_outside is not None:
        value = lazy.select(label).slice(first_outside, 1).collect().item()
        raise InputError(f"{source}: row {first_outside + 1}, column {cfg.label_column!r}: rating {value} "
                         f"is outside {cfg.label_min}..{cfg.label_max}")
    text = pl.concat_str([t.fill_null("") for t in texts], separator=" ")
    out = lazy.select(text.alias("text"), (number - cfg.label_min).cast(pl.Int8).alias("label"))
    return out if isinstance(table, pl.LazyFrame) else out.collect()


def _as_text(schema: pl.Schema, column: str, source: str) -> pl.Expr:
    dtype = schema[column]
    if dtype.is_nested() or dtype == pl.Object:
        raise InputError(f"{source}: column {column!r} holds {dtype} values; expected text or numbers")
    return pl.col(column).cast(pl.Utf8)


def text_column(table: pl.DataFrame, column: str, source: str) -> pl.Series:
    """A column as strings; a Parquet column of lists, structs or bytes that are not UTF-8 is an error.

    Also what predictions read their text columns with."""
    try:
        return table.select(_as_text(table.schema, column, source))[column]
    except pl.exceptions.PolarsError:
        raise InputError(f"{source}: column {column!r} holds {table.schema[column]} values that are not "
                         f"UTF-8 text; expected text") from None


def figures(table: pl.DataFrame | pl.LazyFrame) -> dict[str, float]:
    """Counts users check a run by: rows, empty texts, mean whitespace-separated words."""
    # The study's len(text.split()): str.split also splits at \x1c-\x1f, which \s does not match.
    row = table.lazy().select(
        rows=pl.len(), empty_texts=(pl.col("text").str.strip_chars() == "").sum(),
        mean_words=pl.col("text").str.count_matches(r"[^\s\x1c-\x1f]+").mean(),
    ).collect().row(0, named=True)
    return {"rows": row["rows"], "empty_texts": int(row["empty_texts"]), "mean_words": round(float(row["mean_words"]), 2)}
