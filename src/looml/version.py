"""looml's version: one place, read by the package, the server and the run record."""

__version__ = "0.1.0"
