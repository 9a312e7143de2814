#!/usr/bin/env bash
# Continue the shipped default's ternary student (all tiers) on freshly rendered images, several
# configs side by side on one lent GPU (`run` tool, 15 minutes of device time in all):
#
#   here:  .venv/bin/its-mobile data --n 1 --n-eval 10 --n-speech 1 --n-audio 0 --out /tmp/small
#          .venv/bin/python bench/gpu/render_train.py pack /tmp/small runs/gpu   # ~6 MB with the fonts
#   there: run(command="export PYTHONPATH=$PWD; bash bench/gpu/student.sh", carry=["runs/gpu"])
#
# It renders N training images (seed SEED) on every core, trains each config for MIN1 minutes
# to measure its speed, then resumes it with a cosine sized to end at END_S seconds. The
# packed and float students come back under $OUT/NAME/; the logs as $OUT/NAME.{1,2}.log.
# The 2026-11 run (N=1200000 SEED=21, configs A and B) is in bench/RESULTS.md.
set -uo pipefail
export PYTHONUNBUFFERED=1
N=${N:-1200000} SEED=${SEED:-21} MIN1=${MIN1:-1.0} END_S=${END_S:-525} W=${W:-/tmp/work}
CARRY=${CARRY:-runs/gpu} CONFIGS=${CONFIGS:-"A 256 0.001 B 1024 0.002"}  # name batch lr ...
t0=$(date +%s)
el() { echo $(( $(date +%s) - t0 )); }
python3 -c "import torch; print(torch.__version__, torch.cuda.get_device_name())"
python3 bench/gpu/render_train.py render "$CARRY" "$W/data" "$N" "$SEED" || exit 1
echo "rendered at $(el) s"
train() {  # name batch lr steps minutes log
  python3 -m its_mobile train --preset full --data "$W/data" --out "$W/$1" --ternary --init default \
    --stage student --steps "$4" --batch "$2" --lr "$3" --device cuda --minutes "$5" > "$OUT/$6" 2>&1
}
set -- $CONFIGS
while [ $# -gt 0 ]; do train "$1" "$2" "$3" 1000000 "$MIN1" "$1.1.log" & shift 3; done; wait
echo "phase 1 done at $(el) s"
set -- $CONFIGS
while [ $# -gt 0 ]; do
  name=$1 batch=$2 lr=$3; shift 3
  # The progress line reads "student (large, base, small): step 1234, loss 0.04, 60 s".
  read -r step secs < <(tr '\r' '\n' < "$OUT/$name.1.log" | sed -n 's/.*: step \([0-9]*\), loss .*, \([0-9]*\) s$/\1 \2/p' | tail -1)
  left=$(( END_S - $(el) - 25 ))
  total=$(( step + step * left / secs ))
  echo "$name: $step steps in $secs s; resuming to $total steps ($left s left)"
  train "$name" "$batch" "$lr" "$total" "$(python3 -c "print(($left + 10) / 60)")" "$name.2.log" &
done; wait
echo "phase 2 done at $(el) s"
set -- $CONFIGS
while [ $# -gt 0 ]; do
  mkdir -p "$OUT/$1"; cp "$W/$1"/ternary-large-base-small/*.safetensors "$OUT/$1/"
  tail -c 300 "$OUT/$1.2.log" | tr '\r' '\n' | tail -3; shift 3
done
echo "end at $(el) s"
