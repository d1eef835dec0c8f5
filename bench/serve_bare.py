"""The ceiling for bench/serve.py: a bare ASGI app under uvicorn that reads the request body and
answers a constant JSON body, with no framework, parsing or model.

    uvicorn serve_bare:app --workers 2 --port P   (run from bench/)
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

BODY = b'{"predictions":["yes"]}'
HEADERS = [(b"content-type", b"application/json"), (b"content-length", str(len(BODY)).encode())]


async def app(scope: dict[str, Any], receive: Callable[..., Any], send: Callable[..., Any]) -> None:
    """Lifespan: start and stop at once. HTTP: drain the body, answer BODY."""
    if scope["type"] == "lifespan":
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                await send({"type": "lifespan.shutdown.complete"})
                return
    more = True
    while more:
        more = (await receive()).get("more_body", False)
    await send({"type": "http.response.start", "status": 200, "headers": HEADERS})
    await send({"type": "http.response.body", "body": BODY})
