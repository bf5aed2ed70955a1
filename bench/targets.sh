#!/usr/bin/env bash
# Issue 22's targets in one run, one benchmark after another (about 30 minutes; quiet machine):
#     bash bench/targets.sh [LOG]          # default log: targets-<date>.log in the current folder
# Each script prints its own same-run ratios; the log keeps them all with the time each started.
# The whole GPT command against nanoGPT's own run needs nanoGPT's code, which is not in this repository:
# time both with /usr/bin/time, one after the other (docs/guide/performance.md says how).
set -euo pipefail
cd "$(dirname "$0")/.."
log=${1:-targets-$(date +%Y%m%d-%H%M).log}
step() {
    echo "## $(date +%H:%M:%S) $*" | tee -a "$log"
    "$@" 2>&1 | tee -a "$log"
    echo | tee -a "$log"
}
step python bench/mlp.py --threads 1 --workloads W1 W2 --rounds 3 --no-rss --no-inference --no-torch
step python bench/peers.py --workloads W1 W2 --rounds 2 --no-contention
step python bench/cnn.py --samples 20000 --rounds 1 --threads 1 1,2 2 auto
step python bench/gpt.py --steps 30 --warm 3 --threads 1 2 auto --profile-steps 0
step python bench/contention.py --fits 2 --samples 10000
step python bench/memory.py
