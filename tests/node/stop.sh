#!/usr/bin/env bash
# Stop the cluster of start.sh and remove all it put on the machine.
# Usage: tests/node/stop.sh [[--state-dir] DIR]   (default: $CLUSTER_STATE_DIR or $PWD/.cluster)
exec "$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)/start.sh" --stop "$@"
