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

build_release() {
  say "building the release server and WASM bundle"
  # cargo-leptos' split step trips over files it did not write: the compressed
  # copies are made anew after each build.
  rm -f "$ROOT"/target/site/pkg/*.br "$ROOT"/target/site/pkg/*.gz
  # --split: pages marked lazy (LazyRoute) become WASM chunks loaded on demand.
  (cd "$ROOT" && cargo leptos build --release --split)
  node "$ROOT/scripts/precompress.mjs" "$ROOT/target/site/pkg"
}
