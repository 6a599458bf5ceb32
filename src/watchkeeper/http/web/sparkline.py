"""Small inline SVG charts drawn on the server: no script needed, 1,000 of them render fast."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol


class Bucket(Protocol):
    @property
    def count(self) -> int: ...
    @property
    def available(self) -> int: ...
    @property
    def avg_response_time(self) -> float | None: ...


def bucket_class(point: Bucket) -> str:
    if point.count == 0:
        return "b-none"
    if point.available == point.count:
        return "b-up"
    return "b-down" if point.available == 0 else "b-part"


def sparkline(points: Sequence[Bucket], width: int = 120, height: int = 24) -> str:
    """Bars: height is the bucket's mean response time, colour its availability.

    One path per colour keeps a row's chart near half a kilobyte: the overview of 1,000
    checks stays a page a browser loads quickly."""
    if not points:
        return ""
    peak = max((p.avg_response_time or 0.0 for p in points), default=0.0) or 1.0
    step = width / len(points)
    bar = max(round(step - 1, 1), 1)
    paths: dict[str, list[str]] = {}
    for i, point in enumerate(points):
        value = point.avg_response_time or 0.0
        if point.count == 0:
            h = 2.0
        elif not value:
            h = float(height)  # no timing (e.g. all down): a full bar in the state's colour
        else:
            h = max(2.0, height * value / peak)
        paths.setdefault(bucket_class(point), []).append(
            f"M{i * step:.1f} {height}v-{h:.1f}h{bar}v{h:.1f}z"
        )
    body = "".join(f'<path class="{cls}" d="{"".join(d)}"/>' for cls, d in paths.items())
    return (
        f'<svg class="spark" viewBox="0 0 {width} {height}" width="{width}" height="{height}" '
        f'aria-hidden="true">{body}</svg>'
    )


def timeline(points: Sequence[Bucket], width: int = 600, height: int = 14) -> str:
    """A strip of buckets coloured by availability: the state over a range at a glance."""
    if not points:
        return ""
    step = width / len(points)
    parts = [
        f'<svg class="timeline" viewBox="0 0 {width} {height}" preserveAspectRatio="none" '
        f'height="{height}" role="img" aria-label="availability timeline">'
    ]
    parts.extend(
        f'<rect class="{bucket_class(p)}" x="{i * step:.2f}" y="0" width="{step + 0.05:.2f}" '
        f'height="{height}"/>'
        for i, p in enumerate(points)
    )
    parts.append("</svg>")
    return "".join(parts)
