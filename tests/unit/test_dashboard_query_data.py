"""A panel query "has data" only when a series carries a number: NaN draws nothing."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, HTTPServer
from typing import Any

import pytest

from loanwatch.dashboards.check import instant_query

pytestmark = pytest.mark.unit


def _series(value: str) -> dict[str, Any]:
    return {"metric": {"le": "0.1"}, "value": [1_700_000_000.0, value]}


ANSWERS: dict[str, Any] = {
    "numbers": [_series("0.25"), _series("0")],
    "nan": [_series("NaN")],
    "mixed": [_series("NaN"), _series("3")],
    "none": [],
}


class _Prometheus(BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        query = self.path.split("query=", 1)[1]
        body = {"status": "success", "data": {"resultType": "vector", "result": ANSWERS[query]}}
        raw = json.dumps(body).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(raw)))
        self.end_headers()
        self.wfile.write(raw)

    def log_message(self, *args: Any) -> None:
        pass


@pytest.fixture
def prometheus() -> Iterator[str]:
    server = HTTPServer(("127.0.0.1", 0), _Prometheus)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_port}"
    server.shutdown()
    server.server_close()


@pytest.mark.parametrize(
    ("query", "count"), [("numbers", 2), ("nan", 0), ("mixed", 1), ("none", 0)]
)
def test_only_series_with_a_number_count_as_data(prometheus: str, query: str, count: int) -> None:
    assert instant_query(prometheus, query) == ("", count)
