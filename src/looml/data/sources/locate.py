"""Which files a file source names: a local file, a glob, a folder, or an fsspec URL (s3://, gs://,
https://, ...), listed and, for a URL, fetched whole into memory.

    local_files(source, base_dir) -> [File]   (sorted; DataError when a glob or folder holds none)
    remote_files(source, env)     -> [File]   (their bytes fetched; errors name the URL, never a secret)
    is_remote(path) -> bool;  FORMATS: extension -> format
"""

from __future__ import annotations

import io
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path, PurePath, PurePosixPath
from typing import Any

from looml.errors import DataError, Problem
from looml.spec import FileSource

__all__ = ["FORMATS", "File", "is_remote", "local_files", "remote_files"]

FORMATS = {".csv": "csv", ".tsv": "csv", ".txt": "csv", ".parquet": "parquet", ".pq": "parquet",
           ".ndjson": "ndjson", ".jsonl": "ndjson", ".xlsx": "excel", ".xlsm": "excel",
           ".xlsb": "excel", ".xls": "excel", ".ods": "excel"}

_GLOB = re.compile(r"[*?\[]")
_SCHEME = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]*://")
_VAR = re.compile(r"\$\{(\w+)\}")
_SECRET_KEY = re.compile(r"key|secret|token|password|credential|session", re.IGNORECASE)


@dataclass(frozen=True)
class File:
    """One file to read: its name relative to the glob root, where it is (for errors), its bytes."""

    name: str
    where: str
    path: Path | None = None
    data: bytes | None = None

    def raw(self) -> bytes:
        return self.data if self.data is not None else self.path.read_bytes()  # type: ignore[union-attr]

    def handle(self) -> Path | io.BytesIO:
        return self.path if self.data is None else io.BytesIO(self.data)  # type: ignore[return-value]


def is_remote(path: str) -> bool:
    return bool(_SCHEME.match(path)) and not path.startswith("file://")


def _visible(relative: PurePath) -> bool:
    """Not a dot-file (our own temp files are dot-files too), nor an Office lock file (~$book.xlsx)."""
    return not any(part.startswith((".", "~$")) for part in relative.parts)


def _wanted(name: str, declared: str) -> bool:
    fmt = FORMATS.get(PurePosixPath(name).suffix.lower())
    return fmt is not None and declared in ("auto", fmt)


def local_files(source: FileSource, base_dir: Path) -> list[File]:
    text = source.path.removeprefix("file://")
    path = Path(text).expanduser()
    path = path if path.is_absolute() else base_dir / path
    if _GLOB.search(text):
        first = next(i for i, part in enumerate(path.parts) if _GLOB.search(part))
        root, pattern = Path(*path.parts[:first]), str(PurePath(*path.parts[first:]))
        found = [p for p in root.glob(pattern) if p.is_file() and _visible(p.relative_to(root))] \
            if root.is_dir() else []
        searched, fix = f"{root} for {pattern!r}", ("check data.source.path (relative paths start at the "
                                                     "spec's folder); '**/' in a glob takes in subfolders")
    elif path.is_dir():
        root = path
        found = [p for p in path.iterdir() if p.is_file() and _visible(p.relative_to(root))
                 and _wanted(p.name, source.format)]
        kinds = "files" if source.format == "auto" else f"{source.format} files"
        searched, fix = f"folder {root} for {kinds} ({', '.join(sorted(FORMATS))}; not subfolders)", (
            "put data files in the folder, or name them with a glob such as 'folder/*.dat' "
            "(and set data.source.format); 'folder/**/*.csv' takes in subfolders")
    else:
        return [File(path.name, str(path), path)]
    if not found:
        message = f"no data files found: searched {searched}"
        if not root.is_dir():
            message += ", which is not an existing folder"
        else:
            there = sorted(p.name for p in root.iterdir())
            if there:
                message += f"; it holds {', '.join(there[:8])}{' ...' if len(there) > 8 else ''}"
        raise DataError(Problem(loc="data.source.path", value=source.path, message=message, fix=fix))
    found.sort(key=lambda p: p.relative_to(root).as_posix())
    return [File(p.relative_to(root).as_posix(), str(p), p) for p in found]


def _redact(url: str) -> str:
    """The URL without a user:password part."""
    return re.sub(r"(://)[^/@]*@", r"\1***@", url)


def _storage_options(source: FileSource, env: Mapping[str, str]) -> tuple[dict[str, Any], list[str]]:
    """fsspec options with '${VAR}' read from `env`, and the values that must never be shown."""
    options: dict[str, Any] = {}
    secrets: list[str] = []
    problems = []
    for key, value in source.storage_options.items():
        missing = [name for name in _VAR.findall(value) if name not in env]
        problems += [Problem(loc=f"data.source.storage_options.{key}", value=value,
                             message=f"environment variable {name} is not set",
                             fix=f"export {name}=... before running looml") for name in missing]
        expanded = _VAR.sub(lambda m: env.get(m.group(1), ""), value)
        if expanded != value or _SECRET_KEY.search(key):
            secrets.append(expanded)
        options[key] = {"true": True, "false": False}.get(expanded.lower(), expanded)
    if problems:
        raise DataError(problems)
    return options, [s for s in secrets if len(s) >= 3]


def remote_files(source: FileSource, env: Mapping[str, str]) -> list[File]:
    import fsspec

    url = source.path
    shown = _redact(url)
    protocol = url.split("://", 1)[0].lower()
    options, secrets = _storage_options(source, env)
    if protocol in ("s3", "s3a"):
        # botocore's default retries make an unreachable endpoint take 10 s to report.
        options.setdefault("config_kwargs", {"connect_timeout": 10, "read_timeout": 120,
                                             "retries": {"max_attempts": 3, "mode": "standard"}})
    try:
        fs, root = fsspec.core.url_to_fs(url, **options)
    except (ImportError, ValueError) as exc:
        raise DataError(Problem(
            loc="data.source.path", value=shown, message=f"cannot open {protocol}:// URLs: {exc}",
            fix="install the fsspec package for it (s3fs for s3://, gcsfs for gs://, adlfs for az://)",
        )) from exc
    try:
        if protocol in ("http", "https"):  # '?' is a query string here, not a glob
            keys = [(PurePosixPath(url.split("?", 1)[0]).name, root)]
        elif _GLOB.search(root):
            parts = root.split("/")
            base = "/".join(parts[:next(i for i, p in enumerate(parts) if _GLOB.search(p))])
            keys = _keys(fs.glob(root, detail=True).values(), base, lambda name: True)
        elif fs.isdir(root):
            keys = _keys(fs.ls(root, detail=True), root, lambda name: _wanted(name, source.format))
        else:
            keys = [(PurePosixPath(root).name, root)]
        if not keys:
            raise DataError(Problem(loc="data.source.path", value=shown,
                                    message="no data files found at the URL",
                                    fix="check data.source.path; a folder needs files with a known "
                                        f"extension ({', '.join(sorted(FORMATS))})"))
        return [File(name, shown if protocol in ("http", "https") else f"{protocol}://{key}",
                      data=fs.cat_file(key)) for name, key in keys]
    except DataError:
        raise
    except Exception as exc:  # fsspec back-ends raise their own client errors
        raise _remote_error(exc, shown, secrets) from exc


def _keys(entries: Any, base: str, wanted: Callable[[str], bool]) -> list[tuple[str, str]]:
    keys = []
    for entry in entries:
        key = entry["name"].rstrip("/")
        name = key[len(base):].lstrip("/") if key.startswith(base) else PurePosixPath(key).name
        if entry.get("type") != "directory" and _visible(PurePosixPath(name)) and wanted(name):
            keys.append((name, key))
    return sorted(keys)


def _remote_error(exc: Exception, shown: str, secrets: list[str]) -> DataError:
    cause = _redact((str(exc).strip().splitlines() or [type(exc).__name__])[0])
    for secret in secrets:
        cause = cause.replace(secret, "***")
    if isinstance(exc, TypeError) and "unexpected keyword argument" in cause:
        return DataError(Problem(
            loc="data.source.storage_options", value=shown,
            message=f"an option this filesystem does not take ({cause})",
            fix="check the option names; s3:// takes endpoint_url, key, secret, token, anon, "
                "region_name among others (see the s3fs / fsspec docs)"))
    if isinstance(exc, FileNotFoundError):
        message, fix = f"not found ({cause})", "check the bucket and key, or the URL, in data.source.path"
    elif isinstance(exc, PermissionError) or getattr(exc, "status", None) in (401, 403):
        message, fix = f"access denied ({cause})", (
            "check the credentials in data.source.storage_options (key and secret, read from the "
            "environment with '${VAR}') and that they may read this bucket or URL")
    else:
        message, fix = f"cannot reach the storage ({type(exc).__name__}: {cause})", (
            "check the address in data.source.path (and storage_options.endpoint_url for an "
            "S3-compatible store), and that the server is up and reachable from here")
    return DataError(Problem(loc="data.source.path", value=shown, message=message, fix=fix))
