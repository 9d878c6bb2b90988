"""Classified treatment (issue 18): segments, treatment paths and champion-challenger arms.

``config`` loads ``strategies.yaml``; ``segments`` and ``arms`` are pure functions of a loan's
view and context; ``tracker`` runs beside an engine and turns segment changes and due actions
into alerts. Nothing here imports Faust, Kafka, Redis or Prometheus.
"""
