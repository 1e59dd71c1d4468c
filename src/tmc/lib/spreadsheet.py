"""Make values safe to open in a spreadsheet.

A spreadsheet runs a cell that starts with ``=``, ``+``, ``-`` or ``@`` (or a
tab or carriage return before one) as a formula, so a name such as
``=HYPERLINK(...)`` typed into TMC could act on whoever opens an export.
Such cells get a leading apostrophe, which spreadsheets show as text.
"""

from __future__ import annotations

FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def csv_cell(value: str) -> str:
    return "'" + value if value.startswith(FORMULA_STARTS) else value
