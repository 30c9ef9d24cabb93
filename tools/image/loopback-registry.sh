# Sourced by the image scripts: crane builds images against a registry, so they start
# crane's in-process one on a free loopback port, private to the script and gone with it.
#
#   . tools/image/loopback-registry.sh; registry_start "$crane" "$work"   # sets $registry
# The caller's EXIT trap must call registry_stop.

registry_pid=
registry_start() { # crane work-dir
	local crane=$1 work=$2 port
	port=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
	"$crane" registry serve --address "127.0.0.1:$port" >"$work/registry.log" 2>&1 &
	registry_pid=$!
	registry=127.0.0.1:$port
	for _ in $(seq 100); do
		"$crane" catalog --insecure "$registry" >/dev/null 2>&1 && return 0
		sleep 0.1
	done
	echo "the loopback registry did not start: $(cat "$work/registry.log")" >&2
	return 1
}

registry_stop() {
	[[ -z $registry_pid ]] || kill "$registry_pid" 2>/dev/null || true
	[[ -z $registry_pid ]] || wait "$registry_pid" 2>/dev/null || true
}
