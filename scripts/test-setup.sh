#!/usr/bin/env bash
# Makes this machine ready for `npm test` (npm runs it as `pretest`) and `npm run image:test`:
# installs the programs the tests run and starts PostgreSQL and Redis if they do not answer.
# .ci/run and .github/workflows/test.yml run this same script before `npm ci`.
#
# Idempotent: every need is checked before anything is installed or started, so on a ready machine
# it only checks (about a second). It installs with apt-get where it may (root, or passwordless
# sudo); anywhere else it stops before any test starts, naming what is missing and the one command
# that fixes it. It never stops a process: the daemons the Debian packages start on install (where
# a service manager runs them) keep their default ports, and the tests run their own on free ports.
set -euo pipefail
cd "$(dirname "$0")/.."

# Every program the tests spawn, with the Debian package that provides it (the one list; find
# new ones with: grep -rnE 'spawn|execFile' '*/test/' scripts/).
#   program                   package                   run by
needs=(
  "promtool                  prometheus                monitoring rule tests, infra config checks"
  "prometheus                prometheus                monitoring end-to-end test"
  "amtool                    prometheus-alertmanager   Alertmanager config checks"
  "prometheus-alertmanager   prometheus-alertmanager   monitoring end-to-end test"
  "caddy                     caddy                     edge proxy tests (Caddyfile validated and run)"
  "redis-server              redis-server              local-stack Redis test; the suite's Redis"
  "redis-cli                 redis-tools               local-stack Redis test"
  "pg_dump                   postgresql-client         backup job test"
  "pg_restore                postgresql-client         backup job test"
  "pg_isready                postgresql-client         this script"
  "git                       git                       quickstart, rollback and plan-diff tests"
  "openssl                   openssl                   RDS TLS check (a throwaway certificate)"
  "python3:sklearn           python3-sklearn           model reference predictions (/usr/bin/python3)"
  "python3:onnx              python3-onnx              model build reproducibility"
  "chromium                  chromium                  /docs browser test"
  "docker                    docker.io                 npm run image:test"
  "dockerd                   docker.io                 npm run image:test"
  "debootstrap               debootstrap               npm run image:test (base image)"
)

log() { printf 'test-setup: %s\n' "$*"; }
has_program() { command -v "$1" >/dev/null 2>&1 || [[ -x /usr/sbin/$1 || -x /sbin/$1 ]]; }

if [[ $(id -u) == 0 ]]; then as_root=()
elif command -v sudo >/dev/null 2>&1 && sudo -n true 2>/dev/null; then as_root=(sudo -n)
else as_root=(none)
fi
may_install() { [[ ${as_root[0]-} != none ]] && command -v apt-get >/dev/null 2>&1; }
stop_with() {
  printf 'test-setup: %s\n' "$@" >&2
  if command -v apt-get >/dev/null 2>&1; then
    printf 'test-setup: run this once, then npm test again:\n\n    sudo bash scripts/test-setup.sh\n\n' >&2
  fi
  exit 1
}

# --- programs ------------------------------------------------------------------------------------
py_modules=()
for line in "${needs[@]}"; do
  read -r program _ <<<"$line"
  [[ $program == python3:* ]] && py_modules+=("${program#python3:}")
done
missing_py=""
if [[ -x /usr/bin/python3 ]]; then
  missing_py=$(/usr/bin/python3 -c 'import importlib.util, sys
print(" ".join(m for m in sys.argv[1:] if importlib.util.find_spec(m) is None))' "${py_modules[@]}")
else
  missing_py="${py_modules[*]}"
fi

missing=() packages=()
for line in "${needs[@]}"; do
  read -r program package _ <<<"$line"
  if [[ $program == python3:* ]]; then
    [[ " $missing_py " == *" ${program#python3:} "* ]] || continue
  elif has_program "$program"; then
    continue
  fi
  missing+=("$program")
  [[ " ${packages[*]} " == *" $package "* ]] || packages+=("$package")
done

if ((${#packages[@]})); then
  if ! may_install; then
    stop_with "missing: ${missing[*]} (Debian packages: ${packages[*]})"
  fi
  log "installing ${packages[*]}"
  export DEBIAN_FRONTEND=noninteractive
  "${as_root[@]}" apt-get update -qq
  "${as_root[@]}" apt-get install -y -qq --no-install-recommends "${packages[@]}" >/dev/null
fi

# --- PostgreSQL on 127.0.0.1:5432, user postgres, trust auth, database test ----------------------
pg_answers() { pg_isready -h 127.0.0.1 -p 5432 -q 2>/dev/null; }
wait_for() { for _ in $(seq 1 30); do "$@" && return 0; sleep 1; done; return 1; }

if ! pg_answers; then
  may_install || stop_with "PostgreSQL does not answer on 127.0.0.1:5432"
  created_cluster=""
  if ! compgen -G "/etc/postgresql/*/main/postgresql.conf" >/dev/null; then
    log "installing postgresql"
    "${as_root[@]}" apt-get install -y -qq --no-install-recommends postgresql >/dev/null
    created_cluster=yes
  fi
  version=$(basename "$(dirname "$(ls -d /etc/postgresql/*/main | sort -V | tail -1)")")
  if [[ -n $created_cluster ]]; then
    # Only a cluster this script just created gets the tests' trust rule for local TCP.
    hba="/etc/postgresql/$version/main/pg_hba.conf"
    "${as_root[@]}" sed -i '1i host all postgres 127.0.0.1/32 trust\nhost all postgres ::1/128 trust' "$hba"
  fi
  log "starting PostgreSQL $version"
  "${as_root[@]}" pg_ctlcluster --skip-systemctl-redirect "$version" main start || true
  # Where the package's own install already started it, the new rule needs a reload.
  [[ -z $created_cluster ]] || "${as_root[@]}" pg_ctlcluster --skip-systemctl-redirect "$version" main reload || true
  wait_for pg_answers || stop_with "PostgreSQL $version did not come up on 127.0.0.1:5432"
fi
if ! psql -h 127.0.0.1 -U postgres -d postgres -Atqc 'select 1' >/dev/null 2>&1; then
  stop_with "PostgreSQL answers, but user postgres cannot connect without a password over 127.0.0.1" \
    "(the tests use trust auth: add 'host all postgres 127.0.0.1/32 trust' to pg_hba.conf)"
fi
if [[ -z $(psql -h 127.0.0.1 -U postgres -d postgres -Atqc "select 1 from pg_database where datname = 'test'") ]]; then
  log "creating database test"
  createdb -h 127.0.0.1 -U postgres test
fi

# --- Redis on 127.0.0.1:6379 ---------------------------------------------------------------------
redis_answers() { [[ $(redis-cli -h 127.0.0.1 -p 6379 ping 2>/dev/null) == PONG ]]; }
if ! redis_answers; then
  # Any user may start it: it keeps its files in a folder of its own and nothing on disk.
  dir="${TMPDIR:-/tmp}/inferstack-test-redis-$(id -u)"
  mkdir -p "$dir"
  log "starting redis-server on 127.0.0.1:6379 (log: $dir/redis.log)"
  redis-server --daemonize yes --bind 127.0.0.1 -::1 --port 6379 --save "" --appendonly no \
    --dir "$dir" --logfile "$dir/redis.log"
  wait_for redis_answers || stop_with "redis-server did not come up on 127.0.0.1:6379 (see $dir/redis.log)"
fi

log "ready: ${#needs[@]} programs present, PostgreSQL and Redis answer"
