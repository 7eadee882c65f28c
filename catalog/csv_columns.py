"""The product CSV's columns, in order (docs/import-export.md), and how one cell is written
and read back: shared by the import, the export, the admin and the benchmark's file
generator, which runs without Django."""

from typing import Any

from catalog.fields import PRODUCT_EDITABLE_FIELDS

# The catalog's own columns: what staff edit, and the status.
PRODUCT_COLUMNS = (*PRODUCT_EDITABLE_FIELDS, "status")
# The file's columns, in the export's order (the long JSON last). ``on_hand`` is the stock
# level: inventory reads and writes it (an ``ExtraColumn``), the catalog only carries it.
COLUMNS = (
    *(name for name in PRODUCT_EDITABLE_FIELDS if name != "attributes"),
    "status",
    "on_hand",
    "attributes",
)

# The columns of a product sold in variants, after those (docs/import-export.md): such a
# product is one row per variant, its own columns repeated on each, ``sku``, ``price`` and
# ``on_hand`` the variant's, ``product_sku`` its product's SKU (empty on a product's own
# row). A file without them (every file before variants) is read as it always was, and a
# shop without variants exports without them.
MAX_OPTION_COLUMNS = 3
OPTION_COLUMNS = tuple(
    f"option{n}_{part}" for n in range(1, MAX_OPTION_COLUMNS + 1) for part in ("name", "value")
)
VARIANT_COLUMNS = (
    "product_sku",
    "product_price",
    *OPTION_COLUMNS,
    "barcode",
    "weight_grams",
    "track_stock",
)

# A spreadsheet takes a cell starting with one of these as a formula (OWASP's list):
# a product name "=HYPERLINK(...)" would run in the shop manager's spreadsheet.
FORMULA_START = frozenset("=+-@\t\r")
QUOTE = "'"


def _needs_quote(value: str) -> bool:
    """Whether the export must put a quote before ``value``.

    A value starting (after any quotes of its own) with a formula character, so that no
    cell of the file starts with one and a value of its own that begins with quotes keeps
    them; or a value with whitespace at either end, which the import would otherwise trim.
    """
    first = value.lstrip(QUOTE)[:1]
    return first in FORMULA_START or first.isspace() or value[-1:].isspace()


def cell_for_export(value: str) -> str:
    """Return ``value`` as the export writes it: with a leading ``'`` when it needs one."""
    return QUOTE + value if _needs_quote(value) else value


def cell_from_import(cell: str) -> str:
    """Return the value of a cell as read: trimmed, without the quote the export added.

    The exact inverse of ``cell_for_export`` (export, import: the same value, whatever it
    is); a hand-written cell is trimmed first, so ``  '=1+1 `` reads as ``=1+1``.
    """
    if cell.startswith(QUOTE) and _needs_quote(cell[1:]):
        return cell[1:]
    cell = cell.strip()
    if cell.startswith(QUOTE) and _needs_quote(cell[1:]):
        return cell[1:]
    return cell


class ExtraColumn:
    """A column of the product file that another app owns (the stock level: inventory).

    The catalog's importer and exporter know it only through this interface, so the
    catalog imports nothing of the app that owns the column (one that depends on the
    catalog, as inventory does); that app registers an instance (``register_extra_column``)
    when it is ready. Values are whatever ``parse`` makes of a cell; a state is what
    ``load`` reads of one product.
    """

    name = ""
    initial: Any = None  # the state of a product the app has no row for (a new one)
    # Counted in the import's summary, singular and plural: "1 stock movement", "3 stock movements".
    summary: tuple[str, str] = ("", "")
    only_summary = ""  # rows changing only this column: "1 with only a new stock level"

    def parse(self, cell: str) -> tuple[Any, str]:
        """Return ``(value, "")``, value None for an empty cell, or ``(None, problem)``."""
        raise NotImplementedError

    def load(self, product_ids: list[int]) -> dict[int, Any]:
        """Return the current state of those products that have one."""
        raise NotImplementedError

    def problem(self, value: Any, state: Any) -> str:
        """Return why ``value`` cannot be written over ``state``, or ""."""
        return ""

    def changes(self, value: Any, state: Any) -> bool:
        """Return whether writing ``value`` changes ``state``."""
        raise NotImplementedError

    def shown(self, state: Any) -> str:
        """Return ``state`` as a cell (the admin's preview shows it as "before")."""
        raise NotImplementedError

    def write(
        self, *, actor: Any, targets: dict[int, Any], created: set[int], reason: str
    ) -> dict[int, str]:
        """Write each product's value (``created``: the products the import made) in the
        import's transaction; return what was refused, by product (everything is then
        rolled back)."""
        raise NotImplementedError

    def export_expression(self) -> Any:
        """Return the expression the export annotates each product with."""
        raise NotImplementedError

    def export_cell(self, value: Any) -> str:
        """Return the exported cell of the annotated ``value``."""
        raise NotImplementedError


_EXTRA_COLUMNS: dict[str, ExtraColumn] = {}


def register_extra_column(column: ExtraColumn) -> None:
    """Let ``column`` read and write its column of the product file (one owner per name)."""
    if column.name not in COLUMNS or column.name in PRODUCT_COLUMNS:
        raise ValueError(f"{column.name!r} is not a column the product file leaves to others")
    _EXTRA_COLUMNS[column.name] = column


def extra_columns() -> list[ExtraColumn]:
    """Return the registered columns, in the file's order; refuse a file with a gap."""
    others = [name for name in COLUMNS if name not in PRODUCT_COLUMNS]
    missing = [name for name in others if name not in _EXTRA_COLUMNS]
    if missing:
        # Plain words without pms_backend.plurals: this module runs without the project.
        raise RuntimeError(f"No app has registered these columns of the product file: {missing}")
    return [_EXTRA_COLUMNS[name] for name in COLUMNS if name in _EXTRA_COLUMNS]
