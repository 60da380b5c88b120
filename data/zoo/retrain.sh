#!/usr/bin/env bash
# Retrain starter-zoo models: `bash data/zoo/retrain.sh NAME...` (no name: the whole zoo).
# Each model is one recipe: the world dataset it learns from, then one training command.
# Training data goes to $ZOO_WORK (default ./zoo-work); models replace data/zoo/<name>.
set -euo pipefail
cd "$(dirname "$0")/../.."
work="${ZOO_WORK:-zoo-work}"
mkdir -p "$work"

world() {  # world NAME ARGS...: build a world dataset once
  local name=$1; shift
  [ -f "$work/$name/manifest.parquet" ] || artbias data world --out "$work/$name" --quiet "$@"
}

replace() {  # replace NAME: move a freshly trained model into the zoo
  rm -rf "data/zoo/$1" && mv "$work/$1" "data/zoo/$1"
}

clip-world() {
  world world-clip --n 10000 --seed 1 --test-fraction 0
  rm -rf "$work/clip-world"
  artbias train clip --data "$work/world-clip" --out "$work/clip-world" --epochs 12
  replace clip-world
}

classifier-world() {
  world world-classifier --n 6000 --seed 2 --test-fraction 0.2
  rm -rf "$work/classifier-world"
  artbias train classifier --arch resnet-small --data "$work/world-classifier" --weights none \
    --out "$work/classifier-world" --epochs 8 --freeze-epochs 0 --seed 0 --size 64 --batch-size 64 --lr 0.003
  replace classifier-world
}

all=(clip-world classifier-world)
for name in "${@:-${all[@]}}"; do
  if ! declare -F "$name" >/dev/null; then
    echo "retrain.sh: unknown model $name (known: ${all[*]})" >&2
    exit 2
  fi
  echo "== $name"
  "$name"
done
