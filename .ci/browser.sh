#!/usr/bin/env bash
# Browser test of the web UI (`faultline serve`), in headless Chromium.
#
# Makes a store with two real runs (`faultline test`, a few seconds each),
# starts `faultline serve --port 0` on it, and with headless Chromium:
# loads the runs list, checks both runs are listed, filters it, opens one
# run's report and checks its verdict, its three plots and its timeline are
# there, opens its files page, and opens report.html from the file system
# (no server). Saves a PNG screenshot of every page under $BROWSER_OUT
# (default target/browser/). Exits non-zero if anything is missing.
#
# Installs nothing: needs chromium (Debian: chromium, chromium-driver) and
# a font for plot text (fonts-dejavu-core). Uses $FAULTLINE if set, else
# builds the release binary (honours CARGO_TARGET_DIR).
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
OUT=${BROWSER_OUT:-$ROOT/target/browser}
TARGET=${CARGO_TARGET_DIR:-$ROOT/target}
if [ -z "${FAULTLINE:-}" ]; then
  (cd "$ROOT" && cargo build --release -p faultline >&2)
  FAULTLINE=$TARGET/release/faultline
fi
CHROMIUM=""
for c in chromium chromium-browser google-chrome; do
  if command -v "$c" >/dev/null 2>&1; then CHROMIUM=$c; break; fi
done
if [ -z "$CHROMIUM" ]; then echo "browser.sh: no chromium on PATH (apt-get install chromium chromium-driver)" >&2; exit 1; fi

WORK=$(mktemp -d /tmp/faultline-browser.XXXXXX)
STORE=$WORK/store
SERVE_PID=""
cleanup() {
  if [ -n "$SERVE_PID" ]; then kill "$SERVE_PID" 2>/dev/null || true; wait "$SERVE_PID" 2>/dev/null || true; fi
  rm -rf "$WORK"
}
trap cleanup EXIT
rm -rf "$OUT"; mkdir -p "$OUT"

fail() { echo "browser.sh: FAIL: $*" >&2; exit 1; }

# Two real runs: a correct system and one with a planted bug.
run_test() {
  local rc=0
  "$FAULTLINE" test --store "$STORE" --time-limit 5s --node-count 3 --rate 60 \
    --nemesis partition --nemesis-interval 2s "$@" >"$WORK/test.out" 2>"$WORK/test.err" || rc=$?
  case $rc in
    0|1|2) echo "browser.sh: faultline test $* → exit $rc" >&2 ;;
    *) cat "$WORK/test.err" >&2; fail "faultline test $* exited $rc" ;;
  esac
}
run_test
run_test --bug stale-read

# The server, on a free port of 127.0.0.1; it prints its URL first.
"$FAULTLINE" serve --store "$STORE" --port 0 >"$WORK/serve.out" 2>"$WORK/serve.err" &
SERVE_PID=$!
URL=""
for _ in $(seq 1 100); do
  URL=$(head -n1 "$WORK/serve.out" 2>/dev/null || true)
  [ -n "$URL" ] && break
  kill -0 "$SERVE_PID" 2>/dev/null || { cat "$WORK/serve.err" >&2; fail "faultline serve exited"; }
  sleep 0.1
done
[ -n "$URL" ] || fail "faultline serve printed no URL"
case $URL in http://127.0.0.1:*/) ;; *) fail "unexpected URL $URL" ;; esac
echo "browser.sh: serving on $URL" >&2

chromium() {
  # A fresh profile per call: nothing carries over between pages.
  local profile; profile=$(mktemp -d "$WORK/profile.XXXXXX")
  timeout 90 "$CHROMIUM" --headless --no-sandbox --disable-gpu --disable-quic --no-first-run \
    --disable-background-networking --disable-component-update --disable-sync \
    --disable-dev-shm-usage --hide-scrollbars --user-data-dir="$profile" "$@" 2>>"$WORK/chromium.log"
}
# page NAME URL WIDTHxHEIGHT: the DOM after load in $WORK/NAME.html, a screenshot in $OUT/NAME.png.
page() {
  local name=$1 url=$2 size=$3
  chromium --virtual-time-budget=5000 --dump-dom "$url" >"$WORK/$name.html" || fail "$name: chromium --dump-dom failed"
  chromium --virtual-time-budget=5000 --window-size="$size" --screenshot="$OUT/$name.png" "$url" >/dev/null \
    || fail "$name: chromium --screenshot failed"
  [ -s "$OUT/$name.png" ] || fail "$name: no screenshot"
  [ "$(head -c 8 "$OUT/$name.png" | od -An -tx1 | tr -d ' \n')" = "89504e470d0a1a0a" ] || fail "$name: screenshot is not a PNG"
  echo "browser.sh: $name: $url → $OUT/$name.png" >&2
}
need() { # need PAGE TEXT WHAT
  grep -qF -- "$2" "$WORK/$1.html" || fail "$1: $3 missing (no '$2')"
}

# 1. The runs list: both runs, with links to their reports.
page 01-runs "$URL" 1400,900
RUNS=$(grep -o '<tr class="run"' "$WORK/01-runs.html" | wc -l)
[ "$RUNS" -eq 2 ] || fail "01-runs: $RUNS runs listed, want 2"
need 01-runs 'register-partition-bug-stale-read' 'the bug run'
need 01-runs 'id="filter"' 'the filter form'
REPORT=$(grep -o 'class="report" href="[^"]*"' "$WORK/01-runs.html" | grep -v bug | head -n1 | sed 's/.*href="//; s/"$//')
BUG_REPORT=$(grep -o 'class="report" href="[^"]*"' "$WORK/01-runs.html" | grep bug | head -n1 | sed 's/.*href="//; s/"$//')
[ -n "$REPORT" ] && [ -n "$BUG_REPORT" ] || fail "01-runs: no report links"

# 2. Filtered and sorted: only the bug run's test.
page 02-runs-filtered "${URL}?test=bug&sort=verdict" 1400,600
RUNS=$(grep -o '<tr class="run"' "$WORK/02-runs-filtered.html" | wc -l)
[ "$RUNS" -eq 1 ] || fail "02-runs-filtered: $RUNS runs listed, want 1"

# 3 and 4. Each report: verdict, three plots, timeline, percentiles.
check_report() {
  local name=$1
  need "$name" 'id="verdict"' 'the verdict'
  grep -qE 'data-verdict="(valid|invalid|unknown)"' "$WORK/$name.html" || fail "$name: no checked verdict"
  for plot in latency-raw latency-quantiles throughput; do
    grep -qF "id=\"plot-$plot\"><svg" "$WORK/$name.html" || fail "$name: plot $plot missing"
  done
  need "$name" 'class="timeline"' 'the timeline'
  need "$name" 'class="percentiles"' 'the percentile table'
  need "$name" 'href="history.jsonl"' 'the history link'
}
page 03-report "${URL%/}$REPORT" 1400,3200
check_report 03-report
page 04-report-bug "${URL%/}$BUG_REPORT" 1400,3200
check_report 04-report-bug

# 5. The run's files, to download.
page 05-files "${URL%/}${REPORT}files" 1400,700
need 05-files 'history.jsonl?download=1' 'the history download'
need 05-files 'plots/latency-raw.png' 'the PNG plots'

# 6. report.html straight from the file system, no server.
RUN_DIR=$(find "$STORE" -mindepth 2 -maxdepth 2 -type d -path '*bug*' | head -n1)
[ -f "$RUN_DIR/report.html" ] || fail "no report.html in $RUN_DIR"
page 06-report-file "file://$RUN_DIR/report.html" 1400,3200
check_report 06-report-file

echo "browser.sh: ok — screenshots in $OUT:" >&2
ls -l "$OUT" >&2
