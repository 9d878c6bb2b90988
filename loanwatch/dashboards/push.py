"""Upload the dashboards to a Grafana through its HTTP API (``grafana-client``).

Dashboards go into one folder (``loanwatch`` by default, created when missing) and overwrite
the version in Grafana: the JSON in git is the source of truth.

This module must never read credentials from anywhere but its arguments, and never delete.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from loanwatch.dashboards.model import Json

FOLDER_TITLE = "loanwatch"
FOLDER_UID = "loanwatch"


def push(
    boards: Mapping[str, Json], url: str, token: str | None, folder: str = FOLDER_TITLE
) -> list[str]:
    """Upload every dashboard; return the URLs Grafana reports for them."""
    from grafana_client.api import GrafanaApi

    api = GrafanaApi.from_url(url, credential=token) if token else GrafanaApi.from_url(url)
    folder_uid = ensure_folder(api, folder)
    urls = []
    for board in boards.values():
        payload = {
            "dashboard": {**board, "id": None},
            "folderUid": folder_uid,
            "overwrite": True,
            "message": "loanwatch dashboards push",
        }
        result = api.dashboard.update_dashboard(payload)
        urls.append(str(result.get("url", board["uid"])))
    return urls


def ensure_folder(api: Any, title: str) -> str:
    """The uid of the folder called ``title``, created when missing."""
    for existing in api.folder.get_all_folders():
        if existing.get("title") == title:
            return str(existing["uid"])
    uid = FOLDER_UID if title == FOLDER_TITLE else None
    created = api.folder.create_folder(title, uid=uid)
    return str(created["uid"])
