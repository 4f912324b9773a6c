#!/usr/bin/env bash
# Times a PostgreSQL under nubo from Start to its first answer (first run
# with initdb, then later runs) and compares pgbench's select-only
# throughput through the allow-list listener with straight to the server.
# Needs PostgreSQL (apt-get install -y postgresql; pgbench comes with it).
set -euo pipefail
cd "$(dirname "$0")/../.."
exec go run ./bench/databases -duration "${1:-10s}" -clients 8
