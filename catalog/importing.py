"""Importing products from CSV: the one path behind ``manage.py import_products`` and the
admin's import screen. The format is described in docs/import-export.md.

Two passes over the file. The first parses every row and checks it against the catalog
without writing; a dry run stops there. The second reads the file again inside one
transaction and applies it in batches: products inserted and updated in bulk, statuses
moved along the status machine, stock brought to the file's levels as ledger movements.
A file is imported whole or not at all. Memory stays bounded by the batch, apart from
the SKUs and slugs seen so far (needed to refuse duplicates within the file).

Products are written through ``catalog.services.product_bulk_save``: each is audited and
announced as a single write would be (``product.created``, ``product.updated``,
``product.published`` …). Columns the catalog does not own (the stock level) are read and
written by the app that registered them (``catalog.csv_columns.ExtraColumn``).
"""

from __future__ import annotations

import codecs
import csv
import json
import os
import re
import tempfile
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field, replace
from decimal import Decimal
from typing import IO, Any, cast

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils.text import slugify

from audit.actors import Actor
from audit.services import audit_record
from catalog.csv_columns import (
    COLUMNS,
    MAX_OPTION_COLUMNS,
    VARIANT_COLUMNS,
    ExtraColumn,
    cell_from_import,
    extra_columns,
)
from catalog.errors import CatalogErrorCode as Code
from catalog.models import (
    CURRENCY_VALIDATOR,
    SKU_VALIDATOR,
    Category,
    Product,
    gtin_problem,
    options_key,
    options_problem,
    publish_problems_of,
    status_path,
    validate_attributes,
)
from catalog.selectors import category_paths
from catalog.services import (
    PRODUCT_STORED_FIELDS,
    PRODUCT_VALUE_FIELDS,
    ProductChange,
    category_create,
    product_bulk_save,
)
from catalog.variants import MAX_VARIANTS, VariantChanges, variants_bulk_save
from pms_backend.errors import InvalidInput
from pms_backend.plurals import counted, noun

BATCH_SIZE = 2000
MAX_LINE_BYTES = 1024 * 1024
MAX_DESCRIPTION = 10_000
MAX_ATTRIBUTES_TEXT = 20_000
MAX_PRICE = Decimal("9999999999.99")
MAX_REPORTED_ERRORS = 1000
MAX_WEIGHT = 10**9
# What a product sold in variants gives on each of its rows, which must agree.
_PRODUCT_CELLS = (
    "name",
    "slug",
    "description",
    "currency",
    "category",
    "status",
    "attributes",
    "product_price",
    *(f"option{n}_name" for n in range(1, MAX_OPTION_COLUMNS + 1)),
)
_NUMBER = re.compile(r"\d+(\.\d+)?")
_SLUG = re.compile(r"[-a-zA-Z0-9_]+")
# Django compiles a RegexValidator's pattern; typed here as what it is.
_SKU = cast(re.Pattern[str], SKU_VALIDATOR.regex)
_CURRENCY = cast(re.Pattern[str], CURRENCY_VALIDATOR.regex)

Status = Product.Status
_FIELDS = PRODUCT_VALUE_FIELDS

Progress = Callable[[str, int, int], None]


@dataclass(frozen=True)
class RowError:
    """What is wrong with one line of the file (line 1 is the header)."""

    line: int
    column: str
    message: str
    cells: dict[str, str] = field(default_factory=dict, compare=False)  # the row as read

    def __str__(self) -> str:
        where = f"line {self.line}" + (f", {self.column}" if self.column else "")
        return f"{where}: {self.message}"


@dataclass
class RowPreview:
    """One row that would change something, as the admin's preview shows it."""

    line: int
    sku: str
    action: str  # "new" or "update"
    values: dict[str, str]
    changes: dict[str, tuple[str, str]]  # column → (before, after), updates only


@dataclass
class ImportReport:
    """What an import found and did (or, for a dry run, would do)."""

    file_name: str
    dry_run: bool = False
    rows: int = 0
    created: int = 0
    updated: int = 0
    extra_only: int = 0  # only registered columns (the stock level) change
    unchanged: int = 0
    extra_changes: Counter = field(default_factory=Counter)  # by registered column
    transitions: Counter = field(default_factory=Counter)
    new_categories: list[str] = field(default_factory=list)
    errors: list[RowError] = field(default_factory=list)
    error_count: int = 0
    preview: list[RowPreview] = field(default_factory=list)
    preview_limit: int = 0
    _changing: set[int] = field(default_factory=set, repr=False)  # lines to write

    def add_error(
        self, line: int, column: str, message: str, cells: dict[str, str] | None = None
    ) -> None:
        self.error_count += 1
        if len(self.errors) < MAX_REPORTED_ERRORS:
            self.errors.append(RowError(line, column, message, cells or {}))

    @property
    def changed_rows(self) -> int:
        return self.created + self.updated + self.extra_only

    def summary(self) -> str:
        """Return one line of counts, e.g. for a command's output or an admin message."""
        extras = extra_columns()
        parts = [
            f"{self.created:,} new",
            f"{self.updated:,} updated",
            # One count of the rows changing only registered columns, in the first's words.
            *(f"{self.extra_only:,} {c.only_summary}" for c in extras[:1]),
            f"{self.unchanged:,} unchanged",
            *(counted(self.extra_changes[c.name], *c.summary) for c in extras),
        ]
        if self.transitions:
            parts.append(", ".join(f"{n:,} {t}" for t, n in sorted(self.transitions.items())))
        if self.new_categories:
            parts.append(f"new categories: {', '.join(self.new_categories[:10])}")
        if self.dry_run:
            return (
                f"Dry run of {self.file_name}, {counted(self.rows, 'row')}: would make "
                + ", ".join(parts)
                + ". Nothing was written."
            )
        return f"Imported {self.file_name}, {counted(self.rows, 'row')}: " + ", ".join(parts) + "."


class ImportRejected(InvalidInput):
    """The file has errors; nothing of it was written. ``report.errors`` says where."""

    def __init__(self, report: ImportReport) -> None:
        shown = len(report.errors)
        more = f" (the first {shown} are listed)" if report.error_count > shown else ""
        super().__init__(
            Code.IMPORT_REJECTED,
            f"{report.file_name}: {counted(report.error_count, 'error')}{more}; "
            "nothing was imported.",
            extra={"errors": [str(e) for e in report.errors]},
        )
        self.report = report


def product_import(
    *,
    actor: Actor,
    source: IO[bytes],
    file_name: str = "",
    dry_run: bool = False,
    create_categories: bool = False,
    progress: Progress | None = None,
    preview_limit: int = 0,
    max_bytes: int | None = None,
) -> ImportReport:
    """Import products from the CSV bytes in ``source``; return what was done.

    Upserts by SKU; ``on_hand`` becomes the product's stock level through ledger
    movements (``receipt`` for a new product, ``adjustment`` otherwise) with the reason
    ``import <file_name>``; a ``status`` is reached through the status machine's
    transitions, with the checks publishing needs. Raise ``ImportRejected`` listing every
    bad row (nothing written), ``InvalidInput`` (``import_too_large``) for a file over
    ``max_bytes`` (default ``PMS_IMPORT_MAX_BYTES``). ``dry_run`` checks and counts only.
    ``preview_limit`` keeps that many changing rows in ``report.preview``.
    """
    file_name = file_name or "upload.csv"
    report = ImportReport(file_name=file_name, dry_run=dry_run, preview_limit=preview_limit)
    limit = settings.PMS_IMPORT_MAX_BYTES if max_bytes is None else max_bytes
    with _seekable(source, limit) as (stream, size):
        categories = _Categories()
        claims: dict[str, dict[str, str]] = {"sku": {}, "slug": {}, "group": {}, "barcode": {}}
        for batch in _batches(stream, report, size, "checking", progress, claims=claims):
            _plan(batch, categories, report, create_categories=create_categories, claims=claims)
        del claims
        report.new_categories = sorted(categories.planned)
        if report.error_count:
            report.errors.sort(key=lambda error: error.line)
            raise ImportRejected(report)
        if dry_run or not report._changing:
            return report  # an unchanged file writes nothing, not even an audit entry
        _apply(stream, size, report, actor, progress)
    return report


# --- Reading the file -----------------------------------------------------------------


class _seekable:
    """Hand out ``source`` as a seekable stream and its size; refuse it above ``limit``.

    A pipe (stdin) is copied to a temporary file first, since the file is read twice;
    the copy stops at ``limit``.
    """

    def __init__(self, source: IO[bytes], limit: int) -> None:
        self.source, self.limit = source, limit
        self.spool: IO[bytes] | None = None

    def __enter__(self) -> tuple[IO[bytes], int]:
        source = self.source
        if source.seekable():
            size = source.seek(0, os.SEEK_END)
            self._check(size)
            source.seek(0)
            return source, size
        self.spool = spool = tempfile.TemporaryFile()
        copied = 0
        while chunk := source.read(1024 * 1024):
            copied += len(chunk)
            self._check(copied)
            spool.write(chunk)
        spool.seek(0)
        return spool, copied

    def __exit__(self, *exc) -> None:
        if self.spool is not None:
            self.spool.close()

    def _check(self, size: int) -> None:
        if size > self.limit:
            raise InvalidInput(
                Code.IMPORT_TOO_LARGE,
                f"The file is larger than the import limit of {_mib(self.limit)}; "
                "split it into smaller files.",
            )


def _mib(size: int) -> str:
    return f"{size / 1024 / 1024:g} MB"


class _Unreadable(Exception):
    def __init__(self, line: int, message: str) -> None:
        super().__init__(message)
        self.line, self.message = line, message


@dataclass
class _Row:
    line: int
    cells: dict[str, str]
    sku: str
    name: str
    slug: str
    description: str
    price: Decimal
    currency: str
    category: str
    status: str
    attributes: dict[str, Any]
    extras: dict[str, Any]  # registered column → value (None: leave as it is)
    # A variant row (``product_sku`` given): its product's SKU and price (None: keep, or
    # for a new product its cheapest variant's), its options as (name, value) pairs, and
    # its barcode, weight (None: none) and stock tracking (None: keep, new: tracked).
    product_sku: str = ""
    product_price: Decimal | None = None
    options: tuple[tuple[str, str], ...] = ()
    barcode: str | None = None
    weight_grams: int | None = None
    track_stock: bool | None = None
    head: bool = False  # the product of variant rows (made from its first), not a file row


def _batches(
    stream: IO[bytes],
    report: ImportReport,
    size: int,
    phase: str,
    progress: Progress | None,
    *,
    claims: dict[str, dict[str, str]] | None = None,
    only: set[int] | None = None,
) -> Iterator[list[_Row]]:
    """Yield the file's valid rows in batches; record every unreadable or invalid row.

    ``claims`` (first pass): the SKUs seen so far, to refuse one given twice (even when
    its first row has other faults). ``only``: the lines to parse (the second pass skips
    the rows that change nothing).
    """
    consumed = [0]
    batch: list[_Row] = []
    previous = ""  # the product SKU of the row before (a product's rows follow each other)
    for line, cells in _records(stream, report, consumed):
        if only is not None and line not in only:
            continue
        report.rows += 1
        group = cell_from_import(cells["product_sku"])
        first = _claims_kept(claims, cells, group, previous, line, report)
        previous = group
        row = _parse(line, cells, report)
        if row is None or not first:
            continue
        # A batch ends between two products: a product's rows are checked and written together.
        if len(batch) >= BATCH_SIZE and not (group and batch[-1].product_sku == group):
            yield batch
            batch = []
            if progress:
                progress(phase, consumed[0], size)
        batch.append(row)
    if batch:
        yield batch
    if progress:
        progress(phase, consumed[0], size)


def _claims_kept(
    claims: dict[str, dict[str, str]] | None,
    cells: dict[str, str],
    group: str,
    previous: str,
    line: int,
    report: ImportReport,
) -> bool:
    """First pass: claim the row's SKU (and its product's, on a product's first row);
    return False after reporting one an earlier row holds."""
    if claims is None:
        return True
    sku = cell_from_import(cells["sku"])
    first = not sku or _claim(claims["sku"], sku, line, cells, report)
    if group and group != previous:
        first = _claim_group(claims, group, line, cells, report) and first
    return first


def _claim_group(
    claims: dict[str, dict[str, str]],
    group: str,
    line: int,
    cells: dict[str, str],
    report: ImportReport,
) -> bool:
    """Remember that the rows of product ``group`` begin on ``line``; report a product
    whose rows do not follow each other, or one that also has a row of its own."""
    first = claims["group"].setdefault(group, str(line))
    if first != str(line):
        report.add_error(
            line,
            "product_sku",
            f"The rows of product {group} must follow each other (they begin on line {first}).",
            cells,
        )
        return False
    own = claims["sku"].setdefault(group, f"@{line}")
    if own != f"@{line}":
        report.add_error(
            line,
            "product_sku",
            f"{group} is also the SKU of line {own.rsplit('@', 1)[1]}: a product sold in "
            "variants has no row of its own (its columns repeat on its variants' rows).",
            cells,
        )
        return False
    return True


def _records(
    stream: IO[bytes], report: ImportReport, consumed: list[int]
) -> Iterator[tuple[int, dict[str, str]]]:
    """Yield ``(line, {column: cell})`` per record; report encoding, CSV and header faults.

    Lines are decoded one by one so a byte that is not UTF-8 is reported on its line.
    ``csv.reader`` rather than ``DictReader``: it tells where each record starts (a
    quoted cell may span lines) and does not hide rows of the wrong width.
    """
    bad_lines: dict[int, str] = {}

    def lines() -> Iterator[str]:
        number = 0
        while raw := stream.readline(MAX_LINE_BYTES + 1):
            number += 1
            consumed[0] += len(raw)
            if len(raw) > MAX_LINE_BYTES:
                raise _Unreadable(number, f"Longer than {MAX_LINE_BYTES // 1024} KB.")
            if number == 1 and raw.startswith(codecs.BOM_UTF8):
                raw = raw[len(codecs.BOM_UTF8) :]
            try:
                yield raw.decode("utf-8")
            except UnicodeDecodeError as exc:
                bad_lines[number] = (
                    f"Not UTF-8 (byte 0x{raw[exc.start]:02x} at position {exc.start + 1}); "
                    "save the file as UTF-8."
                )
                yield raw.decode("utf-8", "replace")

    reader = csv.reader(lines(), strict=True)
    header = _header(reader, bad_lines, report)
    if header is None:
        return
    # A file without the variant columns (every file before variants) reads them as empty.
    padding = {name: "" for name in VARIANT_COLUMNS if name not in header}
    end = reader.line_num
    while True:
        start = end + 1
        try:
            cells = next(reader)
        except StopIteration:
            return
        except _Unreadable as exc:
            report.add_error(exc.line, "", exc.message)
            return
        except csv.Error as exc:
            end = reader.line_num
            report.add_error(start, "", f"Not valid CSV: {exc}.")
            continue
        end = reader.line_num
        if any(cell.strip() for cell in cells) and _record_fits(
            header,
            cells,
            [bad_lines.pop(n) for n in range(start, end + 1) if n in bad_lines],
            start,
            report,
        ):
            yield start, dict(zip(header, cells, strict=True)) | padding


def _header(reader, bad_lines: dict[int, str], report: ImportReport) -> list[str] | None:
    """Return the header's column names, or None after reporting why it cannot be read."""
    try:
        header = next(reader, None)
    except (csv.Error, _Unreadable) as exc:
        report.add_error(1, "", f"Cannot read the header: {exc}.")
        return None
    if header is None:
        report.add_error(1, "", "The file is empty; it needs the header " + ",".join(COLUMNS))
        return None
    if 1 in bad_lines:
        report.add_error(1, "", bad_lines[1])
        return None
    header = [name.strip() for name in header]
    return None if _header_problems(header, report) else header


def _record_fits(
    header: list[str], cells: list[str], bad: list[str], start: int, report: ImportReport
) -> bool:
    """Return whether a (non-blank) record can be read as a row; report it if not."""
    if bad:
        problem = bad[0]
    elif len(cells) != len(header):
        problem = f"Has {counted(len(cells), 'cell')} where the header has {len(header):,}."
    else:
        return True
    report.rows += 1
    report.add_error(start, "", problem, dict(zip(header, cells, strict=False)))
    return False


def _header_problems(header: list[str], report: ImportReport) -> bool:
    expected = ", ".join(COLUMNS)
    seen: set[str] = set()
    found = False
    for name in header:
        if name in seen:
            report.add_error(1, name, "This column appears twice.")
            found = True
        seen.add(name)
    missing = [c for c in COLUMNS if c not in seen]
    unknown = [c for c in header if c not in COLUMNS and c not in VARIANT_COLUMNS]
    if missing:
        report.add_error(
            1, "", f"Missing {noun(missing, 'column')} {', '.join(missing)}; expected {expected}."
        )
    if unknown:
        report.add_error(
            1,
            "",
            f"Unknown {noun(unknown, 'column')} {', '.join(unknown)}; expected {expected} "
            f"(and for variants {', '.join(VARIANT_COLUMNS)}).",
        )
    return found or bool(missing or unknown)


def _parse(line: int, cells: dict[str, str], report: ImportReport) -> _Row | None:
    """Return the row's values checked one by one, or None after reporting each fault."""
    cells = {name: cell_from_import(value) for name, value in cells.items()}
    errors: list[tuple[str, str]] = []
    sku = _text(cells, "sku", 64, errors, required=True)
    if sku and len(sku) <= 64 and not _SKU.fullmatch(sku):
        errors.append(("sku", str(SKU_VALIDATOR.message)))
    name = _text(cells, "name", 200, errors, required=True)
    slug = _text(cells, "slug", 220, errors)
    if slug and not _SLUG.fullmatch(slug):
        errors.append(("slug", "Use only letters, digits, '-' and '_'."))
    description = _text(cells, "description", MAX_DESCRIPTION, errors)
    price = _price(cells["price"], errors)
    currency = cells["currency"]
    if currency and not _CURRENCY.fullmatch(currency):
        errors.append(("currency", str(CURRENCY_VALIDATOR.message)))
    category = _category_path(cells["category"], errors)
    status = _status(cells["status"], errors)
    extras = _extras(cells, errors)
    attributes = _attributes(cells["attributes"], errors)
    for column in ("name", "description"):
        if "\x00" in cells[column]:
            errors.append((column, "Contains a NUL character."))
    variant = _variant_cells(cells, sku, errors)
    for column, message in errors:
        report.add_error(line, column, message, cells)
    if errors:
        return None
    return _Row(
        **variant,
        line=line,
        cells=cells,
        sku=sku,
        name=name,
        slug=slug,
        description=description,
        price=price,
        currency=currency,
        category=category,
        status=status,
        attributes=attributes,
        extras=extras,
    )


def _variant_cells(cells: dict[str, str], sku: str, errors: list) -> dict[str, Any]:
    """Return the variant columns' values; report bad cells, and variant cells on a row
    that is no variant's (``product_sku`` empty)."""
    group = cells["product_sku"]
    if not group:
        given = [name for name in VARIANT_COLUMNS if cells[name]]
        errors.extend(
            (name, "Only a variant's row (one with a product_sku) has this column.")
            for name in given
        )
        return {}
    if len(group) > 64 or not _SKU.fullmatch(group):
        errors.append(("product_sku", str(SKU_VALIDATOR.message)))
    elif group == sku:
        errors.append(("product_sku", "A variant's SKU is not its product's (give each its own)."))
    product_price = None
    if cells["product_price"]:
        product_price = _price(cells["product_price"], errors, column="product_price")
    barcode = cells["barcode"] or None
    if barcode and gtin_problem(barcode):
        errors.append(("barcode", gtin_problem(barcode)))
    track = cells["track_stock"].lower()
    if track not in ("", "true", "false"):
        errors.append(("track_stock", "true or false (or empty to keep)."))
    return {
        "product_sku": group,
        "product_price": product_price,
        "options": _options(cells, errors),
        "barcode": barcode,
        "weight_grams": _weight(cells["weight_grams"], errors),
        "track_stock": None if not track else track == "true",
    }


def _options(cells: dict[str, str], errors: list) -> tuple[tuple[str, str], ...]:
    """Return a variant row's (option name, value) pairs; report a half or a gap."""
    options: list[tuple[str, str]] = []
    problems = len(errors)
    for n in range(1, MAX_OPTION_COLUMNS + 1):
        name, value = cells[f"option{n}_name"], cells[f"option{n}_value"]
        column = f"option{n}_name"
        if not name and not value:
            continue
        if not name or not value:
            errors.append(
                (column if not name else f"option{n}_value", "An option has a name and a value.")
            )
        elif len(options) != n - 1:
            errors.append((column, "Options are given from option1 on (no gap)."))
        elif len(name) > 100 or len(value) > 100:
            errors.append((column, "Option names and values are at most 100 characters."))
        elif name.lower() in {known.lower() for known, _ in options}:
            errors.append((column, f"The option {name!r} is given twice."))
        else:
            options.append((name, value))
    if not options and len(errors) == problems:
        errors.append(
            ("option1_name", "A variant's row names its options (option1_name, option1_value).")
        )
    return tuple(options)


def _weight(text: str, errors: list) -> int | None:
    if not text:
        return None
    if not (text.isascii() and text.isdigit()) or int(text) > MAX_WEIGHT:
        errors.append(("weight_grams", f"A whole number of grams from 0 to {MAX_WEIGHT:,}."))
        return None
    return int(text)


def _text(
    cells: dict[str, str], column: str, max_length: int, errors: list, required: bool = False
) -> str:
    value = cells[column]
    if required and not value:
        errors.append((column, "Required."))
    elif len(value) > max_length:
        errors.append((column, f"At most {max_length} characters (this has {len(value)})."))
    return value


# Django's Choices.values builds its list anew at each read: once per row was a tenth of a
# dry run's time.
_STATUSES = tuple(Status.values)


def _status(status: str, errors: list) -> str:
    if status and status not in _STATUSES:
        errors.append(("status", f"One of {', '.join(_STATUSES)} (or empty to keep)."))
    return status


def _extras(cells: dict[str, str], errors: list) -> dict[str, Any]:
    """Return the values of the registered columns (the stock level); report bad cells."""
    extras = {}
    for column in extra_columns():
        extras[column.name], problem = column.parse(cells[column.name])
        if problem:
            errors.append((column.name, problem))
    return extras


def _price(value: str, errors: list, column: str = "price") -> Decimal:
    if not value:
        errors.append((column, "Required."))
    elif value.startswith("-") and _NUMBER.fullmatch(value[1:]):
        errors.append((column, "Must not be negative."))
    elif not _NUMBER.fullmatch(value):
        errors.append((column, f"{value[:20]!r} is not a number like 19.90."))
    else:
        price = Decimal(value)
        exponent = price.as_tuple().exponent  # an int: _NUMBER admits no NaN or Infinity
        if isinstance(exponent, int) and exponent < -2:
            errors.append((column, "At most two decimal places."))
        elif price > MAX_PRICE:
            errors.append((column, f"At most {MAX_PRICE}."))
        else:
            return price.quantize(Decimal("0.01"))
    return Decimal(0)


def _attributes(value: str, errors: list) -> dict[str, Any]:
    if not value:
        return {}
    if len(value) > MAX_ATTRIBUTES_TEXT:
        errors.append(("attributes", f"At most {MAX_ATTRIBUTES_TEXT} characters."))
        return {}
    try:
        parsed = json.loads(value)
    except (ValueError, RecursionError) as exc:
        errors.append(("attributes", f"Not valid JSON: {exc}."))
        return {}
    try:
        validate_attributes(parsed)
    except ValidationError as exc:
        errors.append(("attributes", " ".join(exc.messages)))
        return {}
    return parsed


def _category_path(value: str, errors: list) -> str:
    """Return the path with single spaces around each '/', or report a malformed one."""
    if not value:
        return ""
    parts = [part.strip() for part in value.split("/")]
    if not all(parts):
        errors.append(("category", f"{value!r} has an empty name between '/'."))
    elif any(len(part) > 120 for part in parts):
        errors.append(("category", "Category names are at most 120 characters."))
    return " / ".join(parts)


# --- Checking rows against the catalog ------------------------------------------------


class _Categories:
    """Every category by full path ("Apparel / Men / Shirts"), read once."""

    AMBIGUOUS = -1

    def __init__(self) -> None:
        active = dict(Category.objects.values_list("id", "is_active"))
        self.by_path: dict[str, int] = {}
        self.active: dict[int, bool] = active
        self.path_of: dict[int, str] = category_paths()
        for pk, path in self.path_of.items():
            key = " / ".join(part.strip() for part in path.split("/"))
            self.by_path[key] = self.AMBIGUOUS if key in self.by_path else pk
        self.planned: set[str] = set()

    def find(self, path: str) -> int | None:
        return self.by_path.get(path)

    def missing_prefix_ambiguous(self, path: str) -> bool:
        parts = path.split(" / ")
        return any(
            self.by_path.get(" / ".join(parts[:i])) == self.AMBIGUOUS for i in range(1, len(parts))
        )


@dataclass
class _Plan:
    row: _Row
    product: dict[str, Any] | None  # the stored values (PRODUCT_STORED_FIELDS); None: new
    values: dict[str, Any]
    changed: list[str]
    path: tuple[str, ...]
    extras: dict[str, Any]  # registered column → the product's current state
    moves: list[str]  # the registered columns this row changes

    @property
    def changes_anything(self) -> bool:
        return self.product is None or bool(self.changed or self.path or self.moves)


@dataclass
class _VariantPlan:
    row: _Row
    variant: dict[str, Any] | None  # the stored variant; None: new
    values: dict[str, str]  # its option values, in the product's option order
    changed: dict[str, Any]  # what variant_update would change (all fields: a new one)
    extras: dict[str, Any]
    moves: list[str]


@dataclass
class _GroupPlan:
    """A product sold in variants: its own plan (``head``, from its first row), its
    options afterwards and its variants' rows."""

    head: _Plan
    options: list[dict[str, Any]]
    options_changed: bool
    variants: list[_VariantPlan]

    @property
    def head_changes(self) -> bool:
        head = self.head
        # Values added to the options come with the new variant rows that use them.
        return head.product is None or bool(head.changed or head.path)


@dataclass
class _BatchPlan:
    plans: list[_Plan]  # the products' own rows
    groups: list[_GroupPlan]  # the products sold in variants


# Read with each product: what its variants and the products sold in variants need.
_VARIANT_STORED = (
    "parent_id",
    "parent__sku",
    "options",
    "option_values",
    "barcode",
    "weight_grams",
    "track_stock",
)


def _plan(
    rows: list[_Row],
    categories: _Categories,
    report: ImportReport,
    *,
    create_categories: bool = False,
    claims: dict[str, dict[str, str]] | None = None,
    lock: bool = False,
) -> _BatchPlan:
    """Check a batch against the catalog (a few queries) and return what each row changes.

    ``claims`` (first pass) remembers SKUs, slugs, products and barcodes across batches
    to refuse duplicates within the file; ``lock`` (second pass) locks the batch's
    existing products and variants. Stored values are read as plain values: model
    instances cost more than the rest together. A product sold in variants is checked
    as a product (from its first row) and then variant by variant.
    """
    plain: list[_Row] = []
    groups: dict[str, list[_Row]] = {}
    for row in rows:
        if row.product_sku:
            groups.setdefault(row.product_sku, []).append(row)
        else:
            plain.append(row)
    products = Product.objects.filter(sku__in=[row.sku for row in rows] + list(groups)).values(
        *PRODUCT_STORED_FIELDS, *_VARIANT_STORED
    )
    if lock:
        # As an edit, not a delete (FOR NO KEY UPDATE): an order being placed for these
        # products checks its lines' keys at commit (a key-share lock) while it holds their
        # stock rows, which the on_hand column then waits for: FOR UPDATE deadlocked the two.
        products = products.select_for_update(of=("self",), no_key=True).order_by("pk")
    existing = {product["sku"]: product for product in products}
    heads = [
        head
        for sku, members in groups.items()
        if (head := _head_of(sku, members, existing.get(sku), report)) is not None
    ]
    product_rows = [*plain, *heads]
    slugs, owners = _slugs(product_rows, existing)
    ids = [product["id"] for product in existing.values()]
    states = {column.name: (column, column.load(ids)) for column in extra_columns()}
    context = _Context(categories, report, create_categories, claims, owners, states)
    _load_variant_context(context, existing, groups)
    plans = []
    for row in plain:
        plan = _plan_row(row, existing.get(row.sku), slugs[row.sku], context)
        if plan is not None:
            _count(plan, report, categories)
            plans.append(plan)
    planned = []
    for head in heads:
        head_plan = _plan_row(head, existing.get(head.sku), slugs[head.sku], context)
        if head_plan is not None:
            group = _plan_group(head_plan, groups[head.sku], existing, context)
            if group is not None:
                _count_group(group, report)
                planned.append(group)
    return _BatchPlan(plans, planned)


def _load_variant_context(
    context: _Context, existing: dict[str, dict[str, Any]], groups: dict[str, list[_Row]]
) -> None:
    """Read the variants of the batch's products sold in variants, and who holds the
    barcodes its rows give (two queries at most)."""
    selling = [product["id"] for product in existing.values() if product["options"]]
    if selling:
        for variant in Product.objects.filter(parent_id__in=selling).values(
            "id", "sku", "parent_id", "options_key", "price"
        ):
            context.variants.setdefault(variant["parent_id"], []).append(variant)
    barcodes = [row.barcode for rows in groups.values() for row in rows if row.barcode]
    if barcodes:
        context.barcodes = dict(
            Product.objects.filter(barcode__in=barcodes).values_list("barcode", "sku")
        )


def _head_of(
    sku: str, rows: list[_Row], product: dict[str, Any] | None, report: ImportReport
) -> _Row | None:
    """Return the product of variant ``rows`` as a row of its own (from the first), or
    None after reporting a row whose product columns differ from the first's."""
    first = rows[0]
    agree = True
    for row in rows[1:]:
        differing = [name for name in _PRODUCT_CELLS if row.cells[name] != first.cells[name]]
        if differing:
            agree = False
            report.add_error(
                row.line,
                differing[0],
                f"Differs from line {first.line} ({', '.join(differing)}): a product's "
                "columns are the same on each of its variants' rows.",
                row.cells,
            )
    if not agree:
        return None
    if first.product_price is not None:
        price = first.product_price
    elif product is not None:
        price = product["price"]
    else:  # a new product without a price of its own: its cheapest variant's
        price = min(row.price for row in rows)
    return replace(
        first,
        sku=sku,
        price=price,
        extras=dict.fromkeys(first.extras),
        product_sku="",
        options=(),
        barcode=None,
        weight_grams=None,
        track_stock=None,
        head=True,
    )


def _plan_group(
    head: _Plan,
    rows: list[_Row],
    existing: dict[str, dict[str, Any]],
    context: _Context,
) -> _GroupPlan | None:
    """Return what the variant ``rows`` of ``head``'s product change, or None after
    reporting every row that cannot be imported."""
    report, stored = context.report, head.product
    options = _group_options(head, rows, existing, context)
    if options is None:
        return None
    siblings = context.variants.get(stored["id"], []) if stored is not None else []
    holders = {variant["options_key"]: variant["sku"] for variant in siblings}
    seen: dict[str, int] = {}
    plans, refused = [], False
    for row in rows:
        errors: list[tuple[str, str]] = []
        given = dict(row.options)
        values = {option["name"]: given[option["name"]] for option in options}
        variant = existing.get(row.sku)
        _variant_row_problems(row, values, variant, head, holders, seen, errors)
        _check_barcode(row, context, errors)
        extras, moves = _extras_of(row, variant, context, errors)
        for column, message in errors:
            report.add_error(row.line, column, message, row.cells)
        if errors:
            refused = True
            continue
        changes = _variant_changes(row, variant, values)
        plans.append(_VariantPlan(row, variant, values, changes, extras, moves))
    in_file = {row.sku for row in rows}
    if "publish" in head.path and any(v["price"] <= 0 for v in siblings if v["sku"] not in in_file):
        report.add_error(
            rows[0].line,
            "status",
            f"Cannot publish: a variant of {head.row.sku} not in the file has no price above zero.",
            rows[0].cells,
        )
        refused = True
    if refused:
        return None
    declared = stored["options"] if stored is not None else []
    return _GroupPlan(head, options, options != declared, plans)


def _group_options(
    head: _Plan, rows: list[_Row], existing: dict[str, dict[str, Any]], context: _Context
) -> list[dict[str, Any]] | None:
    """Return the product's options after the rows (the values it lacks added, in file
    order), or None after reporting rows naming other options than it declares, or
    options or variants beyond the limits."""
    report, stored = context.report, head.product
    declared = stored["options"] if stored is not None else []
    names = [name for name, _ in rows[0].options]
    if declared and {o["name"] for o in declared} != set(names):
        _refuse_other_options(head.row.sku, declared, names, rows, report)
        return None
    options = _merged_options(declared, names, rows)
    problem = options_problem(options)
    have = len(context.variants.get(stored["id"], [])) if stored is not None else 0
    new = sum(1 for row in rows if row.sku not in existing)
    if not problem and have + new > MAX_VARIANTS:
        problem = f"A product may have at most {MAX_VARIANTS:,} variants."
    if problem:
        report.add_error(rows[0].line, "option1_value", problem, rows[0].cells)
        return None
    return options


def _merged_options(
    declared: list[dict[str, Any]], names: list[str], rows: list[_Row]
) -> list[dict[str, Any]]:
    """Return the declared options (or new ones named ``names``) with the values the rows
    give that they lack, appended in file order."""
    options = [{"name": o["name"], "values": list(o["values"])} for o in declared] or [
        {"name": name, "values": []} for name in names
    ]
    for row in rows:
        given = dict(row.options)
        for option in options:
            if given[option["name"]] not in option["values"]:
                option["values"].append(given[option["name"]])
    return options


def _refuse_other_options(
    sku: str, declared: list[dict[str, Any]], names: list[str], rows: list[_Row], report
) -> None:
    for row in rows:
        report.add_error(
            row.line,
            "option1_name",
            f"Product {sku} declares the options "
            f"{', '.join(o['name'] for o in declared)}; this row names {', '.join(names)}.",
            row.cells,
        )


def _variant_row_problems(
    row: _Row,
    values: dict[str, str],
    variant: dict[str, Any] | None,
    head: _Plan,
    holders: dict[str, str],
    seen: dict[str, int],
    errors: list[tuple[str, str]],
) -> None:
    """Report a combination given twice or another variant's, a SKU that is not a variant
    of this product, and a price a published product's variant cannot have."""
    sku, stored = head.row.sku, head.product
    key = options_key(values)
    shown = ", ".join(f"{name}: {value}" for name, value in values.items())
    if key in seen:
        errors.append(("option1_value", f"{shown} is also the variant of line {seen[key]}."))
    seen.setdefault(key, row.line)
    if holders.get(key, row.sku) != row.sku:
        errors.append(
            ("option1_value", f"Product {sku} already has the variant {shown} ({holders[key]}).")
        )
    if variant is not None and variant["parent_id"] is None:
        errors.append(("sku", f"{row.sku} is a product of its own, not a variant of {sku}."))
    elif variant is not None and (stored is None or variant["parent_id"] != stored["id"]):
        errors.append(
            ("sku", f"{row.sku} is a variant of another product, {variant['parent__sku']}.")
        )
    target = head.row.status or (stored["status"] if stored is not None else Status.DRAFT)
    if target == Status.PUBLISHED and row.price <= 0:
        errors.append(("price", "The variants of a published product need a price above zero."))


def _check_barcode(row: _Row, context: _Context, errors: list[tuple[str, str]]) -> None:
    """Report a barcode another product holds, or another row of the file gives."""
    if not row.barcode:
        return
    owner = context.barcodes.get(row.barcode)
    if owner is not None and owner != row.sku:
        errors.append(("barcode", f"The barcode {row.barcode} is already {owner}'s."))
    elif context.claims is not None:
        first = context.claims["barcode"].setdefault(row.barcode, str(row.line))
        if first != str(row.line):
            errors.append(("barcode", f"The barcode {row.barcode} is also on line {first}."))


def _variant_changes(
    row: _Row, variant: dict[str, Any] | None, values: dict[str, str]
) -> dict[str, Any]:
    """Return what the row gives a new variant, or changes of a stored one."""
    fields: dict[str, Any] = {
        "price": row.price,
        "barcode": row.barcode,
        "weight_grams": row.weight_grams,
    }
    if variant is None:
        return fields | {"track_stock": True if row.track_stock is None else row.track_stock}
    if row.track_stock is not None:
        fields["track_stock"] = row.track_stock
    fields["options"] = values
    stored = {
        "price": variant["price"],
        "barcode": variant["barcode"],
        "weight_grams": variant["weight_grams"],
        "track_stock": variant["track_stock"],
        "options": variant["option_values"],
    }
    return {name: value for name, value in fields.items() if stored[name] != value}


def _count_group(group: _GroupPlan, report: ImportReport) -> None:
    """Count a product's variant rows as rows: new (a new variant), updated (its fields
    or its product's change), only a new stock level, or unchanged."""
    report.transitions.update(group.head.path)
    head_changes = group.head_changes
    for plan in group.variants:
        if plan.variant is None:
            report.created += 1
        elif plan.changed or head_changes:
            report.updated += 1
        elif plan.moves:
            report.extra_only += 1
        else:
            report.unchanged += 1
        report.extra_changes.update(plan.moves)
        if plan.variant is None or plan.changed or plan.moves or head_changes:
            report._changing.add(plan.row.line)
            if len(report.preview) < report.preview_limit:
                report.preview.append(_variant_preview(plan, group))


def _variant_preview(plan: _VariantPlan, group: _GroupPlan) -> RowPreview:
    row, variant, head = plan.row, plan.variant, group.head
    if variant is None:
        return RowPreview(row.line, row.sku, "new", dict(row.cells), {})
    shown = {"options": "option1_value"}
    changes = {
        shown.get(name, name): (
            _shown(variant["option_values" if name == "options" else name]),
            _shown(value),
        )
        for name, value in plan.changed.items()
    }
    columns = {column.name: column for column in extra_columns()}
    for name in plan.moves:
        changes[name] = (columns[name].shown(plan.extras[name]), row.cells[name])
    if head.path and head.product is not None:
        changes["status"] = (head.product["status"], head.row.status)
    for name in head.changed:
        column = "category" if name == "category_id" else name
        changes[column] = ("(changed)", row.cells.get(column, ""))
    return RowPreview(row.line, row.sku, "update", dict(row.cells), changes)


def _shown(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, dict):
        return " / ".join(str(v) for v in value.values())
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def _slugs(
    rows: list[_Row], existing: dict[str, dict[str, Any]]
) -> tuple[dict[str, str], dict[str, str]]:
    """Return each row's slug (by SKU), and the products holding those a row takes anew."""
    slugs = {
        row.sku: row.slug
        or (existing[row.sku]["slug"] if row.sku in existing else _derived_slug(row))
        for row in rows
    }
    # Only a slug a row takes anew can belong to another product.
    wanted = {
        slug for sku, slug in slugs.items() if sku not in existing or existing[sku]["slug"] != slug
    }
    owners = (
        dict(Product.objects.filter(slug__in=wanted).values_list("slug", "sku")) if wanted else {}
    )
    return slugs, owners


@dataclass
class _Context:
    categories: _Categories
    report: ImportReport
    create_categories: bool
    claims: dict[str, dict[str, str]] | None
    owners: dict[str, str]  # slug → SKU of the product holding it
    states: dict[str, tuple[ExtraColumn, dict[int, Any]]]  # registered column → states
    # The stored variants of the batch's products sold in variants, by product id
    variants: dict[int, list[dict[str, Any]]] = field(default_factory=dict)
    barcodes: dict[str, str] = field(default_factory=dict)  # barcode → SKU holding it


def _claim(
    seen: dict[str, str],
    key: str,
    line: int,
    cells: dict[str, str],
    report: ImportReport,
    *,
    sku: str = "",
) -> bool:
    """Remember that ``line`` uses ``key`` (a SKU, or the slug of ``sku``); report a reuse."""
    first = seen.setdefault(key, f"{sku}@{line}")
    if first == f"{sku}@{line}":
        return True
    first_sku, first_line = first.rsplit("@", 1)
    if not sku:
        report.add_error(line, "sku", f"{key} appears again (first on line {first_line}).", cells)
    else:
        report.add_error(
            line,
            "slug",
            f"{key!r} is also the slug of {first_sku} on line {first_line} of this file.",
            cells,
        )
    return False


def _derived_slug(row: _Row) -> str:
    return f"{slugify(row.name)[:150]}-{slugify(row.sku)}".strip("-")[:220] or "product"


def _plan_row(
    row: _Row, product: dict[str, Any] | None, slug: str, context: _Context
) -> _Plan | None:
    """Return what ``row`` changes, or None after reporting why it cannot be imported."""
    errors: list[tuple[str, str]] = []
    category_id, active, pending = _category_of(row, context, errors)
    claimed = _slug_free(row, slug, context, errors)
    current = product["status"] if product is not None else Status.DRAFT
    target = row.status or current
    path = status_path(current, target)
    values, changed = _values_of(row, product, slug, category_id, pending)
    if "publish" in path or (target == Status.PUBLISHED and changed):
        # What product_transition checks to publish, and product_update to keep published.
        problems = publish_problems_of(
            name=row.name, price=row.price, category=row.category or None, category_active=active
        )
        errors.extend((column, m) for column, messages in problems.items() for m in messages)
    extras, moves = _extras_of(row, product, context, errors)
    if product is not None:
        _variant_problems(row, product, path, context, errors)
    for column, message in errors:
        context.report.add_error(row.line, column, message, row.cells)
    if errors or not claimed:
        return None
    return _Plan(row, product, values, changed, path, extras, moves)


def _variant_problems(
    row: _Row, product: dict[str, Any], path: tuple[str, ...], context: _Context, errors: list
) -> None:
    """Report a row naming a variant as a product, stock given to a product sold in
    variants (its stock is its variants'), and publishing one without priced variants."""
    column = "product_sku" if row.head else "sku"
    if product["parent_id"] is not None:
        errors.append(
            (
                column,
                f"{product['sku']} is a variant of product {product['parent__sku']}: give it on "
                f"a row of its variants (product_sku {product['parent__sku']}).",
            )
        )
        return
    if row.head or not product["options"]:
        return
    for name, value in row.extras.items():
        if value is not None:
            errors.append(
                (
                    name,
                    f"Product {row.sku} is sold in variants: this is its variants' (give one row "
                    f"per variant, with product_sku {row.sku}).",
                )
            )
    variants = context.variants.get(product["id"], [])
    if "publish" in path and not variants:
        errors.append(
            ("status", "A product with options sells through its variants: make them first.")
        )
    elif "publish" in path and min(v["price"] for v in variants) <= 0:
        errors.append(("status", "Every variant of a published product needs a price above zero."))


def _values_of(
    row: _Row, product: dict[str, Any] | None, slug: str, category_id: int | None, pending: bool
) -> tuple[dict[str, Any], list[str]]:
    """Return the product's values after the row, and the columns that change."""
    values = {
        "name": row.name,
        "slug": slug,
        "description": row.description,
        "price": row.price,
        "currency": row.currency
        or (product["currency"] if product is not None else settings.PMS_DEFAULT_CURRENCY),
        "category_id": category_id,
        "attributes": row.attributes,
    }
    if product is None:
        return values, list(_FIELDS)
    changed = [name for name in _FIELDS if product[name] != values[name]]
    if pending and "category_id" not in changed:
        changed.append("category_id")
    return values, changed


def _category_of(
    row: _Row, context: _Context, errors: list[tuple[str, str]]
) -> tuple[int | None, bool, bool]:
    """Return the row's category id (None: none, or one to create), whether it is active,
    and whether the import is to create it; report a path it cannot use."""
    categories = context.categories
    if not row.category:
        return None, True, False
    found = categories.find(row.category)
    if found == categories.AMBIGUOUS or (
        found is None and categories.missing_prefix_ambiguous(row.category)
    ):
        errors.append(("category", f"{row.category!r} names more than one category; rename one."))
    elif found is None and not context.create_categories:
        errors.append(
            (
                "category",
                f"No category {row.category!r}; create it first, or let the import "
                "create missing categories (--create-categories, or the admin's box "
                "'Create missing categories').",
            )
        )
    elif found is None:
        categories.planned.add(row.category)
        return None, True, True
    else:
        return found, categories.active[found], False
    return None, True, False


def _slug_free(row: _Row, slug: str, context: _Context, errors: list[tuple[str, str]]) -> bool:
    """Report a slug another product holds; return False for one an earlier row claimed."""
    owner = context.owners.get(slug)
    if owner is not None and owner != row.sku:
        hint = "" if row.slug else " (made from the name and SKU; give the row a slug)"
        errors.append(("slug", f"{slug!r} is already the slug of product {owner}{hint}."))
    elif context.claims is not None:
        return _claim(
            context.claims["slug"], slug, row.line, row.cells, context.report, sku=row.sku
        )
    return True


def _extras_of(
    row: _Row, product: dict[str, Any] | None, context: _Context, errors: list[tuple[str, str]]
) -> tuple[dict[str, Any], list[str]]:
    """Return the product's state in each registered column and the columns the row
    changes; report a value its column refuses."""
    extras, moves = {}, []
    for name, (column, loaded) in context.states.items():
        state = loaded.get(product["id"], column.initial) if product else column.initial
        extras[name] = state
        value = row.extras[name]
        if value is None:
            continue
        problem = column.problem(value, state)
        if problem:
            errors.append((name, problem))
        elif column.changes(value, state):
            moves.append(name)
    return extras, moves


def _count(plan: _Plan, report: ImportReport, categories: _Categories) -> None:
    if plan.product is None:
        report.created += 1
    elif plan.changed or plan.path:
        report.updated += 1
    elif plan.moves:
        report.extra_only += 1
    else:
        report.unchanged += 1
    report.extra_changes.update(plan.moves)
    report.transitions.update(plan.path)
    if plan.changes_anything:
        report._changing.add(plan.row.line)
        if len(report.preview) < report.preview_limit:
            report.preview.append(_preview(plan, categories))


def _preview(plan: _Plan, categories: _Categories) -> RowPreview:
    row, product = plan.row, plan.product
    values = dict(row.cells) | {
        "slug": plan.values["slug"],
        "currency": plan.values["currency"],
        "status": row.status or (product["status"] if product is not None else Status.DRAFT),
    }
    changes: dict[str, tuple[str, str]] = {}
    if product is not None:
        for name in plan.changed:
            column = "category" if name == "category_id" else name
            before = product[name]
            if name == "category_id":
                before = categories.path_of.get(before, "")
            elif name == "attributes":
                before = json.dumps(before, ensure_ascii=False, sort_keys=True)
            changes[column] = (str(before), values[column])
        if plan.path:
            changes["status"] = (product["status"], values["status"])
        columns = {column.name: column for column in extra_columns()}
        for name in plan.moves:
            changes[name] = (columns[name].shown(plan.extras[name]), values[name])
    return RowPreview(row.line, row.sku, "new" if product is None else "update", values, changes)


# --- Applying --------------------------------------------------------------------------


@dataclass
class _Targets:
    """What the registered columns are to write, gathered over the batches."""

    values: dict[str, dict[int, Any]]  # column → product id → value
    created: set[int] = field(default_factory=set)
    lines: dict[int, int] = field(default_factory=dict)  # product id → line

    def note(self, plans: list[_Plan], ids: dict[str, int]) -> None:
        """Note what the batch's rows give the registered columns (``ids``: new products)."""
        for plan in plans:
            product_id = ids[plan.row.sku] if plan.product is None else plan.product["id"]
            if plan.product is None:
                self.created.add(product_id)
            for name in plan.moves:
                self.values[name][product_id] = plan.row.extras[name]
                self.lines[product_id] = plan.row.line

    def note_variants(self, groups: list[_GroupPlan], ids: dict[str, int]) -> None:
        """The same for the variants' rows (``ids``: the new variants)."""
        for group in groups:
            for plan in group.variants:
                if plan.variant is None:
                    variant_id = ids[plan.row.sku]
                    self.created.add(variant_id)
                else:
                    variant_id = plan.variant["id"]
                for name in plan.moves:
                    self.values[name][variant_id] = plan.row.extras[name]
                    self.lines[variant_id] = plan.row.line


def _apply(
    stream: IO[bytes], size: int, report: ImportReport, actor: Actor, progress: Progress | None
) -> None:
    """Second pass: write the checked file in one transaction, or nothing at all.

    Only the rows the first pass found changing are read again, checked again under lock
    (the catalog may have moved meanwhile) and written. ``report`` keeps the first pass's
    counts; a row that no longer fits rolls everything back and is reported there.
    """
    second = ImportReport(file_name=report.file_name)
    columns = extra_columns()
    targets = _Targets({column.name: {} for column in columns})
    with transaction.atomic():
        categories = _Categories()
        _create_categories(actor, categories, report.new_categories)
        stream.seek(0)
        batches = _batches(stream, second, size, "importing", progress, only=report._changing)
        for batch in batches:
            plans = _plan(batch, categories, second, lock=True)
            if second.error_count:  # the catalog changed since the first pass
                report.errors, report.error_count = second.errors, second.error_count
                raise ImportRejected(report)
            _write_batch(plans, actor, report, targets)
        _write_extras(columns, targets, actor, report)
    report._changing = set()


def _write_extras(
    columns: list[ExtraColumn], targets: _Targets, actor: Actor, report: ImportReport
) -> None:
    """Let each registered column write its values; a refusal rejects the whole file."""
    reason = f"import {report.file_name}"[:500]
    for column in columns:
        if not targets.values[column.name]:
            continue
        refused = column.write(
            actor=actor, targets=targets.values[column.name], created=targets.created, reason=reason
        )
        for product_id, message in refused.items():
            report.add_error(targets.lines[product_id], column.name, message)
        if refused:
            raise ImportRejected(report)


def _create_categories(actor: Actor, categories: _Categories, paths: list[str]) -> None:
    """Create the categories the first pass found missing (each through category_create)."""
    for path in paths:
        parts = path.split(" / ")
        parent_id = None
        for depth in range(1, len(parts) + 1):
            prefix = " / ".join(parts[:depth])
            found = categories.find(prefix)
            if found is None:
                parent: Category | None = Category.objects.get(pk=parent_id) if parent_id else None
                category = category_create(actor=actor, name=parts[depth - 1], parent=parent)
                found = category.pk
                categories.by_path[prefix] = found
                categories.active[found] = True
            parent_id = found


def _write_batch(batch: _BatchPlan, actor: Actor, report: ImportReport, targets: _Targets) -> None:
    """Save the batch's new and changed products through the catalog's bulk service (each
    audited and announced as a single write), then its options and variants through the
    variants' (the same), and note what the registered columns write."""
    plans, groups = batch.plans, batch.groups
    # In file order: new products get their ids in it, so an export lists them as the file.
    saving = sorted(
        (
            plan
            for plan in [*plans, *(group.head for group in groups)]
            if plan.product is None or plan.changed or plan.path
        ),
        key=lambda plan: plan.row.line,
    )
    products = product_bulk_save(
        actor=actor,
        changes=[ProductChange(p.row.sku, p.values, p.product, p.path) for p in saving],
    )
    ids = {product.sku: product.pk for product in products}
    targets.note(plans, ids)
    changes = [
        change for group in groups if (change := _variant_changes_of(group, ids)) is not None
    ]
    made = variants_bulk_save(actor=actor, changes=changes)
    targets.note_variants(groups, made)
    if saving or changes:
        _audit_summary(saving, batch, actor, report)


def _variant_changes_of(group: _GroupPlan, ids: dict[str, int]) -> VariantChanges | None:
    """Return what the variants' bulk path writes for a product sold in variants
    (``ids``: the products just made), or None when nothing."""
    head = group.head
    new = [
        {"sku": plan.row.sku, "options": plan.values, **plan.changed}
        for plan in group.variants
        if plan.variant is None
    ]
    changed = {
        plan.variant["id"]: plan.changed
        for plan in group.variants
        if plan.variant is not None and plan.changed
    }
    if not (group.options_changed or new or changed):
        return None
    product_id = ids[head.row.sku] if head.product is None else head.product["id"]
    return VariantChanges(product_id, group.options, new, changed)


def _audit_summary(
    saving: list[_Plan], batch: _BatchPlan, actor: Actor, report: ImportReport
) -> None:
    """Record the batch as one ``product.imported`` entry (next to each product's own)."""
    new = [plan.row.sku for plan in saving if plan.product is None]
    touched = {
        plan.row.sku: [*plan.changed, *plan.path] for plan in saving if plan.product is not None
    }
    variants = [plan for group in batch.groups for plan in group.variants]
    new += [plan.row.sku for plan in variants if plan.variant is None]
    touched |= {
        plan.row.sku: sorted(plan.changed)
        for plan in variants
        if plan.variant is not None and plan.changed
    }
    lines = [plan.row.line for plan in batch.plans] + [plan.row.line for plan in variants]
    audit_record(
        actor=actor,
        action="product.imported",
        object_type="catalog.product",
        changes={
            "file": {"before": None, "after": report.file_name},
            "lines": {"before": None, "after": [min(lines), max(lines)]},
            "created": {"before": None, "after": len(new)},
            "updated": {"before": None, "after": len(touched)},
            "created_skus": {"before": None, "after": new},
            "updated_skus": {"before": None, "after": touched},
        },
    )
