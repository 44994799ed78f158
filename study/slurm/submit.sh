#!/usr/bin/env bash
# Submit the study as three Slurm jobs chained by dependencies (Slurm does the scheduling):
#   train (array 0-6) -> eval (array 0-7) -> judge + report
#   bash study/slurm/submit.sh            # from anywhere; settings from the environment
#   SKIP_TRAIN=1 bash study/slurm/submit.sh   # the adapters exist already (or RELEASED=1)
# afterok waits for every task of an array to succeed; a failed task stops the chain
# (fix, then resubmit: finished steps are skipped).
set -euo pipefail
cd "$(dirname "$0")/../.."
dependency=()
if [ "${SKIP_TRAIN:-0}" != 1 ] && [ "${RELEASED:-0}" != 1 ]; then
  train=$(sbatch --parsable study/slurm/train.sbatch)
  echo "train: $train"
  dependency=(--dependency="afterok:${train%%;*}")
fi
evaluation=$(sbatch --parsable "${dependency[@]}" study/slurm/eval.sbatch)
echo "eval: $evaluation"
judge=$(sbatch --parsable --dependency="afterok:${evaluation%%;*}" study/slurm/judge.sbatch)
echo "judge + report: $judge"
