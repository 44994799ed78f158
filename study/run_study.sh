#!/usr/bin/env bash
# The whole MedInjection-FR study on one machine, in order (docs/STUDY.md):
#   mixtures -> contamination audit -> train the seven DoRA adapters -> evaluate the base model
#   and the seven -> judge the open answers -> medinj report (the human review, docs/HUMAN.md, is
#   the physicians' step between judge and report: give its folder as ANNOTATIONS).
#
#   bash study/run_study.sh                 # every step, in order
#   bash study/run_study.sh STEP [NAME...]  # one step: mixtures | overlap | train [CONFIG...] |
#                                           #   eval [LABEL...] | judge [LABEL...] | report
# LABEL is `base` or a configuration name. Every step can be run again: finished training runs
# are skipped (unfinished ones resume from their last checkpoint), models whose evaluation folder
# already holds an lm-eval results file are skipped, and judgements come from medinj judge's
# SQLite cache. Settings are the variables below; override any of them from the environment:
#   GPUS=2 BACKEND=vllm OUT=/scratch/study bash study/run_study.sh
set -euo pipefail

# ---- settings ------------------------------------------------------------------------------
BASE=${BASE:-Qwen/Qwen3-4B-Instruct-2507}        # base model: Hub id or local folder
DATA_DIR=${DATA_DIR:-}                           # local MedInjection-FR folder (Hub layout); empty: the Hub
OUT=${OUT:-out/study}                            # evaluations, judge cache, report
RUNS=${RUNS:-runs/sft}                           # medinj train --output_dir (one folder per configuration)
CONFIGS=${CONFIGS:-"NAT TRAD SYN NAT-TRAD NAT-SYN TRAD-SYN ALL"}
SETTINGS=${SETTINGS:-train/configs/paper.yaml}   # medinj train --settings (several files: later ones win)
GPUS=${GPUS:-1}                                  # training processes; 0: no launcher, settings decide (CPU toy runs)
PER_DEVICE_BATCH=${PER_DEVICE_BATCH:-12}         # the authors' per-device batch
EFFECTIVE_BATCH=${EFFECTIVE_BATCH:-192}          # the authors' 12 x 8 x 2 GPUs
ACCELERATE_CONFIG=${ACCELERATE_CONFIG:-train/accelerate/ddp.yaml}
TRAIN_ARGS=${TRAIN_ARGS:-}                       # more medinj train flags, e.g. "--max_steps 3"
RELEASED=${RELEASED:-0}                          # 1: evaluate MedInjection-FR/QWEN-4B-<CONFIG> instead of $RUNS
BACKEND=${BACKEND:-hf}                           # hf: medinj-hf, base + adapter (peft); vllm: medinj-vllm, merged/
DTYPE=${DTYPE:-bfloat16}
EVAL_TASKS=${EVAL_TASKS:-medinj_mcq_gen,medinj_mcq,medinj_oeq}  # Table 1 EM, choice scoring, open questions
EVAL_BATCH=${EVAL_BATCH:-16}                     # medinj-hf batch size (vLLM: auto)
PEFT_MODEL_ARGS=${PEFT_MODEL_ARGS:-}             # more medinj-hf model_args for adapters
VLLM_ARGS=${VLLM_ARGS:-gpu_memory_utilization=0.8}  # extra vLLM model_args, e.g. ...,tensor_parallel_size=2
EVAL_CACHE=${EVAL_CACHE:-$([ "$BACKEND" = hf ] && echo 1 || echo 0)}  # lm-eval --use_cache (per model)
BERTSCORE_MODEL=${BERTSCORE_MODEL:-}             # local BERTScore encoder folder (offline); empty: the Hub
EVAL_METADATA=${EVAL_METADATA:-}                 # more --metadata keys as JSON, e.g. '{"skip_invalid": true}'
EVAL_ARGS=${EVAL_ARGS:-}                         # more lm-eval flags, e.g. "--limit 20 --device cpu"
JUDGE=${JUDGE:-hf:google/medgemma-27b-text-it}   # or vllm:..., openai:google/medgemma-27b-text-it@http://HOST:8000/v1
JUDGE_ARGS=${JUDGE_ARGS:---batch-size 8}         # more medinj judge flags (--calibration FILE, --device cpu, ...)
OVERLAP_TASKS=${OVERLAP_TASKS:-medinj_mcqu_all,medinj_mcq_all}  # test sets of the contamination audit
ANNOTATIONS=${ANNOTATIONS:-}                     # a medinj annotate folder: the report's human column
REPORT_ARGS=${REPORT_ARGS:-}                     # more medinj report flags, e.g. "--compare NAT-TRAD:ALL --bootstrap 10000"
PYTHON=${PYTHON:-python}

read -r -a CONFIG_LIST <<<"$CONFIGS"
read -r -a SETTINGS_LIST <<<"$SETTINGS"
read -r -a TRAIN_EXTRA <<<"$TRAIN_ARGS"
read -r -a EVAL_EXTRA <<<"$EVAL_ARGS"
read -r -a JUDGE_EXTRA <<<"$JUDGE_ARGS"
read -r -a REPORT_EXTRA <<<"$REPORT_ARGS"
DATA_ARGS=()
if [ -n "$DATA_DIR" ]; then DATA_ARGS=(--data_dir "$DATA_DIR"); fi

log() { printf '\n=== [%s] %s\n' "$(date '+%F %T')" "$*"; }

# ---- 1. the seven mixtures: manifests only, no model --------------------------------------
mixtures() {
  log "mixtures: ${CONFIG_LIST[*]}"
  medinj train --mixtures "${CONFIG_LIST[@]}" --dry-run --settings "${SETTINGS_LIST[@]}" \
    --output_dir "$RUNS" "${DATA_ARGS[@]}"
}

# ---- 1b. contamination audit: the mixtures against the test sets (CPU, minutes) -------------
overlap() {
  local metadata
  metadata=$(eval_metadata)
  log "overlap: $RUNS against $OVERLAP_TASKS"
  if [ "$metadata" != "{}" ]; then
    medinj overlap --train "$RUNS" --tests "$OVERLAP_TASKS" --metadata "$metadata" --out "$OUT/overlap"
  else
    medinj overlap --train "$RUNS" --tests "$OVERLAP_TASKS" --out "$OUT/overlap"
  fi
}

# ---- 2. train: one DoRA adapter per configuration, merged for vLLM --------------------------
train() {
  local configs=("$@")
  [ ${#configs[@]} -gt 0 ] || configs=("${CONFIG_LIST[@]}")
  local args=(--mixtures "${configs[@]}" --settings "${SETTINGS_LIST[@]}"
    --model_name_or_path "$BASE" --output_dir "$RUNS" --merge --skip_finished "${DATA_ARGS[@]}")
  if [ "$GPUS" -ge 1 ]; then
    # effective batch = per-device batch x accumulation x processes: 12 x 16 x 1 = 12 x 8 x 2 = 192
    if (( EFFECTIVE_BATCH % (PER_DEVICE_BATCH * GPUS) != 0 )); then
      echo "error: $EFFECTIVE_BATCH is not a multiple of $PER_DEVICE_BATCH x $GPUS GPUs" >&2
      return 1
    fi
    args+=(--per_device_train_batch_size "$PER_DEVICE_BATCH"
      --gradient_accumulation_steps $((EFFECTIVE_BATCH / (PER_DEVICE_BATCH * GPUS))))
  fi
  args+=("${TRAIN_EXTRA[@]}")
  log "train: ${configs[*]} ($GPUS GPU(s))"
  if [ "$GPUS" -ge 2 ]; then
    accelerate launch --config_file "$ACCELERATE_CONFIG" --num_processes "$GPUS" -m lm_eval_medinj.cli train "${args[@]}"
  else
    medinj train "${args[@]}"
  fi
}

# ---- 3. evaluate: base + the seven, MCQ (constrained and choice scoring) and open questions --
eval_metadata() {
  "$PYTHON" -c 'import json, sys
metadata = {k: v for k, v in zip(sys.argv[2::2], sys.argv[3::2]) if v}
metadata.update(json.loads(sys.argv[1] or "{}"))
print(json.dumps(metadata))' "$EVAL_METADATA" data_dir "$DATA_DIR" bertscore_model "$BERTSCORE_MODEL"
}

evaluate() {
  local labels=("$@")
  [ ${#labels[@]} -gt 0 ] || labels=(base "${CONFIG_LIST[@]}")
  local metadata label folder model_args
  metadata=$(eval_metadata)
  for label in "${labels[@]}"; do
    folder="$OUT/eval/$label"
    if [ -n "$(find "$folder" -name 'results_*.json' -print -quit 2>/dev/null)" ]; then
      log "eval $label: results already in $folder, skipped"
      continue
    fi
    if [ "$label" = base ]; then
      model_args="pretrained=$BASE"
    elif [ "$RELEASED" = 1 ]; then
      model_args="pretrained=MedInjection-FR/QWEN-4B-$label"
    elif [ "$BACKEND" = hf ]; then
      model_args="pretrained=$BASE,peft=$RUNS/$label/adapter${PEFT_MODEL_ARGS:+,$PEFT_MODEL_ARGS}"  # DoRA on its base
    else
      model_args="pretrained=$RUNS/$label/merged"               # vLLM cannot serve DoRA
    fi
    local args=(--tasks "$EVAL_TASKS" --apply_chat_template --log_samples --output_path "$folder")
    if [ "$BACKEND" = hf ]; then
      args+=(--model medinj-hf --model_args "$model_args,dtype=$DTYPE" --batch_size "$EVAL_BATCH")
    else
      args+=(--model medinj-vllm --model_args "$model_args,dtype=$DTYPE${VLLM_ARGS:+,$VLLM_ARGS}" --batch_size auto)
    fi
    if [ "$metadata" != "{}" ]; then args+=(--metadata "$metadata"); fi
    if [ "$EVAL_CACHE" = 1 ]; then args+=(--use_cache "$OUT/cache/$label"); fi
    log "eval $label ($BACKEND): $model_args"
    mkdir -p "$OUT/cache"
    medinj eval "${args[@]}" "${EVAL_EXTRA[@]}"
  done
}

# ---- 4. judge the open answers (judge_*.jsonl beside each samples file) ---------------------
judge() {
  local labels=("$@")
  [ ${#labels[@]} -gt 0 ] || labels=(base "${CONFIG_LIST[@]}")
  local folders=() label
  for label in "${labels[@]}"; do folders+=("$OUT/eval/$label"); done
  log "judge ${labels[*]} with $JUDGE"
  # one call: the judge is loaded once; a re-run scores only what the cache lacks
  medinj judge "${folders[@]}" --judge "$JUDGE" --cache "$OUT/judge.sqlite" "${JUDGE_EXTRA[@]}"
}

# ---- 5. the report ---------------------------------------------------------------------------
report() {
  local args=(--model "base=$OUT/eval/base") config
  for config in "${CONFIG_LIST[@]}"; do args+=(--model "$config=$OUT/eval/$config"); done
  if [ -f "$OUT/overlap/overlap.json" ]; then args+=(--exclude "$OUT/overlap/overlap.json"); fi
  if [ -n "$ANNOTATIONS" ]; then args+=(--human "$ANNOTATIONS"); fi
  log "report -> $OUT/report"
  medinj report "${args[@]}" --baseline base --out "$OUT/report" "${REPORT_EXTRA[@]}"
}

step=${1:-all}
[ $# -eq 0 ] || shift
case "$step" in
  all)
    if [ "$RELEASED" != 1 ]; then mixtures; overlap; train; fi
    evaluate
    judge
    report
    ;;
  mixtures) mixtures ;;
  overlap) overlap ;;
  train) train "$@" ;;
  eval) evaluate "$@" ;;
  judge) judge "$@" ;;
  report) report ;;
  *) echo "usage: $0 [all | mixtures | overlap | train [CONFIG...] | eval [LABEL...] | judge [LABEL...] | report]" >&2; exit 2 ;;
esac
