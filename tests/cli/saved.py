"""Requests from `tests.samples` written in the three input formats `check` reads."""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import replace
from typing import Any

from tests.samples import Sample

HOST = "https://api.vipps.no"


def jsonl(samples: Sequence[Sample]) -> str:
    """One JSON object a line; the body as the exact text of the sample."""
    lines = [
        json.dumps(
            {"method": s.method, "path": s.path, "headers": s.headers, "body": s.body.decode()}
        )
        for s in samples
    ]
    return "\n".join(lines) + "\n"


def har(samples: Sequence[Sample], *, seconds_apart: float = 0.0, extra: Any = ()) -> str:
    """A HAR 1.2 log with one entry per sample, `seconds_apart` seconds apart."""
    entries = []
    for index, s in enumerate(samples):
        at = 1_764_990_000.0 + index * seconds_apart
        started = f"2025-12-06T{int(at % 86400 // 3600):02d}:{int(at % 3600 // 60):02d}:"
        started += f"{at % 60:06.3f}Z"
        request: dict[str, Any] = {
            "method": s.method,
            "url": HOST + s.path,
            "httpVersion": "HTTP/1.1",
            "headers": [{"name": k, "value": v} for k, v in s.headers.items()],
            "queryString": [],
            "cookies": [],
            "headersSize": -1,
            "bodySize": len(s.body),
        }
        if s.body:
            request["postData"] = {"mimeType": "application/json", "text": s.body.decode()}
        entries.append(
            {
                "startedDateTime": started,
                "time": 50,
                "request": request,
                "response": {"status": 200, "statusText": "OK", "httpVersion": "HTTP/1.1",
                             "headers": [], "cookies": [], "content": {"size": 0, "mimeType":
                             "application/json"}, "redirectURL": "", "headersSize": -1,
                             "bodySize": 0},
                "cache": {},
                "timings": {"send": 1, "wait": 48, "receive": 1},
            }
        )  # fmt: skip
    entries.extend(extra)
    log = {"log": {"version": "1.2", "creator": {"name": "test", "version": "1"},
                   "entries": entries}}  # fmt: skip
    return json.dumps(log, indent=2)


def http(samples: Sequence[Sample]) -> str:
    """HTTP/1.1 request messages, separated by `###` lines as in `.http` files."""
    messages = []
    for s in samples:
        head = [f"{s.method} {s.path} HTTP/1.1", "Host: api.vipps.no"]
        head += [f"{k}: {v}" for k, v in s.headers.items()]
        if s.body:
            head.append(f"Content-Length: {len(s.body)}")
        messages.append("\r\n".join(head) + "\r\n\r\n" + s.body.decode() + "\r\n")
    return "###\r\n".join(messages)


def with_json(sample: Sample, **changes: Any) -> Sample:
    """A copy whose JSON body has top-level fields changed."""
    return replace(sample, json={**sample.json, **changes}, raw=None)
