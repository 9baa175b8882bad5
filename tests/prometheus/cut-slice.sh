#!/usr/bin/env bash
# Cuts the committed slice tests/data/node-exporter-10min.tsv.zst out of the
# full 24-minute capture: every series, samples with 06:59:30 <= t < 07:09:30
# UTC (2026-11-30). The window holds the moment new series appear
# (07:00:18.5: the query_range handler's histogram, the engine's summary) and
# the moment the summary's series end (07:08:30.5), so lookback and series
# churn are exercised. Usage: tests/prometheus/cut-slice.sh [FULL.tsv.zst]
set -euo pipefail
cd "$(dirname "$0")/../.."
full=${1:-../shared/data/node-exporter-24min.tsv.zst}
out=tests/data/node-exporter-10min.tsv.zst
zstd -dc "$full" \
  | awk -F'\t' '$2 >= 1796021970000 && $2 < 1796022570000' \
  | zstd -19 -q -f -o "$out"
echo "wrote $out ($(stat -c %s "$out") bytes)"
