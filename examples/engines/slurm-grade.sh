#!/usr/bin/env bash
# Grade a class on a Slurm cluster: one array task per shard, then one job that merges them.
# From the course checkout (it holds .venv from `bash scripts/setup.sh`, and submitted/):
#
#   shards=$(sbatch --parsable --array=0-7 examples/engines/slurm-grade.sh)    # SHARDS=8 shards, 0 to 7
#   sbatch --dependency=afterany:"$shards" examples/engines/slurm-grade.sh    # no --array: the merge
#
# A task that fails or times out is resubmitted with the same index (sbatch --array=3 ...): it keeps
# what it had graded. N is SHARDS, not the array's size, which is 1 for such a resubmission; for
# another N, give it to every sbatch of this script: sbatch --export=ALL,SHARDS=16 --array=0-15 ...
# The merge refuses a missing or unfinished shard, naming it. See docs/sharding.md.
#SBATCH --job-name=autograde
#SBATCH --cpus-per-task=4
#SBATCH --mem=16G
#SBATCH --time=02:00:00
#SBATCH --output=autograde-%A_%a.log
set -euo pipefail
cd "${SLURM_SUBMIT_DIR:-.}"
PYTHON=${PYTHON:-.venv/bin/python}
SUBMITTED=${SUBMITTED:-submitted}   # nbgrader's submitted/<student>/<assignment>/ (or any folder grade takes)
GRADED=${GRADED:-graded}            # each shard's results in $GRADED/shard-I, the class in $GRADED/class
SHARDS=${SHARDS:-8}                 # the class's N: submit the array as --array=0-$((SHARDS - 1))

if [ -n "${SLURM_ARRAY_TASK_ID:-}" ]; then
  "$PYTHON" -m autograder grade "$SUBMITTED" --out "$GRADED/shard-$SLURM_ARRAY_TASK_ID" \
    --shard "$SLURM_ARRAY_TASK_ID/$SHARDS" --workers "${SLURM_CPUS_PER_TASK:-1}" --quiet
else
  "$PYTHON" -m autograder merge "$GRADED"/shard-* --out "$GRADED/class"
fi
