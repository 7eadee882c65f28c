"""The product CSV's columns, in order (docs/import-export.md), and how one cell is written
and read back: shared by the import, the export, the admin and the benchmark's file
generator, which runs without Django."""

COLUMNS = (
    "sku",
    "name",
    "slug",
    "description",
    "price",
    "currency",
    "category",
    "status",
    "on_hand",
    "attributes",
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
