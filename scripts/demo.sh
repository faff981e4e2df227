#!/usr/bin/env bash
# Runs the Custody demo end to end: builds bin/custody and bin/custodyctl,
# starts the all-in-one on a fake clock in a scratch data directory, waits
# until it is ready, runs `custodyctl demo` against it and stops it again.
# The exit code is the demo's: non-zero if anything unexpected happened.
#
#   scripts/demo.sh                 # or: make demo
#   DEMO_ADDR=127.0.0.1:7070 DEMO_DATA_DIR=./data scripts/demo.sh
#                                   # against a running `custody run --clock=fake`
#
# Knobs: DEMO_GRPC_ADDR / DEMO_ADMIN_ADDR (default 127.0.0.1:7270 / :7271),
# DEMO_KEEP=1 keeps the scratch data directory and the server log.
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."

grpc_addr=${DEMO_GRPC_ADDR:-127.0.0.1:7270}
admin_addr=${DEMO_ADMIN_ADDR:-127.0.0.1:7271}
console_addr=${DEMO_CONSOLE_ADDR:-127.0.0.1:7272}

echo "==> building bin/custody and bin/custodyctl"
make --no-print-directory build

if [[ -n "${DEMO_ADDR:-}" ]]; then
	if [[ -z "${DEMO_DATA_DIR:-}" ]]; then
		echo "demo.sh: DEMO_ADDR is set, so DEMO_DATA_DIR must name that server's --data-dir (its keys sign the demo's tokens)" >&2
		exit 2
	fi
	echo "==> using the server at $DEMO_ADDR (data dir $DEMO_DATA_DIR)"
	exec bin/custodyctl --addr "$DEMO_ADDR" demo --data-dir "$DEMO_DATA_DIR"
fi

data_dir=$(mktemp -d "${TMPDIR:-/tmp}/custody-demo.XXXXXX")
log="$data_dir/server.log"
server_pid=""

cleanup() {
	local code=$?
	if [[ -n "$server_pid" ]] && kill -0 "$server_pid" 2>/dev/null; then
		kill "$server_pid" 2>/dev/null || true
		wait "$server_pid" 2>/dev/null || true
	fi
	if [[ $code -ne 0 && -f "$log" ]]; then
		echo "--- last lines of the server log ($log) ---" >&2
		tail -n 30 "$log" >&2 || true
	fi
	if [[ "${DEMO_KEEP:-}" == 1 ]]; then
		echo "kept $data_dir" >&2
	else
		rm -rf "$data_dir"
	fi
	exit "$code"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

echo "==> starting custody run --clock=fake on $grpc_addr (data in $data_dir)"
bin/custody run --clock=fake --data-dir "$data_dir" --grpc-addr "$grpc_addr" --admin-addr "$admin_addr" --console-addr "$console_addr" >"$log" 2>&1 &
server_pid=$!

# http_ok ADDR PATH: true when GET http://ADDR/PATH answers 200 (bash's
# /dev/tcp, so nothing beyond bash is needed).
http_ok() {
	local host=${1%:*} port=${1##*:} line
	(
		exec 3<>"/dev/tcp/$host/$port" || exit 1
		printf 'GET %s HTTP/1.0\r\nHost: %s\r\n\r\n' "$2" "$host" >&3
		IFS= read -r line <&3 || exit 1
		[[ "$line" == "HTTP/"*" 200"* ]]
	) 2>/dev/null
}

# Wait (bounded) for readiness: /readyz answers 200 once every service serves.
ready=""
for _ in $(seq 1 300); do
	if ! kill -0 "$server_pid" 2>/dev/null; then
		echo "demo.sh: the server exited during start-up" >&2
		exit 1
	fi
	if http_ok "$admin_addr" /readyz; then
		ready=1
		break
	fi
	sleep 0.1
done
if [[ -z "$ready" ]]; then
	echo "demo.sh: the server was not ready within 30s" >&2
	exit 1
fi
echo "==> server ready"

bin/custodyctl --addr "$grpc_addr" demo --data-dir "$data_dir"
