#!/usr/bin/env bash
# SPDX-License-Identifier: BSD-3-Clause
# Draws bench/echo/run.sh's JSON lines as requests/s against connections,
# one line per server, one panel per message size (gnuplot and jq, from
# Debian).
#
#   bash bench/echo/plot.sh [IN] [OUT.svg]
set -euo pipefail
cd "$(dirname "$0")/../.."
in=${1:-bench/echo/results.jsonl}
png=${2:-bench/echo/echo_throughput.svg}
for tool in gnuplot jq; do
  command -v $tool >/dev/null || {
    echo "needs $tool: apt-get install ${tool/gnuplot/gnuplot-nox}" >&2
    exit 1
  }
done
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
mapfile -t servers < <(jq -r .server "$in" | awk '!seen[$0]++')
plots=()
for size in 64 16384; do
  cmd=""
  for s in "${servers[@]}"; do
    f="$tmp/$s-$size.dat"
    jq -r --arg s "$s" --argjson z "$size" \
      'select(.server == $s and .size == $z) | "\(.conns) \(.rps)"' "$in" >"$f"
    cmd+="${cmd:+, }'$f' using 1:2 with linespoints title '$s'"
  done
  plots+=("$cmd")
done
gnuplot <<GP
set terminal svg size 900,400 dynamic font ",11" noenhanced
set output '$png'
set multiplot layout 1,2 title "Echo throughput (one server thread, one client thread)"
set logscale x
set xlabel "connections"
set ylabel "requests/s"
set key top left
set grid
set xtics (1, 10, 100, 1000)
set title "64 B messages"
plot ${plots[0]}
set title "16 KiB messages"
plot ${plots[1]}
unset multiplot
GP
echo "wrote $png"
