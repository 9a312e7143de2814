#!/usr/bin/env bash
# Ship a newly trained packed model as the embedded default and rerun every benchmark whose
# numbers depend on it, then rewrite bench/RESULTS.md. About 13 minutes on 2 cores.
#
#   bench/refresh.sh PACKED FLOAT_RUN TERNARY_RUN DATA WORK
#
# PACKED: the new packed.safetensors; FLOAT_RUN: the train-float run its student was
# fine-tuned from, or - when it continued a packed model (bench_precision is then skipped);
# TERNARY_RUN: the ternary run directory (its tiers); DATA: from
# `its-mobile data`; WORK: a scratch directory (the old default and the artifacts go there).
# bench_letters.py and bench_lexicon.py probed the encoder of the model before the speaker (it
# read phonemes) and are not rerun here: their results describe that model.
# Run from the repository root with the .venv made by `make install`.
set -euo pipefail
if [ $# -ne 5 ]; then sed -n 5,10p "$0" >&2; exit 2; fi
PACKED=$1 FLOAT=$2 TERN=$3 DATA=$4 WORK=$5
PY=.venv/bin/python
mkdir -p "$WORK"
# The model the new one is compared against: the default as last committed.
git show HEAD:its_mobile/assets/default.safetensors > "$WORK/before.safetensors"
cp "$PACKED" its_mobile/assets/default.safetensors
step() { echo "== $(date +%T) $*"; }
step eval;           $PY -m its_mobile eval --data "$DATA" --json-out bench/results/eval_default.json
step latency;        $PY bench/bench_latency.py > /dev/null
step continued;      $PY bench/bench_continued.py --data "$DATA" --before "$WORK/before.safetensors" > /dev/null
# 200 images per split cannot tell a one-point change from noise: 1,000 fresh renders per split can.
rm -rf "$WORK/fresh"
$PY -m its_mobile data --n 1 --n-eval 1000 --n-speech 1 --n-audio 0 --seed 11 --workers 2 --out "$WORK/fresh" > /dev/null 2>&1
$PY bench/bench_continued.py --data "$WORK/fresh" --before "$WORK/before.safetensors" \
    --out bench/results/continued_fresh.json > /dev/null
if [ "$FLOAT" != - ]; then
step precision;      $PY bench/bench_precision.py compare --data "$DATA" --float "$FLOAT" --ternary "$TERN" \
                         --out bench/results/precision_from_float.json --start "$WORK/before.safetensors" > /dev/null
$PY bench/bench_precision.py compare --data "$WORK/fresh" --float "$FLOAT" --ternary "$TERN" \
    --out bench/results/precision_from_float_fresh.json --start "$WORK/before.safetensors" > /dev/null
fi
step export;         $PY bench/bench_export.py "$WORK/export"
step export_latency; $PY bench/bench_export_latency.py "$WORK/export" > /dev/null
step int8;           $PY bench/bench_int8.py --n 200 > /dev/null
step build;          $PY bench/bench_build.py > /dev/null
step cascade;        $PY bench/bench_cascade.py > /dev/null
step margins;        $PY bench/bench_margins.py --data "$DATA" > /dev/null
step fit;            $PY bench/bench_fit.py --data "$DATA"
step speaker;        $PY bench/bench_g2p.py --data "$DATA" --model its_mobile/assets/default.safetensors > /dev/null
step write;          $PY bench/write_results.py
step done
