"""Server-rendered SVG charts: geometry computed here, drawn by templates/_chart.html.

No JavaScript: a chart is a list of bars (rectangles with a title for the tooltip), axis
ticks and a legend, all plain data that the template escapes.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

PALETTE = ("#3b6ea5", "#d9822b", "#5a9e4b", "#b84a62", "#7d5ba6", "#8c8c3a", "#3a8c8c")
WIDTH, HEIGHT = 760, 220
LEFT, BOTTOM, TOP = 48, 40, 12


@dataclass(frozen=True)
class Bar:
    x: float
    y: float
    w: float
    h: float
    fill: str
    title: str


@dataclass
class Chart:
    """What the template draws."""

    title: str
    bars: list[Bar] = field(default_factory=list)
    xlabels: list[tuple[float, str]] = field(default_factory=list)
    yticks: list[tuple[float, str]] = field(default_factory=list)
    legend: list[tuple[str, str]] = field(default_factory=list)
    width: int = WIDTH
    height: int = HEIGHT

    @property
    def empty(self) -> bool:
        return not self.bars


def _nice_max(value: float) -> float:
    if value <= 0:
        return 1.0
    step = 1.0
    while step * 10 < value:
        step *= 10
    for mult in (1, 2, 5, 10):
        if value <= step * mult:
            return step * mult
    return step * 10


def stacked(title: str, categories: Sequence[str],
            series: Mapping[str, Sequence[float]], unit: str = "") -> Chart:
    """Stacked bars: one bar per category, one colour per series (values per category)."""
    chart = Chart(title)
    names = list(series)
    chart.legend = [(name, PALETTE[i % len(PALETTE)]) for i, name in enumerate(names)]
    if not categories:
        return chart
    totals = [sum(series[n][i] for n in names) for i in range(len(categories))]
    top = _nice_max(max(totals, default=0))
    plot_w = WIDTH - LEFT - 8
    plot_h = HEIGHT - BOTTOM - TOP
    slot = plot_w / len(categories)
    bar_w = max(1.0, slot * 0.8)
    every = max(1, -(-len(categories) // 10))
    for i, cat in enumerate(categories):
        x = LEFT + i * slot + (slot - bar_w) / 2
        base = 0.0
        for k, name in enumerate(names):
            value = float(series[name][i])
            if value <= 0:
                continue
            h = plot_h * value / top
            y = TOP + plot_h - plot_h * base / top - h
            chart.bars.append(Bar(round(x, 1), round(y, 1), round(bar_w, 1), round(h, 1),
                                  PALETTE[k % len(PALETTE)],
                                  f"{cat} · {name}: {value:g}{unit}"))
            base += value
        if i % every == 0:
            chart.xlabels.append((round(x + bar_w / 2, 1), cat))
    for j in range(5):
        value = top * j / 4
        chart.yticks.append((round(TOP + plot_h - plot_h * j / 4, 1), f"{value:g}"))
    return chart


def grouped(title: str, categories: Sequence[str],
            series: Mapping[str, Sequence[float]], unit: str = "") -> Chart:
    """Bars side by side: one group per category, one bar per series."""
    chart = Chart(title)
    names = list(series)
    chart.legend = [(name, PALETTE[i % len(PALETTE)]) for i, name in enumerate(names)]
    if not categories or not names:
        return chart
    top = _nice_max(max((float(v) for n in names for v in series[n]), default=0))
    plot_w = WIDTH - LEFT - 8
    plot_h = HEIGHT - BOTTOM - TOP
    slot = plot_w / len(categories)
    bar_w = max(1.0, slot * 0.8 / len(names))
    every = max(1, -(-len(categories) // 10))
    for i, cat in enumerate(categories):
        x0 = LEFT + i * slot + slot * 0.1
        for k, name in enumerate(names):
            value = float(series[name][i])
            h = plot_h * value / top if value > 0 else 0.0
            chart.bars.append(Bar(round(x0 + k * bar_w, 1), round(TOP + plot_h - h, 1),
                                  round(bar_w, 1), round(max(h, 0.5), 1),
                                  PALETTE[k % len(PALETTE)], f"{cat} · {name}: {value:g}{unit}"))
        if i % every == 0:
            chart.xlabels.append((round(x0 + slot * 0.4, 1), cat))
    for j in range(5):
        chart.yticks.append((round(TOP + plot_h - plot_h * j / 4, 1), f"{top * j / 4:g}"))
    return chart
