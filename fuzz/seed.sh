#!/usr/bin/env bash
# Writes small seed corpora for the fuzz targets into fuzz/corpus/<target>/ (not committed):
# slices of the repository's rules files, and the head of Microsoft's catalog CSV.
#   fuzz/seed.sh [CATALOG_CSV [EXCLUSIVE_JSON]]
# Byte 0xFF separates the parts of one input (see tests/support/fuzz_invariants.rs).
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(dirname "$here")
csv=${1:-$root/../shared/data/product-names-and-service-plan-identifiers.csv}
json=${2:-$(dirname "$csv")/mutually-exclusive-service-plans.json}
sep=$'\xff'

rules=$here/corpus/rules
mkdir -p "$rules"
scenario=$root/tests/fixtures/scenario-rules/scenario.rules
cp "$root/rules/policy.rules" "$rules/policy"
cp "$scenario" "$rules/scenario"
head -n 40 "$root/rules/catalog.rules" > "$rules/catalog-plans"
grep -n -m1 '^product ' "$root/rules/catalog.rules" | cut -d: -f1 | {
    read -r first
    sed -n "$((first - 30)),$((first + 40))p" "$root/rules/catalog.rules" > "$rules/catalog-products"
}
# Declarations in one file, the rules that use them in the next.
{ head -n 13 "$scenario"; printf '%s' "$sep"; tail -n +14 "$scenario"; } > "$rules/two-files"
{ printf '\xef\xbb\xbf'; sed 's/$/\r/' "$scenario"; } > "$rules/bom-crlf"
{ sed 's/EXCHANGE_S_STANDARD with/EXCHANGE_S_STANDRD with/; s/{ CN }/{ cn, XX }/' "$scenario"; } > "$rules/errors"

catalog=$here/corpus/catalog_csv
mkdir -p "$catalog"
head -n 2 "$csv" > "$catalog/head-2"
head -n 40 "$csv" > "$catalog/head-40"
{ head -n 1 "$csv"; sed -n '2000,2030p' "$csv"; } > "$catalog/middle"
{ head -n 60 "$csv"; printf '%s' "$sep"; cat "$json"; } > "$catalog/with-exclusive-sets"
echo "seeded $(ls "$rules" | wc -l) rules inputs and $(ls "$catalog" | wc -l) catalog inputs under $here/corpus"
