"""Multipart uploads, parsed in memory (no temporary files)."""

from __future__ import annotations

from typing import Any

from propscan.serve.problems import Problem, shorten
from propscan.serve.schemas import MAX_ID

_MAX_UPLOAD_FIELDS = 32


def parse_multipart(body: bytes, content_type: str) -> tuple[list[tuple[str, str]], list[tuple[str, str, bytes]]]:
    """-> (fields [(name, value)], files [(name, filename, data)]). Raises Problem(400) for a bad body."""
    from python_multipart.multipart import MultipartParser, parse_options_header

    _, params = parse_options_header(content_type)
    boundary = params.get(b"boundary")
    if not boundary:
        raise Problem(400, "the multipart/form-data body has no boundary", kind="bad-multipart")
    fields: list[tuple[str, str]] = []
    files: list[tuple[str, str, bytes]] = []
    part: dict[str, Any] = {}
    header = [b"", b""]

    def begin() -> None:
        part.clear()
        part.update(data=bytearray(), disposition=b"")

    def data(buf: bytes, start: int, end: int) -> None:
        part["data"] += buf[start:end]

    def header_field(buf: bytes, start: int, end: int) -> None:
        header[0] += buf[start:end]

    def header_value(buf: bytes, start: int, end: int) -> None:
        header[1] += buf[start:end]

    def header_end() -> None:
        if header[0].lower() == b"content-disposition":
            part["disposition"] = header[1]
        header[0] = header[1] = b""

    def end() -> None:
        _, opts = parse_options_header(part["disposition"])
        if b"name" not in opts:
            raise Problem(400, 'a multipart part has no Content-Disposition "name"', kind="bad-multipart")
        name = opts[b"name"].decode("utf-8", "replace")
        if len(fields) + len(files) >= _MAX_UPLOAD_FIELDS:
            raise Problem(400, f"more than {_MAX_UPLOAD_FIELDS} form fields", kind="bad-multipart")
        if b"filename" in opts:
            files.append((name, opts[b"filename"].decode("utf-8", "replace"), bytes(part["data"])))
        else:
            fields.append((name, part["data"].decode("utf-8", "replace")))

    callbacks = {
        "on_part_begin": begin, "on_part_data": data, "on_part_end": end,
        "on_header_field": header_field, "on_header_value": header_value, "on_header_end": header_end,
    }
    try:
        parser = MultipartParser(boundary, callbacks)  # type: ignore[arg-type]
        parser.write(body)
        parser.finalize()
    except Problem:
        raise
    except Exception as e:  # the parser's own errors: a malformed body
        raise Problem(400, f"malformed multipart/form-data body ({shorten(e, 100)})", kind="bad-multipart") from None
    return fields, files


def base_name(filename: str) -> str:
    name = filename.replace("\\", "/").rsplit("/", 1)[-1]  # browsers send a bare name; some tools a path
    name = "".join(ch for ch in name if ch.isprintable())
    return name[:MAX_ID]
