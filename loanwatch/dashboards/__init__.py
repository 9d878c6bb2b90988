"""Grafana dashboards as code: build, check against Prometheus, push."""
