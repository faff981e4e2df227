#!/usr/bin/env bash
# Runs Custody in microservice mode on one machine, without Kubernetes: one
# process per service target, talking through NATS JetStream, the way k8s/
# runs them (one Deployment per target).
#
#   make build && deploy/local/run.sh
#   TARGETS="catalog order" deploy/local/run.sh    # a subset, in start order
#   TARGETS= deploy/local/run.sh                   # one process, --target=all
#   FRESH=1 deploy/local/run.sh                    # wipe DATA_DIR first
#
# Process 1 runs the first target and also hosts the embedded NATS (with
# JetStream, listening on NATS_LISTEN) and creates the token signing key in
# DATA_DIR/keys; every other target is its own process against that NATS,
# verifying tokens with the public key. Each process is started once the one
# before it answers /readyz (targets are listed in start order). Ctrl-C stops
# them all; so does any one of them exiting.
#
# Ports: process 1 serves gRPC on 7070 and admin HTTP on 7071 (the defaults,
# so custodyctl reaches it as is); process k (k = 2, 3, …) serves gRPC on
# 7080+k-1 and admin on 7180+k-1. A table is printed once all are ready.
#
# Knobs (environment): TARGETS, DATA_DIR (default <repo>/data/local),
# CUSTODY (binary, default <repo>/bin/custody), HOST (default 127.0.0.1),
# NATS_LISTEN (default $HOST:4222), READY_TIMEOUT (seconds per process,
# default 60), FRESH=1. CUSTODY_LOG_LEVEL, CUSTODY_LOG_JSON and OTEL_*
# variables are passed through to every process.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
CUSTODY=${CUSTODY:-$ROOT/bin/custody}
DATA_DIR=${DATA_DIR:-$ROOT/data/local}
# ${TARGETS-…}, not ${TARGETS:-…}: an empty TARGETS means "all in one process".
TARGETS=${TARGETS-catalog order fulfilment trust payouts audit}
HOST=${HOST:-127.0.0.1}
NATS_LISTEN=${NATS_LISTEN:-$HOST:4222}
READY_TIMEOUT=${READY_TIMEOUT:-60}
FRESH=${FRESH:-0}

usage() {
	sed -n '2,/^set -euo/{/^set -euo/d;s/^# \{0,1\}//;p}' "${BASH_SOURCE[0]}"
}

die() {
	echo "run.sh: $*" >&2
	exit 1
}

case "${1:-}" in
-h | --help)
	usage
	exit 0
	;;
"") ;;
*) die "unexpected argument '$1' (configure with environment variables; see --help)" ;;
esac

[[ -x $CUSTODY ]] || die "$CUSTODY not found: run 'make build' first (or set CUSTODY=/path/to/custody)"
command -v curl >/dev/null || die "curl is needed to wait for /readyz"

# Targets may be separated by spaces or commas.
read -r -a targets <<<"${TARGETS//,/ }"

if [[ $FRESH == 1 ]]; then
	rm -rf -- "$DATA_DIR"
fi
mkdir -p "$DATA_DIR/logs"
# The all-in-one key lives in process 1's data dir; every other process only
# verifies tokens, with its public half.
PUBLIC_KEY=${CUSTODY_AUTH_PUBLIC_KEY:-$DATA_DIR/keys/signing.pub}
# The master keys that wrap the buyers' data keys: process 1 creates them,
# the others share them.
MASTER_KEYS=$DATA_DIR/keys/master.keys

names=() pids=() grpc_addrs=() admin_addrs=() logs=()

# stop_all stops the processes in reverse start order, so the services leave
# while the NATS they use (hosted by process 1) is still up.
stop_all() {
	local i pid waited
	trap - INT TERM
	((${#pids[@]} > 0)) || return 0
	echo
	echo "stopping ${#pids[@]} process(es)…"
	for ((i = ${#pids[@]} - 1; i >= 0; i--)); do
		pid=${pids[i]}
		kill -TERM "$pid" 2>/dev/null || continue
		waited=0
		while kill -0 "$pid" 2>/dev/null && ((waited < 100)); do
			sleep 0.1
			waited=$((waited + 1))
		done
		if kill -0 "$pid" 2>/dev/null; then
			echo "  ${names[i]} (pid $pid) did not stop in 10s; killing it"
			kill -KILL "$pid" 2>/dev/null || true
		fi
		wait "$pid" 2>/dev/null || true
	done
	pids=()
}
trap stop_all EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# show_log prints the end of process i's log.
show_log() {
	echo "---- last lines of ${logs[$1]}" >&2
	tail -n 20 "${logs[$1]}" >&2 || true
	echo "----" >&2
}

# start NAME GRPC ADMIN ARGS… starts one process and waits until its /readyz
# answers 200, failing if it exits first or READY_TIMEOUT passes.
start() {
	local name=$1 grpc=$2 admin=$3
	shift 3
	local log="$DATA_DIR/logs/$name.log" i=${#pids[@]} deadline
	# A server already answering on the admin port would pass for ours.
	if curl -fsS -o /dev/null --max-time 1 "http://$admin/healthz" 2>/dev/null; then
		die "something already serves http://$admin (another custody?); stop it first"
	fi
	"$CUSTODY" run --grpc-addr "$grpc" --admin-addr "$admin" "$@" >"$log" 2>&1 &
	names+=("$name") pids+=("$!") grpc_addrs+=("$grpc") admin_addrs+=("$admin") logs+=("$log")
	printf 'starting %-12s pid %-7s ' "$name" "$!"
	deadline=$((SECONDS + READY_TIMEOUT))
	until curl -fsS -o /dev/null --max-time 1 "http://$admin/readyz" 2>/dev/null; do
		if ! kill -0 "${pids[i]}" 2>/dev/null; then
			echo "exited"
			show_log "$i"
			die "$name exited before it was ready"
		fi
		if ((SECONDS >= deadline)); then
			echo "not ready"
			show_log "$i"
			die "$name was not ready within ${READY_TIMEOUT}s"
		fi
		sleep 0.2
	done
	echo "ready"
}

if ((${#targets[@]} == 0)); then
	start "all" "$HOST:7070" "$HOST:7071" \
		--target=all --data-dir "$DATA_DIR" --nats-listen "$NATS_LISTEN"
else
	# Process 1: the first target, the embedded NATS and the signing key.
	start "${targets[0]}" "$HOST:7070" "$HOST:7071" \
		--target="${targets[0]}" --data-dir "$DATA_DIR" --nats-listen "$NATS_LISTEN"
	[[ -f $PUBLIC_KEY ]] || die "$PUBLIC_KEY is missing after process 1 started"
	[[ -f $MASTER_KEYS || -n ${CUSTODY_MASTER_KEYS:-} ]] || die "$MASTER_KEYS is missing after process 1 started"
	for ((k = 1; k < ${#targets[@]}; k++)); do
		t=${targets[k]}
		start "$t" "$HOST:$((7080 + k))" "$HOST:$((7180 + k))" \
			--target="$t" --data-dir "$DATA_DIR/$t" \
			--nats-url "nats://$NATS_LISTEN" --auth-public-key "$PUBLIC_KEY" --master-keys-file "$MASTER_KEYS"
	done
fi

echo
printf '%-12s %-8s %-22s %-29s %s\n' TARGET PID GRPC ADMIN LOG
for ((i = 0; i < ${#pids[@]}; i++)); do
	printf '%-12s %-8s %-22s %-29s %s\n' "${names[i]}" "${pids[i]}" "${grpc_addrs[i]}" \
		"http://${admin_addrs[i]}" "${logs[i]#"$ROOT"/}"
done
echo
echo "NATS (embedded in ${names[0]}): nats://$NATS_LISTEN, JetStream data in $DATA_DIR/nats"
echo "Tokens: export CUSTODY_TOKEN=\$($CUSTODY token --data-dir $DATA_DIR --role support)"
echo "Then:   custodyctl --addr <GRPC above> status    (admin: /healthz /readyz /metrics)"
echo "Ctrl-C stops everything."

# Serve until Ctrl-C, or until one process exits (which stops the rest).
while true; do
	for ((i = 0; i < ${#pids[@]}; i++)); do
		if ! kill -0 "${pids[i]}" 2>/dev/null; then
			status=0
			wait "${pids[i]}" || status=$?
			echo "${names[i]} (pid ${pids[i]}) exited with status $status" >&2
			show_log "$i"
			exit 1
		fi
	done
	sleep 1
done
