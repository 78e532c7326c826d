#!/usr/bin/env bash
# Every GPU measurement of issue 21 in one command, for a bare, offline GPU machine whose python3
# has torch with CUDA: installs xautodl, NNI 3.0 and their missing dependencies from carried wheels
# (benchmarks/device/wheels, filled by fetch_wheels.sh), then runs each stage under its own time
# limit (a stage that fails or runs out of time is recorded and the next one runs):
#
#   setup          interpreter, torch, GPU; wheels installed into --site, imports checked
#   torchrun       wsnas supernet under torchrun --standalone --nproc_per_node 1 (NCCL on CUDA)
#   harness_fp32   benchmarks/harness.py, wsnas vs xautodl vs NNI, fp32, one workload at a time:
#                  single-path step at batch 64 and 256, DARTS and GDAS steps at batch 64, scoring
#   harness_fast   the same with wsnas's --channels-last --precision bf16 (xautodl in fp32 beside it)
#   score_eval     the evaluator of wsnas supernet on NB201 cells x 10,000 images, per option set
#   score_command  wsnas supernet --space nb201 ... --archs all (or a --sample the time cap holds)
#   report         summary.json, summary.md, RESULTS.md (with this run's CUDA section),
#                  harness-fp32.json, harness-fast.json, logs.tar.gz: into --out ($OUT)
#
# Usage: bash benchmarks/device/run_gpu.sh [--device cuda|cpu] [--quick] [--out DIR] [--python PY]
#            [--budget SECONDS] [--stages LIST] [--command-limit SECONDS] [--wheels DIR]... [--site DIR]
# The CPU dry run: bash benchmarks/device/run_gpu.sh --device cpu --quick --python .venv/bin/python
set -uo pipefail

usage() {
    cat <<'EOF'
usage: bash benchmarks/device/run_gpu.sh [options]

Every GPU measurement of issue 21 (wsnas vs xautodl vs NNI 3.0 on the NB201 supernet, the
15,625-cell scoring through wsnas supernet, torchrun with NCCL) in one command; each stage has
its own time limit, a failed stage is recorded and the next runs. See benchmarks/device/README.md.

options:
  --device cuda|cpu   where to measure (default cuda; cpu: the dry run of this script)
  --quick             tiny sizes and few repeats (the CPU dry run)
  --out DIR           where the results go (default $OUT, else a new temporary folder)
  --python PY         the interpreter (default .venv/bin/python when present, else python3)
  --budget SECONDS    wall-clock budget of all stages together (default 450; --quick 3600)
  --stages LIST       comma-separated stages to run, of: torchrun, harness_fp32, harness_fast,
                      score_eval, score_command; or all (default) or none (setup and report
                      always run)
  --command-limit S   time limit of score_command (default 80; --quick 150): with enough,
                      `wsnas supernet --archs all` runs on all 15,625 cells instead of a sample
  --wheels DIR        a folder of wheels to install from, repeatable
                      (default benchmarks/device/wheels and, when present, benchmarks/device/wheels-local)
  --site DIR          where the wheels are installed (default ${TMPDIR:-/tmp}/wsnas-device-site)
  -h, --help          this text
EOF
}

ROOT=$(cd "$(dirname "$0")/../.." && pwd)
cd "$ROOT" || exit 1
DEVICE=cuda
QUICK=0
OUTDIR=${OUT:-}
PY=${PYTHON:-}
BUDGET=
STAGES=all
WHEELS=()
SITE=${TMPDIR:-/tmp}/wsnas-device-site
COMMAND_LIMIT=
ARGS=("$@")
while [ $# -gt 0 ]; do
    case "$1" in
        --device) DEVICE=${2:?--device needs cuda or cpu}; shift 2 ;;
        --quick) QUICK=1; shift ;;
        --out) OUTDIR=${2:?--out needs a folder}; shift 2 ;;
        --python) PY=${2:?--python needs an interpreter}; shift 2 ;;
        --budget) BUDGET=${2:?--budget needs seconds}; shift 2 ;;
        --stages) STAGES=${2:?--stages needs a list}; shift 2 ;;
        --command-limit) COMMAND_LIMIT=${2:?--command-limit needs seconds}; shift 2 ;;
        --wheels) WHEELS+=("${2:?--wheels needs a folder}"); shift 2 ;;
        --site) SITE=${2:?--site needs a folder}; shift 2 ;;
        -h|--help) usage; exit 0 ;;
        *) echo "run_gpu.sh: error: unknown option $1 (see --help)" >&2; exit 2 ;;
    esac
done
case "$DEVICE" in cuda|cpu) ;; *) echo "run_gpu.sh: error: --device $DEVICE; accepted: cuda, cpu" >&2; exit 2 ;; esac
ALL_STAGES="torchrun harness_fp32 harness_fast score_eval score_command"
if [ "$STAGES" != all ] && [ "$STAGES" != none ]; then
    for s in ${STAGES//,/ }; do
        case " $ALL_STAGES " in *" $s "*) ;; *)
            echo "run_gpu.sh: error: unknown stage $s; accepted: ${ALL_STAGES// /, } (comma-separated), all, none" >&2
            exit 2 ;;
        esac
    done
fi
for pair in "--budget:$BUDGET" "--command-limit:$COMMAND_LIMIT"; do
    value=${pair#*:}
    if [ -n "$value" ] && ! [[ "$value" =~ ^[0-9]+$ ]]; then
        echo "run_gpu.sh: error: ${pair%%:*} $value; accepted: whole seconds" >&2; exit 2
    fi
done
if [ -z "$PY" ]; then
    if [ -x .venv/bin/python ]; then PY=.venv/bin/python; else PY=python3; fi
fi
if [ ${#WHEELS[@]} -eq 0 ]; then
    WHEELS=(benchmarks/device/wheels)
    [ -d benchmarks/device/wheels-local ] && WHEELS+=(benchmarks/device/wheels-local)
fi
WORK=$(mktemp -d "${TMPDIR:-/tmp}/wsnas-gpu.XXXXXX")
[ -n "$OUTDIR" ] || OUTDIR=$WORK/out
mkdir -p "$OUTDIR" "$WORK/logs" "$WORK/stages"
COMMAND="bash benchmarks/device/run_gpu.sh${ARGS[*]:+ ${ARGS[*]}}"

# sizes and time limits (seconds) per stage: the GPU run, or the quick CPU dry run
WORKLOADS="single_path_64 single_path_256 darts_64 gdas_64 eval"
if [ "$QUICK" = 1 ]; then
    BUDGET=${BUDGET:-3600}
    # one torch thread: on a shared 2-core machine two threads per process wait on each other
    HARNESS_SIZE=(--quick --eval-archs 2 --channels 4 --cells-per-stage 1 --threads 1)
    TINY=(--tiny)
    IMAGES=256; TRAIN_IMAGES=64; DP_IMAGES=64; DP_SAMPLE=4; DP_BATCH=32
    EVAL_CAP=4; EVAL_CHECK=2; COMMAND_OVERHEAD=20
    declare -A LIMIT=([setup]=300 [torchrun]=240 [harness]=400 [score_eval]=300 [score_command]=150 [report]=60)
else
    BUDGET=${BUDGET:-450}
    HARNESS_SIZE=(--warmup 3 --rounds 4 --block 5 --eval-archs 5)
    TINY=()
    IMAGES=10000; TRAIN_IMAGES=2560; DP_IMAGES=512; DP_SAMPLE=16; DP_BATCH=256
    EVAL_CAP=12; EVAL_CHECK=16; COMMAND_OVERHEAD=25
    declare -A LIMIT=([setup]=60 [torchrun]=60 [harness]=40 [score_eval]=80 [score_command]=80 [report]=30)
fi
[ -n "$COMMAND_LIMIT" ] && LIMIT[score_command]=$COMMAND_LIMIT
REPORT_RESERVE=${LIMIT[report]}
START=$(date +%s)
DEADLINE=$((START + BUDGET))

wanted() { [ "$STAGES" = all ] || [[ ",$STAGES," == *",$1,"* ]]; }

# stage NAME LIMIT COMMAND...: run it under `timeout` (the smaller of LIMIT and what the budget has
# left), its output in logs/NAME.log, its status in stages/NAME.json; never stops the script
stage() {
    local name=$1 limit=$2; shift 2
    local now left status note=""
    now=$(date +%s)
    left=$((DEADLINE - now))
    [ "$name" = report ] || left=$((left - REPORT_RESERVE))
    [ "$limit" -gt "$left" ] && limit=$left
    local began
    began=$(date +%s.%N)
    if [ "$limit" -lt 5 ]; then
        status=skipped; note="no time left in the ${BUDGET}-s budget"; RC=-1
    else
        echo "[$(date -u +%H:%M:%S)] $name (limit ${limit} s) ..."
        STAGE_LIMIT=$limit timeout --kill-after=10 "$limit" "$@" >"$WORK/logs/$name.log" 2>&1
        RC=$?
        case $RC in
            0) status=ok ;;
            124|137) status=timeout; note="stopped at its ${limit}-s limit" ;;
            *) status=failed; note=$(grep -v '^\s*$' "$WORK/logs/$name.log" | tail -n 2 | tr '\n"\\' '  /' | tr -d '\000-\037' | cut -c1-300) ;;
        esac
    fi
    local secs
    secs=$(awk -v a="$began" -v b="$(date +%s.%N)" 'BEGIN { printf "%.1f", b - a }')
    printf '{"stage": "%s", "status": "%s", "rc": %s, "seconds": %s, "limit_s": %s, "started": %s, "note": "%s"}\n' \
        "$name" "$status" "$RC" "$secs" "$limit" "$began" "$note" >"$WORK/stages/$name.json"
    echo "[$(date -u +%H:%M:%S)] $name: $status in ${secs} s${note:+ ($note)}"
    if [ "$status" != ok ] && [ -f "$WORK/logs/$name.log" ]; then
        grep -v '^\s*$' "$WORK/logs/$name.log" | tail -n 4 | sed 's/^/    /'
    fi
}

STAGES_PY=benchmarks/device/gpu_stages.py
echo "run_gpu.sh: device $DEVICE, python $PY, budget ${BUDGET} s, work $WORK, out $OUTDIR"

# --- setup: the wheels' folder goes first on the path of every later stage (harness workers too)
WHEEL_ARGS=()
for w in "${WHEELS[@]}"; do WHEEL_ARGS+=(--wheels "$w"); done
export PYTHONPATH="$SITE:$ROOT/src${PYTHONPATH:+:$PYTHONPATH}"
export PYTHONUNBUFFERED=1 PYTHONWARNINGS=ignore
stage setup "${LIMIT[setup]}" "$PY" "$STAGES_PY" setup --device "$DEVICE" --work "$WORK" --json "$WORK/setup.json" \
    --site "$SITE" "${WHEEL_ARGS[@]}"
[ -f "$WORK/logs/setup.log" ] && head -n 3 "$WORK/logs/setup.log" | sed 's/^/    /'

# --- torchrun with NCCL (gloo on a CPU)
if wanted torchrun; then
    stage torchrun "${LIMIT[torchrun]}" "$PY" "$STAGES_PY" torchrun --device "$DEVICE" --work "$WORK" \
        --json "$WORK/torchrun.json" --python "$PY" --images "$DP_IMAGES" --sample "$DP_SAMPLE" --batch-size "$DP_BATCH" \
        "${TINY[@]}"
fi

# --- the harness, one workload per run (each with its own JSON, so a timeout loses one workload)
harness() {  # LABEL TOOLS [wsnas options...]
    local label=$1 tools=$2; shift 2
    for w in $WORKLOADS; do
        stage "harness_${label}.$w" "${LIMIT[harness]}" "$PY" benchmarks/harness.py --device "$DEVICE" --no-install \
            --peers-python "$PY" --tools "$tools" --workloads "$w" "${HARNESS_SIZE[@]}" "$@" \
            --json "$WORK/harness-$label-$w.json" --command "$COMMAND" \
            --note "issue 21 device run (benchmarks/device/run_gpu.sh), $label"
    done
}
wanted harness_fp32 && harness fp32 wsnas,xautodl,nni
wanted harness_fast && harness fast wsnas,xautodl --channels-last --precision bf16

# --- all 15,625 cells: the evaluator per option set, then the command a user runs
if wanted score_eval; then
    stage score_eval "${LIMIT[score_eval]}" "$PY" "$STAGES_PY" score-eval --device "$DEVICE" --work "$WORK" \
        --json "$WORK/score-eval.json" --images "$IMAGES" --train-images "$TRAIN_IMAGES" --cap "$EVAL_CAP" \
        --check "$EVAL_CHECK" "${TINY[@]}"
fi
if wanted score_command; then
    stage score_command "${LIMIT[score_command]}" "$PY" "$STAGES_PY" score-command --device "$DEVICE" \
        --work "$WORK" --json "$WORK/score-command.json" --python "$PY" --images "$IMAGES" \
        --train-images "$TRAIN_IMAGES" --overhead "$COMMAND_OVERHEAD" \
        --eval-json "$WORK/score-eval.json" "${TINY[@]}"
fi

# --- report: everything into --out
stage report "${LIMIT[report]}" "$PY" "$STAGES_PY" report --device "$DEVICE" --work "$WORK" --out "$OUTDIR" \
    --command "$COMMAND"
cat "$WORK/logs/report.log" 2>/dev/null
echo "run_gpu.sh: $(( $(date +%s) - START )) s in all; results in $OUTDIR"
