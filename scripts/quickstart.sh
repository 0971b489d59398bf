#!/usr/bin/env bash
# quorder's main job on one machine: build, start a node on the embedded default
# (127.0.0.1:7400, data in a scratch directory), send it real orders from the load
# generator, show the report and a few orders through the CLI, then stop the node with
# SIGTERM. Exits non-zero if any step fails.
set -euo pipefail
cd "$(dirname "$0")/.."

duration="${QUORDER_DEMO_SECONDS:-10}"
rate="${QUORDER_DEMO_RATE:-5000}"
addr="127.0.0.1:7400"
data_dir="$(mktemp -d -t quorder-quickstart-XXXXXX)"

echo "==> building quorder (release)"
cargo build --release --bins --quiet
bin="target/release"

echo "==> starting quorderd on ${addr}, data in ${data_dir}"
"${bin}/quorderd" --data-dir "${data_dir}" --client-addr "${addr}" &
node=$!
cleanup() { kill -TERM "${node}" 2>/dev/null || true; wait "${node}" 2>/dev/null || true; rm -rf "${data_dir}"; }
trap cleanup EXIT
for _ in $(seq 1 100); do
  "${bin}/quorder" --addr "${addr}" ping >/dev/null 2>&1 && break
  sleep 0.1
done
"${bin}/quorder" --addr "${addr}" ping

echo "==> ${duration} s of open-loop load at ${rate} orders/s (1- and 2-line orders)"
"${bin}/quorder-loadgen" --addr "${addr}" --rate "${rate}" --duration "${duration}" \
  --connections 4 --skus 1000 --lines 2 --quiet

echo "==> a few orders by hand"
"${bin}/quorder" --addr "${addr}" item put --sku 900001 --available 3 --price-cents 1999
"${bin}/quorder" --addr "${addr}" order place --customer 42 --line 900001:2
"${bin}/quorder" --addr "${addr}" order place --customer 43 --line 900001:2
"${bin}/quorder" --addr "${addr}" item get --sku 900001

echo "==> stopping quorderd (SIGTERM: drain, sync, exit 0)"
kill -TERM "${node}"
wait "${node}"
trap - EXIT
rm -rf "${data_dir}"
echo "==> done"
