"""Remote file sources through fsspec: S3 against a real moto server with IAM checks on, and HTTP
against a real `http.server`, both on 127.0.0.1."""

from __future__ import annotations

import functools
import importlib.util
import io
import json
import os
import socket
import threading
import urllib.request
from collections.abc import Iterator
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import polars as pl
import pytest

import looml
from external_tools import unavailable
from looml.data.sources import fetch, local_paths
from looml.data.sources.files import read_files
from looml.errors import DataError
from looml.spec import FileSource
from looml.store.artifacts import ArtifactStore

BUCKET, LOCKED = "looml-data", "looml-locked"
PARTS = [pl.DataFrame({"x": [i, i + 1], "label": ["a", "b"]}) for i in range(0, 6, 2)]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def parquet_bytes(frame: pl.DataFrame) -> bytes:
    buffer = io.BytesIO()
    frame.write_parquet(buffer)
    return buffer.getvalue()


@pytest.fixture(scope="module")
def s3() -> Iterator[dict[str, str]]:
    """A moto S3 + IAM server; a user who may read every bucket but LOCKED; authentication on."""
    boto3 = pytest.importorskip("boto3")
    from moto.server import ThreadedMotoServer

    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    endpoint = f"http://{host}:{port}"
    admin = {"endpoint_url": endpoint, "aws_access_key_id": "admin", "aws_secret_access_key": "admin",
             "region_name": "us-east-1"}
    client = boto3.client("s3", **admin)
    for bucket in (BUCKET, LOCKED):
        client.create_bucket(Bucket=bucket)
    objects = {f"parts/part-{i}.parquet": parquet_bytes(frame) for i, frame in enumerate(PARTS)}
    objects.update({
        "parts/.part-9.parquet": b"hidden",
        "parts/README.md": b"# not data",
        "csv/data.csv": b"x,label\n1,a\n2,b\n",
        "csv/ragged.csv": b"x,label\n1,a\n2\n3,c\n",
    })
    for key, body in objects.items():
        client.put_object(Bucket=BUCKET, Key=key, Body=body)
    client.put_object(Bucket=LOCKED, Key="data.csv", Body=b"x,label\n1,a\n")
    iam = boto3.client("iam", **admin)
    iam.create_user(UserName="reader")
    key = iam.create_access_key(UserName="reader")["AccessKey"]
    iam.put_user_policy(UserName="reader", PolicyName="read", PolicyDocument=json.dumps({
        "Version": "2012-10-17",
        "Statement": [
            {"Effect": "Allow", "Action": "s3:*", "Resource": "*"},
            {"Effect": "Deny", "Action": "s3:*",
             "Resource": [f"arn:aws:s3:::{LOCKED}", f"arn:aws:s3:::{LOCKED}/*"]},
        ],
    }))
    _moto_auth(endpoint, "0")  # from now on every request must be signed by a known key
    try:
        yield {"endpoint": endpoint, "key": key["AccessKeyId"], "secret": key["SecretAccessKey"]}
    finally:
        _moto_auth(endpoint, "inf")
        server.stop()


def _moto_auth(endpoint: str, unauthenticated_requests: str) -> None:
    request = urllib.request.Request(f"{endpoint}/moto-api/reset-auth", method="POST",
                                     data=unauthenticated_requests.encode(),
                                     headers={"Content-Type": "text/plain"})
    urllib.request.urlopen(request, timeout=10).read()


def s3_source(s3: dict[str, str], path: str, **options: Any) -> FileSource:
    storage = {"endpoint_url": s3["endpoint"], "key": "${LOOML_TEST_KEY}", "secret": "${LOOML_TEST_SECRET}"}
    return FileSource(path=path, storage_options=storage, **options)


def s3_env(s3: dict[str, str]) -> dict[str, str]:
    return {"LOOML_TEST_KEY": s3["key"], "LOOML_TEST_SECRET": s3["secret"]}


def read_s3(s3: dict[str, str], path: str, **options: Any) -> tuple[pl.DataFrame, list[str]]:
    return read_files(s3_source(s3, path, **options), Path("/nowhere"), s3_env(s3))


# --- S3 ------------------------------------------------------------------------------------------

def test_s3_single_csv_with_credentials_from_the_environment(s3: dict[str, str]) -> None:
    frame, notes = read_s3(s3, f"s3://{BUCKET}/csv/data.csv")

    assert frame.to_dicts() == [{"x": 1, "label": "a"}, {"x": 2, "label": "b"}]
    assert notes == []


def test_s3_glob_reads_the_matches_in_order_with_names_from_the_glob_root(s3: dict[str, str]) -> None:
    frame, _ = read_s3(s3, f"s3://{BUCKET}/parts/*.parquet", file_column="file")

    assert frame.drop("file").equals(pl.concat(PARTS))
    assert frame["file"].unique(maintain_order=True).to_list() == [f"part-{i}.parquet" for i in range(3)]


def test_s3_prefix_is_a_folder_of_data_files(s3: dict[str, str]) -> None:
    frame, _ = read_s3(s3, f"s3://{BUCKET}/parts/")

    assert frame.equals(pl.concat(PARTS))  # README.md and the dot-file left out


def test_s3_is_fetched_not_digested(s3: dict[str, str], monkeypatch: pytest.MonkeyPatch) -> None:
    source = s3_source(s3, f"s3://{BUCKET}/csv/data.csv")
    for name, value in s3_env(s3).items():
        monkeypatch.setenv(name, value)

    assert local_paths(source, Path("/nowhere")) is None
    assert fetch(source, Path("/nowhere")).frame.height == 2


def test_s3_malformed_csv_names_the_object(s3: dict[str, str]) -> None:
    with pytest.raises(DataError, match=r"1 line\(s\) of ragged\.csv do not have the header's 2 fields: "
                                        rf"line 3 has 1 \(got 's3://{BUCKET}/csv/ragged\.csv'\)"):
        read_s3(s3, f"s3://{BUCKET}/csv/ragged.csv")
    frame, notes = read_s3(s3, f"s3://{BUCKET}/csv/ragged.csv", skip_bad_lines=True)
    assert frame["x"].to_list() == [1, 3]
    assert notes == ["skipped 1 line(s) of ragged.csv that do not have the header's 2 fields: line 3"]


def test_s3_missing_key(s3: dict[str, str]) -> None:
    with pytest.raises(DataError, match=rf"data\.source\.path: not found \(.*\) \(got 's3://{BUCKET}/csv/"
                                        r"gone\.csv'\)\n\s+fix: check the bucket and key, or the URL"):
        read_s3(s3, f"s3://{BUCKET}/csv/gone.csv")


def test_s3_missing_bucket(s3: dict[str, str]) -> None:
    with pytest.raises(DataError, match=r"not found \(The specified bucket does not exist\) "
                                        r"\(got 's3://looml-nothing/data\.csv'\)"):
        read_s3(s3, "s3://looml-nothing/data.csv")


def test_s3_glob_matching_nothing(s3: dict[str, str]) -> None:
    with pytest.raises(DataError, match=rf"data\.source\.path: no data files found at the URL "
                                        rf"\(got 's3://{BUCKET}/parts/\*\.csv'\)\n"
                                        r"\s+fix: check data\.source\.path"):
        read_s3(s3, f"s3://{BUCKET}/parts/*.csv")


def test_s3_access_denied_never_shows_the_secret(s3: dict[str, str]) -> None:
    with pytest.raises(DataError, match=rf"access denied \(.*\) \(got 's3://{LOCKED}/data\.csv'\)\n\s+fix: "
                                        r"check the credentials in data\.source\.storage_options") as exc:
        read_s3(s3, f"s3://{LOCKED}/data.csv")
    assert s3["secret"] not in str(exc.value) and s3["secret"] not in json.dumps(exc.value.to_dict())


def test_s3_unknown_key_is_access_denied(s3: dict[str, str]) -> None:
    source = FileSource(path=f"s3://{BUCKET}/csv/data.csv",
                        storage_options={"endpoint_url": s3["endpoint"], "key": "AKIAUNKNOWN",
                                         "secret": "${LOOML_TEST_SECRET}"})

    with pytest.raises(DataError, match=r"access denied") as exc:
        read_files(source, Path("/nowhere"), {"LOOML_TEST_SECRET": "wrong-secret-value"})
    assert "wrong-secret-value" not in str(exc.value)


def test_s3_unreachable_endpoint(s3: dict[str, str]) -> None:
    source = FileSource(path=f"s3://{BUCKET}/csv/data.csv",
                        storage_options={"endpoint_url": f"http://127.0.0.1:{free_port()}",
                                         "key": "${LOOML_TEST_KEY}", "secret": "${LOOML_TEST_SECRET}"})

    with pytest.raises(DataError, match=rf"data\.source\.path: cannot reach the storage \(.*\) \(got "
                                        rf"'s3://{BUCKET}/csv/data\.csv'\)\n\s+fix: check the address in "
                                        r"data\.source\.path \(and storage_options\.endpoint_url") as exc:
        read_files(source, Path("/nowhere"), s3_env(s3))
    assert s3["secret"] not in str(exc.value)


def test_storage_option_the_filesystem_does_not_take(s3: dict[str, str]) -> None:
    source = FileSource(path=f"s3://{BUCKET}/csv/data.csv", storage_options={"endpoint": s3["endpoint"]})

    with pytest.raises(DataError, match=r"data\.source\.storage_options: an option this filesystem does "
                                        r"not take \(.*unexpected keyword argument 'endpoint'\) .*\n"
                                        r"\s+fix: check the option names; s3:// takes endpoint_url"):
        read_files(source, Path("/nowhere"), {})


def test_storage_option_from_an_unset_variable() -> None:
    source = FileSource(path="s3://bucket/data.csv", storage_options={"secret": "${LOOML_UNSET_SECRET}"})

    with pytest.raises(DataError, match=r"data\.source\.storage_options\.secret: environment variable "
                                        r"LOOML_UNSET_SECRET is not set .*\n\s+fix: export "
                                        r"LOOML_UNSET_SECRET=\.\.\. before running looml"):
        read_files(source, Path("/nowhere"), {})


@pytest.mark.parametrize(("url", "message"), [
    ("foo://bucket/data.csv", r"cannot open foo:// URLs: Protocol not known: foo"),
    ("gs://bucket/data.csv", r"cannot open gs:// URLs: .*gcsfs"),
])
def test_url_scheme_without_a_filesystem(url: str, message: str) -> None:
    if url.startswith("gs://") and importlib.util.find_spec("gcsfs") is not None:
        pytest.skip("gcsfs is installed here")

    with pytest.raises(DataError, match=rf"data\.source\.path: {message}.*\n\s+fix: install the fsspec "
                                        r"package for it \(s3fs for s3://, gcsfs for gs://"):
        read_files(FileSource(path=url), Path("/nowhere"), {})


# --- looml run from S3 -----------------------------------------------------------------------------

CORPUS = Path(os.environ.get("LOOML_CORPUS", Path(__file__).resolve().parents[3] / "shared" / "corpus"))
TABLE, TARGET = "biomass_heating_value", "HHV"  # 536 rows of a real table


def run_spec(source: str) -> str:
    return (f"seed: 7\ndata:\n  source:\n{source}  target: {TARGET}\nsplit:\n  folds: 2\n"
            "models:\n  candidates: [linear]\ntuning:\n  method: none\nregistry:\n  model_name: biomass\n")


def test_looml_run_from_s3_trains_on_the_rows_of_the_local_file(s3: dict[str, str], tmp_path: Path,
                                                                monkeypatch: pytest.MonkeyPatch) -> None:
    import boto3

    table = CORPUS / f"{TABLE}.parquet"
    if not table.is_file():
        unavailable(f"no corpus table at {table} (set LOOML_CORPUS to the corpus folder)")
    boto3.client("s3", endpoint_url=s3["endpoint"], aws_access_key_id=s3["key"],
                 aws_secret_access_key=s3["secret"], region_name="us-east-1").put_object(
        Bucket=BUCKET, Key=f"corpus/{TABLE}.parquet", Body=table.read_bytes())
    for name, value in s3_env(s3).items():
        monkeypatch.setenv(name, value)
    spec = tmp_path / "looml.yaml"
    (tmp_path / "data.parquet").write_bytes(table.read_bytes())
    spec.write_text(run_spec("    path: data.parquet\n"), encoding="utf-8")
    from_file = looml.run(spec)
    (tmp_path / "data.parquet").unlink()  # from now on the rows can only come from S3
    spec.write_text(run_spec(
        f"    path: s3://{BUCKET}/corpus/{TABLE}.parquet\n    storage_options:\n"
        f"      endpoint_url: {s3['endpoint']}\n      key: ${{LOOML_TEST_KEY}}\n"
        "      secret: ${LOOML_TEST_SECRET}\n"), encoding="utf-8")

    from_s3 = looml.run(spec)

    # The same rows in the same order: the snapshot's digest is the local file's, so the stages that
    # learn from the rows are the first run's (cached) and score the same.
    assert from_s3.data_digest == from_file.data_digest
    snapshot = pl.read_parquet(ArtifactStore(tmp_path / ".looml" / "artifacts").path(from_s3.data_digest))
    assert snapshot.equals(pl.read_parquet(table))
    status = {s.name: s.status for s in from_s3.stages}
    assert status["fetch"] == status["ingest"] == "ran"  # read from S3, not from a cache of the file
    assert [n for n in ("profile", "split", "train", "evaluate", "refit", "reference")
            if status[n] != "cached"] == []
    assert from_s3.metrics == from_file.metrics and from_s3.task == "regression"
    assert (from_file.model_version, from_s3.model_version) == ("1", "2")


# --- HTTP ----------------------------------------------------------------------------------------

class _Handler(SimpleHTTPRequestHandler):
    def do_GET(self) -> None:
        if self.path.startswith("/private/"):
            self.send_error(403, "Forbidden")
        else:
            super().do_GET()

    def log_message(self, format: str, *args: Any) -> None:  # keep the test output clean
        pass


@pytest.fixture(scope="module")
def http_root(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    pytest.importorskip("aiohttp", reason="fsspec's HTTP filesystem needs aiohttp")
    folder = tmp_path_factory.mktemp("www")
    (folder / "data.csv").write_text("x,label\n1,a\n2,b\n")
    pl.DataFrame({"x": [1, 2], "label": ["a", "b"]}).write_parquet(folder / "data.parquet")
    (folder / "latin1.csv").write_bytes("name,n\nZoë,1\n".encode("latin-1"))
    server = ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(_Handler, directory=str(folder)))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


@pytest.mark.parametrize("name", ["data.csv", "data.parquet", "data.csv?version=2"])
def test_http_file(http_root: str, name: str) -> None:
    frame, _ = read_files(FileSource(path=f"{http_root}/{name}", file_column="file"), Path("/nowhere"), {})

    assert frame.to_dicts() == [{"x": 1, "label": "a", "file": name.split("?")[0]},
                                {"x": 2, "label": "b", "file": name.split("?")[0]}]


def test_http_encoding_error_names_the_url(http_root: str) -> None:
    with pytest.raises(DataError, match=rf"latin1\.csv is not valid UTF-8 \(byte 0xeb at offset 9, line 2\) "
                                        rf"\(got '{http_root}/latin1\.csv'\)"):
        read_files(FileSource(path=f"{http_root}/latin1.csv"), Path("/nowhere"), {})
    frame, _ = read_files(FileSource(path=f"{http_root}/latin1.csv", encoding="latin1"), Path("/nowhere"), {})
    assert frame["name"].to_list() == ["Zoë"]


def test_http_not_found_hides_the_password_in_the_url(http_root: str) -> None:
    url = http_root.replace("http://", "http://reader:hunter2secret@") + "/gone.csv"

    with pytest.raises(DataError, match=r"not found \(http://\*\*\*@127\.0\.0\.1:\d+/gone\.csv\) "
                                        r"\(got 'http://\*\*\*@127\.0\.0\.1:\d+/gone\.csv'\)") as exc:
        read_files(FileSource(path=url), Path("/nowhere"), {})
    assert "hunter2secret" not in str(exc.value)


def test_http_forbidden_hides_the_password_in_the_url(http_root: str) -> None:
    url = http_root.replace("http://", "http://reader:hunter2secret@") + "/private/data.csv"

    with pytest.raises(DataError, match=r"access denied \(.*\) \(got 'http://\*\*\*@127\.0\.0\.1:\d+/private/"
                                        r"data\.csv'\)") as exc:
        read_files(FileSource(path=url), Path("/nowhere"), {})
    assert "hunter2secret" not in str(exc.value)


def test_http_unreachable() -> None:
    pytest.importorskip("aiohttp", reason="fsspec's HTTP filesystem needs aiohttp")
    url = f"http://127.0.0.1:{free_port()}/data.csv"

    with pytest.raises(DataError, match=r"cannot reach the storage \(ClientConnectorError: .*\) "
                                        rf"\(got '{url}'\)"):
        read_files(FileSource(path=url), Path("/nowhere"), {})
