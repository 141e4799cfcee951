#!/usr/bin/env bash
# Every benchmark in one run, for a lent GPU machine whose Python has torch but not pydantic.
#
#   bash benchmarks/gpu_sweep.sh WHEEL_DIR OUT_DIR           # on the GPU machine, from the repo root
#   bash benchmarks/gpu_sweep.sh WHEEL_DIR OUT_DIR --smoke   # tiny configurations on the CPU, to try it first
#
# WHEEL_DIR holds the pydantic / pydantic-settings wheels (shared/gpu-wheels); results land in
# OUT_DIR/<device-name>/: JSON + Markdown (+ PNG) of each benchmark. The steps run newest first, so
# that a lease cut short still brings what no GPU has measured yet: a trained generator's inference per
# scan (forward passes and stitch, ffno and fno at N = 64, 4,225 patterns; the reference reports 6,100
# patterns/s), in generator-inference/, the time the learned reconstruction is set against an iterative
# solver's (learned_vs_iterative, CPU); the reconstructed object at the
# reference's CI size (ffno, N = 128, 67² = 4,489 patterns, 5 epochs, Poisson loss) with the scan-lattice
# fix against the old pipeline (input layouts real_space and centred × losses on the stitched tiles and on
# each patch × legacy, sqrt_in × 3 seeds; resumed by the next lease where this one ends first) and the
# iterative anchor on the same scan (CDTools, probe known; it needs cdtools-py and h5py, python-dateutil
# wheels in WHEEL_DIR, else the row is left out with a note), in ffno-reference-size-layouts/; the
# operator-learning tasks
# (Darcy 64², Burgers 256, every model × init × 5 seeds, 4 worker processes sharing the GPU, in
# operator-tasks/; it needs neuraloperator and scipy, which the GPU's Python lacks: put their cp312
# wheels and their dependencies' in WHEEL_DIR, e.g. `pip download neuraloperator==2.0.0 scipy
# --python-version 3.12 --only-binary=:all: -d WHEEL_DIR`, else the step is skipped with a note), the
# learning-rate transfer across kept modes (standard vs μP; Darcy 64² with K = 8, 16, 32, Burgers 512 with
# K = 8 … 128; 15 rates × 3 seeds, in lr-transfer/; the same wheels), the spectral layers' speed at
# training-size shapes (training_shapes/), a whole generator's Adam step eager and compiled
# (generator_step), the ffno and fno_vanilla training comparisons; then gradient ratios, speed at
# the default shapes, signal propagation through depth, and the fno and plain_fno (depth 16)
# training comparisons (every strategy and calibrated; architectures in sub-folders). A failing
# benchmark does not stop the others; the sweep then exits 1 naming it. Commit the results under
# benchmarks/results/<device-name>/.
set -euo pipefail
wheels=${1:?usage: gpu_sweep.sh WHEEL_DIR OUT_DIR [--smoke]}
out=${2:?usage: gpu_sweep.sh WHEEL_DIR OUT_DIR [--smoke]}
smoke=${3:-}

if ! python3 -c "import pydantic_settings" 2>/dev/null; then
  python3 -m pip install -q --no-index --no-deps --no-compile --target /tmp/site "$wheels"/*.whl
  export PYTHONPATH=/tmp/site:${PYTHONPATH:-}
fi
export PYTHONPATH=$PWD:${PYTHONPATH:-}
export PYTHONUNBUFFERED=1

if [ "$smoke" = "--smoke" ]; then
  device=cpu
  grad=(--seeds 2 --width 4 --blocks 2 --modes 2 --size 8 --batch 1 --models blocks,generator,hybrid,fno_vanilla,ffno)
  speed=(--shapes 2x2x8x2 --repeats 2 --warmup 0)
  training_shapes=(--shapes 2x4x16x4 --repeats 2 --warmup 0)
  generator_step=(--architectures fno,ffno --batch 2 --N 16 --width 4 --modes 2 --blocks 1 --repeats 2 --warmup 0 --no-compile)
  signal=(--depths 2,4 --seeds 1 --width 4 --modes 2 --size 8 --batch 1)
  train=(--seeds 2 --N 16 --width 4 --modes 2 --blocks 1 --nepochs 2 --nimgs-train 1)
  reference_size=(--seeds 2 --N 16 --object-size 28 --offset 4 --width 4 --modes 2 --blocks 1 --nepochs 2
                  --anchor-iterations 3)
  operator_tasks=(--quick --models fno,ffno --inits default,sqrt_in@0.1 --seeds 1 --jobs 1)
  lr_transfer=(--quick --jobs 1)
  signal_3d=(--size-1d 16 --modes-1d 4 --size-3d 6 --modes-3d 3)
  inference=(--N 16 --modes 4 --width 4 --blocks 1 --repeats 2 --warmup 0)
else
  device=cuda
  grad=(--models blocks,generator,hybrid,fno_vanilla,ffno)
  speed=(--repeats 50 --warmup 5)
  # training sizes: batch 32-64, width 64, 128² and 256², 16-32 modes
  training_shapes=(--shapes 64x64x128x16,32x64x128x32,32x64x256x16,32x64x256x32 --repeats 30 --warmup 5)
  generator_step=(--architectures fno,ffno,fno_vanilla --batch 32 --N 128 --width 64 --modes 16 --repeats 30 --warmup 5)
  signal=(--seeds 5)
  # Larger than the CPU default (twice the data, 140 instead of 42 steps, 5 seeds), sized so
  # that the whole sweep fits a 15-minute GPU lease.
  train=(--seeds 5 --nimgs-train 8 --nepochs 10)
  # The reference's FFNO CI contract (grid_lines_ffno_ci_nll_5ep: N = 128, gridsize 1, 4,489 training
  # patterns, 5 epochs, Poisson loss): one 392 px object scanned every 4 px gives the 67 × 67 patterns.
  reference_size=(--seeds 3 --N 128 --object-size 392 --offset 4 --nepochs 5 --anchor-iterations 100)
  # Four times the CPU run's resolution (Darcy) and twice (Burgers), 6× the data, twice the width, 20 epochs.
  operator_tasks=(--darcy-resolution 64 --burgers-resolution 256 --n-train 1000 --n-test 200 --width 32 --modes 16
                  --epochs 20 --batch-size 32 --seeds 5 --jobs 4)
  # K up to 32 (Darcy) and 128 (Burgers), where μP's √(log N_b / log N) departs further from 1 than on a CPU
  lr_transfer=(--darcy-resolution 64 --darcy-modes 8,16,32 --burgers-resolution 512 --burgers-modes 8,16,32,64,128
               --n-train 500 --n-test 100 --width 32 --epochs 20 --batch-size 32 --seeds 3 --jobs 4)
  signal_3d=()
  # the reference's inference size (N = 64); a 320 px object scanned every 4 px: 65² = 4,225 patterns
  inference=(--N 64 --object-size 320 --step 4 --batches 64,256,1024 --repeats 20 --warmup 3)
fi
name=$(python3 -c "
import sys, torch
d = torch.cuda.get_device_name(0) if sys.argv[1] == 'cuda' else 'cpu-smoke'
print(''.join(c if c.isalnum() else '-' for c in d.lower()).strip('-'))" "$device")
dir="$out/$name"
# One failing benchmark must not cost the others' results (a lent GPU's minutes are few):
# each step runs, its exit status is remembered, and the sweep fails at the end if any did.
# A step whose complete JSON is already in OUT_DIR is kept, not rerun, so a lease that ran out is
# continued by pointing the next sweep at the same OUT_DIR (benchmarks/results, say); the long sweeps
# run with --resume, so one that was interrupted keeps its finished runs and does the rest.
failed=()
step() {
  local label=$1 json=$2
  shift 2
  if [ -e "$json" ] && ! grep -q '"incomplete": true' "$json"; then
    echo "== $label: kept $json" >&2
    return
  fi
  local start=$SECONDS status=0
  "$@" > /dev/null || status=$?
  echo "== $label: exit $status after $((SECONDS - start)) s" >&2
  if [ "$status" -ne 0 ]; then
    failed+=("$label")
  fi
}
anchor=()
if python3 -c "import cdtools" 2>/dev/null; then
  anchor=(--anchor)
else
  echo "== reconstruction at the reference's CI size: no iterative anchor (cdtools does not import)" >&2
fi
step "generator inference" "$dir/generator-inference/generator_inference.json" \
  python3 -m benchmarks.generator_inference --device "$device" --output-dir "$dir/generator-inference" \
  "${inference[@]}"
step "reconstruction at the reference's CI size" "$dir/ffno-reference-size-layouts/training_comparison.json" \
  python3 -m benchmarks.training_comparison --resume --device "$device" --output-dir "$dir/ffno-reference-size-layouts" \
  --no-progress --architecture ffno --strategies legacy,sqrt_in --input-layouts centred,real_space \
  --losses-on patches,stitched --loss poisson \
  --nimgs-train 1 --nimgs-test 1 --test-each-epoch "${reference_size[@]}" "${anchor[@]}"
if python3 -c "import neuralop, scipy" 2>/dev/null; then
  step "operator tasks" "$dir/operator-tasks/operator_tasks.json" \
    python3 -m benchmarks.operator_tasks --resume --device "$device" --output-dir "$dir/operator-tasks" --no-progress \
    "${operator_tasks[@]}"
  step "learning-rate transfer" "$dir/lr-transfer/lr_transfer.json" \
    python3 -m benchmarks.lr_transfer --resume --device "$device" --output-dir "$dir/lr-transfer" --no-progress \
    "${lr_transfer[@]}"
  signal_models=(--models plain-relu,plain-gelu,plain-relu-1d,plain-relu-3d,blocks "${signal_3d[@]}")
else
  echo "== operator tasks and learning-rate transfer: skipped (neuraloperator or scipy does not import; see the" \
    "header)" >&2
  signal_models=(--models plain-relu,plain-gelu,blocks)  # the 1-D and 3-D stacks are neuraloperator's layers
fi
step "spectral_conv_speed at training shapes" "$dir/training_shapes/spectral_conv_speed.json" \
  python3 -m benchmarks.spectral_conv_speed --device "$device" --output-dir "$dir/training_shapes" --no-progress \
  "${training_shapes[@]}"
step generator_step "$dir/generator_step.json" \
  python3 -m benchmarks.generator_step --device "$device" --output-dir "$dir" --no-progress "${generator_step[@]}"
for arch in ffno fno_vanilla; do
  step "training $arch" "$dir/$arch/training_comparison.json" \
    python3 -m benchmarks.training_comparison --resume --device "$device" --output-dir "$dir/$arch" --no-progress \
    --architecture "$arch" --calibrated "${train[@]}"
done
step gradient_ratios "$dir/gradient_ratios.json" \
  python3 -m benchmarks.gradient_ratios --resume --device "$device" --output-dir "$dir" --no-progress "${grad[@]}"
step spectral_conv_speed "$dir/spectral_conv_speed.json" \
  python3 -m benchmarks.spectral_conv_speed --device "$device" --output-dir "$dir" --no-progress "${speed[@]}"
step signal_propagation "$dir/signal_propagation.json" \
  python3 -m benchmarks.signal_propagation --device "$device" --output-dir "$dir" --no-progress "${signal[@]}" \
  "${signal_models[@]}"
step "training fno" "$dir/training_comparison.json" \
  python3 -m benchmarks.training_comparison --resume --device "$device" --output-dir "$dir" --no-progress --calibrated "${train[@]}"
step "training plain_fno" "$dir/plain_fno/training_comparison.json" \
  python3 -m benchmarks.training_comparison --resume --device "$device" --output-dir "$dir/plain_fno" --no-progress \
  --architecture plain_fno --blocks 16 --calibrated "${train[@]}"
ls -lR "$dir"
if [ ${#failed[@]} -gt 0 ]; then
  echo "failed: ${failed[*]}" >&2
  exit 1
fi
