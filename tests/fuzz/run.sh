#!/bin/sh
# Run one libFuzzer harness for SECONDS on a scratch copy of its corpus, so
# the committed seeds stay as they are; new inputs land in the scratch dir.
# Usage: run.sh FUZZER CORPUS_DIR SECONDS [OUT_DIR]
# A crash leaves crash-* (the input) in OUT_DIR (default: a temp dir, kept).
set -eu
bin=$1 corpus=$2 secs=$3
out=${4:-}
scratch=$(mktemp -d "${TMPDIR:-/tmp}/roost-fuzz.XXXXXX")
[ -n "$out" ] || out=$scratch
mkdir -p "$out"
cp -r "$corpus"/. "$scratch/" 2>/dev/null || true
# -rss_limit_mb: well under the machine's memory; -timeout: a slow input is a bug.
status=0
rcfile=$(mktemp)
{
	ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1} \
	UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1} \
		"$bin" -max_total_time="$secs" -timeout=10 -rss_limit_mb=2048 -print_final_stats=1 \
		-artifact_prefix="$out/" "$scratch" 2>&1 || rc=$?
	echo "${rc:-0}" >"$rcfile"
} | grep -v '^#[0-9].*\(NEW\|REDUCE\|pulse\)' || true
[ "$(cat "$rcfile")" = 0 ] || status=1
rm -f "$rcfile"
# A finding leaves an artifact: name it.
for f in "$out"/crash-* "$out"/leak-* "$out"/timeout-* "$out"/oom-*; do
	if [ -e "$f" ]; then
		echo "run.sh: $(basename "$bin") found a failing input: $f"
		status=1
	fi
done
# Keep the scratch dir only when it holds the finding.
[ "$status" -ne 0 ] && [ "$out" = "$scratch" ] || rm -rf "$scratch"
exit "$status"
