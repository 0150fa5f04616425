#!/usr/bin/env bash
# Installs everything smart-station needs on a fresh Debian machine: Java, Maven, kcat and
# Chromium (for the browser test of the night's picture) from apt (when missing and we are root),
# the Python package into .venv (pinned by requirements.lock), and the Kafka broker's jars into
# Maven's cache. Safe to re-run.
set -euo pipefail
cd "$(dirname "$0")"

missing=()
command -v java >/dev/null || missing+=(openjdk-17-jre-headless)
command -v mvn >/dev/null || missing+=(maven)
command -v kcat >/dev/null || missing+=(kcat)
command -v chromium >/dev/null || missing+=(chromium)
if ((${#missing[@]})); then
  if [ "$(id -u)" -ne 0 ]; then
    echo "setup: please install: ${missing[*]} (apt-get), then re-run" >&2
    exit 1
  fi
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq "${missing[@]}" >/dev/null
fi

PYTHON="${PYTHON:-python3.11}"
command -v "$PYTHON" >/dev/null || PYTHON=python3
[ -x .venv/bin/python ] || "$PYTHON" -m venv .venv
.venv/bin/python -m pip install -q --disable-pip-version-check --upgrade pip==25.3
.venv/bin/python -m pip install -q --disable-pip-version-check -c requirements.lock -e ".[dev]"
mvn -q -B -f infra/kafka/pom.xml dependency:resolve >/dev/null
echo "setup: smart-station installed in .venv"
