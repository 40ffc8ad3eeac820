"""The picture of a profile: a percentile curve per channel and a stacked bar of phases per channel.

Needs matplotlib (``pip install 'warpcall[plot]'``); ``PlotUnavailable`` says so when it is missing.
The file format follows the extension (``.svg``, ``.png``, ``.pdf``: whatever matplotlib writes).

In an SVG the drawn parts carry ids tools (and the tests) can find: ``curve-<channel>`` for each
channel's percentile curve and ``phase-<channel>-<phase>`` for each segment of its bar.

- Left, latency against percentile as HDR histograms are plotted: the x axis is ``1 / (1 - q)`` on a
  log scale, labelled 50%, 90%, 99%, 99.9%..., so the tail gets the room it deserves; the y axis is
  microseconds, log scale.
- Right, one horizontal bar per channel: the mean of every client phase in call order, with the client's
  ``first_byte`` (the wait for the reply) split into the server's phases and the rest (``network``: the
  wire, the event loop, what the server did not time). Means, because means add up to the mean total;
  a channel that reported no phases gets one ``total`` segment.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

from warpcall.observe.profile import CallSummary, Summary
from warpcall.observe.records import CLIENT_PHASES

__all__ = ["PlotUnavailable", "bar_segments", "curve_points", "write_report"]


class PlotUnavailable(RuntimeError):
    """matplotlib is not installed: ``pip install 'warpcall[plot]'``."""


def curve_points(call: CallSummary) -> list[tuple[float, int]]:
    """``(percentile, nanoseconds)`` from 0 up to the last percentile the call count can tell, then 100."""
    histogram = call.histogram
    points: list[float] = [0.0]
    if histogram.count > 1:
        # ten points per decade of 1 / (1 - q), as long as at least one value lies beyond q
        step = 0
        while True:
            step += 1
            q = 100 * (1 - 10 ** (-step / 10))
            if (100 - q) / 100 * histogram.count < 1:
                break
            points.append(q)
    points.append(100.0)
    return [(q, histogram.percentile(q)) for q in points]


def _x(q: float, count: int) -> float:
    # 1 / (1 - q); the maximum (q = 100) is drawn at the count, one step past the last measured point
    return count if q >= 100 else 1 / (1 - q / 100)


def bar_segments(call: CallSummary) -> list[tuple[str, float]]:
    """``(phase, mean nanoseconds)`` in call order, ``first_byte`` split into the server's phases and ``network``."""
    if not call.client:
        return [("total", call.total.mean)]
    segments: list[tuple[str, float]] = []
    for name, stats in call.client.items():
        if name == "first_byte" and call.server:
            server = [(f"server.{n}", s.mean) for n, s in call.server.items()]
            segments.extend(server)
            segments.append(("network", max(0.0, stats.mean - sum(ns for _, ns in server))))
        else:
            segments.append((name, stats.mean))
    return segments


def write_report(summary: Summary | Sequence[CallSummary], path: str, title: str = "warpcall profile") -> None:
    """Draw ``summary`` (one curve and one bar per (method, channel)) into ``path``."""
    try:
        import matplotlib

        matplotlib.use("Agg")  # a file, never a window
        import matplotlib.pyplot as plt
        from matplotlib.ticker import FixedLocator, NullFormatter, NullLocator
    except ImportError as exc:
        raise PlotUnavailable("drawing the report needs matplotlib: pip install 'warpcall[plot]'") from exc

    calls = list(summary)
    label_of = _labels(calls)
    figure, (curves, bars) = plt.subplots(1, 2, figsize=(13, 5.6), gridspec_kw={"width_ratios": [1.1, 1]})
    try:
        figure.suptitle(title)
        largest = 2
        for call in calls:
            points = curve_points(call)
            largest = max(largest, call.histogram.count)
            xs = [_x(q, call.histogram.count) for q, _ in points]
            ys = [max(ns, 1) / 1000 for _, ns in points]
            (line,) = curves.plot(xs, ys, marker=".", markersize=3, label=label_of[call.method, call.channel])
            line.set_gid(f"curve-{call.channel}" if len({c.method for c in calls}) == 1 else
                         f"curve-{call.channel}-{call.method}")
        curves.set_xscale("log")
        curves.set_yscale("log")
        ticks = [10.0**k for k in range(0, 1 + math.ceil(math.log10(largest)))]
        curves.xaxis.set_major_locator(FixedLocator(ticks))
        curves.xaxis.set_minor_locator(NullLocator())
        curves.xaxis.set_minor_formatter(NullFormatter())
        curves.set_xticklabels([_percent_label(t) for t in ticks])
        curves.set_xlabel("percentile")
        curves.set_ylabel("latency (µs)")
        curves.set_title("latency by percentile")
        curves.grid(True, which="both", alpha=0.3)
        if calls:
            curves.legend(fontsize="small")

        warm = plt.get_cmap("YlOrRd")
        server_names = [p for c in calls for p, _ in bar_segments(c) if p.startswith("server.")]
        server_names = list(dict.fromkeys(server_names))
        colours: dict[str, Any] = {"network": "#cccccc", "total": _CLIENT_COLOURS[0]}
        for number, name in enumerate(server_names):  # the server's phases in warm shades, the client's cool
            colours[name] = warm(0.25 + 0.65 * number / max(1, len(server_names) - 1))
        labelled: set[str] = set()
        for row, call in enumerate(calls):
            left = 0.0
            for phase, ns in bar_segments(call):
                colour = colours.setdefault(phase, _client_colour(phase, len(colours)))
                micros = ns / 1000
                (patch,) = bars.barh(row, micros, left=left, color=colour, label=None if phase in labelled else phase)
                labelled.add(phase)
                patch.set_gid(f"phase-{call.channel}-{phase}")
                left += micros
        bars.set_yticks(range(len(calls)))
        bars.set_yticklabels([label_of[c.method, c.channel] for c in calls])
        bars.invert_yaxis()
        bars.set_xlabel("mean per phase (µs)")
        bars.set_title("where a call spends its time")
        if calls:
            # below the bars: inside, it would hide the longest one
            bars.legend(fontsize="x-small", loc="upper center", bbox_to_anchor=(0.5, -0.14), ncol=5, frameon=False)
        figure.tight_layout()
        figure.savefig(path)
    finally:
        plt.close(figure)


#: distinct cool and neutral colours for the client's phases (red and orange are the server's)
_CLIENT_COLOURS = (
    "#1f77b4", "#2ca02c", "#9467bd", "#17becf", "#8c564b", "#e377c2", "#bcbd22", "#aec7e8", "#98df8a", "#7f7f7f",
)


def _client_colour(phase: str, taken: int) -> str:
    # a client phase keeps its colour from one report to the next: chosen by its place in the contract
    index = CLIENT_PHASES.index(phase) if phase in CLIENT_PHASES else taken
    return _CLIENT_COLOURS[index % len(_CLIENT_COLOURS)]


def _labels(calls: list[CallSummary]) -> dict[tuple[str, str], str]:
    one_method = len({c.method for c in calls}) <= 1
    return {
        (c.method, c.channel): c.channel if one_method else f"{c.method.rsplit(':', 1)[-1]} {c.channel}" for c in calls
    }


def _percent_label(x: float) -> str:
    q = 100 * (1 - 1 / x)
    if q <= 0:
        return "0%"
    text = f"{q:.6f}".rstrip("0").rstrip(".")
    return f"{text}%"
