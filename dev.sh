#!/usr/bin/env bash
# pushstream developer entry point. Every command sets up what it needs first
# (idempotent): Debian packages when missing, a virtualenv in .venv, a release
# build of the Rust core installed into it.
#
#   ./dev.sh serve [ARGS]   set up, then run `pushstream serve` (SQLite, no external server)
#   ./dev.sh test [PYTEST]  set up, then run lint, `cargo test` and the whole pytest suite
#   ./dev.sh lint           ruff, mypy, stubtest, rustfmt, clippy
#   ./dev.sh bench [NAME]   run the benchmarks in bench/
#   ./dev.sh setup          only set up
#   ./dev.sh shell          a shell with the virtualenv activated
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
cd "$ROOT"
VENV="$ROOT/.venv"
PY="$VENV/bin/python"
# The build cache lives outside the clone so fresh clones and CI reuse it.
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/pushstream/target}"
export PYO3_PYTHON="$PY"

log() { printf '\033[1m==> %s\033[0m\n' "$*" >&2; }

apt_install() {
    # Installs Debian packages that are missing; needs root (or sudo).
    local missing=()
    for pkg in "$@"; do
        dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "ok installed" || missing+=("$pkg")
    done
    [ ${#missing[@]} -eq 0 ] && return 0
    log "installing Debian packages: ${missing[*]}"
    local sudo=""
    [ "$(id -u)" -eq 0 ] || sudo="sudo"
    $sudo apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq "${missing[@]}" >/dev/null
}

setup_system() {
    command -v python3 >/dev/null || apt_install python3
    python3 -c 'import sys; assert sys.version_info >= (3, 11), sys.version' \
        || { echo "pushstream needs Python >= 3.11" >&2; exit 1; }
    python3 -c 'import ensurepip, venv' 2>/dev/null || apt_install python3-venv
    command -v cc >/dev/null || apt_install build-essential
    command -v pkg-config >/dev/null || apt_install pkg-config
    if ! command -v cargo >/dev/null; then
        [ -x "$HOME/.cargo/bin/cargo" ] && export PATH="$HOME/.cargo/bin:$PATH"
    fi
    command -v cargo >/dev/null || apt_install cargo rustc
    # PostgreSQL for the target tests, which run a private cluster of their own
    # (tests/pgcluster.py); Debian keeps initdb in /usr/lib/postgresql/*/bin.
    if ! command -v initdb >/dev/null && ! compgen -G "/usr/lib/postgresql/*/bin/initdb" >/dev/null; then
        apt_install postgresql
    fi
    # The HTTP load generator of bench/bench_load.py.
    command -v wrk >/dev/null || apt_install wrk
}

setup_python() {
    [ -x "$PY" ] || { log "creating virtualenv .venv"; python3 -m venv "$VENV"; }
    local stamp="$VENV/.deps-stamp"
    local want
    want="$(sha256sum pyproject.toml | cut -d' ' -f1)"
    if [ ! -f "$stamp" ] || [ "$(cat "$stamp")" != "$want" ]; then
        log "installing Python dependencies"
        "$PY" -m pip install -q --upgrade pip
        # Dependencies from pyproject.toml (runtime + dev), without building the package itself.
        "$PY" - <<'EOF' > "$VENV/requirements.txt"
import tomllib
project = tomllib.load(open("pyproject.toml", "rb"))["project"]
print("\n".join(project["dependencies"] + project["optional-dependencies"]["dev"]))
EOF
        "$PY" -m pip install -q -r "$VENV/requirements.txt"
        echo "$want" > "$stamp"
    fi
}

build_core() {
    log "building the Rust core (release, cache in $CARGO_TARGET_DIR)"
    VIRTUAL_ENV="$VENV" "$VENV/bin/maturin" develop --release --quiet >"$VENV/build.log" 2>&1 \
        || { cat "$VENV/build.log" >&2; echo "the Rust core did not build" >&2; exit 1; }
    "$PY" -c 'import pushstream._core' || { echo "the Rust core did not build" >&2; exit 1; }
}

setup() {
    setup_system
    setup_python
    build_core
}

lint() {
    log "lint: ruff"
    "$VENV/bin/ruff" check python tests bench
    "$VENV/bin/ruff" format --check python tests bench
    log "lint: mypy"
    "$VENV/bin/mypy"
    log "lint: stubtest"
    "$PY" -m mypy.stubtest pushstream._core --ignore-missing-stub
    log "lint: rustfmt + clippy"
    cargo fmt --all -- --check
    cargo clippy --release --workspace --all-targets --quiet -- -D warnings
}

cmd="${1:-help}"
[ $# -gt 0 ] && shift
case "$cmd" in
    setup) setup ;;
    serve)
        setup
        exec "$VENV/bin/pushstream" serve "$@"
        ;;
    test)
        setup
        lint
        log "cargo test (rust/core)"
        cargo test --release -p pushstream-core --quiet
        log "pytest"
        exec "$PY" -m pytest "$@"
        ;;
    lint)
        setup
        lint
        ;;
    bench)
        setup
        exec "$PY" bench/run.py "$@"
        ;;
    shell)
        setup
        exec bash --rcfile <(echo "source '$VENV/bin/activate'")
        ;;
    *)
        sed -n '2,12p' "$0" | sed 's/^# \{0,1\}//'
        [ "$cmd" = help ] || exit 1
        ;;
esac
