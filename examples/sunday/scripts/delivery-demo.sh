#!/usr/bin/env bash
# The Sunday example's release pipeline, as a newcomer runs it (`make demo-delivery`):
# release 1.1.0, deploy it to development (recreate), promote it to staging (rolling), promote
# it to production (blue_green: held until a second person approves), then a canary of the bad
# release 1.2.0-bad in staging, rolled back by itself. Exit codes are checked at every step.
set -uo pipefail
cd "$(dirname "$0")/.."
EP="${ENVPLANE:-../../.venv/bin/envplane} -f config/environment-matrix.yaml"

step() { printf '\n== %s\n' "$*"; }
expect() {  # expect CODE COMMAND...: run it, fail the demo unless it exits CODE
  local want=$1; shift
  "$@"; local got=$?
  if [ "$got" != "$want" ]; then echo "demo: expected exit $want, got $got: $*" >&2; exit 1; fi
}

step "environments"
for env in development staging production; do
  $EP status "$env" >/dev/null 2>&1 || expect 0 $EP create "$env"
done

step "a release of backend 1.1.0"
REL=$($EP release create --service backend=1.1.0 -m "one more route: /version") || exit 1
echo "$REL"

step "deploy to development (recreate), validate there"
expect 0 $EP deploy development "$REL"
expect 0 $EP validate development

step "promote to staging (rolling), validate at staging's level"
expect 0 $EP promote "$REL" --to staging
expect 0 $EP validate staging --level standard

step "promote to production: blue_green, held until a second user approves (exit 3)"
expect 3 $EP promote "$REL" --to production
PRM=$($EP promotions --env production -o json | python3 -c 'import json,sys; print(json.load(sys.stdin)[0]["id"])')
echo "waiting for approval: another OS user runs   envplane approve $PRM"
echo "then:                                        envplane promote $REL --to production"

step "a canary of the bad release 1.2.0-bad in production: rolled back by itself (exit 1)"
# canary is production's alternative; a direct deploy there needs --force (audited). The
# analysis judges real traffic: a bounded loop sends ~50 requests/s for at most 60 s.
BAD=$($EP release create --service backend=1.2.0-bad -m "fails 30% of its requests") || exit 1
URL=$($EP info production -o json | python3 -c 'import json,sys; print(json.load(sys.stdin)["endpoints"]["frontend"])')
python3 - "$URL" <<'PY' &
import sys, time, urllib.request
end = time.monotonic() + 60
while time.monotonic() < end:
    try:
        urllib.request.urlopen(sys.argv[1] + "api/info", timeout=2).read()
    except Exception:
        pass
    time.sleep(0.02)
PY
LOAD=$!
expect 1 $EP deploy production "$BAD" --strategy canary --force
kill "$LOAD" 2>/dev/null
$EP status production
