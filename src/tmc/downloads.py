"""CSV downloads, streamed row by row so a large export never sits in memory."""

from __future__ import annotations

import csv
from collections.abc import Iterable
from typing import Any

from django.http import StreamingHttpResponse
from django.utils import timezone


class _Echo:
    """A file-like object whose ``write`` returns the line, for streaming."""

    def write(self, value: str) -> str:
        return value


def csv_download(rows: Iterable[list[str]], *, name: str) -> StreamingHttpResponse:
    """Stream ``rows`` as ``<name>-<local time>.csv``.

    The rows' cells must already be safe for a spreadsheet
    (``tmc.lib.spreadsheet.csv_cell``).
    """
    writer: Any = csv.writer(_Echo())
    stamp = timezone.localtime().strftime("%Y%m%d-%H%M")
    return StreamingHttpResponse(
        (writer.writerow(row) for row in rows),
        content_type="text/csv; charset=utf-8",
        headers={"Content-Disposition": f'attachment; filename="{name}-{stamp}.csv"'},
    )
