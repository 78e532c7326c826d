#!/usr/bin/env bash
# Download, on a machine with PyPI, the wheels run_gpu.sh installs on the offline GPU machine:
# xautodl, NNI 3.0 (its web UI and node.js left out: 58.6 -> 0.9 MiB, see slim_wheel.py) and the
# packages NNI needs that the GPU machine's python3 lacks, for its interpreter (CPython 3.12,
# manylinux x86_64), into benchmarks/device/wheels/ (git-ignored; carried to the device).
#
#   bash benchmarks/device/fetch_wheels.sh           # the device's wheels
#   bash benchmarks/device/fetch_wheels.sh --local   # also, into benchmarks/device/wheels-local/,
#                                                    # what this machine's interpreter lacks for the
#                                                    # CPU dry run (run_gpu.sh --device cpu --quick)
# PYTHON=... picks the interpreter whose pip downloads (default .venv/bin/python, else python3);
# with --local it is also the interpreter the dry run uses.
set -euo pipefail
cd "$(dirname "$0")/../.."
LOCAL=0
case "${1:-}" in
    --local) LOCAL=1 ;;
    -h|--help) sed -n '2,12p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    "") ;;
    *) echo "fetch_wheels.sh: error: unknown option $1; accepted: --local, --help" >&2; exit 2 ;;
esac
PY=${PYTHON:-}
if [ -z "$PY" ]; then
    if [ -x .venv/bin/python ]; then PY=.venv/bin/python; else PY=python3; fi
fi
DEST=benchmarks/device/wheels
mkdir -p "$DEST"

# The GPU machine: CPython 3.12 on x86_64 (/work/.library/device/KINDS.md: python3 is 3.12.3 with
# torch 2.11, numpy, scipy, scikit-learn, matplotlib, tqdm, pandas, psutil, colorama, simplejson,
# nvidia-ml-py, pytorch-lightning, torchmetrics, requests, pyyaml). NNI 3.0's other requirements:
DEVICE_WHEELS=(
    xautodl==1.0.0            # --no-deps: it pins numpy<=1.19.5; its models import without fvcore
    nni==3.0
    astor==0.8.1
    json-tricks==3.17.3
    prettytable==3.18.0
    wcwidth==0.9.4            # prettytable's
    PythonWebHDFS==0.2.3
    responses==0.26.3
    schema==0.7.8
    typeguard==4.1.2          # NNI 3.0 wants <4.1.3
    websockets==17.4
)
PLATFORMS=()
for p in manylinux_2_28_x86_64 manylinux_2_27_x86_64 manylinux_2_24_x86_64 manylinux_2_17_x86_64 \
         manylinux2014_x86_64 manylinux_2_12_x86_64 manylinux2010_x86_64 manylinux_2_5_x86_64 manylinux1_x86_64 any; do
    PLATFORMS+=(--platform "$p")
done
quiet() { grep -v "is ignored: it is neither a file nor a directory" || true; }
# an NNI wheel already slimmed here is kept (pip would fetch the whole 58.6 MiB again)
if ls "$DEST"/nni-3.0-*.whl >/dev/null 2>&1 && [ "$(du -k "$DEST"/nni-3.0-*.whl | cut -f1)" -lt 4096 ]; then
    DEVICE_WHEELS=("${DEVICE_WHEELS[@]/nni==3.0/}")
fi
echo "downloading the device's wheels (CPython 3.12, manylinux x86_64) into $DEST ..."
"$PY" -m pip download -q --disable-pip-version-check --no-deps --only-binary=:all: --python-version 3.12 \
    --implementation cp "${PLATFORMS[@]}" -d "$DEST" ${DEVICE_WHEELS[@]} 2>&1 | quiet
for whl in "$DEST"/nni-3.0-*.whl; do
    "$PY" benchmarks/device/slim_wheel.py "$whl" nni_node nni_assets  # rewrites it only once
done

if [ "$LOCAL" = 1 ]; then
    # distribution:module pairs the dry run needs beside the device's list (present on the GPU machine)
    LOCAL_NEEDS="pytorch-lightning:pytorch_lightning torchmetrics:torchmetrics lightning-utilities:lightning_utilities
        fsspec:fsspec pandas:pandas python-dateutil:dateutil six:six tzdata:tzdata psutil:psutil colorama:colorama
        nvidia-ml-py:pynvml simplejson:simplejson websockets:websockets"
    missing=()
    for pair in $LOCAL_NEEDS; do
        "$PY" -c "import ${pair#*:}" >/dev/null 2>&1 || missing+=("${pair%%:*}")
    done
    mkdir -p benchmarks/device/wheels-local
    if [ ${#missing[@]} -gt 0 ]; then
        echo "downloading for $("$PY" -V) what it lacks: ${missing[*]} ..."
        "$PY" -m pip download -q --disable-pip-version-check --no-deps --only-binary=:all: \
            -d benchmarks/device/wheels-local "${missing[@]}" 2>&1 | quiet
    fi
    du -sh benchmarks/device/wheels-local
fi
du -sh "$DEST"
total=$(du -sk "$DEST" | cut -f1)
if [ "$total" -gt $((48 * 1024)) ]; then
    echo "warning: $DEST holds $((total / 1024)) MiB; the device's working tree takes at most 64 MiB in all" >&2
fi
ls -1 "$DEST"
