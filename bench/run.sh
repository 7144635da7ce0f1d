#!/bin/sh
# Run every benchmark against its peers; figures go to docs/benchmarks.md.
set -eu
ROOST=${1:-build/roost}
BUILD=$(dirname "$ROOST")
echo "== chunking (docs/chunking.md)"
nice "$BUILD/roost-chunkbench" --size 1024
echo "== transfer, also through the S3 store on s3rver and radosgw (docs/benchmarks.md)"
python3 "$(dirname "$0")/transfer.py" "$ROOST"
echo "== hub: feed latency, metadata throughput, idle subscribers (docs/benchmarks.md)"
python3 "$(dirname "$0")/hub.py" "$ROOST"
echo "== sync between hosts, roost and Syncthing (docs/benchmarks.md)"
python3 "$(dirname "$0")/sync.py" "$ROOST"
echo "== WebDAV against rclone serve webdav (docs/benchmarks.md)"
python3 "$(dirname "$0")/dav.py" "$ROOST"
echo "== relay against direct and nginx (docs/relay.md)"
python3 "$(dirname "$0")/relay.py" "$ROOST"
