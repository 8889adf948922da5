#!/usr/bin/env bash
# Builds the clean-text corpus of the degeneration guard's false-positive test into DIR: text
# that repeats itself the way ordinary writing does and must never be flagged.
#   - the King James Bible (Debian's bible-kjv), one file per book, verse numbers removed so
#     that refrains run on as prose: Psalm 136's "for his mercy endureth for ever" after every
#     line, Numbers 7's twelve near-identical offerings, the genealogies;
#   - the same Bible as CSV (book,chapter,verse,text) and as JSON lines: data with repeated
#     columns and keys;
#   - Debian's fortunes (quotations, songs and poems with refrains, ASCII art), one file each;
#   - source code: loom's own sources and tests, and C++ standard library headers;
#   - JSON: real-world JSON schemas (MaskBench's subset in tests/data, pretty-printed) and
#     npm's lockfile.
# Usage: tests/guard/make_clean_corpus.sh DIR   (needs bible-kjv and fortunes: install-deps)
set -euo pipefail
out=${1:?usage: make_clean_corpus.sh DIR}
root=$(cd "$(dirname "$0")/../.." && pwd)
mkdir -p "$out"/{bible,data,fortunes,code,json}
command -v bible >/dev/null || { echo "make_clean_corpus: bible-kjv is not installed" >&2; exit 1; }

all=$(mktemp)
trap 'rm -f "$all"' EXIT
bible -f "Gen1:1-Rev22:21" >"$all"
# Lines look like "Psa136:1 O give thanks ...": one document per book, the verses run on.
awk -v dir="$out/bible" '{ ref = $1; match(ref, /^[0-9]?[A-Za-z]+/); book = substr(ref, 1, RLENGTH)
  if (book != cur) { if (cur != "") { print "" > file; close(file) } cur = book; file = dir "/" book ".txt" }
  $1 = ""; sub(/^ /, ""); printf "%s ", $0 > file } END { print "" > file }' "$all"
awk 'BEGIN { print "book,chapter,verse,text" } NR > 8000 { exit } { ref = $1; $1 = ""; sub(/^ /, ""); gsub(/"/, "\"\""); match(ref, /^[0-9]?[A-Za-z]+/); book = substr(ref, 1, RLENGTH); split(substr(ref, RLENGTH + 1), cv, ":"); printf "%s,%s,%s,\"%s\"\n", book, cv[1], cv[2], $0 }' "$all" | split -l 2000 - "$out/data/bible-csv-"
awk 'NR > 8000 { exit } { ref = $1; $1 = ""; sub(/^ /, ""); gsub(/\\/, "\\\\"); gsub(/"/, "\\\""); printf "{\"ref\": \"%s\", \"text\": \"%s\"}\n", ref, $0 }' "$all" | split -l 2000 - "$out/data/bible-jsonl-"

for f in /usr/share/games/fortunes/*; do
  case $f in *.dat | *.u8) continue ;; esac
  [[ -f $f ]] && cp "$f" "$out/fortunes/$(basename "$f").txt"
done

n=0
while IFS= read -r f; do
  n=$((n + 1))
  cp "$f" "$out/code/$n-$(basename "$f")"
done < <(cd "$root" && find src tests -path tests/data -prune -o \( -name '*.cpp' -o -name '*.h' -o -name '*.mjs' -o -name '*.sh' \) -print | sort | sed "s|^|$root/|")
for f in algorithm vector map string regex chrono bits/stl_algo.h bits/basic_string.h bits/hashtable.h; do
  p=$(ls /usr/include/c++/*/"$f" 2>/dev/null | head -1)
  [[ -n $p ]] && cp "$p" "$out/code/libstdcxx-${f//\//-}.h"
done

# The schemas only: MaskBench's test instances include machine-made strings repeated on
# purpose to break a maxLength, which are degenerate text.
xz -dc "$root/tests/data/maskbench/subset.jsonl.xz" |
  node -e 'let s = ""; process.stdin.on("data", (d) => (s += d)).on("end", () => {
    for (const line of s.split("\n")) if (line) console.log(JSON.stringify(JSON.parse(line).schema, null, 2)); })' |
  split -l 3000 - "$out/json/maskbench-schemas-"
[[ -f $root/tests/data/npm/package-lock.json ]] && cp "$root/tests/data/npm/package-lock.json" "$out/json/"
du -sb "$out" | awk '{ printf "clean corpus: %.1f MB\n", $1 / 1e6 }'
