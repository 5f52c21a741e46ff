#!/usr/bin/env bash
# The main job: plan and apply examples/basic against the local Docker
# engine, then upgrade it, then show that nothing is left to do.
#
# No image registry is reachable from the machines this project is built
# on, so by default the demo builds GPUStack emulator images locally under
# the real tags (gpustack/gpustack:v0.5.1-cpu …). Set REAL_IMAGES=1 to skip
# that and let apply pull the real images.
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="$PATH:/usr/local/go/bin"
bin="$PWD/bin/gpustack-deploy"
mkdir -p bin
go build -o "$bin" ./cmd/gpustack-deploy

if [ "${REAL_IMAGES:-0}" != 1 ]; then
  go run ./emulator/buildimages gpustack/gpustack:v0.5.1-cpu gpustack/gpustack:v0.6.0-cpu
fi

cd examples/basic
if curl -sf --unix-socket /var/run/docker.sock http://localhost/containers/gpustack-demo/json >/dev/null 2>&1; then
  echo "The demo ran before on this engine. Remove it first (this deletes the demo's data):" >&2
  echo "  docker rm -f gpustack-demo && docker volume rm gpustack-demo-data gpustack-demo-cache && rm -rf examples/basic/backups examples/basic/.gpustack-deploy" >&2
  exit 1
fi
echo "== plan"
"$bin" plan
echo "== apply v0.5.1"
"$bin" apply --auto-approve
echo "== plan (nothing to do)"
"$bin" plan --detailed-exitcode
echo "== upgrade to v0.6.0"
"$bin" apply --auto-approve --var version=v0.6.0
echo "== status and backups"
"$bin" status --var version=v0.6.0
"$bin" backups
echo
echo "Remove the demo with: docker rm -f gpustack-demo && docker volume rm gpustack-demo-data gpustack-demo-cache"
