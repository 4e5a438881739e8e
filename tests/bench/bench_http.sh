#!/usr/bin/env bash
# bench_http.sh BUILD_DIR SRC_DIR — the HTTP part of `tools/bench bus`:
# record reads per second through the open-data API under wrk (2 threads,
# 16 connections, 5 s), beside the same read through `linli data get` in a
# loop (one process per read, as a script would do it). Prints
#   bus.http: N requests/s
#   bus.http.console: N requests/s
set -euo pipefail
build=$1 src=$2
tmp=$(mktemp -d /tmp/linli-bench-http-XXXXXX)
trap 'kill $pid 2>/dev/null; wait $pid 2>/dev/null; rm -rf "$tmp"' EXIT
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
cat > "$tmp/linli.cfg" <<CFG
node = { path = "hefei/baohe/binhu/yuelan"; level = "community"; };
data_dir = "$tmp/data";
log_level = "error";
catalog_dir = "$src/catalog";
control = { listen = [ "ipc://$tmp/ctl.sock" ]; };
http = { listen = "http://127.0.0.1:$port"; rate_limit = 1000000; };
store = { sync = false; };
accounts = { pwhash = "min"; };
CFG
echo "Bench-Passw0rd-1" | "$build/host/linlid" --config "$tmp/linli.cfg" --init-admin admin >/dev/null
"$build/host/linlid" --config "$tmp/linli.cfg" --foreground 2>"$tmp/log" &
pid=$!
export LINLI_SOCKET="ipc://$tmp/ctl.sock" LINLI_SESSION_FILE="$tmp/sessions.json"
for _ in $(seq 100); do "$build/host/linli" help >/dev/null 2>&1 && break; sleep 0.05; done
echo "Bench-Passw0rd-1" | "$build/host/linli" login admin --password-stdin >/dev/null
key=$("$build/host/linli" --json apikeys add bench --datasets parking_spaces | python3 -c 'import json,sys; print(json.load(sys.stdin)["key"])')
id=$("$build/host/linli" --json data put parking_spaces '{"code": "P-001", "lot": "east"}' | python3 -c 'import json,sys; print(json.load(sys.stdin)["id"])')
url="http://127.0.0.1:$port/api/v1/datasets/parking_spaces/records/$id"
curl -sf -H "Authorization: Bearer $key" "$url" >/dev/null
rps=$(wrk -t2 -c16 -d5s -H "Authorization: Bearer $key" "$url" | awk '/Requests\/sec/ {print $2}')
printf 'bus.http: %.0f requests/s\n' "$rps"
n=0; end=$((SECONDS + 3))
while [ $SECONDS -lt $end ]; do "$build/host/linli" data get parking_spaces "$id" >/dev/null; n=$((n + 1)); done
printf 'bus.http.console: %.0f requests/s\n' "$(echo "$n / 3" | bc -l)"
