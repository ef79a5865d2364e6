# Installs what Ampere's build and tests need, at pinned versions, and nothing that
# is already there. Sourced by scripts/run and scripts/test; safe to run again.

set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
CARGO_LEPTOS_VERSION=0.3.10
# Must equal the `wasm-bindgen` pin in Cargo.toml.
WASM_BINDGEN_VERSION=0.2.130

export PATH="$HOME/.cargo/bin:$ROOT/node_modules/.bin:$PATH"
export PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD=1

say() { printf '==> %s\n' "$*" >&2; }

setup_build() {
  if ! rustup target list --installed | grep -qx wasm32-unknown-unknown; then
    say "adding the wasm32-unknown-unknown target"
    rustup target add wasm32-unknown-unknown
  fi
  if [ "$(cargo leptos --version 2>/dev/null | awk '{print $2}')" != "$CARGO_LEPTOS_VERSION" ]; then
    say "installing cargo-leptos $CARGO_LEPTOS_VERSION (about 10 minutes)"
    cargo install cargo-leptos --version "$CARGO_LEPTOS_VERSION" --locked
  fi
  if [ "$(wasm-bindgen --version 2>/dev/null | awk '{print $2}')" != "$WASM_BINDGEN_VERSION" ]; then
    say "installing wasm-bindgen-cli $WASM_BINDGEN_VERSION"
    # Not --locked: its lock file names a crate version the registry no longer has.
    cargo install wasm-bindgen-cli --version "$WASM_BINDGEN_VERSION" --force
  fi
  setup_npm
}

# npm's binaryen (wasm-opt for release builds) and Playwright, as package-lock.json
# pins them; reinstalled only when the lock file changes.
setup_npm() {
  local stamp="$ROOT/node_modules/.ampere-lock"
  if ! cmp -s "$ROOT/package-lock.json" "$stamp" 2>/dev/null; then
    say "installing npm packages (binaryen, Playwright, axe-core)"
    (cd "$ROOT" && npm ci --no-audit --no-fund --loglevel=error)
    cp "$ROOT/package-lock.json" "$stamp"
  fi
}

# Debian packages the tests use: Chromium for the browser tests, PostgreSQL for the
# second database, zbar to read QR codes back, nginx as the load balancer in front
# of two servers.
setup_test() {
  local missing=()
  command -v chromium >/dev/null || missing+=(chromium)
  ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || missing+=(postgresql)
  command -v zbarimg >/dev/null || missing+=(zbar-tools)
  command -v nginx >/dev/null || missing+=(nginx)
  if [ ${#missing[@]} -gt 0 ]; then
    say "installing ${missing[*]}"
    local sudo=""
    [ "$(id -u)" -eq 0 ] || sudo=sudo
    $sudo apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq "${missing[@]}" >/dev/null
  fi
  setup_venv
}

# The Python venv the tests use (an independent BOLT11 decoder), as
# scripts/test-requirements.txt pins it; remade only when that file changes.
setup_venv() {
  local stamp="$ROOT/.venv/.ampere-requirements"
  if ! cmp -s "$ROOT/scripts/test-requirements.txt" "$stamp" 2>/dev/null; then
    say "making the test venv (.venv)"
    python3 -m venv "$ROOT/.venv"
    "$ROOT/.venv/bin/pip" install -q --disable-pip-version-check -r "$ROOT/scripts/test-requirements.txt"
    cp "$ROOT/scripts/test-requirements.txt" "$stamp"
  fi
}

# What the release build reads (besides the toolchain): the sources and assets of
# the crates it compiles, the workspace and lock files, cargo's configuration, and
# what writes the compressed bundle (wasm-opt comes from package-lock.json).
BUILD_INPUTS=(app frontend server engine style public Cargo.toml Cargo.lock .cargo
              package-lock.json scripts/precompress.mjs)
# Written after a successful build: the fingerprint of what it read and wrote.
BUILD_STAMP="$ROOT/target/.ampere-release-build"

# Prints the fingerprint of the release build as it would be now: a hash of the
# content of every input file git tracks or would track (untracked, not ignored),
# of the toolchain and build settings, then each output's size and time. Fails
# when an output is missing or git cannot list the inputs.
release_build_fingerprint() {
  (
    cd "$ROOT"
    git rev-parse --git-dir >/dev/null 2>&1 || return 1
    local files
    files="$(git ls-files -z --cached --others --exclude-standard -- "${BUILD_INPUTS[@]}" \
               | sort -zu | tr '\0' '\n')" || return 1
    {
      # A file git still lists but that is gone (deleted, not yet committed)
      # counts as missing.
      while IFS= read -r file; do
        if [ -f "$file" ]; then sha256sum -- "$file"; else echo "missing $file"; fi
      done <<<"$files"
      rustc -vV
      cargo leptos --version 2>/dev/null || echo "no cargo-leptos"
      wasm-bindgen --version 2>/dev/null || echo "no wasm-bindgen"
      env | grep -E '^(LEPTOS_|RUSTFLAGS=|CARGO_ENCODED_RUSTFLAGS=|CARGO_TARGET_DIR=)' | sort
    } | sha256sum | sed 's/ .*//; s/^/inputs /'
    # Any other build of these files (cargo test on another branch relinks the
    # server, say) changes a size or a time.
    local output
    for output in target/release/ampere target/site/pkg/ampere.wasm \
                  target/site/pkg/ampere.js target/site/pkg/ampere.css; do
      [ -f "$output" ] || return 1
    done
    stat -c 'output %n %s %Y' target/release/ampere
    find target/site -type f -printf 'output %P %s %T@\n' | LC_ALL=C sort
  )
}

# Exits 0 when the release build must run (the reason on stderr), 1 when its
# outputs are those of a build of exactly the current inputs.
release_build_needed() {
  local now
  if ! now="$(release_build_fingerprint)"; then
    say "release build needed: an output is missing (or no git to list the inputs)"
    return 0
  fi
  if [ ! -f "$BUILD_STAMP" ]; then
    say "release build needed: no build stamp yet"
    return 0
  fi
  if [ "$(head -n1 "$BUILD_STAMP")" != "$(head -n1 <<<"$now")" ]; then
    say "release build needed: the sources changed since the last build"
    return 0
  fi
  if [ "$(cat "$BUILD_STAMP")" != "$now" ]; then
    say "release build needed: the outputs changed since the last build"
    return 0
  fi
  return 1
}

build_release() {
  if ! release_build_needed; then
    say "release build up to date (nothing changed since the last one)"
    return 0
  fi
  say "building the release server and WASM bundle"
  local before
  # Taken before building: a file edited during the build makes the next run
  # build again.
  before="$(release_build_fingerprint 2>/dev/null | head -n1 || true)"
  rm -f "$BUILD_STAMP"
  # cargo-leptos' split step trips over files it did not write: the compressed
  # copies are made anew after each build.
  rm -f "$ROOT"/target/site/pkg/*.br "$ROOT"/target/site/pkg/*.gz
  # --split: pages marked lazy (LazyRoute) become WASM chunks loaded on demand.
  (cd "$ROOT" && cargo leptos build --release --split)
  node "$ROOT/scripts/precompress.mjs" "$ROOT/target/site/pkg"
  local after
  if after="$(release_build_fingerprint)" && [ -n "$before" ]; then
    { echo "$before"; tail -n +2 <<<"$after"; } >"$BUILD_STAMP"
  fi
}
