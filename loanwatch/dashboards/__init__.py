"""Grafana dashboards as code: build the reviewed JSON, check it against Prometheus, push it.

Importing this package must stay cheap (no Grafana client, no network): the CLI loads the
submodules it needs when a command runs.
"""
