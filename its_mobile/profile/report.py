"""The profile report as an HTML page with plots (matplotlib, embedded as PNG): latency
distribution per artifact, size by tensor group, per-operator times, and accuracy against
size per tier with its Pareto front."""

from __future__ import annotations

import base64
import html
import io
import os
from pathlib import Path

STYLE = ("body{font:15px/1.45 system-ui,sans-serif;max-width:1000px;margin:2em auto;padding:0 1em;color:#222}"
         "table{border-collapse:collapse;margin:.5em 0 1.5em}td,th{border:1px solid #ccc;padding:.3em .6em;"
         "text-align:right}th{background:#f3f3f3}td:first-child,th:first-child{text-align:left}img{max-width:100%}")


def _png(fig) -> str:
    import matplotlib.pyplot as plt

    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=110, bbox_inches="tight")
    plt.close(fig)
    return f'<img alt="plot" src="data:image/png;base64,{base64.b64encode(buf.getvalue()).decode()}">'


def _latency_plot(results: list[dict]) -> str:
    import matplotlib.pyplot as plt

    measured = [r for r in results if r.get("measured") and r.get("times_ms")]
    if not measured:
        return "<p>No artifact could run here, so there is no latency plot.</p>"
    fig, ax = plt.subplots(figsize=(8, 0.8 + 0.7 * len(measured)))
    ax.boxplot([r["times_ms"] for r in measured], vert=False, tick_labels=[r["artifact"] for r in measured])
    ax.set_xlabel("ms per word image -> waveform (host)")
    ax.set_title("Latency distribution")
    return _png(fig)


def _size_plot(results: list[dict]) -> str:
    import matplotlib.pyplot as plt

    groups = ("ternary", "high_precision", "overhead", "ternary_and_overhead")
    fig, ax = plt.subplots(figsize=(8, 0.8 + 0.6 * len(results)))
    for i, r in enumerate(results):
        left = 0
        size = r["size"]
        parts = [(g, size[g]) for g in groups if g in size] or [("total", size["total"])]
        for g, b in parts:
            ax.barh(i, b / 1e6, left=left / 1e6, color={"ternary": "#3b7dd8", "high_precision": "#e8a33d",
                                                         "overhead": "#999", "ternary_and_overhead": "#7aa8e8",
                                                         "total": "#bbb"}[g], label=g.replace("_", " "))
            left += b
    ax.set_yticks(range(len(results)), [r["artifact"] for r in results])
    ax.set_xlabel("MB on disk")
    handles, labels = ax.get_legend_handles_labels()
    unique = dict(zip(labels, handles))
    ax.legend(unique.values(), unique.keys(), loc="upper left", bbox_to_anchor=(1.01, 1), fontsize=8)
    ax.set_title("Size by tensor group")
    return _png(fig)


def _pareto_plot(tiers: list[dict]) -> str:
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 4))
    xs = [t["packed_bytes"] / 1e3 for t in tiers]
    ys = [100 * t["exact"] for t in tiers]
    ax.scatter(xs, ys)
    for t, x, y in zip(tiers, xs, ys):
        ax.annotate(t["name"], (x, y), textcoords="offset points", xytext=(5, 5))
    front = pareto_front(tiers)
    pts = sorted((t["packed_bytes"] / 1e3, 100 * t["exact"]) for t in front)
    ax.plot([p[0] for p in pts], [p[1] for p in pts], "--", color="#3b7dd8", label="Pareto front")
    ax.set_xlabel("packed model KB")
    ax.set_ylabel("exact words, % (in-vocabulary, held-out fonts)")
    ax.legend()
    ax.set_title("Accuracy against size per tier")
    return _png(fig)


def pareto_front(tiers: list[dict]) -> list[dict]:
    """Tiers that no other tier beats on both size and accuracy."""
    return [t for t in tiers if not any(o["packed_bytes"] <= t["packed_bytes"] and o["exact"] >= t["exact"]
                                        and (o["packed_bytes"], o["exact"]) != (t["packed_bytes"], t["exact"])
                                        for o in tiers)]


def _e(x) -> str:
    return html.escape(str(x))


def _table(header: list[str], rows: list[list]) -> str:
    head = "".join(f"<th>{_e(h)}</th>" for h in header)
    return f"<table><tr>{head}</tr>" + "".join("<tr>" + "".join(f"<td>{_e(c)}</td>" for c in row) + "</tr>"
                                                for row in rows) + "</table>"


def _fmt(x, spec=".1f") -> str:
    return "-" if x is None else format(x, spec)


def write_html(report: dict, path: Path) -> None:
    results = report["artifacts"]
    rows = []
    for r in results:
        where = r.get("device") or "host"
        rows.append([r["artifact"], where, f"{r['size']['total']:,}",
                     _fmt(r.get("load_ms")), _fmt(r.get("first_ms")), _fmt(r.get("p50_ms"), ".2f"),
                     _fmt(r.get("p90_ms"), ".2f"), _fmt(r.get("p99_ms"), ".2f"), _fmt(r.get("peak_rss_mb")),
                     "" if r.get("measured") else r.get("reason", "")])
    parts = [f"<!doctype html><html lang=en><meta charset=utf-8><title>its-mobile profile</title><style>{STYLE}</style>",
             "<h1>its-mobile profile</h1>",
             f"<p>{_e(report['machine'])}; {report['runs']} runs after warm-up, {report['threads']} thread(s).</p>",
             _table(["artifact", "where", "bytes", "load ms", "first ms", "p50 ms", "p90 ms", "p99 ms", "peak RSS MB",
                     "not measured because"], rows),
             _latency_plot(results), _size_plot(results)]
    for r in results:
        if r.get("operators"):
            parts.append(f"<h2>Slowest operators of {_e(r['artifact'])} (ETDump, one inference)</h2>")
            parts.append(_table(["operator", "calls", "ms"], [[o["op"], o["calls"], f"{o['ms']:.3f}"]
                                                               for o in r["operators"]]))
        if r.get("note"):
            parts.append(f"<p>{_e(r['artifact'])}: {_e(r['note'])}</p>")
    tiers = report.get("tiers")
    if tiers:
        parts.append("<h2>Tiers</h2>" + _table(
            ["tier", "packed bytes", "exact (IV, held-out fonts)", "PER", "on the Pareto front"],
            [[t["name"], f"{t['packed_bytes']:,}", f"{100 * t['exact']:.1f}%", f"{100 * t['per']:.1f}%",
              "yes" if t in pareto_front(tiers) else "no"] for t in tiers]))
        parts.append(_pareto_plot(tiers))
    else:
        parts.append("<p>Accuracy per tier: pass <code>--eval-data DIR</code> (from <code>its-mobile data</code>) "
                     "to measure each tier and plot accuracy against size.</p>")
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text("".join(parts) + "</html>\n", encoding="utf-8")
    os.replace(tmp, path)
