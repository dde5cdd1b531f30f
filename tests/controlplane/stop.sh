#!/usr/bin/env bash
# Stop the control plane started by start.sh. Usage: tests/controlplane/stop.sh [[--state-dir] DIR]
# (default state dir: $CP_STATE_DIR or $PWD/.controlplane)
exec "$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)/start.sh" --stop "$@"
