"""Bounded ``product`` and ``region`` label values: a configured allow-list, the rest ``other``.

Product and region arrive in the loan events, so without a bound a typo or a new code in the feed
would create new series forever. :class:`LabelAllowList` folds any value outside its lists into
:data:`OTHER`; ``config/metrics.yaml`` configures it and :data:`DEFAULT_LABELS` equals the shipped
file. This module must never read a file at import time, and never let an unlisted value through.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

import yaml

OTHER: Final = "other"
#: What the pipeline counts when an event's loan is unknown: a fixed value, always kept.
UNKNOWN: Final = "unknown"
#: Most values per label: each one multiplies every product/region series.
MAX_VALUES: Final = 50
DEFAULT_PATH = Path(__file__).resolve().parents[2] / "config" / "metrics.yaml"


class LabelsError(ValueError):
    """metrics.yaml is invalid: fix the key named in the message and restart."""


@dataclass(frozen=True, slots=True)
class LabelAllowList:
    """The product and region values that may become label values."""

    products: frozenset[str]
    regions: frozenset[str]

    def product(self, value: str) -> str:
        """``value`` if listed (or ``unknown``), else ``other``."""
        return value if value in self.products or value == UNKNOWN else OTHER

    def region(self, value: str) -> str:
        """``value`` if listed (or ``unknown``), else ``other``."""
        return value if value in self.regions or value == UNKNOWN else OTHER


DEFAULT_LABELS: Final = LabelAllowList(
    products=frozenset({"consumer", "auto", "sme", "mortgage"}),
    regions=frozenset({"east", "north", "south", "west", "central"}),
)


def _values(labels: Mapping[str, Any], key: str) -> frozenset[str]:
    raw = labels.get(key)
    where = f"metrics key 'labels.{key}'"
    if not isinstance(raw, list) or not raw:
        raise LabelsError(f"{where}: expected a non-empty list of values, got {raw!r}")
    if len(raw) > MAX_VALUES:
        raise LabelsError(f"{where}: at most {MAX_VALUES} values, got {len(raw)}")
    for value in raw:
        if not isinstance(value, str) or not value.strip() or value in (OTHER, UNKNOWN):
            raise LabelsError(
                f"{where}: every value must be a non-empty string other than "
                f"{OTHER!r} and {UNKNOWN!r}, got {value!r}"
            )
    duplicates = sorted({v for v in raw if raw.count(v) > 1})
    if duplicates:
        raise LabelsError(f"{where}: duplicated values {duplicates}")
    return frozenset(raw)


def labels_from_mapping(doc: Mapping[str, Any]) -> LabelAllowList:
    """Build the allow-list from a parsed metrics.yaml mapping; every key is required."""
    unknown = sorted(set(doc) - {"labels"})
    if unknown:
        raise LabelsError(f"metrics: unknown keys {unknown}")
    labels = doc.get("labels")
    if not isinstance(labels, Mapping):
        raise LabelsError(f"metrics key 'labels': expected a mapping, got {labels!r}")
    unknown = sorted(set(labels) - {"product", "region"})
    if unknown:
        raise LabelsError(f"metrics key 'labels': unknown keys {unknown} (known: product, region)")
    return LabelAllowList(products=_values(labels, "product"), regions=_values(labels, "region"))


def load_labels(path: Path = DEFAULT_PATH) -> LabelAllowList:
    """Read and validate ``metrics.yaml`` (a folder means its ``metrics.yaml``)."""
    target = path / "metrics.yaml" if path.is_dir() else path
    try:
        doc = yaml.safe_load(target.read_text(encoding="utf-8"))
    except OSError as exc:
        raise LabelsError(f"cannot read metrics file {target}: {exc}") from exc
    except yaml.YAMLError as exc:
        raise LabelsError(f"metrics file {target} is not valid YAML: {exc}") from exc
    if not isinstance(doc, Mapping):
        raise LabelsError(f"metrics file {target}: expected a mapping at the top level")
    return labels_from_mapping(doc)
