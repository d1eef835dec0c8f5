"""HTTP sources against a real HTTP server on 127.0.0.1: every pagination style, retries, faults,
clear errors without secrets, and a pipeline that re-trains only when the API's rows change."""

from __future__ import annotations

import csv
import io
import json
import socket
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import polars as pl
import pytest

import looml
from looml.data.sources.http import _fetch, fetch_http
from looml.errors import DataError
from looml.spec import HttpSource

CITIES = ["Oslo", "Rome", "Lima", "Pune"]
RECORDS = [{"id": i, "name": f"item-{i}", "score": i / 4, "active": i % 3 == 0,
            "address": {"city": CITIES[i % 4], "zip": f"{10000 + i}"}, "tags": [i % 2, "t"]}
           for i in range(1000)]
IDS = list(range(1000))
TOKEN = "good-token-8c1f"
Reply = tuple[int, Any, dict[str, str]]


def _window(q: dict[str, str], offset: int, size: int) -> list[dict]:
    return RECORDS[offset:offset + size]


def _next_body(q: dict[str, str], server: Api) -> Reply:
    page = int(q.get("page", 1))
    more = page * 100 < len(RECORDS)
    return 200, {"data": _window(q, (page - 1) * 100, 100),
                 "next": f"/next_body?page={page + 1}" if more else None}, {}


def _link(q: dict[str, str], server: Api) -> Reply:
    page = int(q.get("page", 1))
    links = [f'</link?page={page + 1}>; rel="next"'] if page * 150 < len(RECORDS) else []
    links.append('</link?page=1>; rel="first"')
    return 200, _window(q, (page - 1) * 150, 150), {"Link": ", ".join(links)}


def _cursor(q: dict[str, str], server: Api) -> Reply:
    offset = int(q["after"][1:], 16) if "after" in q else 0
    end = offset + 128
    return 200, {"items": _window(q, offset, 128),
                 "meta": {"next_cursor": f"c{end:x}" if end < len(RECORDS) else None}}, {}


def _offset(q: dict[str, str], server: Api) -> Reply:
    size = min(int(q.get("limit", 100)), int(q.get("cap", 10_000)))
    return 200, _window(q, int(q.get("offset", 0)), size), {}


def _page(q: dict[str, str], server: Api) -> Reply:
    page, size = int(q.get("page", 1)), int(q.get("per_page", 100))
    return 200, {"results": _window(q, (page - 1) * size, size)}, {}


def _csv(q: dict[str, str], server: Api) -> Reply:
    page = int(q.get("page", 1))
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(["id", "name", "score", "when"])
    for r in _window(q, (page - 1) * 400, 400):
        writer.writerow([r["id"], r["name"], r["score"], f"2024-01-{r['id'] % 28 + 1:02d}"])
    more = page * 400 < len(RECORDS)
    return 200, out.getvalue().encode(), {"Content-Type": "text/csv",
                                          **({"Link": f'</csv?page={page + 1}>; rel="next"'} if more else {})}


def _flaky(q: dict[str, str], server: Api) -> Reply:
    if server.hits[("/flaky", q["key"])] <= int(q["fail"]):
        return 503, b"upstream busy", {}
    return 200, RECORDS[:3], {}


def _ratelimit(q: dict[str, str], server: Api) -> Reply:
    if server.hits[("/ratelimit", q["key"])] == 1:
        return 429, b"slow down", {"Retry-After": q["after"]}
    return 200, RECORDS[:3], {}


def _slow(q: dict[str, str], server: Api) -> Reply:
    time.sleep(float(q["delay"]))
    return 200, RECORDS[:3], {}


def _auth(q: dict[str, str], server: Api) -> Reply:
    given = server.headers_seen[-1].get("Authorization", "")
    if given != f"Bearer {TOKEN}":
        return 401, f"invalid credentials: {given}".encode(), {}
    return 200, RECORDS[:5], {}


def _loop(q: dict[str, str], server: Api) -> Reply:
    page = int(q.get("page", 1))
    return 200, {"data": RECORDS[page:page + 1], "next": f"/loop?page={1 if page == 2 else 2}"}, {}


def _nested(q: dict[str, str], server: Api) -> Reply:
    return 200, [{"id": 1, "address": {"city": "Oslo", "geo": {"lat": 59.9}}, "tags": ["a", "b"]},
                 {"id": 2, "address": None, "extra": True},
                 {"id": 3, "address": {"city": "Rome"}, "tags": []}], {}


def _mixed(q: dict[str, str], server: Api) -> Reply:
    page = int(q.get("page", 1))
    rows = {1: [{"id": i, "code": i} for i in range(50)],
            2: [{"id": i, "code": f"x{i}", "late": i / 2} for i in range(50, 100)]}.get(page, [])
    return 200, rows, {}


def _headers(q: dict[str, str], server: Api) -> Reply:
    seen = server.headers_seen[-1]
    return 200, [{"api_key": seen.get("X-Api-Key"), "client": seen.get("X-Client")}], {}


def _search(q: dict[str, str], server: Api) -> Reply:
    return 200, {"hits": RECORDS[:server.bodies[-1]["n"]]}, {}


def _hop(q: dict[str, str], server: Api) -> Reply:
    """Page 1 links to the same server under another host name: another origin."""
    auth = server.headers_seen[-1].get("Authorization")
    other = f"http://localhost:{server.server_address[1]}/hop?page=2"
    return 200, {"data": [{"auth": auth}], "next": other if q.get("page") != "2" else None}, {}


def _csv_columns(q: dict[str, str], server: Api) -> Reply:
    page = int(q.get("page", 1))
    body = b"id,name\n1,a\n" if page == 1 else b"id,title\n2,b\n"
    return 200, body, {"Content-Type": "text/csv", **({"Link": "</csv_columns?page=2>; rel=next"}
                                                       if page == 1 else {})}


def _table(q: dict[str, str], server: Api) -> Reply:
    offset, size = int(q["offset"]), int(q["limit"])
    return 200, server.table[offset:offset + size], {}


ROUTES: dict[str, Callable[[dict[str, str], Api], Reply]] = {
    "/next_body": _next_body, "/link": _link, "/cursor": _cursor, "/offset": _offset, "/page": _page,
    "/csv": _csv, "/flaky": _flaky, "/ratelimit": _ratelimit, "/slow": _slow, "/auth": _auth,
    "/loop": _loop, "/nested": _nested, "/mixed": _mixed, "/headers": _headers, "/table": _table,
    "/missing": lambda q, s: (404, b"no such collection: /missing", {}),
    "/html": lambda q, s: (200, b"<html><body>maintenance</body></html>", {"Content-Type": "text/html"}),
    "/scalars": lambda q, s: (200, [1, 2, 3], {}),
    "/wrapped": lambda q, s: (200, {"count": 4, "errors": [], "data": RECORDS[:4]}, {}),
    "/ambiguous": lambda q, s: (200, {"a": [{"x": 1}], "b": [{"y": 2}]}, {}),
    "/cursor_loop": lambda q, s: (200, {"items": RECORDS[:2], "next": "same"}, {}),
    "/ignored": lambda q, s: (200, RECORDS[:10], {}),
    "/hop": _hop, "/csv_columns": _csv_columns,
    "/object": lambda q, s: (200, {"status": "ok", "count": 0}, {}),
    "/number_link": lambda q, s: (200, {"data": RECORDS[:2], "next": 2}, {}),
    "/bad_csv": lambda q, s: (200, b"a,b\n1,2\n3,4,5,6\n", {"Content-Type": "text/csv"}),
    "/redirect": lambda q, s: (302, b"", {"Location": "/redirect"}),
    "/dates": lambda q, s: (200, [{"day": "2024-01-31", "at": "2024-01-31T08:30:00Z", "code": "2024"},
                                  {"day": None, "at": "2024-02-01T09:00:00Z", "code": "12"}], {}),
}


class Api(ThreadingHTTPServer):
    """The test API: routes above, a hit count per (path, key), the last request's headers."""

    daemon_threads = True
    block_on_close = False

    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), Handler)
        self.hits: Counter[tuple[str, str | None]] = Counter()
        self.headers_seen: list[dict[str, str]] = []
        self.bodies: list[Any] = []
        self.table: list[dict] = []
        self.lock = threading.Lock()

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}{path}"

    def handle_error(self, request: Any, client_address: Any) -> None:
        pass  # a client that timed out and hung up is expected here


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: Api

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def do_GET(self) -> None:
        self._reply()

    def do_POST(self) -> None:
        length = int(self.headers.get("Content-Length", 0))
        self.server.bodies.append(json.loads(self.rfile.read(length)))
        self._reply()

    def _reply(self) -> None:
        url = urlsplit(self.path)
        q = {k: v[0] for k, v in parse_qs(url.query).items()}
        with self.server.lock:
            self.server.hits[(url.path, q.get("key"))] += 1
            self.server.headers_seen.append(dict(self.headers))
        if url.path == "/search" and self.command != "POST":
            status, body, headers = 405, b"POST only", {}
        elif url.path == "/truncated":  # promises 1,000 bytes, sends 10 and hangs up
            self.send_response(200)
            self.send_header("Content-Length", "1000")
            self.end_headers()
            self.wfile.write(b'[{"id": 1,')
            self.close_connection = True
            return
        else:
            status, body, headers = ROUTES[url.path](q, self.server)
        data = body if isinstance(body, bytes) else json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", headers.pop("Content-Type", "application/json"))
        self.send_header("Content-Length", str(len(data)))
        for name, value in headers.items():
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(data)


ROUTES["/search"] = _search


@pytest.fixture(scope="module")
def api() -> Iterator[Api]:
    server = Api()
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server
    server.shutdown()
    server.server_close()


def http(api: Api, path: str, **fields: Any) -> HttpSource:
    return HttpSource.model_validate({"kind": "http", "url": api.url(path), **fields})


def fetch(source: HttpSource, env: dict[str, str] | None = None, **timing: float) -> tuple[pl.DataFrame,
                                                                                             list[str]]:
    return _fetch(source, env or {}, **({"backoff": 0.01} | timing))


@pytest.mark.parametrize(("path", "fields"), [
    ("/next_body", {"records_path": "data", "pagination": {"kind": "next_link", "next_path": "next"}}),
    ("/link", {"pagination": {"kind": "next_link"}}),
    ("/cursor", {"records_path": "items",
                 "pagination": {"kind": "cursor", "next_path": "meta.next_cursor", "param": "after"}}),
    ("/offset", {"pagination": {"kind": "offset", "param": "offset", "limit_param": "limit", "limit": 300}}),
    ("/offset", {"pagination": {"kind": "offset", "param": "offset", "limit_param": "limit", "limit": 100}}),
    ("/offset", {"pagination": {"kind": "offset", "param": "offset"}}),
    ("/page", {"records_path": "results",
               "pagination": {"kind": "page", "param": "page", "limit_param": "per_page", "limit": 70}}),
])
def test_every_pagination_style_reads_every_row_once_in_order(api: Api, path: str, fields: dict) -> None:
    frame, notes = fetch_http(http(api, path, **fields), {})

    assert frame["id"].to_list() == IDS
    assert frame["address.city"].to_list() == [CITIES[i % 4] for i in IDS]
    assert notes == []


def test_offset_pages_stop_at_the_first_short_page(api: Api) -> None:
    source = http(api, "/offset", params={"key": "short"},
                  pagination={"kind": "offset", "param": "offset", "limit_param": "limit", "limit": 300})
    fetch_http(source, {})
    assert api.hits[("/offset", "short")] == 4  # 300, 300, 300, 100: no request for an empty page


def test_an_api_that_caps_the_page_size_is_read_to_the_end_with_a_note(api: Api) -> None:
    source = http(api, "/offset", params={"cap": 250},
                  pagination={"kind": "offset", "param": "offset", "limit_param": "limit", "limit": 400})
    frame, notes = fetch_http(source, {})
    assert frame["id"].to_list() == IDS
    assert notes == ["the API returned 250 rows per page, fewer than pagination.limit=400; "
                     "set limit: 250 to save a request"]


def test_an_object_body_with_one_list_of_records_is_read_with_a_note(api: Api) -> None:
    frame, notes = fetch_http(http(api, "/wrapped"), {})
    assert frame["id"].to_list() == [0, 1, 2, 3]
    assert notes == ["read the records from the body's 'data' list; set records_path: data to say so "
                     "explicitly"]


def test_nested_objects_become_dotted_columns_and_lists_json_text(api: Api) -> None:
    frame, _ = fetch_http(http(api, "/nested"), {})
    assert frame.columns == ["id", "address.city", "address.geo.lat", "tags", "extra"]
    assert frame.to_dicts() == [
        {"id": 1, "address.city": "Oslo", "address.geo.lat": 59.9, "tags": '["a", "b"]', "extra": None},
        {"id": 2, "address.city": None, "address.geo.lat": None, "tags": None, "extra": True},
        {"id": 3, "address.city": "Rome", "address.geo.lat": None, "tags": "[]", "extra": None},
    ]


def test_types_are_inferred_over_all_pages_and_a_mixed_column_is_text(api: Api) -> None:
    frame, notes = fetch_http(http(api, "/mixed", pagination={"kind": "page", "param": "page"}), {})
    assert frame.schema == pl.Schema({"id": pl.Int64, "code": pl.String, "late": pl.Float64})
    assert frame["code"].to_list()[48:52] == ["48", "49", "x50", "x51"]
    assert frame["late"].null_count() == 50 and frame["late"][-1] == 49.5
    assert notes == ["column 'code' mixes int and str values across records; it is read as text"]


def test_iso_dates_and_datetimes_are_parsed_as_in_csv_files(api: Api) -> None:
    frame, _ = fetch_http(http(api, "/dates"), {})
    assert frame.schema["day"] == pl.Date
    assert frame.schema["at"] == pl.Datetime("us", "UTC")
    assert frame.schema["code"] == pl.String


def test_csv_pages_are_concatenated_and_typed_once(api: Api) -> None:
    frame, _ = fetch_http(http(api, "/csv", format="csv", pagination={"kind": "next_link"}), {})
    assert frame["id"].to_list() == IDS
    assert frame.schema["score"] == pl.Float64 and frame.schema["when"] == pl.Date


def test_post_sends_the_json_body(api: Api) -> None:
    frame, _ = fetch_http(http(api, "/search", method="POST", body={"n": 25}, records_path="hits"), {})
    assert frame["id"].to_list() == list(range(25))


def test_header_variables_come_from_env_and_the_token_is_a_bearer_header(api: Api) -> None:
    source = http(api, "/headers", headers={"X-Api-Key": "${MY_KEY}", "X-Client": "looml"})
    frame, _ = fetch_http(source, {"MY_KEY": "k-123456"})
    assert frame.to_dicts() == [{"api_key": "k-123456", "client": "looml"}]

    frame, _ = fetch_http(http(api, "/auth", auth_env="API_TOKEN"), {"API_TOKEN": TOKEN})
    assert frame.height == 5


def test_credentials_are_not_sent_to_a_next_link_on_another_origin(api: Api) -> None:
    source = http(api, "/hop", auth_env="API_TOKEN", records_path="data",
                  pagination={"kind": "next_link", "next_path": "next"})
    frame, _ = fetch_http(source, {"API_TOKEN": TOKEN})
    assert frame["auth"].to_list() == [f"Bearer {TOKEN}", None]


def test_missing_environment_variables_are_all_reported(api: Api) -> None:
    source = http(api, "/headers", headers={"X-Api-Key": "${MY_KEY}"}, auth_env="API_TOKEN")
    with pytest.raises(DataError, match="MY_KEY is not set") as exc:
        fetch_http(source, {})
    assert len(exc.value.problems) == 2
    assert exc.value.problems[1].message == "environment variable API_TOKEN (the API token) is not set"
    assert "export MY_KEY=..." in exc.value.render() and "export API_TOKEN=..." in exc.value.render()


def test_a_wrong_token_is_a_401_error_that_never_shows_the_token(api: Api) -> None:
    wrong = "wrong-token-4f9e2a"
    with pytest.raises(DataError, match=r"answered 401 Unauthorized: 'invalid credentials: Bearer REDACTED'"
                       ) as exc:
        fetch_http(http(api, "/auth", auth_env="API_TOKEN"), {"API_TOKEN": wrong})
    rendered = exc.value.render()
    assert "check the token in $API_TOKEN" in rendered
    assert wrong not in rendered and wrong not in repr(exc.value) and wrong not in str(exc.value.to_dict())


def test_a_404_names_the_url_without_query_secrets(api: Api) -> None:
    with pytest.raises(DataError, match="answered 404 Not Found: 'no such collection: /missing'") as exc:
        fetch_http(http(api, "/missing?api_key=abcd1234&region=eu"), {})
    problem = exc.value.problems[0]
    assert problem.loc == "data.source"
    assert problem.value == f"GET {api.url('/missing')}?api_key=REDACTED&region=eu"
    assert "abcd1234" not in exc.value.render()
    assert "check data.source.url" in problem.fix


def test_transient_5xx_are_retried_and_the_attempts_counted(api: Api) -> None:
    frame, _ = fetch(http(api, "/flaky", params={"fail": 2, "key": "ok"}, retries=2))
    assert frame.height == 3 and api.hits[("/flaky", "ok")] == 3

    with pytest.raises(DataError, match=r"answered 503 Service Unavailable: 'upstream busy', on all 2 "
                                        r"attempts"):
        fetch(http(api, "/flaky", params={"fail": 5, "key": "no"}, retries=1))
    assert api.hits[("/flaky", "no")] == 2

    with pytest.raises(DataError, match=r"answered 429 Too Many Requests: 'slow down', with retries: 0"
                       ) as exc:
        fetch(http(api, "/ratelimit", params={"after": 0, "key": "once"}, retries=0))
    assert "the API limits the request rate" in exc.value.problems[0].fix


def test_a_connection_lost_mid_body_is_retried_then_fails(api: Api) -> None:
    port = api.server_address[1]
    with pytest.raises(DataError, match=rf"lost the connection to 127.0.0.1:{port} \(.+\), on all 2 "):
        fetch(http(api, "/truncated", retries=1))


def test_429_waits_as_long_as_retry_after_says(api: Api) -> None:
    started = time.monotonic()
    fetch(http(api, "/ratelimit", params={"after": 0, "key": "r0"}), backoff=30.0)
    assert time.monotonic() - started < 5  # Retry-After: 0 overrides the 30 s backoff
    assert api.hits[("/ratelimit", "r0")] == 2

    started = time.monotonic()
    fetch(http(api, "/ratelimit", params={"after": 1, "key": "r1"}))
    assert time.monotonic() - started >= 0.95

    started = time.monotonic()
    fetch(http(api, "/ratelimit", params={"after": 3600, "key": "rcap"}), max_wait=0.05)
    assert time.monotonic() - started < 5


def test_timeouts_are_retried_then_fail_clearly(api: Api) -> None:
    source = http(api, "/slow", params={"delay": 1, "key": "slow"}, timeout=0.2, retries=1)
    with pytest.raises(DataError, match=r"no response within timeout=0.2 s, on all 2 attempts"):
        fetch(source)
    assert api.hits[("/slow", "slow")] == 2


def test_connection_refused_names_host_and_port() -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    source = HttpSource(kind="http", url=f"http://127.0.0.1:{port}/x", retries=1)
    with pytest.raises(DataError, match=rf"cannot connect to 127.0.0.1:{port} \(.*refused.*\), on all 2"):
        fetch(source)


def test_max_seconds_bounds_the_whole_fetch(api: Api) -> None:
    source = http(api, "/slow", params={"delay": 1}, timeout=5, max_seconds=0.3)
    with pytest.raises(DataError, match=r"did not finish within max_seconds=0.3 \(0 rows from 0 pages"):
        fetch(source)


def test_max_rows_and_max_pages_keep_the_rows_read_with_a_note(api: Api) -> None:
    paged = {"kind": "offset", "param": "offset", "limit_param": "limit", "limit": 100}
    frame, notes = fetch_http(http(api, "/offset", pagination=paged, max_rows=250), {})
    assert frame["id"].to_list() == list(range(250))
    assert notes == ["the fetch was cut at max_rows=250: the API has more rows; raise "
                     "data.source.max_rows to read them"]

    frame, notes = fetch_http(http(api, "/offset", pagination=paged, max_pages=2), {})
    assert frame.height == 200
    assert notes == ["the fetch was cut at max_pages=2 (200 rows): the API has more pages; raise "
                     "data.source.max_pages to read them"]


@pytest.mark.parametrize(("path", "fields", "match"), [
    ("/html", {}, r"the response is not JSON \(content-type text/html; it starts with b'<html><body>"),
    ("/next_body", {"records_path": "dta"},
     r"records_path 'dta' is not in the JSON body: the body has keys 'data', 'next'; did you mean 'data'\?"),
    ("/next_body", {"pagination": {"kind": "next_link", "next_path": "links.next"}, "records_path": "data"},
     r"pagination.next_path 'links.next' is not in the JSON body: the body has keys 'data', 'next'"),
    ("/scalars", {}, r"record 0 in the JSON body is a number \(1\), not an object"),
    ("/object", {}, r"the JSON body is an object \(keys 'status', 'count'\) with no list of objects"),
    ("/cursor", {"records_path": "meta"}, r"records_path 'meta' is an object, not a list of records"),
    ("/number_link", {"records_path": "data", "pagination": {"kind": "next_link", "next_path": "next"}},
     r"the next link at 'next' is 2, not a URL"),
    ("/bad_csv", {"format": "csv"}, r"cannot read the response as CSV: "),
    ("/csv_columns", {"format": "csv", "pagination": {"kind": "next_link"}},
     r"page 2's CSV header \(id, title\) differs from page 1's \(id, name\)"),
    ("/redirect", {}, r"the request failed: Exceeded maximum allowed redirects"),
    ("/ambiguous", {}, r"the JSON body is an object \(keys 'a', 'b'\) with lists of objects at 'a', 'b'"),
    ("/loop?page=1", {"records_path": "data", "pagination": {"kind": "next_link", "next_path": "next"}},
     r"page 2: pagination loop: the next link .*/loop\?page=1 was already read"),
    ("/cursor_loop", {"records_path": "items",
                      "pagination": {"kind": "cursor", "next_path": "next", "param": "c"}},
     r"pagination loop: the API returned cursor 'same' twice"),
    ("/ignored", {"pagination": {"kind": "page", "param": "p"}},
     r"page 2: pagination loop: this page repeats the previous page's records; the API seems to ignore "
     r"the 'p' parameter"),
])
def test_bad_responses_are_clear_errors(api: Api, path: str, fields: dict, match: str) -> None:
    with pytest.raises(DataError, match=match) as exc:
        fetch_http(http(api, path, **fields), {})
    assert exc.value.problems[0].loc == "data.source"


@pytest.mark.parametrize(("fields", "match"), [
    ({"pagination": {"kind": "cursor", "next_path": "next"}}, "pagination kind 'cursor' needs `param`"),
    ({"pagination": {"kind": "cursor", "param": "c"}}, "pagination kind 'cursor' needs `next_path`"),
    ({"pagination": {"kind": "offset"}}, "pagination kind 'offset' needs `param`"),
    ({"body": {"a": 1}}, "a body is sent only with method POST"),
    ({"format": "csv", "records_path": "data"}, "records_path applies to JSON bodies, not CSV"),
    ({"format": "csv", "pagination": {"kind": "next_link", "next_path": "next"}},
     "a CSV body has no path to read the next page from"),
])
def test_spec_rejects_inconsistent_http_sources(fields: dict, match: str) -> None:
    with pytest.raises(ValueError, match=match):
        HttpSource.model_validate({"kind": "http", "url": "http://h/x", **fields})


def test_pipeline_retrains_only_when_the_api_rows_change(api: Api, tmp_path: Path,
                                                         classification_frame: Callable) -> None:
    api.table = classification_frame(rows=300, seed=1).to_dicts()
    spec = tmp_path / "looml.yaml"
    spec.write_text(
        "seed: 3\n"
        "data:\n"
        f"  source: {{kind: http, url: '{api.url('/table')}',\n"
        "           pagination: {kind: offset, param: offset, limit_param: limit, limit: 100}}\n"
        "  target: label\n"
        "split: {folds: 2}\n"
        "models: {candidates: [linear]}\n"
        "registry: {model_name: web}\n"
    )
    first = looml.run(spec)
    assert all(s.status == "ran" for s in first.stages)

    second = looml.run(spec)
    status = {s.name: s.status for s in second.stages}
    assert status.pop("fetch") == "ran"
    assert set(status.values()) == {"cached"}, status

    api.table = api.table + classification_frame(rows=60, seed=2).to_dicts()
    third = looml.run(spec)
    status = {s.name: s.status for s in third.stages}
    assert status["ingest"] == status["train"] == "ran"
    assert third.model_version == "2"
