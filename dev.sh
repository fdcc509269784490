#!/usr/bin/env bash
# pushstream developer entry point. Every command sets up what it needs first
# (idempotent): Debian packages when missing, a virtualenv in .venv, a release
# build of the Rust core installed into it.
#
#   ./dev.sh serve [ARGS]   set up, then run `pushstream serve` (SQLite, no external server)
#   ./dev.sh test [PYTEST]  set up, then run lint, `cargo test` and the whole pytest suite
#   ./dev.sh lint           ruff, mypy, stubtest, rustfmt, clippy
#   ./dev.sh bench [NAME]   run the benchmarks in bench/
#   ./dev.sh fuzz [SECONDS] fuzz every target of rust/fuzz with cargo afl (default 60 s each)
#   ./dev.sh wheel [DIR]    build the release wheel (abi3, CPython >= 3.11) into DIR (default dist/)
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
    # The load balancer in front of the cluster tests' nodes (tests/clusternodes.py).
    [ -x /usr/sbin/nginx ] || command -v nginx >/dev/null || apt_install nginx
    # Headless Chromium and Debian's chromedriver for the web console's browser test
    # (tests/console; Selenium drives /usr/bin/chromedriver, nothing is downloaded).
    { command -v chromium && command -v chromedriver; } >/dev/null || apt_install chromium chromium-driver
}

# A real S3-compatible server for the object storage tests and benchmarks: s3s-fs
# from crates.io, built once into a cache outside the clone (fresh clones reuse it;
# tests/s3server.py finds it there). 0.14.1 is the newest release that builds with
# Rust 1.95 (0.15 and later need 1.96).
S3S_FS_VERSION="0.14.1"
TOOLS_DIR="$HOME/.cache/pushstream"

setup_s3() {
    local bin="$TOOLS_DIR/bin/s3s-fs"
    if [ -x "$bin" ] && "$bin" --version 2>/dev/null | grep -qF "$S3S_FS_VERSION"; then
        return 0
    fi
    log "installing s3s-fs $S3S_FS_VERSION (an S3-compatible server for the tests) into $TOOLS_DIR/bin"
    cargo install s3s-fs --version "$S3S_FS_VERSION" --locked --features binary --root "$TOOLS_DIR" --quiet
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
    setup_s3
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

FUZZ_DIR="$ROOT/rust/fuzz"

setup_fuzz() {
    # cargo-afl builds AFL++ (bundled in the crate) on install.
    if ! command -v cargo-afl >/dev/null; then
        log "installing cargo-afl (AFL++ for Rust)"
        cargo install cargo-afl --locked --quiet
    fi
    log "building the fuzz targets (cargo afl, release)"
    (cd "$FUZZ_DIR" && cargo afl build --release --features afl --quiet)
}

# Runs every fuzz target for $1 seconds from its seeds (findings in $2, kept
# across runs); fails when a target crashed or hung.
fuzz() {
    local seconds="$1" out="$2" failed=0
    setup_fuzz
    export AFL_SKIP_CPUFREQ=1 AFL_I_DONT_CARE_ABOUT_MISSING_CRASHES=1 AFL_NO_UI=1 AFL_AUTORESUME=1
    for seeds in "$FUZZ_DIR"/seeds/*/; do
        local target
        target="$(basename "$seeds")"
        mkdir -p "$out"
        # -V: stop after the time; -t: a template may run its 250 ms budget twice over.
        (cd "$FUZZ_DIR" && cargo afl fuzz -V "$seconds" -t 2000 -i "$seeds" -o "$out/$target" \
            "$CARGO_TARGET_DIR/release/$target" >"$out/$target.log" 2>&1) || true
        local stats="$out/$target/default/fuzzer_stats"
        [ -f "$stats" ] || { echo "fuzz target $target did not run (see $out/$target.log)" >&2; failed=1; continue; }
        local execs crashes hangs
        execs="$(awk '/^execs_done/ {print $3}' "$stats")"
        crashes="$(awk '/^saved_crashes/ {print $3}' "$stats")"
        hangs="$(awk '/^saved_hangs/ {print $3}' "$stats")"
        printf '  %-9s %10s executions, %s crashes, %s hangs\n' "$target" "$execs" "$crashes" "$hangs" >&2
        if [ "$crashes" != 0 ] || [ "$hangs" != 0 ]; then
            echo "fuzz target $target found crashes or hangs: $out/$target/default/{crashes,hangs}" >&2
            failed=1
        fi
    done
    return "$failed"
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
        log "fuzzing: every target of rust/fuzz for 8 s"
        fuzz 8 "$(mktemp -d)"
        log "pytest"
        exec "$PY" -m pytest "$@"
        ;;
    lint)
        setup
        lint
        ;;
    fuzz)
        setup_system
        fuzz "${1:-60}" "$CARGO_TARGET_DIR/fuzz-findings"
        ;;
    bench)
        setup
        exec "$PY" bench/run.py "$@"
        ;;
    wheel)
        setup
        log "building the wheel into ${1:-dist}"
        "$VENV/bin/maturin" build --release --quiet --out "${1:-dist}"
        ls -1 "${1:-dist}"/pushstream-*.whl
        ;;
    shell)
        setup
        exec bash --rcfile <(echo "source '$VENV/bin/activate'")
        ;;
    *)
        sed -n '2,13p' "$0" | sed 's/^# \{0,1\}//'
        [ "$cmd" = help ] || exit 1
        ;;
esac
