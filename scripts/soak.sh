#!/usr/bin/env bash
# Soak: the release agent against N containers (default 50) with churn (two
# replacements a minute), /metrics scraped every 5 s, uploading every cycle
# (--interval 10) to the fake TLS backend of tests/upload_tls.rs. The
# containers run on a private dockerd (its own data root, socket and network
# namespace), so that nothing else on the machine's daemon is counted. Every 10 s
# it samples the agent's VmRSS, open descriptors and CPU time into a CSV,
# and at the end draws them (SVG, made here with awk: no plotting stack)
# and prints the start and end figures. Run as root with Docker answering:
#
#   scripts/soak.sh --duration 3600 [--containers 50] [--out docs/soak]
#
# Exits non-zero when RSS or the descriptors grew, or the upload accounting
# (produced = delivered + buffered + dropped) does not hold at the end.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
while read -r var; do unset "$var"; done < <(compgen -e | grep '^DATALOOP_' || true)

DURATION=3600
N=50
OUT=docs/soak
while [ $# -gt 0 ]; do
    case $1 in
        --duration) DURATION=$2; shift 2 ;;
        --containers) N=$2; shift 2 ;;
        --out) OUT=$2; shift 2 ;;
        *) echo "usage: $0 [--duration SECONDS] [--containers N] [--out DIR]" >&2; exit 2 ;;
    esac
done
case $DURATION in '' | *[!0-9]*) echo "soak: --duration takes seconds" >&2; exit 2 ;; esac

export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-target}
PORT=${SOAK_PORT:-18124}
PREFIX="soak-$$"
WORK=$(mktemp -d /tmp/outlyer-soak.XXXXXX)
mkdir -p "$OUT"
CSV=$OUT/soak.csv
SVG=$OUT/soak.svg
AGENT_PID=
BACKEND_PID=
DOCKERD_PID=
SOCK=$WORK/docker.sock
dk() { docker -H "unix://$SOCK" "$@"; }

cleanup() {
    set +e # a failing step of the clean-up must not decide the exit code
    [ -n "$AGENT_PID" ] && kill "$AGENT_PID" 2>/dev/null && wait "$AGENT_PID" 2>/dev/null
    rm -f "$WORK/port"
    [ -n "$BACKEND_PID" ] && wait "$BACKEND_PID" 2>/dev/null
    if [ -n "$DOCKERD_PID" ]; then
        local ids
        ids=$(dk ps -aq 2>/dev/null)
        # shellcheck disable=SC2086 # one id per word
        [ -n "$ids" ] && dk rm -f $ids >/dev/null 2>&1
        kill "$DOCKERD_PID" 2>/dev/null
        for _ in $(seq 100); do kill -0 "$DOCKERD_PID" 2>/dev/null || break; sleep 0.1; done
        kill -9 "$DOCKERD_PID" 2>/dev/null
        awk -v d="$WORK/" 'index($5, d) == 1 { print length($5), $5 }' /proc/self/mountinfo | sort -rn | cut -d' ' -f2- |
            while read -r p; do umount -l "$p" 2>/dev/null; done
    fi
    rm -rf "$WORK"
    return 0
}
trap cleanup EXIT
trap 'exit 130' INT TERM

echo "soak: building the release agent and the fake backend"
cargo build --release --quiet
cargo test --release --quiet --test upload_tls --no-run 2>/dev/null
BIN=$CARGO_TARGET_DIR/release/outlyer-agent
TEST_BIN=$(ls -t "$CARGO_TARGET_DIR"/release/deps/upload_tls-* | grep -v '\.d$' | head -n 1)

UPL_BACKEND_DIR=$WORK "$TEST_BIN" --ignored --exact fake_backend_process --test-threads=1 >/dev/null 2>&1 &
BACKEND_PID=$!
for _ in $(seq 100); do [ -f "$WORK/port" ] && break; sleep 0.1; done
[ -f "$WORK/port" ] || { echo "soak: the fake backend did not start" >&2; exit 1; }
BPORT=$(cat "$WORK/port")

echo "soak: a private dockerd at $SOCK"
echo '{}' >"$WORK/daemon.json"
unshare --net dockerd --host "unix://$SOCK" --data-root "$WORK/data" --exec-root "$WORK/exec" \
    --pidfile "$WORK/dockerd.pid" --config-file "$WORK/daemon.json" --bridge none --iptables=false \
    --ip-masq=false --userland-proxy=false >"$WORK/dockerd.log" 2>&1 </dev/null &
DOCKERD_PID=$!
for _ in $(seq 600); do
    [ "$(curl -s --max-time 1 --unix-socket "$SOCK" http://docker/_ping 2>/dev/null)" = OK ] && break
    sleep 0.1
done
[ "$(curl -s --max-time 1 --unix-socket "$SOCK" http://docker/_ping 2>/dev/null)" = OK ] ||
    { tail -n 20 "$WORK/dockerd.log" >&2; echo "soak: the private dockerd did not answer" >&2; exit 1; }
bash scripts/ci-setup.sh --import-image "unix://$SOCK"

start_container() { # name
    dk run -d --name "$1" --network none localbusy:latest \
        sh -c 'while :; do sleep 1; done' >/dev/null
}
echo "soak: starting $N containers"
for i in $(seq "$N"); do start_container "$PREFIX-$i"; done
next=$((N + 1))

DATALOOP_AGENT_KEY=soak-key DATALOOP_SERVER="https://localhost:$BPORT" \
    DATALOOP_SERIES_URL="https://localhost:$BPORT/v2/accounts/soak/series" \
    DATALOOP_CA_FILE="$WORK/ca.pem" \
    "$BIN" --runtime docker --docker-socket "$SOCK" --rootfs / --interval 10 \
    --listen "127.0.0.1:$PORT" >"$WORK/agent.log" 2>&1 &
AGENT_PID=$!
for _ in $(seq 100); do curl -sf "http://127.0.0.1:$PORT/healthz" >/dev/null 2>&1 && break; sleep 0.1; done

ticks() { awk '{print $14 + $15}' "/proc/$AGENT_PID/stat"; }
HZ=$(getconf CLK_TCK)
echo "t_s,rss_kib,fds,cpu_s,containers,scrape_ms" >"$CSV"
begin=$(date +%s)
last_sample=-10
last_churn=0
scrape_ms=0
echo "soak: running for $DURATION s (CSV: $CSV)"
while :; do
    now=$(($(date +%s) - begin))
    [ "$now" -ge "$DURATION" ] && break
    kill -0 "$AGENT_PID" 2>/dev/null || { echo "soak: the agent exited" >&2; tail -n 20 "$WORK/agent.log" >&2; exit 1; }
    t0=$(date +%s%N)
    body=$(curl -sf --max-time 5 "http://127.0.0.1:$PORT/metrics" || true)
    scrape_ms=$((($(date +%s%N) - t0) / 1000000))
    if [ $((now - last_churn)) -ge 30 ]; then
        # Two replacements a minute: the oldest goes, a new one comes.
        victim=$(dk ps -q --filter "name=$PREFIX-" | tail -n 1)
        [ -n "$victim" ] && dk rm -f "$victim" >/dev/null
        start_container "$PREFIX-$next"
        next=$((next + 1))
        last_churn=$now
    fi
    if [ $((now - last_sample)) -ge 10 ]; then
        rss=$(awk '/^VmRSS:/ {print $2}' "/proc/$AGENT_PID/status")
        fds=$(ls "/proc/$AGENT_PID/fd" | wc -l)
        cpu=$(awk -v t="$(ticks)" -v hz="$HZ" 'BEGIN {printf "%.2f", t / hz}')
        containers=$(awk '/^outlyer_agent_containers / {print $2}' <<<"$body")
        echo "$now,$rss,$fds,$cpu,${containers:-0},$scrape_ms" >>"$CSV"
        last_sample=$now
    fi
    sleep 5
done

body=$(curl -sf "http://127.0.0.1:$PORT/metrics")
sum_of() { awk -v f="$1" '$1 ~ "^"f"(\\{|$)" {s += $2} END {printf "%d", s}' <<<"$body"; }
produced=$(sum_of outlyer_agent_produced_samples_total)
delivered=$(sum_of outlyer_agent_delivered_samples_total)
buffered=$(sum_of outlyer_agent_buffered_samples)
dropped=$(sum_of outlyer_agent_dropped_samples_total)

# Start: the median of the first 5 minutes after a 2-minute warm-up; end:
# the median of the last 5 minutes (or fifths of a shorter run).
summary=$(awk -F, -v dur="$DURATION" '
    NR == 1 { next }
    { t[NR] = $1; rss[NR] = $2; fds[NR] = $3; cpu[NR] = $4; n = NR }
    function median(a, lo, hi,   m, i, j, k, v, s) {
        m = 0
        for (i = lo; i <= hi; i++) { v[++m] = a[i] }
        for (i = 2; i <= m; i++) { s = v[i]; for (j = i - 1; j >= 1 && v[j] > s; j--) v[j + 1] = v[j]; v[j + 1] = s }
        return m ? v[int((m + 1) / 2)] : 0
    }
    END {
        win = dur >= 1800 ? 300 : int(dur / 5); warm = dur >= 1800 ? 120 : int(dur / 10)
        for (i = 2; i <= n; i++) { if (t[i] >= warm && !a) a = i; if (t[i] <= warm + win) b = i; if (t[i] >= t[n] - win && !c) c = i }
        # A run too short for its windows: the first and the last sample.
        if (!a) a = 2; if (b < a) b = a; if (!c) c = n
        printf "%d %d %d %d %.2f %d\n", median(rss, a, b), median(rss, c, n), median(fds, a, b), median(fds, c, n), cpu[n], t[n]
    }' "$CSV")
read -r rss0 rss1 fds0 fds1 cpu_s t_end <<<"$summary"

# The plot: RSS (KiB, left axis) and descriptors (right axis) against minutes.
awk -F, -v out="$SVG" -v title="outlyer-agent soak: $N containers, 2 replacements/min, $((DURATION / 60)) min" '
    NR == 1 { next }
    { t[++n] = $1; r[n] = $2; f[n] = $3; if ($2 > rmax) rmax = $2; if ($3 > fmax) fmax = $3 }
    END {
        W = 800; H = 360; L = 70; R = 60; T = 40; B = 50
        tmax = t[n] > 0 ? t[n] : 1; rtop = rmax * 1.25; ftop = fmax * 1.25
        printf "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"%d\" height=\"%d\" font-family=\"sans-serif\" font-size=\"12\">\n", W, H > out
        printf "<rect width=\"%d\" height=\"%d\" fill=\"white\"/>\n<text x=\"%d\" y=\"22\" font-size=\"14\">%s</text>\n", W, H, L, title > out
        printf "<line x1=\"%d\" y1=\"%d\" x2=\"%d\" y2=\"%d\" stroke=\"black\"/>\n", L, H - B, W - R, H - B > out
        printf "<line x1=\"%d\" y1=\"%d\" x2=\"%d\" y2=\"%d\" stroke=\"black\"/>\n", L, T, L, H - B > out
        printf "<line x1=\"%d\" y1=\"%d\" x2=\"%d\" y2=\"%d\" stroke=\"black\"/>\n", W - R, T, W - R, H - B > out
        for (k = 0; k <= 4; k++) {
            y = H - B - k * (H - B - T) / 4
            printf "<text x=\"%d\" y=\"%d\" text-anchor=\"end\" fill=\"#1f77b4\">%d</text>\n", L - 5, y + 4, rtop * k / 4 > out
            printf "<text x=\"%d\" y=\"%d\" fill=\"#d62728\">%d</text>\n", W - R + 5, y + 4, ftop * k / 4 > out
            x = L + k * (W - L - R) / 4
            printf "<text x=\"%d\" y=\"%d\" text-anchor=\"middle\">%d</text>\n", x, H - B + 16, tmax * k / 4 / 60 > out
        }
        printf "<text x=\"%d\" y=\"%d\" text-anchor=\"middle\">minutes</text>\n", (W + L - R) / 2, H - 12 > out
        printf "<text x=\"12\" y=\"%d\" fill=\"#1f77b4\" transform=\"rotate(-90 12 %d)\">VmRSS (KiB)</text>\n", H / 2 + 30, H / 2 + 30 > out
        printf "<text x=\"%d\" y=\"%d\" fill=\"#d62728\" transform=\"rotate(90 %d %d)\">open descriptors</text>\n", W - 14, H / 2 - 40, W - 14, H / 2 - 40 > out
        printf "<polyline fill=\"none\" stroke=\"#1f77b4\" stroke-width=\"1.5\" points=\"" > out
        for (i = 1; i <= n; i++) printf "%.1f,%.1f ", L + t[i] / tmax * (W - L - R), H - B - r[i] / rtop * (H - B - T) > out
        printf "\"/>\n<polyline fill=\"none\" stroke=\"#d62728\" stroke-width=\"1.5\" points=\"" > out
        for (i = 1; i <= n; i++) printf "%.1f,%.1f ", L + t[i] / tmax * (W - L - R), H - B - f[i] / ftop * (H - B - T) > out
        printf "\"/>\n</svg>\n" > out
    }' "$CSV"

echo "soak: $((t_end / 60)) min, $N containers, $((next - N - 1)) replacements; plot $SVG"
echo "soak: VmRSS ${rss0} KiB at the start -> ${rss1} KiB at the end ($((rss1 - rss0)) KiB)"
echo "soak: open descriptors ${fds0} -> ${fds1}"
echo "soak: agent CPU ${cpu_s} s in ${t_end} s ($(awk -v c="$cpu_s" -v t="$t_end" 'BEGIN {printf "%.3f", 100 * c / t}') % of a core)"
echo "soak: upload produced ${produced} = delivered ${delivered} + buffered ${buffered} + dropped ${dropped}"
fail=0
if [ $((rss1 - rss0)) -gt 64 ]; then echo "soak: FAILED: RSS grew by more than 64 KiB" >&2; fail=1; fi
if [ "$fds1" -gt "$fds0" ]; then echo "soak: FAILED: descriptors grew" >&2; fail=1; fi
if [ "$produced" -ne $((delivered + buffered + dropped)) ] || [ "$produced" -eq 0 ]; then
    echo "soak: FAILED: the upload accounting does not hold" >&2
    fail=1
fi
exit $fail
