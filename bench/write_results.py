"""Compose bench/RESULTS.md from the JSON that the benchmarks wrote into bench/results/.

    python bench/write_results.py
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np


HERE = Path(__file__).parent
R = HERE / "results"
# letters_section's columns for a reader followed by a speaker (bench_letters.py --g2p)
SPEAKER_HEAD = " letters then g2p | lexicon, else g2p |"


def load(name: str) -> dict | None:
    p = R / f"{name}.json"
    return json.loads(p.read_text()) if p.exists() else None


def pct(x) -> str:
    return "-" if x is None else f"{100 * x:.1f}%"


def num(x, f=".2f") -> str:
    return "-" if x is None else format(x, f)


def machine_line(r: dict) -> list[str]:
    # eval and export JSON written before the CLI recorded the host have none
    return [f"Machine: {r.get('machine', 'not recorded')}", ""]


def eval_table(ev: dict, title: str) -> list[str]:
    lines = [f"### {title} ({ev['params']:,} parameters)", "", *machine_line(ev),
             "| split | n | exact | PER | duration err (ms) | mel L1 | MCD (dB) | ASR model / espeak-ng | intelligibility "
             "| letters exact |", "|---|---|---|---|---|---|---|---|---|---|"]
    for s in ev["splits"]:
        lines.append(f"| {s['split']} | {s['n']} | {pct(s['exact'])} | {pct(s['per'])} | {num(s['duration_err_ms'], '.1f')} "
                     f"| {num(s['mel_l1'], '.3f')} | {num(s['mcd_db'])} | {pct(s.get('asr_model'))} / {pct(s.get('asr_espeak'))} "
                     f"| {num(s.get('intelligibility'))} | {pct(s.get('letters_exact'))} |")
    return lines + ["letters exact: the words whose letters a model with a speaker read right (- for a model "
                    "whose encoder reads phonemes).", ""]


def tiers_section(t: dict | None) -> list[str]:
    if not t:
        return []
    splits = ("eval_iv_clean", "eval_iv_noisy", "eval_oov_clean", "eval_oov_noisy")
    packed = t.get("packed", {})
    sizes = {x["name"]: x for x in packed.get("tiers", [])}
    lat = packed.get("latency_p50_ms", {})
    out = ["## Compression: ternary all-in-one tiers (`python bench/bench_tiers.py`)", "",
           f"Machine: {t['machine']}", "",
           "Reading accuracy of each encoder on the 200 images of each split (exact phoneme sequence, and PER);",
           "params, packed bytes and bits per ternary weight of the whole image -> waveform tier in the packed",
           "default; latency p50 of the whole tier on one thread.", "",
           "| model | tier | params | packed bytes | bits / ternary w | exact iv clean / noisy | exact oov clean / noisy "
           "| PER iv clean / noisy | PER oov clean / noisy | latency p50 ms |",
           "|---|---|---|---|---|---|---|---|---|---|"]
    for r in t["rows"]:
        acc = r["reading"]
        size = sizes.get(r["tier"], {}) if r["model"] == "ternary all-in-one" else {}
        out.append(
            f"| {r['model']} | {r['tier']} | {size.get('params', '-') if not size else format(size['params'], ',')} "
            f"| {format(size['packed_bytes'], ',') if size else '-'} | {size.get('bits_per_ternary_weight', '-')} "
            f"| {pct(acc[splits[0]]['exact'])} / {pct(acc[splits[1]]['exact'])} | {pct(acc[splits[2]]['exact'])} / {pct(acc[splits[3]]['exact'])} "
            f"| {pct(acc[splits[0]]['per'])} / {pct(acc[splits[1]]['per'])} | {pct(acc[splits[2]]['per'])} / {pct(acc[splits[3]]['per'])} "
            f"| {num(lat.get(r['tier'])) if size else '-'} |")
    tr = t.get("training", {})
    if tr:
        out += ["", "Training cost of the student stage (ternary fine-tuning from the float student, same steps, one thread):", "",
                "| run | steps | wall s | CPU s |", "|---|---|---|---|"]
        for name, r in tr.items():
            out.append(f"| {name} | {r['step']} | {r['seconds']:.0f} | {r['cpu_seconds']:.0f} |")
        if "large-base-small" in tr and "large" in tr:
            ratio = tr["large-base-small"]["cpu_seconds"] / tr["large"]["cpu_seconds"]
            out += ["", f"All tiers in one pass cost {ratio:.2f}x the CPU time of training `large` alone "
                    "(each tier then ran the whole encoder, stem included; see the next table for the cost now)."]
    if packed:
        out += ["", f"The packed default of that commit: {packed['total_bytes']:,} bytes on disk with every tier; unpacking it at load "
                f"takes {packed['unpack_ms_p50']:.1f} ms (p50)."]
    return out + [""]


def student_words(run: dict) -> str:
    d = run["student"]
    return f"Measured on the student {d['width']} wide with {d['depth']} blocks (last {d['last_width']} wide)."


def trained_words(run: dict) -> str:
    return "every tier in one pass" if len(run["tiers"]) > 1 else "`large` alone"


def _schedule_words(run: dict) -> str:
    sched = run["schedule"]
    return f"peak lr {sched['lr']:g}, cosine over {sched['steps']:,} steps, batch {sched['batch']}"


def eval_words(r: dict) -> str:
    """Which evaluation images a result read: the training data's 200 per split, or fresh renders."""
    spec = r.get("data", {"n_eval": 200, "seed": 0})
    return f"{spec['n_eval']:,} images per split" + (f" (fresh renders, data seed {spec['seed']})" if spec["seed"] else "")


def precision_section(r: dict | None) -> list[str]:
    if not r:
        return []
    runs = r["runs"]
    float_run, tern = runs["float"], runs["ternary"]
    # A float run records its start since it could continue an earlier float run (None before).
    start = ("the default's student of that commit" if float_run.get("continued") != "run" else
             "the float student of an earlier float run, on a fresh schedule")
    float_how = f"The float run continues {start} ({_schedule_words(float_run)}, `large` alone); "
    if tern.get("from_float"):
        title = "## Ternary fine-tuned from the float student (`python bench/bench_precision.py`)"
        how = (f"{float_how}the ternary run then starts from that float student and is distilled towards its scores "
               f"({_schedule_words(tern)}, {trained_words(tern)}): float first, then quantization-aware fine-tuning, "
               "as the compression issue describes.")
    elif tern.get("teacher"):
        title = "## Ternary continued, taught by the float student (`python bench/bench_precision.py`)"
        how = (f"{float_how}the ternary run continues an earlier packed model (the runs before it are listed under "
               f"\"The default, continued\") and is distilled towards that float student's scores "
               f"({_schedule_words(tern)}, {trained_words(tern)}).")
    else:
        title = "## Ternary against float at equal training (`python bench/bench_precision.py`)"
        how = (f"Both runs continue the default's student of that commit from the same weights, on the same data and "
               f"schedule ({_schedule_words(tern)}, one thread each, side by side); the float run trains `large` "
               f"alone, the ternary run {trained_words(tern)}.")
    if r.get("data", {}).get("seed"):
        title += ", on fresh renders"
    out = [title, "", f"Machine: {r['machine']}", "",
           f"{student_words(tern)} {how} Reading accuracy on the same {eval_words(r)}.", "",
           "| model | tier | steps | exact iv clean / noisy | exact oov clean / noisy | PER iv clean / noisy "
           "| PER oov clean / noisy |", "|---|---|---|---|---|---|---|"]
    for row in r["rows"]:
        a = row["reading"]
        run = float_run if row["model"].startswith("float") else tern if row["model"].startswith("ternary") else None
        out.append(f"| {row['model']} | {row['tier']} | {format(run['step'], ',') if run else '-'} "
                   f"| {pct(a['eval_iv_clean']['exact'])} / {pct(a['eval_iv_noisy']['exact'])} "
                   f"| {pct(a['eval_oov_clean']['exact'])} / {pct(a['eval_oov_noisy']['exact'])} "
                   f"| {pct(a['eval_iv_clean']['per'])} / {pct(a['eval_iv_noisy']['per'])} "
                   f"| {pct(a['eval_oov_clean']['per'])} / {pct(a['eval_oov_noisy']['per'])} |")
    big = {row["model"].split(",")[0]: row["reading"] for row in r["rows"] if row["tier"] == "large"}
    mean = {k: float(np.mean([s["exact"] for s in v.values()])) for k, v in big.items()}
    per = {k: float(np.mean([s["per"] for s in v.values()])) for k, v in big.items()}
    gap, gap_per = mean["float"] - mean["ternary"], per["ternary"] - per["float"]
    out += ["", f"Averaged over the four splits, ternary `large` reads {pct(mean['ternary'])} exact, "
            f"float {pct(mean['float'])}: {abs(gap) * 100:.1f} points {'behind' if gap > 0 else 'ahead'} "
            f"(target: within 1.5, {yes(gap <= 0.015)}); PER {pct(per['ternary'])} against "
            f"{pct(per['float'])} (target: within 1 point, {yes(gap_per <= 0.01)}). "
            f"CPU time: float {float_run['cpu_seconds'] / 3600:.2f} h, ternary {tern['cpu_seconds'] / 3600:.2f} h"
            f"{' (this run alone)' if tern.get('continued') == 'checkpoint' and not tern.get('from_float') else ''}.", ""]
    return out


def sensitivity_section(r: dict | None) -> list[str]:
    if not r:
        return []
    run = r["float_run"]
    out = ["### Which weights stay high precision (`python bench/bench_sensitivity.py`)", "",
           f"Machine: {r['machine']}", "",
           f"{student_words(run)} The float student of `bench/bench_precision.py` ({_schedule_words(run)}), each dense "
           "encoder weight ternarized after training (no fine-tuning): on its own, and every weight but it (never "
           f"{' or '.join(f'`{n}`' for n in r['always_kept'])}). Average exact over the four splits (200 images each). "
           f"Float: {pct(r['float']['exact'])}; all ternary but those two: {pct(r['all']['exact'])}.", "",
           "| weight | weights | only it ternary | all but it ternary | kept in higher precision |", "|---|---|---|---|---|"]
    for row in r["rows"]:
        out.append(f"| {row['name']} | {row['weights']:,} | {pct(row['only']['exact'])} | {pct(row['all_but'] and row['all_but']['exact'])} "
                   f"| {'yes' if row['high_precision'] else ''} |")
    q = r.get("qat")
    if not q:
        return out + [""]
    kept, tern = q["stem_in_8_bits"], q["stem_ternary"]
    gain = kept["exact"] - tern["exact"]
    verdict = (f"8 bits gain {gain * 100:.1f} points" if gain > 0.015 else
               "no gain beyond noise (1.5 points), so the stem stays ternary")
    return out + ["", "After quantization-aware fine-tuning: two ternary runs of `large` alone "
                  f"from that float student ({_schedule_words(tern['run'])}), one with `stem.2`, `.4` "
                  f"and `.6` kept in 8 bits, one with them ternary, read {pct(kept['exact'])} and {pct(tern['exact'])} "
                  f"of the same {q['images']} images; {q['read_only_with_8_bits']} are read only with the 8-bit stem, "
                  f"{q['read_only_ternary']} only with the ternary one: {verdict}.", ""]


def tier_cost_section(c: dict | None) -> list[str]:
    if not c:
        return []
    med = c["median_cpu_ms_per_step"]
    out = ["### What one pass over every tier costs (`python bench/bench_tier_cost.py`)", "",
           f"Machine: {c['machine']}", "",
           f"The student stage's ternary training from the shipped default, {c['steps']} steps of batch {c['batch']} per "
           f"recipe, one thread, the recipes interleaved over {c['rounds']} rounds (median). A step trains `large` and, in "
           "turn, one smaller tier with its distillation; what both compute alike (the encoder's stem, which no tier cuts, "
           "and the lower blocks `base` keeps whole) runs once for both.", "",
           "| tiers trained | CPU ms per step | against `large` alone |", "|---|---|---|"]
    for recipe, ms in med.items():
        out.append(f"| {recipe} | {ms:.1f} | {ms / med['large']:.2f}x |")
    ratio = c["all_tiers_over_large"]
    return out + ["", f"All tiers in one pass: {ratio:.2f}x the CPU time of `large` alone (target <= 1.5x: "
                  f"{'met' if ratio <= 1.5 else 'not met'}).", ""]


def _alone(trained: str) -> bool:
    return trained.split(",")[0] == "alone"  # "alone, seed 4" when runs differ by seed


def alone_section(r: dict | None) -> list[str]:
    if not r:
        return []
    run = next(iter(r["runs"].values()))
    start = ("the float student of `bench/bench_precision.py` (each distilled towards it)" if run.get("from_float")
             else "the default of that commit")
    student = student_words(run) if "student" in run else "Measured on the 48-wide student, before it was widened."
    out = ["### Each tier trained with the others or alone (`python bench/bench_alone.py`)", "",
           f"Machine: {r['machine']}", "",
           f"{student} Ternary runs from {start}, the same data and schedule ({_schedule_words(run)})"
           + ("; one trains every tier in one pass, the others one tier alone. " if len(r["runs"]) > 1 else ". ")
           + "Reading accuracy on the same 200 images "
           "per split; the average is over the four splits (800 images: its standard error is about 1.7 points). "
           + r.get("note", ""), "",
           "| tier | trained | exact iv clean / noisy | exact oov clean / noisy | average exact | average PER |",
           "|---|---|---|---|---|---|"]
    avg = {}
    order = ("large", "base", "small")
    for row in sorted(r["rows"], key=lambda row: (order.index(row["tier"]), _alone(row["trained"]), row["trained"])):
        a = row["reading"]
        avg[(row["tier"], row["trained"])] = float(np.mean([v["exact"] for v in a.values()]))
        out.append(f"| {row['tier']} | {row['trained']} | {pct(a['eval_iv_clean']['exact'])} / {pct(a['eval_iv_noisy']['exact'])} "
                   f"| {pct(a['eval_oov_clean']['exact'])} / {pct(a['eval_oov_noisy']['exact'])} "
                   f"| {pct(avg[(row['tier'], row['trained'])])} | {pct(np.mean([v['per'] for v in a.values()]))} |")
    alone_avg = {tier: float(np.mean([acc for (t, trained), acc in avg.items() if t == tier and _alone(trained)]))
                 for tier in {t for t, trained in avg if _alone(trained)}}  # over the seeds trained alone
    verdicts = [f"`{tier}` {trained} {pct(acc)} against {pct(alone_avg[tier])} alone "
                f"({yes(acc >= alone_avg[tier])})"
                for (tier, trained), acc in avg.items() if not _alone(trained) and tier in alone_avg]
    if not verdicts:
        return out + [""]
    return out + ["", "At least as accurate trained with the others as alone (average exact): " + "; ".join(verdicts) + ".", ""]


def fresh_section(c: dict | None, name: str = "continued_fresh", title: str = "Before and after on fresh images",
                  about: str = "", labels: tuple[str, str] = ("before", "after")) -> list[str]:
    """Two packed models (before and after) on evaluation splits rendered afresh, larger than the
    200 per split above."""
    if not c:
        return []
    spec = c["data"]
    splits = list(next(iter(c["after"]["tiers"].values()))["reading"])
    n = spec["n_eval"] * len(splits)
    out = [f"### {title} (`python bench/bench_continued.py --out bench/results/{name}.json`)", "", *machine_line(c),
           *([about, ""] if about else []),
           f"{spec['n_eval']:,} images per split rendered with data seed {spec['seed']} (`its-mobile data --n-eval "
           f"{spec['n_eval']} --seed {spec['seed']}`): other renders of in-vocabulary words in held-out fonts, and OOV "
           f"words drawn from the held-out set (the same for every seed). Exact, averaged over the {len(splits)} splits ({n:,} images; "
           f"a standard error of about {100 * (0.25 / n) ** 0.5:.1f} points per model).", "",
           f"| tier | {labels[0]} | {labels[1]} | change | {labels[1]}, per split |", "|---|---|---|---|---|"]
    for tier, after in c["after"]["tiers"].items():
        mean = {k: sum(r["exact"] for r in c[k]["tiers"][tier]["reading"].values()) / len(splits)
                for k in ("before", "after")}
        out.append(f"| {tier} | {pct(mean['before'])} | {pct(mean['after'])} | "
                   f"{100 * (mean['after'] - mean['before']):+.1f} | "
                   + " / ".join(pct(after["reading"][s]["exact"]) for s in splits) + " |")
    return out + [""]


def teacher_section(c: dict | None, name: str) -> list[str]:
    """The teacher beside the students it grew from and taught (bench_teacher.py), on fresh renders."""
    if not c:
        return []
    spec, t = c["data"], c["teacher"]
    splits = list(t["reading"])
    run = t["stages"]["teacher"]
    head = ("| model | parameters | x the student | taught | " + " | ".join(splits)
            + " | mean | drop from the teacher |")
    title = "## The teacher, grown from the student" if name == "teacher_fresh" else "### The same on a second fresh set"
    out = [f"{title} (`python bench/bench_teacher.py --out bench/results/{name}.json`)",
           "", *machine_line(c),
           f"The teacher is the student (`large`) of `--student` 1 widened twice over and two blocks deeper "
           f"(`its-mobile train --stage teacher --init`: model/grow.py), so it starts computing what that student "
           f"computed, then trains in float: {run['step']:,} steps of {run['schedule']['batch']} images, peak lr "
           f"{run['schedule']['lr']:g}, {run['samples']:,} images seen, {run['cpu_seconds'] / 3600:.2f} CPU hours "
           f"({run['seconds'] / 60:.0f} minutes on 2 cores). Exact phonemes / PER on {spec['n_eval']:,} images per split "
           f"rendered with data seed {spec['seed']} (fonts never trained on; OOV: words never trained on).", "",
           head, "|---" * (len(splits) + 6) + "|"]
    mean = lambda r: sum(v["exact"] for v in r["reading"].values()) / len(splits)  # noqa: E731
    student = c["students"][0]["params"]
    for k, r in enumerate([t, *c["students"]]):
        label = "teacher" if k == 0 else f"student {k}: {r['checkpoint']}"
        drop = "-" if k == 0 else f"{100 * (mean(t) - mean(r)):+.1f}"
        out.append(f"| {label} | {r['params']:,} | {r['params'] / student:.2f} | {taught(r)} | "
                   + " | ".join(f"{pct(v['exact'])} / {pct(v['per'])}" for v in r["reading"].values())
                   + f" | {pct(mean(r))} | {drop} |")
    return out + ["", "Drop: the teacher's mean exact minus the student's, in points (negative: the student is ahead). "
                  "A taught student continued the default with all tiers (`train --ternary --init default --stage "
                  "student --teacher T`) on the teacher's images. Taught: its steps, peak lr, and the pull towards "
                  "the teacher (0.5 CTC plus 0.5 of it): MSE between the scores (the seed's), or KL between the letter "
                  "posteriors at temperature T (`--kd-temperature T`).", ""]


def taught(r: dict) -> str:
    """How a student in bench_teacher.py's table was taught, from its record; - when it was not."""
    run = r["stages"].get("student")
    if not r.get("teacher") or not run:
        return "-"
    t = run.get("kd_temperature")
    return (f"{run['step']:,} steps, lr {run['schedule']['lr']:g}, " + ("MSE" if t is None else f"KL T={t:g}"))


def high_precision_section(c: dict | None) -> list[str]:
    """Ternary runs alike but for the weights kept in 8 bits, read on fresh renders."""
    if not c:
        return []
    sizes = {k: {t["name"]: t for t in c[k]["packed"]["tiers"]} | {"total": c[k]["packed"]["total_bytes"]}
             for k in ("before", "after")}
    about = (f"Two ternary runs from the same float student with the same schedule and seed "
             f"({_schedule_words(c['after']['training']['stages']['student'])}, every tier in one pass, distilled "
             "towards the float student): one with every weight ternary but those listed above (\"all ternary\"), one "
             "with `encoder.last.attn.qkv`, `encoder.last.attn.out` and `encoder.widen` in 8 bits as well (\"8-bit "
             f"attention\"). The packed file grows from {sizes['before']['total']:,} to {sizes['after']['total']:,} bytes; "
             + ", ".join(f"`{t}` {sizes['before'][t]['packed_bytes']:,} to {sizes['after'][t]['packed_bytes']:,}"
                         for t in sizes["after"] if t != "total") + ". The all-ternary run is the default shipped at "
             "commit 7957f90; the other is `its-mobile train --preset full --data D --out R --ternary --init default "
             "--stage student --from-float FLOAT --steps 12000 --lr 2e-4 --seed 0` with today's scheme.")
    out = fresh_section(c, "high_precision_fresh", "The last block's attention in 8 bits, on fresh images", about,
                        ("all ternary", "8-bit attention"))
    return out[:-1] + ["", "One pair of runs, and the tiers share most of their weights: three gains of one sign are "
                       "not three independent measurements.", ""]


def fit_section(f: dict | None) -> list[str]:
    if not f:
        return []
    splits = list(next(iter(f["tiers"].values())))
    spec = f["data"]
    out = ["### Underfitting or overfitting (`python bench/bench_fit.py`)", "", *machine_line(f),
           f"Each tier of {f['checkpoint']} reads a fixed sample of its own training images (training words, fonts "
           f"and styles; data `--n {spec.get('n', '?'):,} --seed {spec.get('seed', '?')}`) and the evaluation splits "
           "(fonts never trained on; OOV: words never trained on). Exact / PER.", "",
           "| tier | " + " | ".join(splits) + " |", "|---|" + "---|" * len(splits)]
    for tier, r in f["tiers"].items():
        out.append(f"| {tier} | " + " | ".join(f"{pct(r[s]['exact'])} / {pct(r[s]['per'])}" for s in splits) + " |")
    large, share = next(iter(f["tiers"].values())), f["noisy_share"]
    held = (1 - share) * large["eval_iv_clean"]["exact"] + share * large["eval_iv_noisy"]["exact"]
    train = large["train (sample)"]["exact"]
    gap = train - held
    return out + ["", f"Largest tier: it reads {pct(train)} of its own training images exactly and {pct(held)} of "
                      f"in-vocabulary words in unseen fonts, clean and noisy mixed as in training ({share:.0%} noisy). "
                      f"More varied data can close at most about the {gap * 100:.1f} points between the two; "
                      f"the {pct(1 - train)} it misses on images it trained on is underfitting, for capacity and "
                      "training steps to win back.", ""]


def letters_section(r: dict | None, widen: dict | None) -> list[str]:
    """`widen`: the same probe on the tokens before the last block (bench_letters.py --features widen)."""
    if not r:
        return []
    rows = r["splits"]
    spec = r["eval_data"]
    out = ["### Reading or pronouncing? (`python bench/bench_letters.py`)", "", *machine_line(r),
           "Measured on the default before the speaker (its encoder read phonemes; the commit above): these probes "
           "are why the model now reads letters and says them with a speaker.", "",
           f"A letter head (a 5-token conv with CTC over {len(r['alphabet'])} letters, shaped like the phoneme head) "
           f"trained for {r['steps']:,} steps ({r['probe_seconds']} s) on the frozen features that the phoneme head of "
           f"{r['checkpoint']} (`{r['tier']}`) reads, then both heads on the same {rows['eval_iv_clean']['n']:,} images "
           f"per split (data `--seed {spec.get('seed', '?')}`: fonts never trained on; OOV: words never trained on). "
           "Word-level exact.", "",
           "| split | letters exact | phonemes exact | phonemes exact where the letters are | wrong in stress only "
           "| read letters in the lexicon | exact with the lexicon |" + SPEAKER_HEAD * bool(r.get("g2p")),
           "|---|---|---|---|---|---|---|" + "---|---|" * bool(r.get("g2p"))]
    for split, v in rows.items():
        speaker = (f" {pct(v['letters_then_g2p_exact'])} | {pct(v['lexicon_then_g2p_exact'])} |" if r.get("g2p")
                   else "")
        out.append(f"| {split} | {pct(v['letters_exact'])} | {pct(v['phonemes_exact'])} "
                   f"| {pct(v['phonemes_exact_when_letters_exact'])} | {pct(v['wrong_in_stress_only'])} "
                   f"| {pct(v['letters_in_lexicon'])} | {pct(v['with_lexicon_exact'])} |" + speaker)
    iv, oov = rows["eval_iv_clean"], rows["eval_oov_clean"]
    lead = iv["letters_exact"] - iv["phonemes_exact"]
    text = [f"Clean in-vocabulary words: the encoder's features give the letters of {pct(iv['letters_exact'])}, the "
            f"model says {pct(iv['phonemes_exact'])} ({lead * 100:+.1f} points)."]
    if lead > 0.1:
        text.append("The encoder has read far more words than come out right: spelling to sound is what fails, and a "
                    "lexicon that the read letters look up would carry in-vocabulary words as far as the letters go.")
    gap = iv["phonemes_exact"] - oov["phonemes_exact"]
    text.append(f"In-vocabulary words, whose pronunciations it trained on, come out {gap * 100:+.1f} points against OOV ones"
                + (": it has learned spelling-to-sound rules, not the lexicon." if abs(gap) < 0.03 else "."))
    text.append(f"\"With the lexicon\": the read letters looked up among the {r['lexicon_words']:,} training words, the "
                f"model's own phonemes where they are not among them; that lexicon is {r['lexicon_xz_bytes']:,} bytes "
                "xz-compressed (a design estimate: neither the probe nor the lookup is in the model or its exports).")
    if r.get("g2p"):
        g = r["g2p"]
        text.append(f"A reader followed by a speaker: the read letters said by bench_g2p.py's network ({g['width']} x "
                    f"{g['depth']}, {g['params']:,} parameters; \"letters then g2p\"), or looked up in the lexicon and "
                    "said by that network where they are not in it (\"lexicon, else g2p\"). Clean OOV images: "
                    f"{pct(oov['letters_then_g2p_exact'])} against the model's {pct(oov['phonemes_exact'])}; clean "
                    f"in-vocabulary images: {pct(iv['letters_then_g2p_exact'])} from the letters alone, "
                    f"{pct(iv['lexicon_then_g2p_exact'])} behind the lexicon.")
    if widen:
        w = widen["splits"]
        text.append(f"Trained on the tokens before the last block of {widen['checkpoint']} (`--features widen`), "
                    f"the same probe reads the letters of {pct(w['eval_iv_clean']['letters_exact'])} "
                    f"of clean and {pct(w['eval_iv_noisy']['letters_exact'])} of noisy in-vocabulary words "
                    f"({pct(w['eval_oov_clean']['letters_exact'])} / {pct(w['eval_oov_noisy']['letters_exact'])} OOV): "
                    "what the last, widest block adds to reading letters (features trained for phonemes, not for "
                    "letters).")
    return out + ["", " ".join(text), ""]


def lexicon_section(r: dict | None) -> list[str]:
    if not r:
        return []
    splits = r["splits"]
    out = ["### The lexicon mends misreadings (`python bench/bench_lexicon.py`)", "", *machine_line(r),
           f"The letter probe of bench_letters.py on {r['checkpoint']} (`{r['tier']}`) reads the same "
           f"{splits['eval_iv_clean']['n']:,} images per split; a reading that is not among the "
           f"{r['lexicon_words']:,} lexicon words becomes the lexicon word within {r['max_edits']} edits that the "
           "letter head's CTC likes best, when that word is at most `margin` nats less likely than the reading. "
           f"Phonemes: the lexicon's, else {r['fallback']}. Exact phonemes per split, and the share "
           "of readings mended:", "",
           "| margin (nats) | " + " | ".join(splits) + " | mended (iv clean / oov clean) |",
           "|---|" + "---|" * (len(splits) + 1)]
    n = len(splits["eval_iv_clean"]["margins"])
    for i in range(n):
        rows = [v["margins"][i] for v in splits.values()]
        m = rows[0]["margin"]
        out.append(f"| {'any' if m is None else num(m, '.0f')} | " + " | ".join(pct(x["phonemes_exact"]) for x in rows)
                   + f" | {pct(splits['eval_iv_clean']['margins'][i]['mended'])} / "
                     f"{pct(splits['eval_oov_clean']['margins'][i]['mended'])} |")
    out += ["", "The margin was not tuned on separate data: the table is the whole trade. A mended in-vocabulary "
            "word gains what an OOV word mended into a lexicon word loses.", ""]
    return out


def g2p_section(sizes: list[dict], letters: dict | None, shipped: dict | None) -> list[str]:
    """One row per size of bench_g2p.py's letters -> phonemes network, smallest first, then the
    shipped model's own speaker (`--model`)."""
    if not sizes:
        return []
    g = sizes[0]
    machines = dict.fromkeys(s.get("machine") for s in sizes)  # each once, in order
    out = ["### Spelling to sound from the letters alone (`python bench/bench_g2p.py`)", "",
           *[line for m in machines for line in machine_line({"machine": m})],
           "A transformer over letters (CTC over phonemes, two slots per letter), float, trained for a fixed time "
           f"in batches of {g['batch']} words on the training words' espeak-ng phonemes, given the true letters; "
           "then the OOV words (never trained on) and a sample of training words.", "",
           "| width x layers | parameters | steps (minutes) | OOV exact | OOV PER | training words exact | PER |",
           "|---|---|---|---|---|---|---|"]
    for g in sizes:
        oov, iv = g["oov_words"], g["training_words_sample"]
        out.append(f"| {g['width']} x {g['depth']} | {g['params']:,} | {g['steps']:,} ({g['seconds'] / 60:.0f}) "
                   f"| {pct(oov['exact'])} | {pct(oov['per'])} | {pct(iv['exact'])} | {pct(iv['per'])} |")
    out.append("")
    if letters:
        model = letters["splits"]["eval_oov_clean"]
        out += [f"Beside it, the whole model on clean OOV word images: {pct(model['phonemes_exact'])} exact "
                f"({pct(model['phonemes_exact_when_letters_exact'])} where its letters read right, "
                "bench_letters.py). The OOV target is 85%. Spelling to sound is learnable at this size from "
                "letters; inside the image model it is learned far less well. Training words short of 100% "
                "are what a lexicon lookup would carry.", ""]
    if shipped:
        oov, iv = shipped["oov_words"], shipped["training_words_sample"]
        trained = shipped.get("training") or {}
        # a record continued often sums its older runs: then the speaker's are summed too
        ran = (f"its {trained['summed_runs']} oldest training runs, summed, ran {trained['step']:,} speaker steps"
               if "summed_runs" in trained else f"its last training stage ran {trained.get('step', 0):,} steps")
        out += [f"The speaker inside the model (`--model {Path(shipped['model']).name}`: 64 wide, 3 blocks, "
                f"{shipped['params']:,} parameters, weights in 8 bits; {ran}) says {pct(oov['exact'])} of OOV words exactly from their true "
                f"letters (PER {pct(oov['per'])}) and {pct(iv['exact'])} of the training-word sample "
                f"(PER {pct(iv['per'])}). It is smaller than the probes above to keep the model within 2.5M "
                "parameters.", ""]
    return out


def _float_student_words(training: dict) -> str:
    """A packed run's float student, if it started from one or was taught by one."""
    for key, role in (("float_student", "started from it, taught by it"), ("teacher", "taught by it"),
                      ("float_speaker", "no float student; the speaker started from a float one")):
        if key in training:
            st = training[key]
            if st.get("device", "cpu").startswith("cuda"):  # CPU seconds of a GPU machine's feeding cores mean little
                return f"{role}: {st.get('step', 0):,} steps, {st.get('seconds', 0) / 60:.0f} min on {st['device']}"
            return f"{role}: {st.get('step', 0):,} steps, {st.get('cpu_seconds', 0) / 3600:.2f} CPU h"
    return "-"


def _stages(c: dict) -> str:
    """The --stage options of the after model's newest run (spelling: only its letter model was fitted)."""
    training = c["after"]["training"]
    stages = list(training.get("stages", {})) or (["spelling"] if "spelling_words" in training else [])
    return " ".join(f"--stage {s}" for s in stages)


def continued_section(c: dict | None) -> list[str]:
    if not c:
        return []
    out = ["## The default, continued (`python bench/bench_continued.py`)", "",
           f"Machine: {c['machine']}", "",
           f"The packed default before and after `its-mobile train --preset full --ternary --init default {_stages(c)}`",
           "(all tiers in one pass: see the training record below; stretch: the share of each image's contrast stretch "
           "its encoder reads); reading accuracy of each tier",
           f"on the same {eval_words(c)}; latency of the whole tier, image -> waveform, one word, one thread (p50 of 100).", "",
           "| model | tier | packed bytes | exact iv clean / noisy | exact oov clean / noisy | PER iv clean / noisy "
           "| PER oov clean / noisy | latency p50 ms |", "|---|---|---|---|---|---|---|---|"]
    for which in ("before", "after"):
        lat = c[which].get("packed", {}).get("latency_p50_ms", {})
        for tier, t in c[which]["tiers"].items():
            r = t["reading"]
            out.append(f"| {which} | {tier} | {t['packed_bytes']:,} "
                       f"| {pct(r['eval_iv_clean']['exact'])} / {pct(r['eval_iv_noisy']['exact'])} "
                       f"| {pct(r['eval_oov_clean']['exact'])} / {pct(r['eval_oov_noisy']['exact'])} "
                       f"| {pct(r['eval_iv_clean']['per'])} / {pct(r['eval_iv_noisy']['per'])} "
                       f"| {pct(r['eval_oov_clean']['per'])} / {pct(r['eval_oov_noisy']['per'])} | {num(lat.get(tier))} |")
    for which in ("before", "after"):
        if "packed" in c[which]:
            p = c[which]["packed"]
            out += ["", f"The {which} file: {p['total_bytes']:,} bytes on disk with every tier "
                        f"(target <= 1 MB: {'met' if p['total_bytes'] <= 1e6 else 'not met'}); unpacking it at load takes "
                        f"{p['unpack_ms_p50']:.1f} ms (p50; target <= 20 ms: {'met' if p['unpack_ms_p50'] <= 20 else 'not met'})."]
    out += ["", "How the after model was trained, newest run first (each continued the one below it, unless its student "
                "started from a float student; a run without a recorded schedule or width predates the record; those "
                "students were 48 wide):", "",
            "| run | stages | student width | student steps | samples | wall min | CPU hours | images (seed) | schedule "
            "| float student |", "|---|---|---|---|---|---|---|---|---|---|"]
    training, k = c["after"]["training"], 0
    while training:
        st = training.get("stages", {}).get("student", {})
        sched = st.get("schedule")
        how = f"peak lr {sched['lr']:g}, cosine over {sched['steps']:,} steps, batch {sched['batch']}" if sched else "-"
        encoder = training.get("encoder", {})
        width = f"{encoder.get('width', '-')}" + (f", stretch {encoder['stretch']:g}" if encoder.get("stretch") else "")
        student = (f"{st.get('step', 0):,} | {st.get('samples', 0):,} | {st.get('seconds', 0) / 60:.0f} "
                   f"| {st.get('cpu_seconds', 0) / 3600:.2f}" if st
                   else "- | - | - | -")  # a run that trained other stages only
        stages = ", ".join(training.get("stages", {})) or ("spelling" if "spelling_words" in training else "")
        out.append(f"| {k} | {stages} | {width} | {student} "
                   f"| {training['data']['n']:,} ({training['data']['seed']}) | {how} | {_float_student_words(training)} |")
        if "earlier" in training:  # the older runs, summed when the record was written
            e = training["earlier"]
            st = e["stages"].get("student", {})
            out.append(f"| {k + 1}-{k + e['runs']} (summed) | {', '.join(e['stages'])} | | {st.get('step', 0):,} "
                       f"| {st.get('samples', 0):,} | {st.get('seconds', 0) / 60:.0f} | {st.get('cpu_seconds', 0) / 3600:.2f} "
                       "| | | |")
        training, k = training.get("continued_from"), k + 1
    total = _total_student(c["after"]["training"])
    return out + ["", f"In all, the after model's students trained {total['step']:,} steps on {total['samples']:,} samples "
                      f"in {total['cpu_seconds'] / 3600:.1f} CPU hours.", ""]


def _total_student(training: dict) -> dict:
    """Steps, samples and CPU seconds of every student run in a training record, summed."""
    total = dict.fromkeys(("step", "samples", "cpu_seconds"), 0)
    while training:
        for st in (training.get("stages", {}).get("student", {}),
                   training.get("earlier", {}).get("stages", {}).get("student", {})):
            for key in total:
                total[key] += st.get(key, 0)
        training = training.get("continued_from")
    return total


def export_section(e: dict | None) -> list[str]:
    if not e:
        return []
    status = {(a["format"], a["weights"]): a for a in e["parity"]["artifacts"]}
    out = ["## Export and parity", "", *machine_line(e), f"`{e['command']}`", "",
           "bits per ternary weight = 8 x (artifact bytes - bytes of every non-ternary tensor the file stores, "
           "at the backend's float width) / ternary weights; format overhead counts against it. The iSTFT basis "
           "and window envelope are stored in every file but the packed .pte, whose `init` computes them.", "",
           "| artifact | bytes | bits / ternary w | parity | mel max abs | waveform max abs |", "|---|---|---|---|---|---|"]
    for a in e["export"]["artifacts"]:
        p = status[(a["format"], a["weights"])]
        if p["status"] == "not-run":
            run = f"not run ({p['reason']}); static check {'ok' if p['static_check']['ok'] else 'FAILED'}"
        else:
            run = p["status"] + (", by the NumPy MIL interpreter (Core ML needs macOS)" if p["level"] == "interpreted" else "")
        out.append(f"| {a['path']} | {a['bytes']:,} | {a['bits_per_ternary_weight']:.2f} | {run} "
                   f"| {num(p.get('mel_max_abs'), '.1e')} | {num(p.get('waveform_max_abs'), '.1e')} |")
    out += ["", f"Parity images: {e['parity']['images']} ({', '.join(dict.fromkeys(e['parity']['shown']))}, clean and noisy).", ""]
    wall = e.get("packed_export_wall_seconds")
    if wall is not None:
        out += [f"`its-mobile export --format all` (the three packed artifacts, one process, 2 cores): {wall:.0f} s "
                f"wall (target <= 3 minutes: {'met' if wall <= 180 else 'not met'}).", ""]
    held = e.get("parity_held_out")
    if held:
        out += [f"On {held['images']} held-out images (`its-mobile parity OUT --n {held['images']}`: lexicon words, "
                "some never trained on, in fonts never trained on, clean and noisy):", "",
                "| artifact | level | phoneme agreement | mel max rel err | min waveform SNR dB | passed |", "|---|---|---|---|---|---|"]
        for a in held["artifacts"]:
            out.append(f"| {a['path']} | {a['level']} | {pct(a.get('phoneme_agreement'))} | {num(a.get('max_rel_err'), '.1e')} "
                       f"| {num(a.get('min_waveform_snr_db'), '.0f')} | {'yes' if a['passed'] else 'no'} |")
        out.append("")
    return out


def export_latency_section(e: dict | None) -> list[str]:
    if not e:
        return []
    lat = e["latency"]
    out = ["### Packed against dense in the runtimes (`python bench/bench_export_latency.py OUT`)", "",
           f"One thread, {e['runs']} interleaved runs after 10 warm-ups, one word image -> waveform. {e['machine']}"
           + (". A row named COMMIT/file is that file as the given commit exported it, timed in the same loop "
              "(`--also COMMIT=FILE`)." if any("/" in k for k in e["latency"]) else ""), "",
           "| artifact | p50 ms | p90 ms | packed / dense p50 | init (once, ms) |", "|---|---|---|---|---|"]
    for k, v in lat.items():
        twin = lat.get(k.replace("-packed", "-dense")) if "-packed" in k else None  # LABEL/ rows: no twin run
        ratio = f"{v['p50_ms'] / twin['p50_ms']:.2f}x" if twin else "-"
        out.append(f"| {k} | {v['p50_ms']:.1f} | {v['p90_ms']:.1f} | {ratio} | {num(v.get('init_ms'), '.1f')} |")
    return out + [""]


def int8_section(r: dict | None) -> list[str]:
    if not r:
        return []
    out = ["### What int8 activations or int8 weights cost (`python bench/bench_int8.py`)", "",
           f"The default's .tflite against PyTorch on {r['images']} held-out images (as `its-mobile parity --n`), "
           f"LiteRT interpreter, one thread, latency interleaved. {r['machine']}", "",
           "| weights, activations | bytes | XNNPACK partitions | phoneme agreement | frame-count agreement "
           "| mel max rel err | median waveform SNR dB | within tolerances | p50 ms |", "|---|---|---|---|---|---|---|---|---|"]
    for k, v in r["variants"].items():
        broken = v["mel_max_rel_err"] != v["mel_max_rel_err"]  # NaN: the interpreter gave NaN outputs
        out.append(f"| {k} | {v['bytes']:,} | {v['xnnpack_partitions']} | {pct(v['phoneme_agreement'])} "
                   f"| {pct(v['frames_agreement'])} | {'NaN outputs' if broken else num(v['mel_max_rel_err'], '.1e')} "
                   f"| {'-' if broken else num(v['median_waveform_snr_db'], '.0f')} | {pct(v['passed_tolerances'])} "
                   f"| {v['p50_ms']:.1f} |")
    return out + ["", "int8 activations are dynamic-range quantization (ai-edge-quantizer): activations are "
                  "quantized at run time, weights stay exact (ternary values fit int2 and int8 alike). "
                  "The exported form keeps float32 activations. XNNPACK takes the DEQUANTIZE of constant "
                  "int8 weights into its partitions but not that of int2 ones, so the int2 graph runs in "
                  "as many partitions as there are int2 weights; stored as int8 instead, the ternary "
                  "weights run at the dense twin's speed (see the export latency table) for about 1.8x "
                  "the bytes of int2.", ""]


def build_section(b: dict | None) -> list[str]:
    if not b:
        return []
    out = ["## Sample app bundles (`python bench/bench_build.py`)", "",
           f"`its-mobile build --target T --runtime R` from the embedded default, each a fresh process "
           f"(export, parity, manifest, host latency, project, zip). {b['machine']}", "",
           "| target | runtime | wall s | zip bytes | model | model bytes | bits / ternary w | parity | host p50 ms |",
           "|---|---|---|---|---|---|---|---|---|"]
    for r in b["rows"]:
        out.append(f"| {r['target']} | {r['runtime']} | {r['seconds']:.1f} | {r['zip_bytes']:,} | {r['model_file']} "
                   f"({r['weights']}) | {r['model_bytes']:,} | {r['bits_per_ternary_weight']:.2f} | {r['parity']} "
                   f"| {num(r['host_p50_ms'], '.1f')} |")
    android = next(r for r in b["rows"] if (r["target"], r["runtime"]) == ("android", "litert"))
    out += ["", f"Targets for `its-mobile build --target android` (LiteRT, the default): <= 60 s on 2 cores: "
            f"{android['seconds']:.0f} s ({'met' if android['seconds'] <= 60 else 'not met'}); zip <= 3 MB: "
            f"{android['zip_bytes'] / 1e6:.2f} MB ({'met' if android['zip_bytes'] <= 3e6 else 'not met'}). The ExecuTorch "
            "variant carries the dense .pte (the Java Module cannot share memory arenas between `init` and "
            "`forward`), hence its size. Core ML cannot run on Linux: its parity is interpreted (the package's MIL program in NumPy) and it has no host latency.", ""]
    return out


def scale_section(ddp: dict | None, data: dict | None) -> list[str]:
    out = ["## Scaling out: torchrun and sharded data", ""]
    if ddp:
        out += [f"`python bench/bench_ddp.py --data DATA --steps 30` (full preset, global batch {ddp['batch']}; "
                f"one run, side by side). {ddp['machine']}", "",
                "| stage | setup | steps | samples/s | last loss |", "|---|---|---|---|---|"]
        for r in ddp["rows"]:
            out.append(f"| {r['stage']} | {r['setup']} | {r['steps']} | {r['samples_per_s']:.0f} | {r['last_loss']:.6f} |")
        out += ["", "Same global batch, same losses (to 1e-7): the ranks split each batch and average gradients. "
                "On 2 cores the two setups use the same hardware, so the point is equivalence, not speed.", ""]
    if data:
        spec = data["spec"]
        runs = data.get("runs", {k: [v] for k, v in data["seconds"].items()})
        out += [f"`python bench/bench_data.py` ({spec['n']} training images, {spec['n_speech']} speech words; "
                "1 and 2 workers interleaved, median of the rounds). "
                f"{data['machine']}", "", "| setup | seconds (median) | every round |", "|---|---|---|"]
        out += [f"| {k} | {v:.1f} | {', '.join(f'{x:.1f}' for x in runs[k])} |" for k, v in data["seconds"].items()]
        out += ["", f"2 workers: {data['speedup_2_workers']:.2f}x faster than 1 (target >= 1.8x: "
                f"{'met' if data['speedup_2_workers'] >= 1.8 else 'not met'}); every file (images, words, speech "
                f"targets) identical across all three: {'yes' if data['files_identical'] else 'NO'}.",
                "Phonemization, rendering and speech run in the workers, which import no torch (the parent",
                "computes the mel targets) and so start at once; writing the arrays stays in the parent.",
                "The full preset's 160,000 images were not timed both ways.", ""]
    return out


def gpu_section(g: dict | None) -> list[str]:
    if not g:
        return []
    out = ["### On a lent GPU: fresh renders for the student (`bench/gpu/student.sh`, `bench/gpu/record.py`)", "",
           f"{g['n_train']:,} training images never trained on before (seed {g['seed']}, the training fonts and words), "
           f"rendered on the GPU machine's cores in {g['render_seconds']:.0f} s, then the default's ternary student "
           f"continued (all tiers, `--stage student --init default`) in each config below, side by side on one "
           f"{g['device']}. Evaluated here, no ASR, on {g['eval_data']['n_eval']:,} fresh renders per split (`its-mobile "
           f"data --seed {g['eval_data']['seed']}`, fonts never trained on); {g['machine']}", "",
           "| config | batch | peak lr | steps | train s | steps/s | last loss | tier | exact: IV clean / IV noisy / "
           "OOV clean / OOV noisy | PER | letters read exactly |", "|---|---|---|---|---|---|---|---|---|---|---|"]
    for c in g["configs"]:
        p2 = c["phase2"]  # a resumed run counts its steps and seconds from the start
        secs = p2["seconds"]
        for k, (tier, ev) in enumerate(c["eval"].items()):
            row = [c["name"], str(c["batch"]), f"{c['lr']:g}", f"{p2['step']:,}", str(secs),
                   f"{p2['step'] / secs:.1f}", f"{p2['loss']:.4f}"] if k == 0 else [""] * 7
            splits = list(ev.values())
            row += [tier, " / ".join(pct(s["exact"]) for s in splits), " / ".join(pct(s["per"]) for s in splits),
                    " / ".join(pct(s["letters_exact"]) for s in splits)]
            out.append("| " + " | ".join(row) + " |")
    out += ["", "Each config trained one minute to measure its speed, then resumed with a cosine sized to end "
            "within the device time; steps and seconds cover both.", ""]
    return out


def cascade_section(c: dict | None) -> list[str]:
    if not c:
        return []
    per_split, seed = c.get("per_split", 50), c.get("seed", 11)  # recorded since each could be chosen
    name = f"cascade_{c['images']}" + ("" if seed == 11 else f"_seed{seed}")
    # Our rows are named its-TIER-packed.FORMAT: the tiers the run was given.
    tiers = ",".join(dict.fromkeys(r["system"].split("-")[1] for r in c["rows"] if r["system"].startswith("its-")))
    args = "" if per_split == 50 else (f" --per-split {per_split} --tiers {tiers}" + ("" if seed == 11 else f" --seed {seed}")
                                       + f" --out bench/results/{name}.json")
    out = [f"{'##' if per_split == 50 else '###'} Against the OCR + TTS cascade (`python bench/bench_cascade.py{args}`)", "",
           f"The same {c['images']:,} held-out word images for every system ({per_split:,} each, data seed {seed}: in-vocabulary and OOV words, clean and",
           "noisy, fonts never trained on), one thread, each system in its own process; exact = the phonemes spoken equal",
           f"espeak-ng's for the true word. Latency: image in, waveform out. {c['machine']}", "",
           "| system | IV clean | IV noisy | OOV clean | OOV noisy | p50 ms / word | recognise + speak ms | model bytes | on disk (+ espeak-ng data) | peak RSS MB (before) |",
           "|---|---|---|---|---|---|---|---|---|---|"]
    for r in c["rows"]:
        e = r["exact"]
        out.append(f"| {r['system']} | {pct(e['eval_iv_clean'])} | {pct(e['eval_iv_noisy'])} | {pct(e['eval_oov_clean'])} "
                   f"| {pct(e['eval_oov_noisy'])} | {r['p50_ms']:.1f} | {r['stage_ms']['recognise']:.1f} + "
                   f"{r['stage_ms']['speak']:.1f} | {r['model_bytes']:,} | {r['disk_bytes']:,} "
                   f"| {r['peak_rss_mb']:.0f} ({r['rss_before_mb']:.0f}) |")
    ours = [r for r in c["rows"] if r["system"].startswith("its-large")]
    best = max((r for r in c["rows"] if not r["system"].startswith("its-")), key=lambda r: r["exact"]["eval_iv_clean"])
    if ours:
        fast = min(ours, key=lambda r: r["p50_ms"])
        iv = ("eval_iv_clean", "eval_iv_noisy")
        gap = max(best["exact"][s] - fast["exact"][s] for s in iv)
        speed, smaller = best["p50_ms"] / fast["p50_ms"], best["disk_bytes"] / fast["disk_bytes"]
        out += ["", f"Default tier against the best cascade ({best['system']}): exact on in-vocabulary clean / noisy words "
                f"{' / '.join(pct(fast['exact'][s]) for s in iv)} vs {' / '.join(pct(best['exact'][s]) for s in iv)} "
                f"(target: within 1 point on each, {'met' if gap <= 0.01 else 'not met'}; on both together "
                f"{pct(sum(fast['exact'][s] for s in iv) / 2)} vs {pct(sum(best['exact'][s] for s in iv) / 2)}); "
                f"{speed:.1f}x faster per word ({fast['system']}, target >= 2x, {'met' if speed >= 2 else 'not met'}); "
                f"{smaller:.1f}x smaller on disk counting espeak-ng's data (target >= 20x, {'met' if smaller >= 20 else 'not met'}). "
                "Peak RSS includes the Python process that loads the images (the 'before' figure).", ""]
    return out


def fuzz_section(f: dict | None) -> list[str]:
    if not f:
        return []
    out = ["## Hardening (`python bench/bench_fuzz.py`)", "", f"{f['machine']}", "",
           "| reader (hypothesis) | cases run | failing |", "|---|---|---|"]
    out += [f"| {k.replace('_', ' ')} | {v['passing']} | {v['failing']} |" for k, v in f["readers"].items()]
    out += ["", f"Kill points tried on a running `build`: {f['kill_points']} ({', '.join(f['kill_signals'])}); builds run "
            f"concurrently: {f['concurrent_builds']['same folder']} into one folder (one stops with exit 75), "
            f"{f['concurrent_builds']['different folders']} into two. Previous bundle intact and nothing corrupted in "
            f"every case: {'yes' if f['hardening_passed'] and f['fuzz_passed'] else 'NO: ' + f['hardening_summary']}.", ""]
    return out


def margins_section(m: dict | None) -> list[str]:
    if not m:
        return []
    cols = ["framed", "framed, cropped", "wide margin", "wide margin, cropped"]
    out = ["## Photos with wide margins (`python bench/bench_margins.py --data D`)", "",
           "Exact reading of the default (`large` tier) on each evaluation split: as rendered (framed as in "
           "training), and enlarged 4x onto a canvas 1.7-4x as wide and 2-5x as high (a photo or screenshot), "
           f"each without and with `speak`'s crop to the word. {m['machine']}", "",
           "| split | n | " + " | ".join(cols) + " |", "|---|---|" + "---|" * len(cols)]
    for split, r in m["splits"].items():
        out.append(f"| {split} | {r['n']} | " + " | ".join(pct(r[c]) for c in cols) + " |")
    return out + [""]


def shifts_section(r: dict | None) -> list[str]:
    if not r:
        return []
    splits = list(next(iter(r["views"].values())))
    out = ["## Readings averaged per image (`python bench/bench_shifts.py --data D`)", "",
           f"Letters of words the default (`large`) reads exactly when its encoder reads each image as it is or "
           f"moved, the readings' letter log-probabilities averaged before spelling (`dims.spelling.shifts`), on "
           f"the tuning set (data seed {r['data']['seed']}, {r['data']['n_eval']} per split; results are reported "
           f"on other seeds). {r['machine']}", "",
           "| readings | " + " | ".join(splits) + " | mean |", "|---|" + "---|" * (len(splits) + 1)]
    for name, v in r["views"].items():
        out.append(f"| {name} | " + " | ".join(pct(v[k]) for k in splits) + f" | {np.mean(list(v.values())):.2%} |")
    means = {k: float(np.mean(list(v.values()))) for k, v in r["weight_bonus"].items()}
    best = max(means, key=means.get)
    return out + ["", f"With the shipped shifts, the spelling's weight / bonus over a {len(means)}-point grid read "
                  f"{min(means.values()):.2%} to {means[best]:.2%} ({best}); the shipped "
                  f"{r['shipped_weight_bonus']} reads {means[r['shipped_weight_bonus']]:.2%}.", ""]


def yes(ok: bool) -> str:
    return "yes" if ok else "no"


def targets_section(default: dict, teacher: dict, lat: dict, voc: dict | None, fresh: dict | None) -> list[str]:
    """The foundation issue's targets against the shipped default (its largest tier), on the
    standard 200 images per split and, where bench_continued measured them, on 1,000 fresh ones."""
    split = {s["split"]: s for s in default["splits"]}
    big = fresh["after"]["tiers"]["large"]["reading"] if fresh else None

    def accuracy_row(target: str, a: str, b: str, ok) -> str:
        """ok(split_a, split_b) says whether the target is met."""
        def two(r: dict) -> str:
            return " / ".join(f"{pct(r[k]['exact'])} (PER {pct(r[k]['per'])})" for k in (a, b))

        row = f"| {target} | {two(split)}"
        met = yes(ok(split[a], split[b]))
        if big:
            row += f" on 200 per split; {two(big)} on 1,000 fresh"
            met += f" on 200; {yes(ok(big[a], big[b]))} on 1,000"
        return f"{row} | {met} |"

    iv = split["eval_iv_clean"]
    teacher_iv = {s["split"]: s for s in teacher["splits"]}["eval_iv_clean"]["exact"]
    drop = teacher_iv - iv["exact"]
    # The target is on the model's audio, whatever it read: every split must reach it, noisy ones too.
    intel = [s["intelligibility"] for s in default["splits"] if s.get("intelligibility") is not None]
    vocoder_alone = voc["options"]["learned iSTFT (ours)"]["intelligibility"] if voc else None
    ratio = teacher["params"] / default["params"]
    return ["## Against the foundation issue's targets (the shipped default)", "",
            "| target | measured | met |", "|---|---|---|",
            f"| student <= 2.5M parameters | {default['params']:,} | {yes(default['params'] <= 2_500_000)} |",
            f"| teacher >= 2.4x student | {ratio:.2f}x | {yes(ratio >= 2.4)} |",
            accuracy_row("in-vocabulary exact >= 99% clean / 97% noisy", "eval_iv_clean", "eval_iv_noisy",
                         lambda c, n: c["exact"] >= 0.99 and n["exact"] >= 0.97),
            f"| teacher-to-student drop <= 1 point | student {pct(iv['exact'])} vs float teacher {pct(teacher_iv)}"
            f"{' (the student is ahead)' if drop < 0 else ''} | {yes(drop <= 0.01)}{', vacuously' if drop < 0 else ''} |",
            accuracy_row("OOV exact >= 85%, PER <= 4% (clean / noisy)", "eval_oov_clean", "eval_oov_noisy",
                         lambda c, n: min(c["exact"], n["exact"]) >= 0.85 and max(c["per"], n["per"]) <= 0.04),
            f"| intelligibility >= 0.8 of espeak-ng | {num(min(intel, default=None))}-{num(max(intel, default=None))} "
            f"over the {len(intel)} splits, {num(iv.get('intelligibility'))} in-vocabulary clean (vocoder alone on "
            f"true mels: {num(vocoder_alone)}) | {yes(bool(intel) and min(intel) >= 0.8)} |",
            f"| <= 15 ms image -> waveform, one thread | p50 {lat['whole']['p50_ms']:.1f} ms, RTF {lat['rtf']:.3f} "
            f"| {yes(lat['whole']['p50_ms'] <= 15)} |", ""]


def main() -> None:
    out = ["# Benchmark results", "",
           "Every number below was measured by the script named beside it and is read from",
           "`bench/results/*.json` by `bench/write_results.py`; rerun a script to refresh its part.",
           "Each section names the machine, versions and commit it was measured on.", ""]
    train = load("training")
    if train:
        out += ["## Training of the float model (`its-mobile train --preset full`; the packed default is fine-tuned from it, see Compression)", "",
                *machine_line(train), "| stage | steps | samples seen | wall s | CPU s | first loss | last loss |", "|---|---|---|---|---|---|---|"]
        for stage, r in train["stages"].items():
            out.append(f"| {stage} | {r['step']} | {r['samples']:,} | {r['seconds']:.0f} | {r['cpu_seconds']:.0f} "
                       f"| {r['loss_curve'][0][1]:.3f} | {r['loss_curve'][-1][1]:.3f} |")
        out += ["", train.get("note", ""), ""]
    for name, title in (("eval_teacher", "Teacher, grown from the student (`its-mobile eval --checkpoint T/teacher_its.safetensors`, see The teacher)"),
                        ("eval_student", "Float student at step 15,500, the default before the packed model (`its-mobile eval --checkpoint runs/full/student_its.safetensors`)"),
                        ("eval_default", "The shipped default: packed ternary, `large` tier (`its-mobile eval`)")):
        ev = load(name)
        if ev:
            out += eval_table(ev, title)
    if load("eval_student") or load("eval_default"):
        out += ["ASR grammar: the evaluation words plus 1,500 lexicon words; intelligibility = pocketsphinx",
                "accuracy on the model's audio / on espeak-ng's audio of the same words.", ""]
    lat = load("latency")
    if lat:
        out += ["## Latency, one word, one host thread (`python bench/bench_latency.py`)", "", *machine_line(lat),
                "| part | p50 ms | p90 ms |", "|---|---|---|"]
        for k, v in lat.items():
            if isinstance(v, dict):
                out.append(f"| {k} | {v['p50_ms']:.2f} | {v['p90_ms']:.2f} |")
        out += ["", f"Real-time factor {lat['rtf']:.3f} ({lat['audio_seconds']:.2f} s of audio for \"reading\").", ""]
    voc = load("vocoder")
    if voc:
        out += ["## Vocoder options (`python bench/bench_vocoder.py --n 150`)", "", *machine_line(voc),
                f"espeak-ng's log-mel of {voc['n']} OOV words in, one thread; pocketsphinx on espeak-ng's own audio: "
                f"{pct(voc['asr_espeak'])} ({voc['grammar']}-word grammar).", "",
                "| vocoder | p50 ms per word | MCD (dB) | ASR | intelligibility |", "|---|---|---|---|---|"]
        for k, v in voc["options"].items():
            out.append(f"| {k} | {v['ms_p50']:.1f} | {v['mcd_db']:.2f} | {pct(v['asr'])} | {v['intelligibility']:.2f} |")
        out += ["", "The learned vocoder is kept: as intelligible, closer to espeak-ng (MCD) and ~7x faster.", ""]
    default, te = load("eval_default"), load("eval_teacher")
    if default and te and lat:
        out += targets_section(default, te, lat, voc, load("continued_fresh"))
    for name in ("teacher_fresh", "teacher_fresh_seed12"):
        out += teacher_section(load(name), name)
    out += tiers_section(load("tiers"))
    out += tier_cost_section(load("tier_cost"))
    out += sensitivity_section(load("sensitivity"))
    out += high_precision_section(load("high_precision_fresh"))
    for name in ("alone", "alone_from_float", "tier_weight", "kl_weight", "alone_seed"):
        out += alone_section(load(name))
    out += continued_section(load("continued"))
    out += fresh_section(load("continued_fresh"))
    out += fresh_section(load("continued_fresh_seed12"), "continued_fresh_seed12", "Before and after on a second fresh set",
                         "A set not used to choose between models: two such sets differ by up to a point on noisy words.")
    out += fit_section(load("fit"))
    out += letters_section(load("letters"), load("letters_widen"))
    out += lexicon_section(load("lexicon"))
    out += g2p_section(sorted((json.loads(p.read_text()) for p in R.glob("g2p_w*.json")), key=lambda g: g["params"]),
                       load("letters"), load("g2p_model"))
    for name in ("precision", "precision_from_float", "precision_from_float_fresh", "precision_from_float_large_alone"):
        out += precision_section(load(name))
    out += export_section(load("export"))
    out += export_latency_section(load("export_latency"))
    out += int8_section(load("int8"))
    out += build_section(load("build"))
    out += scale_section(load("ddp"), load("data"))
    out += gpu_section(load("gpu_student"))
    out += cascade_section(load("cascade"))
    out += cascade_section(load("cascade_4000"))
    out += cascade_section(load("cascade_4000_seed12"))
    out += margins_section(load("margins"))
    out += shifts_section(load("shifts"))
    out += fuzz_section(load("fuzz"))
    (HERE / "RESULTS.md").write_text("\n".join(out) + "\n")


if __name__ == "__main__":
    main()
