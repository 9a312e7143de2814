"""build-report.html: the build report as one self-contained page a person can read."""

from __future__ import annotations

import html
import os
from pathlib import Path

STYLE = """body{font:15px/1.45 system-ui,sans-serif;max-width:980px;margin:2em auto;padding:0 1em;color:#222}
table{border-collapse:collapse;margin:.5em 0 1.5em}td,th{border:1px solid #ccc;padding:.3em .6em;text-align:left}
th{background:#f3f3f3}.pass{color:#137333;font-weight:600}.fail{color:#b3261e;font-weight:600}
.warn{background:#fff4e5;border:1px solid #f0b45b;padding:.5em .8em}code{background:#f3f3f3;padding:0 .2em}"""


def _e(value) -> str:
    return html.escape(str(value))


def _table(header: list[str], rows: list[list]) -> str:
    head = "".join(f"<th>{_e(h)}</th>" for h in header)
    body = "".join("<tr>" + "".join(f"<td>{c}</td>" for c in row) + "</tr>" for row in rows)
    return f"<table><tr>{head}</tr>{body}</table>"


def _verdict(passed: bool) -> str:
    return '<span class="pass">pass</span>' if passed else '<span class="fail">FAIL</span>'


def _parity(p: dict) -> str:
    if p["level"] in ("numeric", "interpreted"):
        how = "" if p["level"] == "numeric" else f" ({_e(p['reason'])})"
        return (f"{_verdict(p['passed'])} {p['level']} on {p['images']} images: phonemes {100 * p['phoneme_agreement']:.0f}% "
                f"equal, mel rel. error {p['max_rel_err']:.1e}, waveform SNR {p['min_waveform_snr_db']:.0f} dB{how}")
    return f"{_verdict(p['passed'])} {_e(p['level'])} only: {_e(p.get('reason'))}"


def _latency(lat: dict) -> str:
    if not lat["measured"]:
        return f"not measured: {_e(lat['reason'])}"
    return f"p50 {lat['p50_ms']:.1f} ms, p90 {lat['p90_ms']:.1f} ms ({lat['runs']} runs)"


def _target(t: dict) -> str:
    parts = [f"<h2>{_e(t['target'])} ({_e(t['runtime'])})</h2>"]
    if t["parity_bypassed"]:
        parts.append('<p class="warn">This artifact failed parity and was bundled because of '
                     "<code>--allow-parity-failure</code>.</p>")
    parts.append(_table(["", ""], [
        ["project", f"<code>{_e(t['project'])}/</code> ({t['files']} files), <code>{_e(t['zip'])}</code> "
                    f"{t['zip_bytes']:,} bytes"],
        ["model", f"<code>{_e(t['model_file'])}</code>: {t['model_bytes']:,} bytes, {t['weights']} weights "
                  f"({_e(t['weights_reason'])})"],
        ["bits per ternary weight", f"{t['bits_per_ternary_weight']:.2f} ({_e(t['scheme'])})"],
        ["parity", _parity(t["parity"])],
        ["host latency", _latency(t["host_latency"])],
        ["model sha256", f"<code>{t['model_sha256']}</code>"],
        ["zip sha256", f"<code>{t['zip_sha256']}</code>"],
    ]))
    parts.append("<h3>Checked here</h3>")
    parts.append(_table(["check", "result", "detail"],
                        [[_e(c["check"]), _verdict(c["passed"]), _e(c["detail"])] for c in t["checks"]]))
    parts.append("<h3>Not checked here</h3><ul>" + "".join(f"<li>{_e(n)}</li>" for n in t["not_checked"]) + "</ul>")
    m = t["manifest"]
    parts.append("<h3>Manifest</h3>" + _table(["key", "value"], [
        ["input", f"{_e(m['input_name'])} {m['input_shape']} {_e(m['input_dtype'])}, grey levels "
                  f"{m['pixel_min']}..{m['pixel_max']}"],
        ["outputs", ", ".join(f"{_e(o['name'])} {o['shape']} {_e(o['dtype'])}" for o in m["outputs"])],
        ["sample rate", f"{m['sample_rate']} Hz"], ["phonemes", f"{len(m['phonemes'])} symbols"],
        ["init method", _e(m["init_method"])],
    ]))
    return "".join(parts)


def write_html(report: dict, path: Path) -> None:
    tiers = _table(["tier", "params", "ternary params", "packed bytes", "bits per ternary weight"],
                   [[_e(t["name"]) + (" (bundled)" if t["name"] == report["tier"] else ""), f"{t['params']:,}",
                     f"{t['ternary_params']:,}", f"{t['packed_bytes']:,}", _e(t["bits_per_ternary_weight"])]
                    for t in report["tiers"]])
    m = report["machine"]
    page = (f"<!doctype html><html lang=en><meta charset=utf-8><title>its-mobile build report</title>"
            f"<style>{STYLE}</style><h1>its-mobile build report</h1>"
            f"<p>its-mobile {_e(report['its_mobile_version'])}, model: {_e(report['checkpoint'])} "
            f"(sha256 <code>{report['checkpoint_sha256'][:16]}…</code>), tier <b>{_e(report['tier'])}</b>. "
            f"Built in {report['seconds']:.0f} s on {_e(m['system'])} {_e(m['machine'])}: {_e(m['cpu'])}.</p>"
            f"<h2>Tiers of this model</h2>{tiers}"
            + "".join(_target(t) for t in report["targets"]) + "</html>\n")
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(page, encoding="utf-8")
    os.replace(tmp, path)
