#!/usr/bin/env bash
# A local S3-compatible server (moto, from PyPI) for the S3 blob-store tests and for trying
# GMFUSE_BLOB_URL=s3://… by hand. Loopback only; state is in memory and gone when it stops.
#
#   scripts/moto.sh start [PORT]   install moto[server] if missing, start it on 127.0.0.1:PORT
#                                  (default 5055), wait until it answers, create the bucket
#                                  $MOTO_BUCKET (default gmfuse), print the variables to export
#   scripts/moto.sh stop           stop the server this script started
#   scripts/moto.sh env [PORT]     print the variables again
#
# Typical use:  eval "$(scripts/moto.sh start)"; cargo test; scripts/moto.sh stop
# Only the `export …` lines go to stdout; progress goes to stderr.
set -euo pipefail

state_dir="${MOTO_STATE_DIR:-${TMPDIR:-/tmp}/gmfuse-moto}"
pid_file="$state_dir/pid"
log_file="$state_dir/moto.log"
bucket="${MOTO_BUCKET:-gmfuse}"

say() { echo "moto.sh: $*" >&2; }

print_env() {
    local endpoint="http://127.0.0.1:$1"
    cat <<EOF
export GMFUSE_TEST_S3_ENDPOINT=$endpoint
export AWS_ENDPOINT_URL=$endpoint
export AWS_ALLOW_HTTP=true
export AWS_REGION=us-east-1
export AWS_ACCESS_KEY_ID=testing
export AWS_SECRET_ACCESS_KEY=testing
EOF
}

answers() {
    # Any HTTP answer on the port will do (bash's /dev/tcp, no curl needed).
    (exec 3<>"/dev/tcp/127.0.0.1/$1" && printf 'GET / HTTP/1.0\r\n\r\n' >&3 && head -c 12 <&3 | grep -q HTTP) 2>/dev/null
}

start() {
    local port="${1:-5055}"
    mkdir -p "$state_dir"
    if [ -f "$pid_file" ] && kill -0 "$(cat "$pid_file")" 2>/dev/null; then
        say "already running (pid $(cat "$pid_file"))"
        print_env "$(cat "$state_dir/port")"
        return
    fi
    if ! command -v moto_server >/dev/null 2>&1; then
        say "installing moto[server] from PyPI"
        python3 -m pip install --quiet 'moto[server]>=5.1,<6' >&2
        hash -r
    fi
    if answers "$port"; then
        say "port $port is taken by something else"
        exit 1
    fi
    nohup moto_server -H 127.0.0.1 -p "$port" >"$log_file" 2>&1 </dev/null &
    echo $! >"$pid_file"
    echo "$port" >"$state_dir/port"
    for _ in $(seq 1 300); do
        if answers "$port"; then
            # moto accepts unsigned requests: a plain PUT creates the bucket.
            python3 - "$port" "$bucket" <<'EOF'
import sys, urllib.request
port, bucket = sys.argv[1], sys.argv[2]
req = urllib.request.Request(f"http://127.0.0.1:{port}/{bucket}", method="PUT")
try:
    urllib.request.urlopen(req, timeout=10)
except urllib.error.HTTPError as e:
    if e.code != 409:  # already there
        raise
EOF
            say "listening on 127.0.0.1:$port (pid $(cat "$pid_file")), bucket $bucket, log $log_file"
            print_env "$port"
            return
        fi
        if ! kill -0 "$(cat "$pid_file")" 2>/dev/null; then
            say "moto_server exited; log:"
            cat "$log_file" >&2
            exit 1
        fi
        sleep 0.2
    done
    say "moto_server did not answer within 60 s; log: $log_file"
    exit 1
}

stop() {
    if [ -f "$pid_file" ]; then
        local pid
        pid="$(cat "$pid_file")"
        if kill -0 "$pid" 2>/dev/null; then
            kill "$pid"
            say "stopped (pid $pid)"
        fi
        rm -f "$pid_file"
    else
        say "not running"
    fi
}

case "${1:-}" in
    start) start "${2:-}" ;;
    stop) stop ;;
    env) print_env "${2:-$(cat "$state_dir/port" 2>/dev/null || echo 5055)}" ;;
    *)
        echo "usage: $0 start [PORT] | stop | env [PORT]" >&2
        exit 2
        ;;
esac
