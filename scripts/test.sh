#!/usr/bin/env bash
# The whole test suite (unit + CLI integration tests), as README "Quick start" command 2 and CI run it.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
# shellcheck source=env.sh
source "$root/scripts/env.sh"
cd "$root"
cargo build --release --quiet --bin convtrain
cargo test --release -- --test-threads 2
