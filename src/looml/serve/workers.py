"""Several worker processes on one port, each with its own listening socket (Linux SO_REUSEPORT).

    run_workers(count, host, port, environment)     until SIGINT / SIGTERM

uvicorn's own `--workers` binds one socket in the parent and shares it: every worker waits on
one accept queue, and the kernel hands new connections to the same warm worker. Measured with
bench/serve.py (2 workers, 8 keep-alive connections): one worker took all 8 and the other
stayed idle, so a second core added nothing. The accepted sockets of a shared, pre-bound
listener also lose TCP_NODELAY (uvicorn issue 3149). Here each worker binds its own socket into
a SO_REUSEPORT group, and the kernel spreads connections over the workers by their address hash.

The parent starts the workers, restarts one that dies, and on SIGINT or SIGTERM stops them all
(SIGTERM, then SIGKILL after the grace period). A worker whose parent is gone (killed with
SIGKILL) stops itself within half a second.
"""

from __future__ import annotations

import logging
import multiprocessing
import os
import signal
import socket
import threading
import time
from typing import Any

__all__ = ["reuse_port_supported", "run_workers"]

log = logging.getLogger("looml.serve")
_GRACE_SECONDS = 30.0
_POLL_SECONDS = 0.5


def reuse_port_supported() -> bool:
    """True where SO_REUSEPORT balances connections over the sockets bound to a port (Linux)."""
    return hasattr(socket, "SO_REUSEPORT") and os.uname().sysname == "Linux"


def _listener(host: str, port: int) -> socket.socket:
    """A TCP listening socket (proto set, so asyncio enables TCP_NODELAY) in the port's group."""
    family, kind, proto, _, address = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM,
                                                         proto=socket.IPPROTO_TCP)[0]
    sock = socket.socket(family, kind, proto)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
    sock.bind(address)
    sock.listen(2048)
    sock.set_inheritable(True)
    return sock


def _orphan_watch(parent: int) -> None:
    """Stop this worker (gracefully, SIGTERM) once its parent is gone: a supervisor killed with
    SIGKILL must not leave workers serving on its port."""
    while os.getppid() == parent:
        time.sleep(_POLL_SECONDS)
    os.kill(os.getpid(), signal.SIGTERM)


def _worker(host: str, port: int, environment: dict[str, str], parent: int) -> None:  # pragma: no cover
    import uvicorn

    threading.Thread(target=_orphan_watch, args=(parent,), name="looml-orphan-watch", daemon=True).start()
    os.environ.update(environment)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    config = uvicorn.Config("looml.serve.server:app_from_environment", factory=True, access_log=False,
                            log_level="info", host=host, port=port)
    uvicorn.Server(config).run(sockets=[_listener(host, port)])


def run_workers(count: int, host: str, port: int, environment: dict[str, str]) -> None:
    """Serve with `count` worker processes until SIGINT or SIGTERM; each worker builds its app
    from `environment` (see `serve.server.app_from_environment`)."""
    spawn = multiprocessing.get_context("spawn")
    stop = threading.Event()

    def on_signal(number: int, _frame: Any) -> None:
        stop.set()

    previous = {s: signal.signal(s, on_signal) for s in (signal.SIGINT, signal.SIGTERM)}

    def start() -> Any:
        process = spawn.Process(target=_worker, args=(host, port, environment, os.getpid()), daemon=False)
        process.start()
        return process

    workers = [start() for _ in range(count)]
    log.info("started %d workers on %s:%d, each with its own socket (SO_REUSEPORT): %s", count, host, port,
             ", ".join(str(w.pid) for w in workers))
    try:
        while not stop.wait(_POLL_SECONDS):
            for i, worker in enumerate(workers):
                if not worker.is_alive():
                    log.warning("worker %s exited with %s; starting another", worker.pid, worker.exitcode)
                    workers[i] = start()
    finally:
        for worker in workers:
            # SIGTERM, also after a Ctrl-C that reached the workers too: a second SIGINT would make
            # uvicorn drop the requests in flight, a SIGTERM after it does not
            if worker.is_alive():
                os.kill(worker.pid, signal.SIGTERM)
        for worker in workers:
            worker.join(_GRACE_SECONDS)
            if worker.is_alive():
                log.warning("worker %s did not stop in %.0f s; killing it", worker.pid, _GRACE_SECONDS)
                worker.kill()
                worker.join()
        for number, handler in previous.items():
            signal.signal(number, handler)
