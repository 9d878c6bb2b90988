"""``dashboards push`` with the real grafana-client against a fake Grafana on loopback."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
from click.testing import CliRunner

from loanwatch.dashboards.build import BUILDERS
from loanwatch.dashboards.cli import dashboards

pytestmark = pytest.mark.unit


class FakeGrafana(ThreadingHTTPServer):
    """Answers the three API calls push makes and records every request."""

    def __init__(self, folders: list[dict[str, Any]]) -> None:
        super().__init__(("127.0.0.1", 0), Handler)
        self.folders = folders
        self.requests: list[tuple[str, str, dict[str, str], Any]] = []


class Handler(BaseHTTPRequestHandler):
    server: FakeGrafana

    def log_message(self, format: str, *args: Any) -> None:  # quiet
        pass

    def _reply(self, body: Any) -> None:
        data = json.dumps(body).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def _record(self) -> Any:
        length = int(self.headers.get("Content-Length") or 0)
        body = json.loads(self.rfile.read(length)) if length else None
        self.server.requests.append((self.command, self.path, dict(self.headers), body))
        return body

    def do_GET(self) -> None:
        self._record()
        self._reply(self.server.folders)

    def do_POST(self) -> None:
        body = self._record()
        if self.path == "/api/folders":
            folder = {"id": 7, "uid": body.get("uid") or "generated", "title": body["title"]}
            self.server.folders.append(folder)
            self._reply(folder)
        else:
            uid = body["dashboard"]["uid"]
            self._reply({"status": "success", "uid": uid, "url": f"/d/{uid}/x", "version": 1})


@pytest.fixture
def grafana() -> Iterator[FakeGrafana]:
    server = FakeGrafana(folders=[])
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server
    server.shutdown()
    server.server_close()
    thread.join(timeout=5)


def test_push_creates_the_folder_and_overwrites_every_dashboard(grafana: FakeGrafana) -> None:
    url = f"http://127.0.0.1:{grafana.server_address[1]}"
    result = CliRunner().invoke(dashboards, ["push", "--url", url, "--token", "s3cr3t"])
    assert result.exit_code == 0, result.output
    calls = [(method, path) for method, path, _, _ in grafana.requests]
    assert calls[:2] == [("GET", "/api/folders"), ("POST", "/api/folders")]
    uploads = [body for method, path, _, body in grafana.requests if path == "/api/dashboards/db"]
    assert len(uploads) == len(BUILDERS)
    for body in uploads:
        assert body["overwrite"] is True
        assert body["folderUid"] == "loanwatch"
        assert body["dashboard"]["id"] is None
    assert all(h.get("Authorization") == "Bearer s3cr3t" for _, _, h, _ in grafana.requests)
    assert result.output.count("pushed /d/") == len(BUILDERS)


def test_push_reuses_an_existing_folder(grafana: FakeGrafana) -> None:
    grafana.folders.append({"id": 3, "uid": "abc", "title": "loanwatch"})
    url = f"http://127.0.0.1:{grafana.server_address[1]}"
    result = CliRunner().invoke(dashboards, ["push", "--url", url, "--token", "t"])
    assert result.exit_code == 0, result.output
    assert not any(p == "/api/folders" and m == "POST" for m, p, _, _ in grafana.requests)
    uploads = [b for _, p, _, b in grafana.requests if p == "/api/dashboards/db"]
    assert {b["folderUid"] for b in uploads} == {"abc"}
