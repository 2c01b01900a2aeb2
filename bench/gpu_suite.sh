#!/usr/bin/env bash
# Every GPU bench in one call (< 8 minutes on one H100), one JSON file with both sides of each ratio and the GPU.
#
#   bash bench/gpu_suite.sh [OUT_JSON]            # default: ${OUT:-outputs}/gpu_suite.json
#   DRY_RUN=1 bash bench/gpu_suite.sh             # print the commands, run nothing (tests use this on CPU)
#
# Each bench has its own time limit; one that fails or times out is recorded with its exit status and the
# suite goes on. Needs CUDA for real figures; on a CPU machine the benches run on CPU and say so in `device`.
set -uo pipefail
cd "$(dirname "$0")/.."
OUT_JSON="${1:-${OUT:-outputs}/gpu_suite.json}"
PY="${PYTHON:-python}"
export PYTHONPATH="${PYTHONPATH:-$PWD}"
TMP="$(mktemp -d)"

# name | seconds | command (each prints JSON lines with ours, baseline, ratio, device)
BENCHES=(
  "real_stage1|240|$PY bench/bench_real_stage1_gpu.py --steps 10 --warmup 3"
  "model_overhead|60|$PY bench/bench_model_overhead.py --steps 20 --device cuda"
  "chat_decode|60|$PY bench/bench_chat_decode.py --repeats 7 --device cuda"
  "eval_batching|60|$PY bench/bench_eval_batching.py --device cuda"
  "feature_cache|45|$PY bench/bench_feature_cache.py --repeats 5 --device cuda"
)

for entry in "${BENCHES[@]}"; do
  IFS="|" read -r name limit command <<<"$entry"
  if [[ -n "${DRY_RUN:-}" ]]; then
    echo "timeout $limit $command"
    continue
  fi
  start=$(date +%s)
  timeout "$limit" $command >"$TMP/$name.out" 2>"$TMP/$name.err"
  echo "$? $(( $(date +%s) - start ))" >"$TMP/$name.status"
  echo "==> $name: exit $(cut -d' ' -f1 "$TMP/$name.status"), $(cut -d' ' -f2 "$TMP/$name.status") s" >&2
done
[[ -n "${DRY_RUN:-}" ]] && exit 0

mkdir -p "$(dirname "$OUT_JSON")"
"$PY" - "$TMP" "$OUT_JSON" "${BENCHES[@]}" <<'PYEOF'
import json, sys, time
from pathlib import Path

tmp, out, entries = Path(sys.argv[1]), Path(sys.argv[2]), sys.argv[3:]
try:
    import torch
    gpu = torch.cuda.get_device_name(0) if torch.cuda.is_available() else "none (CPU)"
    versions = {"torch": torch.__version__}
except Exception as exc:  # the suite still writes what it has
    gpu, versions = f"unknown ({exc})", {}
results = {}
for entry in entries:
    name = entry.split("|")[0]
    status, seconds = (tmp / f"{name}.status").read_text().split()
    lines = []
    for line in (tmp / f"{name}.out").read_text().splitlines():
        try:
            lines.append(json.loads(line))
        except json.JSONDecodeError:
            pass
    results[name] = {
        "exit_status": int(status),
        "seconds": int(seconds),
        "results": lines,
        "stderr_tail": (tmp / f"{name}.err").read_text()[-1500:] if int(status) else "",
    }
out.write_text(json.dumps({"date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()), "gpu": gpu,
                           **versions, "benches": results}, indent=1))
print(out)
PYEOF
