"""HTTP sources: a JSON or CSV API, followed page by page, read into one Polars frame.

    fetch_http(source, env) -> (frame, notes)

Pages. `pagination.kind` is one of
  none       one request;
  next_link  the next URL at `next_path` in the body, else the `Link: <...>; rel="next"` header
             (relative URLs are resolved against the page's URL);
  cursor     the cursor at `next_path` is sent as query parameter `param`; a null or empty cursor ends;
  offset     `param` starts at `start` (0) and grows by the rows read; `limit_param` asks for `limit`
             rows. A short page ends the fetch, except that a short *first* page is followed by one
             more request: if that one has rows, the API caps its page size below `limit`, so only an
             empty page ends it (and a note says so). Without `limit_param` only an empty page ends it;
  page       page number `param` from `start` (1), until an empty page.
A next URL or cursor seen twice, or an offset / page that repeats the previous page's records
(the API ignores the parameter), is a pagination loop: an error, not a silent repeat.
A `next_path` missing from the *first* page's body is an error (a typo would otherwise read one page).

Records. Each JSON body holds a list of objects: the body itself, or the list at the dotted
`records_path`. With no `records_path` and an object body, the one non-empty list of objects in it
is used, with a note naming the key (ambiguous bodies are an error). Nested objects become dotted
columns (`address.city`), lists are kept as JSON text, missing keys are nulls, types are inferred
over all rows of all pages, and a column that mixes types (int and string) is read as text, with a
note. ISO dates and date-times become Date / Datetime, as in CSV files. CSV pages each carry their
header and are concatenated.

Bounds. `max_rows` / `max_pages`: the rows read so far are kept and a note says the fetch was cut
and how to raise the bound. `max_seconds`: a `DataError`, since a partial snapshot of unknown
extent is not a data version. Every error is raised before a frame is returned.

Retries. 429, 5xx, timeouts and connection errors are retried `retries` times with exponential
backoff and jitter, honouring `Retry-After` (seconds or an HTTP date, capped at 60 s); other 4xx
fail at once, as do redirect loops.

Secrets. The token (`auth_env`) and every `${VAR}` expanded into a header are scrubbed from every
message; query parameters with secret-looking names are shown as `REDACTED`. Credentials are not
sent to a next link on another origin.
"""

from __future__ import annotations

import email.utils
import io
import json
import random
import re
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import httpx
import polars as pl

from looml.errors import DataError, Problem, did_you_mean
from looml.spec import HttpSource

__all__ = ["fetch_http"]

_VAR = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)\}")
_SECRET_PARAM = re.compile(r"key|token|secret|pass|sig|auth|credential|session", re.IGNORECASE)
_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}$")
_DATETIME = re.compile(r"^\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2}(:\d{2}(\.\d+)?)?(Z|[+-]\d{2}:?\d{2})?$")
_NULLS = ["", "NA", "N/A", "NaN", "null"]  # as for CSV files
_MISSING = object()
_INT64 = (-(2**63), 2**63 - 1)


@dataclass
class _Fetch:
    """One fetch's settings and progress, passed explicitly to the helpers."""

    source: HttpSource
    secrets: list[str]
    secret_headers: set[str]
    deadline: float
    backoff: float
    max_wait: float
    pages: int = 0
    rows: int = 0
    notes: list[str] = field(default_factory=list)

    def error(self, message: str, fix: str, url: httpx.URL | str | None = None, *,
              at_page: bool = True) -> DataError:
        """A DataError at data.source, with every secret scrubbed from the message and the value;
        `at_page` names the page being read when it is not the first."""
        where = _redact(httpx.URL(url or self.source.url), self.secrets)
        page = f"page {self.pages + 1}: " if self.pages and at_page else ""
        return DataError(Problem(loc="data.source", value=self.scrub(f"{self.source.method} {where}"),
                                 message=self.scrub(page + message), fix=self.scrub(fix)))

    def too_slow(self, url: httpx.URL) -> DataError:
        return self.error(f"the fetch did not finish within max_seconds={self.source.max_seconds:g} "
                          f"({self.rows} rows from {self.pages} pages read so far)",
                          "raise data.source.max_seconds, or narrow the request with params", url)

    def scrub(self, text: str) -> str:
        for secret in self.secrets:
            text = text.replace(secret, "REDACTED")
        return text


def fetch_http(source: HttpSource, env: Mapping[str, str]) -> tuple[pl.DataFrame, list[str]]:
    """Every record the API pages through, as one frame, and notes for the user."""
    return _fetch(source, env)


def _fetch(source: HttpSource, env: Mapping[str, str], *, backoff: float = 0.5,
           max_wait: float = 60.0) -> tuple[pl.DataFrame, list[str]]:
    """`fetch_http` with its retry timing exposed: `backoff` is the first retry's mean delay in
    seconds (doubling each retry), `max_wait` caps any one wait, Retry-After included."""
    headers, secrets = _headers(source, env)
    run = _Fetch(source, secrets, {"authorization", *(k.lower() for k in source.headers if
                                                      _VAR.search(source.headers[k]))},
                 time.monotonic() + source.max_seconds, backoff, max_wait)
    with httpx.Client(headers=headers, follow_redirects=True) as client:
        pages = _follow(client, run)
    if source.format == "csv":
        frame = _csv_frame(pages, run)
    else:
        frame = _records_frame([r for page in pages for r in page], run.notes)
    return frame, run.notes


def _headers(source: HttpSource, env: Mapping[str, str]) -> tuple[dict[str, str], list[str]]:
    """Headers with `${VAR}`s expanded and the bearer token added; the secret values, longest first."""
    problems: list[Problem] = []
    secrets: list[str] = []

    def expand(match: re.Match[str], header: str) -> str:
        value = env.get(match.group(1))
        if not value:
            problems.append(Problem(loc=f"data.source.headers.{header}", value=match.group(0),
                                    message=f"environment variable {match.group(1)} is not set",
                                    fix=f"export {match.group(1)}=..."))
            return ""
        secrets.append(value)
        return value

    headers = {k: _VAR.sub(lambda m, k=k: expand(m, k), v) for k, v in source.headers.items()}
    token = env.get(source.auth_env) if source.auth_env else None
    if source.auth_env is not None:
        if token:
            secrets.append(token)
            headers["Authorization"] = f"Bearer {token}"
        else:
            problems.append(Problem(loc="data.source.auth_env", value=source.auth_env,
                                    message=f"environment variable {source.auth_env} (the API token) is "
                                            "not set", fix=f"export {source.auth_env}=..."))
    if problems:
        raise DataError(problems)
    # Short header values ("1", "v2") are not scrubbed: they are not secrets, and would mangle
    # messages. The token always is.
    secrets = [s for s in secrets if len(s) >= 4 or s == token]
    return headers, sorted(set(secrets), key=len, reverse=True)


def _follow(client: httpx.Client, run: _Fetch) -> list[Any]:
    """Every page's records (JSON: a list of dicts; CSV: a frame of strings), within the bounds."""
    source, pagination = run.source, run.source.pagination
    kind = pagination.kind
    url, params = source.url, dict(source.params)
    position = pagination.start if pagination.start is not None else (1 if kind == "page" else 0)
    if kind in ("offset", "page"):
        params[pagination.param] = position
        if pagination.limit_param:
            params[pagination.limit_param] = pagination.limit
    origin = _origin(httpx.URL(source.url))
    records_path = source.records_path
    seen: set[str] = set()
    capped, probing = False, 0
    pages: list[Any] = []
    while True:
        # Merged, not passed as `params=`: httpx would drop a query already in the URL.
        request = client.build_request(source.method, httpx.URL(url).copy_merge_params(params),
                                       json=source.body)
        seen.add(str(request.url))
        if _origin(request.url) != origin:
            for name in run.secret_headers:
                request.headers.pop(name, None)
        response, content = _send(client, request, run)
        body: Any = None
        if source.format == "csv":
            page: Any = _csv_page(content, run, request.url)
            count = page.height
        else:
            body = _json(content, response, run)
            page, records_path = _records(body, records_path, run, request.url)
            count = len(page)
        if kind in ("offset", "page") and count and pages and _same(page, pages[-1]):
            raise run.error(f"pagination loop: this page repeats the previous page's records; the API "
                            f"seems to ignore the {pagination.param!r} parameter",
                            "check pagination.param against the API's documentation", request.url)
        next_page: tuple[str, dict[str, Any]] | None = None
        if kind in ("next_link", "cursor"):
            next_page = _linked_page(response, body, seen, run)
        elif kind == "offset":
            if probing and count:
                capped = True
                run.notes.append(f"the API returned {probing} rows per page, fewer than pagination.limit="
                                 f"{pagination.limit}; set limit: {probing} to save a request")
            full = pagination.limit_param is None or capped or count >= pagination.limit
            # A short first page may be the API's own cap on the page size: one more request tells.
            probing = count if count and not full and not pages else 0
            if count and (full or probing):
                position += count
                next_page = (source.url, {**params, pagination.param: position})
        elif kind == "page" and count:
            position += 1
            next_page = (source.url, {**params, pagination.param: position})
        pages.append(page)
        run.pages += 1
        run.rows += count
        if run.rows >= source.max_rows and (run.rows > source.max_rows or next_page is not None):
            extra = run.rows - source.max_rows
            pages[-1] = page[: count - extra]
            run.notes.append(f"the fetch was cut at max_rows={source.max_rows}: the API "
                             f"{'has' if extra else 'may have'} more rows; raise data.source.max_rows "
                             "to read them")
            break
        if next_page is None:
            break
        if run.pages >= source.max_pages:
            run.notes.append(f"the fetch was cut at max_pages={source.max_pages} ({run.rows} rows): the "
                             "API has more pages; raise data.source.max_pages to read them")
            break
        url, params = next_page
    return pages


def _linked_page(response: httpx.Response, body: Any, seen: set[str],
                 run: _Fetch) -> tuple[str, dict[str, Any]] | None:
    """The next page's URL and params from a next link or cursor; None at the end; a repeat is a loop."""
    pagination, url = run.source.pagination, response.request.url
    if pagination.kind == "cursor":
        cursor = _at(body, pagination.next_path, run, url)
        if cursor in (None, "", _MISSING):
            return None
        if str(cursor) in seen:
            raise run.error(f"pagination loop: the API returned cursor {str(cursor)!r} twice",
                            "check pagination.next_path and param against the API's documentation", url)
        seen.add(str(cursor))
        return run.source.url, {**run.source.params, pagination.param: str(cursor)}
    link = (_at(body, pagination.next_path, run, url) if pagination.next_path
            else response.links.get("next", {}).get("url"))
    if link in (None, "", _MISSING):
        return None
    if not isinstance(link, str):
        raise run.error(f"the next link at {pagination.next_path!r} is {link!r}, not a URL",
                        "point pagination.next_path at the next page's URL", url)
    next_url = str(response.url.join(link))
    if next_url in seen:
        raise run.error(f"pagination loop: the next link {_redact(httpx.URL(next_url), [])} was already "
                        "read", "check data.source.pagination against the API's documentation", url)
    return next_url, {}


def _send(client: httpx.Client, request: httpx.Request, run: _Fetch) -> tuple[httpx.Response, bytes]:
    """The response to `request` and its body, retrying 429, 5xx, timeouts and connection errors."""
    source = run.source
    attempts = source.retries + 1
    for attempt in range(1, attempts + 1):
        remaining = run.deadline - time.monotonic()
        if remaining <= 0:
            raise run.too_slow(request.url)
        timeout = min(source.timeout, remaining)
        request.extensions["timeout"] = httpx.Timeout(timeout).as_dict()
        wait: float | None = None
        try:
            response = client.send(request, stream=True)
            try:
                content = _read(response, run)
            finally:
                response.close()
        except httpx.TimeoutException as exc:
            if time.monotonic() >= run.deadline:
                raise run.too_slow(request.url) from exc
            cause = f"no response within timeout={source.timeout:g} s"
            fix = "raise data.source.timeout, or ask for smaller pages"
        except httpx.TransportError as exc:
            port = request.url.port or (443 if request.url.scheme == "https" else 80)
            reason = re.sub(r"^\[Errno -?\d+\]\s*", "", str(exc)) or type(exc).__name__
            if isinstance(exc, httpx.ConnectError):
                cause = f"cannot connect to {request.url.host}:{port} ({reason})"
                fix = "check that the server is up and data.source.url's host and port"
            else:
                cause = f"lost the connection to {request.url.host}:{port} ({reason})"
                fix = "the server or a proxy dropped the response: try again later, or raise " \
                      "data.source.retries"
        except httpx.RequestError as exc:  # too many redirects, an undecodable body: not transient
            raise run.error(f"the request failed: {exc}", "check data.source.url", request.url) from exc
        else:
            status = response.status_code
            if status < 400:
                return response, content
            excerpt = " ".join(content[:300].decode("utf-8", "replace").split())[:200]
            cause = f"the API answered {status} {response.reason_phrase}: {excerpt!r}"
            if status != 429 and status < 500:
                raise run.error(cause, _fix_4xx(status, source), request.url)
            wait = _retry_after(response)
            fix = ("the API limits the request rate: raise data.source.retries, or try later"
                   if status == 429 else "the API is failing: try again later, or raise data.source.retries")
        if attempt == attempts:
            tries = f"on all {attempts} attempts" if attempts > 1 else "with retries: 0"
            raise run.error(f"{cause}, {tries}", fix, request.url)
        if wait is None:
            # Exponential backoff with "equal jitter": half the delay fixed, half random.
            wait = run.backoff * 2 ** (attempt - 1) * (0.5 + random.random() / 2)
        wait = min(wait, run.max_wait)
        if time.monotonic() + wait >= run.deadline:
            raise run.too_slow(request.url)
        time.sleep(wait)
    raise AssertionError("unreachable")


def _read(response: httpx.Response, run: _Fetch) -> bytes:
    """The whole body, checking the total deadline between chunks (a slow drip is bounded too)."""
    chunks = []
    for chunk in response.iter_bytes():
        chunks.append(chunk)
        if time.monotonic() > run.deadline:
            raise run.too_slow(response.request.url)
    return b"".join(chunks)


def _fix_4xx(status: int, source: HttpSource) -> str:
    if status in (401, 403):
        return (f"check the token in ${source.auth_env}" if source.auth_env else
                "the API needs credentials: set data.source.auth_env to the variable holding the token, "
                "or add the header it expects to data.source.headers")
    if status == 404:
        return "check data.source.url (and the pagination parameters)"
    return "check data.source.params, headers and body against the API's documentation"


def _retry_after(response: httpx.Response) -> float | None:
    """Seconds the server asked to wait (`Retry-After` in seconds or as an HTTP date), or None."""
    value = response.headers.get("retry-after", "").strip()
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, when.timestamp() - time.time())


def _json(content: bytes, response: httpx.Response, run: _Fetch) -> Any:
    try:
        return json.loads(content)
    except ValueError as exc:
        kind = response.headers.get("content-type", "none")
        raise run.error(f"the response is not JSON (content-type {kind}; it starts with {content[:60]!r})",
                        "check data.source.url, or set format: csv if the API returns CSV",
                        response.request.url) from exc


def _records(body: Any, path: str | None, run: _Fetch, url: httpx.URL) -> tuple[list[dict], str | None]:
    """The page's records and the records path (found on the first page when none is given)."""
    records = body
    if path is not None:
        records = _at(body, path, run, url, required=True)
    elif isinstance(body, dict):
        lists = [k for k, v in body.items() if isinstance(v, list) and all(isinstance(r, dict) for r in v)]
        full = [k for k in lists if body[k]]
        chosen = full if full else lists
        if len(chosen) != 1:
            keys = ", ".join(map(repr, body)) or "none"
            found = f"lists of objects at {', '.join(map(repr, chosen))}" if chosen else "no list of objects"
            raise run.error(f"the JSON body is an object (keys {keys}) with {found}",
                            "set data.source.records_path to the key of the records list", url)
        path = chosen[0]
        run.notes.append(f"read the records from the body's {path!r} list; set records_path: {path} "
                         "to say so explicitly")
        records = body[path]
    where = f"records_path {path!r}" if path else "the JSON body"
    if not isinstance(records, list):
        raise run.error(f"{where} is {_kind(records)}, not a list of records",
                        "point data.source.records_path at the list of records", url)
    for i, record in enumerate(records):
        if not isinstance(record, dict):
            raise run.error(f"record {i} in {where} is {_kind(record)} ({json.dumps(record)[:60]}), "
                            "not an object", "point data.source.records_path at a list of objects "
                            "({...} records)", url)
    return records, path


def _at(body: Any, path: str, run: _Fetch, url: httpx.URL, *, required: bool = False) -> Any:
    """The value at a dotted path in a JSON body. A path missing from the first page is an error
    (a typo would otherwise end the fetch early); later, a missing next link or cursor ends it."""
    value = body
    for depth, key in enumerate(path.split(".")):
        if isinstance(value, dict) and key in value:
            value = value[key]
            continue
        if not required and run.pages:
            return _MISSING
        so_far = ".".join(path.split(".")[:depth]) or "the body"
        if isinstance(value, dict):
            hint = did_you_mean(key, value)
            found = f"{so_far} has keys {', '.join(map(repr, value)) or 'none'}{'; ' + hint if hint else ''}"
        else:
            found = f"{so_far} is {_kind(value)}"
        field_name = "records_path" if required else "pagination.next_path"
        raise run.error(f"{field_name} {path!r} is not in the JSON body: {found}",
                        f"set data.source.{field_name} to a dotted path of keys in the body", url)
    return value


def _kind(value: Any) -> str:
    return {dict: "an object", list: "a list", str: "a string", bool: "a boolean", int: "a number",
            float: "a number", type(None): "null"}.get(type(value), type(value).__name__)


def _same(a: Any, b: Any) -> bool:
    return a.equals(b) if isinstance(a, pl.DataFrame) else a == b


def _origin(url: httpx.URL) -> tuple[str, str, int | None]:
    return url.scheme, url.host, url.port


def _redact(url: httpx.URL, secrets: list[str]) -> str:
    """The URL with the values of secret-looking query parameters replaced."""
    if not url.query:
        return str(url)
    pairs = [f"{k}={'REDACTED' if _SECRET_PARAM.search(k) or v in secrets else v}"
             for k, v in url.params.multi_items()]
    return f"{url.copy_with(query=None)}?{'&'.join(pairs)}"


def _csv_page(content: bytes, run: _Fetch, url: httpx.URL) -> pl.DataFrame:
    """One CSV page as text columns (types are inferred once, over all pages)."""
    try:
        return pl.read_csv(io.BytesIO(content), infer_schema=False, null_values=_NULLS)
    except pl.exceptions.NoDataError:
        return pl.DataFrame()
    except pl.exceptions.PolarsError as exc:
        cause = str(exc).strip().split("\n\n")[0]
        raise run.error(f"cannot read the response as CSV: {cause}",
                        "check data.source.url, or set format: json", url) from exc


def _csv_frame(pages: list[pl.DataFrame], run: _Fetch) -> pl.DataFrame:
    numbered = [(number, page) for number, page in enumerate(pages, start=1) if page.width]
    if not numbered:
        return pl.DataFrame()
    first, header = numbered[0][0], numbered[0][1].columns
    for number, page in numbered[1:]:
        if page.columns != header:
            raise run.error(f"page {number}'s CSV header ({', '.join(page.columns)}) differs from page "
                            f"{first}'s ({', '.join(header)})",
                            "ask the API for the same columns on every page", run.source.url, at_page=False)
    pages = [page for _, page in numbered]
    buffer = io.BytesIO()
    pl.concat(pages, how="vertical").write_csv(buffer)
    buffer.seek(0)
    return pl.read_csv(buffer, try_parse_dates=True, null_values=_NULLS, infer_schema_length=None)


def _records_frame(records: list[dict], notes: list[str]) -> pl.DataFrame:
    """A frame of JSON records: nested objects flattened, types inferred over every record."""
    columns: dict[str, list[Any]] = {}
    for i, record in enumerate(records):
        flat: dict[str, Any] = {}
        _flatten(record, "", flat)
        for name, value in flat.items():
            column = columns.get(name)
            if column is None:
                column = columns[name] = [None] * i
            column.append(value)
        for column in columns.values():
            if len(column) <= i:
                column.append(None)
    # A key that is null in some records and an object in others is its dotted columns only.
    parents = {name.rsplit(".", 1)[0] for name in columns if "." in name}
    return pl.DataFrame([_series(name, values, notes) for name, values in columns.items()
                         if not (name in parents and all(v is None for v in values))])


def _flatten(record: dict, prefix: str, out: dict[str, Any]) -> None:
    for key, value in record.items():
        name = f"{prefix}{key}"
        if isinstance(value, dict):
            if value:
                _flatten(value, f"{name}.", out)
            else:
                out[name] = None
        elif isinstance(value, list):
            out[name] = json.dumps(value)
        else:
            out[name] = value


def _series(name: str, values: list[Any], notes: list[str]) -> pl.Series:
    kinds = {type(v) for v in values if v is not None}
    if kinds == {bool}:
        return pl.Series(name, values, dtype=pl.Boolean)
    if kinds == {int} and all(_INT64[0] <= v <= _INT64[1] for v in values if v is not None):
        return pl.Series(name, values, dtype=pl.Int64)
    if float in kinds and kinds <= {int, float}:
        return pl.Series(name, values, dtype=pl.Float64)
    if kinds == {int}:
        notes.append(f"column {name!r} holds integers beyond 64 bits; it is read as text")
    elif kinds and kinds != {str}:
        found = " and ".join(sorted(k.__name__ for k in kinds))
        notes.append(f"column {name!r} mixes {found} values across records; it is read as text")
    if kinds != {str}:
        values = [v if v is None or isinstance(v, str) else json.dumps(v) for v in values]
    series = pl.Series(name, values, dtype=pl.String)
    texts = series.drop_nulls()
    try:
        if texts.len() and texts.str.contains(_DATE.pattern).all():
            return series.str.to_date("%Y-%m-%d", strict=True)
        if texts.len() and texts.str.contains(_DATETIME.pattern).all():
            return series.str.to_datetime(strict=True)
    except pl.exceptions.PolarsError:
        pass
    return series
