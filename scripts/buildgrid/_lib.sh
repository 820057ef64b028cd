# shellcheck shell=bash
# Helpers shared by install, start and stop. Sourced, never run.

# The BuildGrid version this directory is written for (see requirements.txt).
# shellcheck disable=SC2034 # used by the scripts that source this
BGD_VERSION=0.4.4

bgd_log() { printf 'buildgrid: %s\n' "$*" >&2; }
bgd_die() {
  bgd_log "error: $*"
  exit 1
}

# Where the virtualenv lives.
bgd_venv() {
  printf '%s\n' "${HERMETIC_BUILDGRID_VENV:-${XDG_CACHE_HOME:-$HOME/.cache}/hermetic-ci/buildgrid-venv}"
}

# A TCP port on 127.0.0.1 that nobody listens on right now. The kernel picks
# it; the socket is closed again, so a caller must cope with losing a race.
bgd_free_port() {
  "$1" -c 'import socket
s = socket.socket()
s.bind(("127.0.0.1", 0))
print(s.getsockname()[1])
s.close()'
}

# The bin directory of the newest PostgreSQL server found, or nothing.
bgd_pg_bindir() {
  local d best="" bestv=0 v
  if [[ -n ${HERMETIC_BUILDGRID_PG_BINDIR:-} ]]; then
    printf '%s\n' "$HERMETIC_BUILDGRID_PG_BINDIR"
    return 0
  fi
  for d in /usr/lib/postgresql/*/bin; do
    [[ -x $d/initdb && -x $d/pg_ctl && -x $d/postgres ]] || continue
    v=${d#/usr/lib/postgresql/}
    v=${v%/bin}
    [[ $v =~ ^[0-9]+$ ]] || continue
    if ((v > bestv)); then
      best=$d
      bestv=$v
    fi
  done
  if [[ -z $best ]] && command -v initdb >/dev/null 2>&1 && command -v pg_ctl >/dev/null 2>&1; then
    best=$(dirname "$(command -v initdb)")
  fi
  [[ -n $best ]] && printf '%s\n' "$best"
}

# PostgreSQL refuses to run as root. As root, the private cluster is owned by
# and run as this user (Debian's postgresql package creates `postgres`).
bgd_pg_user() {
  printf '%s\n' "${HERMETIC_BUILDGRID_PG_USER:-postgres}"
}

# Run a command as the PostgreSQL cluster owner: the caller itself unless root.
bgd_as_pg() {
  if [[ $(id -u) -eq 0 ]]; then
    runuser -u "$(bgd_pg_user)" -- "$@"
  else
    "$@"
  fi
}

# True if PID is alive and is a BuildGrid server (guards against PID reuse).
bgd_is_server_pid() {
  local pid=$1
  [[ $pid =~ ^[0-9]+$ ]] || return 1
  kill -0 "$pid" 2>/dev/null || return 1
  [[ -r /proc/$pid/cmdline ]] || return 0
  tr '\0' ' ' <"/proc/$pid/cmdline" | grep -q 'bgd.* server start'
}
