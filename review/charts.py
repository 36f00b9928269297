"""Charts drawn as inline SVG on the server (the console runs no scripts)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

from markupsafe import Markup, escape

if TYPE_CHECKING:
    from review.overview import TrendPoint


def bar_chart(rows: Sequence[tuple[str, int | None]], width: int = 640, bar_h: int = 18) -> Markup:
    """Horizontal bars of percentages (coverage per office); bars over 100% are drawn in the alert colour."""
    label_w, gap = 120, 6
    h = max(1, len(rows)) * (bar_h + gap) + 24
    span = width - label_w - 60
    parts = [
        f'<svg class="chart" role="img" aria-label="注册单位覆盖率" xmlns="http://www.w3.org/2000/svg" '
        f'width="{width}" height="{h}" viewBox="0 0 {width} {h}">'
    ]
    for i, (name, pct) in enumerate(rows):
        y = i * (bar_h + gap) + 4
        value = 0 if pct is None else pct
        w = int(span * min(value, 100) / 100)
        fill = "#b3261e" if value > 100 else "#1f5fa8"
        parts.append(
            f'<text x="{label_w - 6}" y="{y + bar_h - 4}" text-anchor="end" font-size="12">'
            f"{escape(name)}</text>"
        )
        parts.append(f'<rect x="{label_w}" y="{y}" width="{w}" height="{bar_h}" fill="{fill}"/>')
        shown = "—" if pct is None else f"{pct}%"
        parts.append(f'<text x="{label_w + w + 4}" y="{y + bar_h - 4}" font-size="12">{shown}</text>')
    axis_y = len(rows) * (bar_h + gap) + 8
    parts.append(f'<line x1="{label_w}" y1="{axis_y}" x2="{label_w + span}" y2="{axis_y}" stroke="#999"/>')
    parts.append(f'<text x="{label_w + span}" y="{axis_y + 14}" text-anchor="end" font-size="11">100%</text>')
    parts.append("</svg>")
    return Markup("".join(parts))


def trend_chart(points: Sequence[TrendPoint], width: int = 640, height: int = 180) -> Markup:
    """Share of judged badge verdicts that passed, per scan (oldest left)."""
    if not points:
        return Markup("")
    left, bottom, top = 40, 28, 10
    span_x = width - left - 20
    span_y = height - bottom - top
    step = span_x / max(1, len(points) - 1)
    coords = []
    for i, p in enumerate(points):
        pct = p.pass_pct
        if pct is None:
            continue
        coords.append((left + i * step, top + span_y * (1 - pct / 100), p, pct))
    parts = [
        '<svg class="chart" role="img" aria-label="网站标识核实通过率趋势" '
        'xmlns="http://www.w3.org/2000/svg" '
        f'width="{width}" height="{height}" viewBox="0 0 {width} {height}">',
        f'<line x1="{left}" y1="{top + span_y}" x2="{left + span_x}" y2="{top + span_y}" stroke="#999"/>',
        f'<line x1="{left}" y1="{top}" x2="{left}" y2="{top + span_y}" stroke="#999"/>',
        f'<text x="{left - 4}" y="{top + 8}" text-anchor="end" font-size="11">100%</text>',
        f'<text x="{left - 4}" y="{top + span_y}" text-anchor="end" font-size="11">0%</text>',
    ]
    if len(coords) > 1:
        path = " ".join(f"{x:.1f},{y:.1f}" for x, y, _, _ in coords)
        parts.append(f'<polyline points="{path}" fill="none" stroke="#1f5fa8" stroke-width="2"/>')
    for x, y, p, pct in coords:
        parts.append(
            f'<circle cx="{x:.1f}" cy="{y:.1f}" r="3" fill="#1f5fa8"><title>巡检{p.scan_id}：'
            f"{pct:.0f}%</title></circle>"
        )
    for i, p in enumerate(points):
        parts.append(
            f'<text x="{left + i * step:.1f}" y="{height - 8}" text-anchor="middle" font-size="11">'
            f"#{p.scan_id}</text>"
        )
    parts.append("</svg>")
    return Markup("".join(parts))
