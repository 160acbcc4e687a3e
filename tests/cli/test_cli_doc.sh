#!/usr/bin/env bash
# docs/cli.md is the tool's --help output (tools/gen_cli_doc.sh); a flag added or changed without
# regenerating it fails here. Every command answers --help with exit status 0.
cd "$(dirname "$0")/../.." && . tests/cli/lib.sh
for c in $($DDM --help | awk '/^commands:/ {on = 1; next} on && NF {print $1}'); do
    expect_ok "ddm $c --help" $DDM $c --help
done
expect_ok "regenerate" env DDM=$DDM bash tools/gen_cli_doc.sh $TMP/cli.md
if diff -u docs/cli.md $TMP/cli.md > $TMP/diff; then ok
else bad "docs/cli.md is stale: run 'bash tools/gen_cli_doc.sh' ($(grep -c '^[-+][^-+]' $TMP/diff) lines differ)"; fi
finish
