# shellcheck shell=bash
# Sourced by scripts/run and scripts/test: everything a fresh machine needs, and nothing twice.
#  - the Debian packages listed in scripts/debian-packages.txt (installed when run as root,
#    otherwise named so that an administrator can install them);
#  - uv (pinned), in .cache/uv-bootstrap when it is not on PATH;
#  - the virtual environment .venv with the locked dependencies (uv.lock), offline from the lock,
#    and the bytecode of those and of src/ compiled ahead.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
UV_VERSION="0.13.9"
export UV_PYTHON_DOWNLOADS=never   # use the machine's Python (>= 3.11), never download one
export UV_PROJECT_ENVIRONMENT="$ROOT/.venv"

say() { printf '\033[1m==> %s\033[0m\n' "$*" >&2; }

debian_packages() {
    local wanted=() missing=()
    mapfile -t wanted < <(sed -e 's/#.*//' -e '/^[[:space:]]*$/d' "$ROOT/scripts/debian-packages.txt" | awk '{print $1}')
    ((${#wanted[@]})) || return 0
    for package in "${wanted[@]}"; do
        dpkg-query -W -f='${Status}' "$package" 2>/dev/null | grep -q "install ok installed" || missing+=("$package")
    done
    ((${#missing[@]})) || return 0
    if [[ $(id -u) -eq 0 ]] && command -v apt-get >/dev/null; then
        say "installing Debian packages: ${missing[*]}"
        export DEBIAN_FRONTEND=noninteractive
        apt-get update -qq
        apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
    else
        say "missing Debian packages (install them as root): apt-get install ${missing[*]}"
        return 1
    fi
}

find_uv() {
    if command -v uv >/dev/null && [[ $(uv --version | awk '{print $2}') == "$UV_VERSION" ]]; then
        UV=(uv)
        return
    fi
    local venv="$ROOT/.cache/uv-bootstrap"
    if [[ ! -x $venv/bin/uv ]] || [[ $("$venv/bin/uv" --version | awk '{print $2}') != "$UV_VERSION" ]]; then
        say "installing uv $UV_VERSION into $venv"
        python3 -m venv "$venv"
        "$venv/bin/python" -m pip install --quiet --disable-pip-version-check "uv==$UV_VERSION"
    fi
    UV=("$venv/bin/uv")
}

python_environment() {
    say "syncing .venv with uv.lock"
    # Bytecode compiled once here: every `plantwarden` process (the demo's, the tests' CLI runs)
    # then loads .pyc files instead of compiling ~600 modules from source, which took 2.5 of the
    # 4 s a short command spent where Python may not write bytecode (PYTHONDONTWRITEBYTECODE).
    "${UV[@]}" sync --frozen --quiet --compile-bytecode --project "$ROOT"
    "$ROOT/.venv/bin/python" -m compileall -q -j 0 "$ROOT/src" >/dev/null
}

bootstrap() {
    debian_packages
    find_uv
    python_environment
    export PATH="$ROOT/.venv/bin:$PATH"
}
