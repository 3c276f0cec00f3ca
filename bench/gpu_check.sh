#!/usr/bin/env bash
# GPU checks in one go, for a machine with a CUDA GPU and PyTorch (the device tool's H200):
# the GPU-vs-CPU tests, issue 14's scale benchmark on cuda, and the ml-100k completion and
# 256x256 reconstruction runs of the README on cuda. Results go to $OUT (or ./gpu_out).
# Run from the repository root:  OUT=/tmp/gpu bash bench/gpu_check.sh [DATA_DIR]
# PARTS=scale,tests,complete,recon (the default: all) picks parts; SIZES=3.3M,10M,33M the scale sizes.
# DATA_DIR holds ml-100k/ (default ../shared/data); nothing is downloaded.
set -u
OUT=${OUT:-gpu_out}; DATA=${1:-../shared/data}
mkdir -p "$OUT"
has() { [[ ",${PARTS:-scale,tests,complete,recon}," == *",$1,"* ]]; }
export PYTHONPATH=$PWD${PYTHONPATH:+:$PYTHONPATH} PYTHONUNBUFFERED=1
nvidia-smi -L; nproc
python3 -c "import torch; print('torch', torch.__version__, torch.cuda.get_device_name())"
has scale && timeout 320 python3 bench/bench_scale.py --device cuda --data memory --sizes "${SIZES:-3.3M,10M,33M}" 2>&1 | tee "$OUT/scale_gpu.txt"
has tests && timeout 100 python3 -m pytest -q -p no:cacheprovider tests/test_gpu.py 2>&1 | tee "$OUT/gpu_tests.txt"
has complete && for i in 1 2; do
  s=$(date +%s%N)
  timeout 30 python3 -m mmf_core complete --dataset ml-100k --data_dir "$DATA" --R 256 --K 42 --seeds 123 \
    --epochs 100 --device cuda --no-store --save_dir "/tmp/complete$i" 2>&1 | tail -3
  echo "complete run $i: $(( ($(date +%s%N) - s) / 1000000 )) ms wall (process start included)"
done 2>&1 | tee "$OUT/complete_gpu.txt"
has recon || exit 0
s=$(date +%s%N)
timeout 30 python3 -m mmf_core reconstruct --I 256 --J 256 --R_list 16,32,48 --K_ratio 0.5 --methods mmf \
  --device cuda --no_plots --no-store --out_dir /tmp/recon 2>&1 | tail -2 | tee "$OUT/recon_gpu.txt"
echo "reconstruct: $(( ($(date +%s%N) - s) / 1000000 )) ms wall" | tee -a "$OUT/recon_gpu.txt"
cat /tmp/recon/*.csv | tee -a "$OUT/recon_gpu.txt"
