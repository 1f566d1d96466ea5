#!/bin/bash
# Rejection sampling on a SLURM cluster: an array of N shard jobs (recipes/slurm/reject_sample.slurm), then
# one job that merges the shards into OUT once all of them have finished (afterok: not if one failed).
#
#   SHARDS=8 bash recipes/slurm/reject_sample.sh runs/qwen/grpo runs/qwen/data/rl runs/qwen/rs \
#       recipes/qwen2.5-math-7b/reject_sample.yaml --judge-url http://judge-host:8000/v1
#
# Arguments: those of reject_sample.slurm (MODEL DATA OUT RECIPE [r1 options]); SHARDS (default 8).
# A shard that failed: resubmit it alone (sbatch --array=I ... with --resume), then the merge.
set -euo pipefail

if [ $# -lt 4 ]; then
    echo "usage: SHARDS=N bash recipes/slurm/reject_sample.sh MODEL DATA OUT RECIPE [r1 options]" >&2
    exit 2
fi
SHARDS=${SHARDS:-8}
OUT=$3
HERE=$(dirname "$0")
JOB=$(sbatch --parsable --array=0-$((SHARDS - 1)) "$HERE/reject_sample.slurm" "$@")
PARTS=()
for ((i = 0; i < SHARDS; i++)); do PARTS+=("$OUT-shard$i"); done
MERGE=$(sbatch --parsable --dependency="afterok:$JOB" --job-name=r1-merge --output=logs/%x-%j.out \
    --wrap "r1 data merge ${PARTS[*]@Q} --to ${OUT@Q}")
echo "submitted: shards $JOB (array of $SHARDS), merge $MERGE -> $OUT"
