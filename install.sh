#!/usr/bin/env bash
# Installs what Callgauge needs on Debian 12 (as root) and sets up ./.venv with the project.
# Safe to run again: it only installs what is missing.
set -euo pipefail
cd "$(dirname "$0")"

# build-essential … pkg-config: pjsua2 is built from source (scripts/build_pjsua2.sh).
# kamailio-tls-modules: Kamailio's tls module, for the tests of SIP over TLS.
APT_PACKAGES=(python3 python3-venv sip-tester kamailio kamailio-tls-modules iproute2 util-linux ca-certificates chromium
  build-essential swig python3-dev libssl-dev libopus-dev uuid-dev pkg-config
  espeak-ng  # the reference speech prompts (callgauge_media.adapters.audio.prompts)
  jq curl)   # jq, curl: the shell examples of the README and docs/ (checked by tests/e2e/test_first_hour.py)

missing=()
for p in "${APT_PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if ((${#missing[@]})); then
  if [[ $(id -u) -ne 0 ]]; then
    echo "install.sh: missing Debian packages: ${missing[*]} (run as root, or: sudo apt-get install ${missing[*]})" >&2
    exit 1
  fi
  echo "install.sh: installing ${missing[*]}" >&2
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi
# Debian starts kamailio as a system service on install; Callgauge's tests start their own.
if command -v systemctl >/dev/null 2>&1 && systemctl is-active --quiet kamailio 2>/dev/null; then
  systemctl disable --now kamailio >/dev/null 2>&1 || true
fi

PY=$(command -v python3.11 || command -v python3)
if ! "$PY" -c 'import sys; sys.exit(0 if sys.version_info[:2] == (3, 11) else 1)'; then
  echo "install.sh: Python 3.11 is required (found $("$PY" --version 2>&1))" >&2
  exit 1
fi

if [[ ! -x .venv/bin/python ]]; then
  "$PY" -m venv .venv
fi
stamp=.venv/.callgauge-installed
if [[ ! -f $stamp || pyproject.toml -nt $stamp ]]; then
  .venv/bin/python -m pip install -q --disable-pip-version-check --upgrade pip setuptools wheel
  .venv/bin/python -m pip install -q --disable-pip-version-check -e '.[media,dev]'
  # The KurrentDB client: its grpcio[protobuf] requirement wants grpcio-tools==1.85.3, which is not
  # published, so the `kurrentdb` extra cannot resolve beside our grpcio pin; its real needs
  # (grpcio, grpcio-status, googleapis-common-protos) are all satisfied, hence --no-deps.
  .venv/bin/python -m pip install -q --disable-pip-version-check --no-deps 'kurrentdbclient==1.3.5' 'grpcio-status==1.85.3'
  .venv/bin/python -m pip check >/dev/null
  touch "$stamp"
fi
# pjsua2 (the media engine's SIP/RTP stack) from the pjproject source in third_party/, built once
# per machine and cached (see scripts/build_pjsua2.sh); later installs copy the cached binding.
# A venv made before the from-source build may still hold the PyPI wheel, whose files have the same names.
if .venv/bin/python -m pip show -q pjsua2-python >/dev/null 2>&1; then
  .venv/bin/python -m pip uninstall -q -y pjsua2-python
  rm -f .venv/lib/python3.11/site-packages/pjsua2.callgauge-build
fi
bash scripts/build_pjsua2.sh "$PWD/.venv/bin/python"
echo "install.sh: ready (.venv/bin/callgauge)" >&2
