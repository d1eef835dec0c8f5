"""Writing a batch's output: frames appended to a hidden file beside the target, renamed onto it
at the end, so a failed run leaves no half-written output.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import polars as pl

__all__ = ["OUTPUTS", "Sink"]

OUTPUTS = {".parquet": "parquet", ".pq": "parquet", ".csv": "csv"}


class Sink:
    """Frames appended to a hidden file beside `path`; `commit` renames it onto `path`."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.format = OUTPUTS[path.suffix.lower()]
        self.partial = path.with_name(f".{path.name}.{os.getpid()}.partial")
        self._writer: Any = None
        self._schema: Any = None
        self._handle: Any = None

    def write(self, frame: pl.DataFrame) -> None:
        """Append the rows of `frame` (the first frame fixes the columns and their types)."""
        if self.format == "csv":
            if self._handle is None:
                self.path.parent.mkdir(parents=True, exist_ok=True)
                self._handle = open(self.partial, "wb")  # noqa: SIM115 - closed by commit / discard
                frame.write_csv(self._handle)
            else:
                frame.write_csv(self._handle, include_header=False)
            return
        import pyarrow.parquet as pq

        table = frame.to_arrow()
        if self._writer is None:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self._schema = table.schema
            self._writer = pq.ParquetWriter(self.partial, table.schema)
        elif table.schema != self._schema:  # e.g. an id column that is all null in a later chunk
            table = table.cast(self._schema)
        self._writer.write_table(table)

    def commit(self) -> None:
        """Close the file and move it onto `path`."""
        self._close()
        os.replace(self.partial, self.path)

    def discard(self) -> None:
        """Close and delete the partial file."""
        self._close()
        self.partial.unlink(missing_ok=True)

    def _close(self) -> None:
        if self._writer is not None:
            self._writer.close()
            self._writer = None
        if self._handle is not None:
            self._handle.close()
            self._handle = None
