"""Team mode: what changes when the tracking store is shared (an `mlflow server`, a database).

* The audit trail is kept in the registry itself, as tags of the registered model (one tag per
  decision, `AUDIT_PREFIX<ms>.<id>` -> the decision as JSON; `store.audit.TagAuditLog`), so
  every project folder pointing at the server reads the same `looml models history` (decision 51).
* The champion alias moves under a lease: a registered model named `<name>.looml-lock`, created
  to take the lease and deleted to give it back. Creating a registered model is an insert under
  a unique name in MLflow's store, so of two runs that try at once exactly one gets it; the other
  waits. A lease left by a killed process expires after `LEASE_SECONDS`.
"""

from __future__ import annotations

import contextlib
import os
import random
import socket
import time
import uuid
from collections.abc import Iterator
from typing import Any

from looml.errors import Problem, RegistryError

__all__ = ["AUDIT_PREFIX", "LEASE_SECONDS", "LOCK_SUFFIX", "champion_lease", "is_shared"]

AUDIT_PREFIX = "looml.audit."
LOCK_SUFFIX = ".looml-lock"
LEASE_SECONDS = 60.0  # a lease older than this was left by a process that died holding it
_EXPIRES = "looml.lease_expires"
_OWNER = "looml.lease_owner"


def is_shared(tracking_uri: str) -> bool:
    """Whether the tracking store is one a team shares: anything but a local SQLite file or folder."""
    local = ("sqlite:", "file:", "/", ".")
    return not tracking_uri.startswith(local) and "://" in tracking_uri


def _owner() -> str:
    return f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"


@contextlib.contextmanager
def champion_lease(client: Any, name: str, *, wait: float = 60.0) -> Iterator[None]:
    """Hold the lease on `name`'s champion alias while the block runs: at most one process in
    the block at a time, across machines. Waits up to `wait` seconds for another holder, then
    raises `RegistryError`; a lease past its expiry (its holder died) is removed and retaken."""
    from mlflow.exceptions import MlflowException

    lock = f"{name}{LOCK_SUFFIX}"
    owner = _owner()
    deadline = time.monotonic() + wait
    while True:
        try:
            client.create_registered_model(
                lock, tags={_OWNER: owner, _EXPIRES: f"{time.time() + LEASE_SECONDS:.3f}"},
                description=f"looml's lease on the {name!r} champion alias; deleted when released")
            break
        except MlflowException as exc:
            if exc.error_code != "RESOURCE_ALREADY_EXISTS":
                raise
        _remove_if_expired(client, lock)
        if time.monotonic() > deadline:
            raise RegistryError(Problem(
                loc="registry.model_name", value=name,
                message=f"another looml process has held the champion lease for more than {wait:g} s",
                fix=f"retry; if no looml process is running, delete the registered model {lock!r}"))
        time.sleep(0.1 + random.random() * 0.2)
    try:
        yield
    finally:
        with contextlib.suppress(MlflowException):
            client.delete_registered_model(lock)


def _remove_if_expired(client: Any, lock: str) -> None:
    from mlflow.exceptions import MlflowException

    with contextlib.suppress(MlflowException, ValueError):
        tags = client.get_registered_model(lock).tags or {}
        if float(tags.get(_EXPIRES, "inf")) < time.time():
            client.delete_registered_model(lock)
