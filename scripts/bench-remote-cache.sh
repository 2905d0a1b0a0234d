#!/usr/bin/env bash
# Times `build all` from source (work dir A) against `build all` served by a remote cache
# (work dir B, empty local caches, wheels from a pypiserver that A published to). Both are
# measured by the integration test, which builds the fixture set; this runs it and prints the
# line it reports.
set -euo pipefail
cd "$(dirname "$0")/.."
cargo test --test it publish_to_pypiserver_then_build_and_install_from_it_elsewhere \
    -- --nocapture 2>&1 | grep -E '^timing:|test result'
