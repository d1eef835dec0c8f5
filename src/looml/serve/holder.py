"""The model a server serves, swapped whole when the `champion` alias moves.

A poller loads the new version beside the old one and swaps the reference, so requests in
flight finish on the version they started on.
"""

from __future__ import annotations

import asyncio
import gc
import logging
from collections.abc import Callable
from dataclasses import dataclass

from looml.serve.model import ServedModel, load_model
from looml.store.versions import champion_version

__all__ = ["ModelHolder"]

log = logging.getLogger("looml.serve")


@dataclass
class ModelHolder:
    """The model being served, swapped whole when the champion alias moves."""

    tracking_uri: str
    name: str
    pinned: str | None  # a fixed version, or None to follow the champion
    loader: Callable[[str, str, str | None], ServedModel] = load_model
    model: ServedModel | None = None
    error: str | None = None

    def load(self) -> None:
        """Load the pinned version or the champion now."""
        self.model = self.loader(self.tracking_uri, self.name, self.pinned)
        self.error = None
        settle()

    async def follow(self, interval: float) -> None:
        """Poll the alias; load a new champion off the event loop, then swap."""
        while True:
            await asyncio.sleep(interval)
            try:
                current = await asyncio.to_thread(champion_version, self.tracking_uri, self.name)
                if current is not None and (self.model is None or current != self.model.version):
                    new = await asyncio.to_thread(self.loader, self.tracking_uri, self.name, current)
                    old = self.model.version if self.model else None
                    self.model, self.error = new, None
                    settle()
                    log.info("serving %s version %s (was %s)", self.name, new.version, old)
            except Exception as exc:  # keep serving the old model; say why on /v2/health/ready
                self.error = f"{type(exc).__name__}: {exc}"
                log.warning("could not follow the champion of %s: %s", self.name, self.error)


def settle() -> None:
    """Move the loaded model's objects out of the collector's reach: full collections over them
    took 70-310 ms every few seconds and were the server's p99 (bench/serve.py)."""
    gc.collect()
    gc.freeze()
