"""Small charts drawn on the server as SVG: no script, readable without JS and on a phone."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timedelta
from html import escape

# outcome → colour class; the stylesheet gives the colours
SERIES = (
    ("delivered", "ok"),
    ("duplicate", "ok"),
    ("throttled", "warn"),
    ("unavailable", "warn"),
    ("unauthorized", "bad"),
    ("rejected", "bad"),
    ("local_error", "bad"),
)
GROUPS = (
    ("ok", ("delivered", "duplicate")),
    ("warn", ("throttled", "unavailable")),
    ("bad", ("unauthorized", "rejected", "local_error")),
)


def hour_slots(now: datetime, hours: int = 24) -> list[datetime]:
    """The starts of the last ``hours`` whole hours, oldest first, the current one included."""
    top = now.replace(minute=0, second=0, microsecond=0)
    return [top - timedelta(hours=h) for h in range(hours - 1, -1, -1)]


def stacked_bars(
    slots: list[datetime],
    data: dict[datetime, dict[str, int]],
    label: str,
    hour_label: Callable[[datetime], str] | None = None,
    width: int = 720,
    height: int = 160,
) -> str:
    """An SVG of one stacked bar per slot: ok (delivered), warn (retrying), bad (failed)."""
    pad_left, pad_bottom, pad_top = 40, 18, 8
    plot_w, plot_h = width - pad_left - 4, height - pad_bottom - pad_top
    totals = [
        {group: sum(data.get(s, {}).get(o, 0) for o in outcomes) for group, outcomes in GROUPS}
        for s in slots
    ]
    peak = max((sum(t.values()) for t in totals), default=0) or 1
    bar_w = plot_w / max(len(slots), 1)
    parts = [
        f'<svg class="chart" viewBox="0 0 {width} {height}" role="img" '
        f'aria-label="{escape(label)}" xmlns="http://www.w3.org/2000/svg">',
        f'<text class="axis" x="{pad_left - 4}" y="{pad_top + 8}" text-anchor="end">{peak}</text>',
        f'<text class="axis" x="{pad_left - 4}" y="{pad_top + plot_h}" text-anchor="end">0</text>',
        f'<line class="axis" x1="{pad_left}" y1="{pad_top + plot_h}" x2="{width - 4}" '
        f'y2="{pad_top + plot_h}"/>',
    ]
    for i, (slot, total) in enumerate(zip(slots, totals, strict=True)):
        x = pad_left + i * bar_w
        y = float(pad_top + plot_h)
        name = hour_label(slot) if hour_label else slot.strftime("%H:%M")
        title = ", ".join(f"{g} {n}" for g, n in total.items() if n) or "0"
        parts.append(f"<g><title>{escape(name)}: {escape(title)}</title>")
        for group, count in total.items():
            if not count:
                continue
            h = plot_h * count / peak
            y -= h
            parts.append(
                f'<rect class="bar {group}" x="{x + 1:.1f}" y="{y:.1f}" '
                f'width="{max(bar_w - 2, 1):.1f}" height="{h:.1f}"/>'
            )
        parts.append("</g>")
        if i % 6 == 0:
            parts.append(
                f'<text class="axis" x="{x + bar_w / 2:.1f}" y="{height - 4}" '
                f'text-anchor="middle">{escape(name)}</text>'
            )
    parts.append("</svg>")
    return "".join(parts)
