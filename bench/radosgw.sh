#!/bin/sh
# A one-node Ceph cluster (one monitor, one OSD, radosgw) for the S3 benchmark,
# from Debian 12's packages, with no systemd units: every daemon runs in the
# foreground of this script's children, with its own conf, keyrings, logs and
# pid files under one directory.
#
#   bench/radosgw.sh start DIR   start (installing the packages if missing: Debian
#                                only, root); prints shell assignments:
#                                RGW_ENDPOINT, RGW_ACCESS_KEY, RGW_SECRET_KEY, RGW_DIR
#   bench/radosgw.sh stop DIR    stop every daemon started in DIR, by its pid file
#
# A failed start stops what it started and prints the tail of each daemon's log
# on stderr. Environment: RGW_PORT (default: a free port), RGW_OSD_STORE
# (bluestore on a sparse file in DIR, the default, or memstore), RGW_OSD_GIB (the
# OSD's size, default 12), RGW_NO_INSTALL=1 (never run apt-get).
set -eu

usage() {
	echo "usage: $0 start|stop DIR" >&2
	exit 2
}
[ $# -eq 2 ] || usage
cmd=$1
dir=$2

free_port() {
	python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'
}

stop() {
	# the radosgw first, the monitor last: the OSD reports to it on the way out
	for name in client.rgw.bench osd.0 mon.a; do
		pidf="$dir/run/$name.pid"
		[ -f "$pidf" ] || continue
		pid=$(cat "$pidf")
		if kill -0 "$pid" 2>/dev/null; then
			kill -TERM "$pid" 2>/dev/null || true
			i=0
			while kill -0 "$pid" 2>/dev/null && [ $i -lt 100 ]; do
				sleep 0.1
				i=$((i + 1))
			done
			kill -KILL "$pid" 2>/dev/null || true
		fi
		rm -f "$pidf"
	done
}

case $cmd in
stop)
	[ -d "$dir" ] || exit 0
	stop
	exit 0
	;;
start) ;;
*) usage ;;
esac

case ${RGW_OSD_STORE:-bluestore} in
bluestore | memstore) ;;
*)
	echo "radosgw.sh: RGW_OSD_STORE is bluestore or memstore, not '$RGW_OSD_STORE'" >&2
	exit 2
	;;
esac
case ${RGW_OSD_GIB:-12} in
'' | *[!0-9]* | 0)
	echo "radosgw.sh: RGW_OSD_GIB is a whole number of GiB, not '$RGW_OSD_GIB'" >&2
	exit 2
	;;
esac

need="ceph-mon ceph-osd radosgw radosgw-admin ceph ceph-authtool monmaptool"
missing=
for b in $need; do command -v "$b" >/dev/null 2>&1 || missing="$missing $b"; done
if [ -n "$missing" ]; then
	if [ "${RGW_NO_INSTALL:-}" = 1 ] || ! [ -f /etc/debian_version ] || [ "$(id -u)" != 0 ]; then
		echo "radosgw.sh: missing$missing (apt-get install ceph-mon ceph-osd radosgw ceph-common)" >&2
		exit 1
	fi
	echo "radosgw.sh: installing ceph-mon ceph-osd radosgw ceph-common" >&2
	DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends \
		ceph-mon ceph-osd radosgw ceph-common >&2
fi

mkdir -p "$dir"
dir=$(cd "$dir" && pwd)
if [ -e "$dir/ceph.conf" ]; then
	echo "radosgw.sh: $dir already holds a cluster; stop it and use an empty directory" >&2
	exit 1
fi
mkdir -p "$dir/run" "$dir/log" "$dir/mon.a" "$dir/osd.0" "$dir/rgw"

fail() {
	echo "radosgw.sh: $*" >&2
	for f in "$dir"/log/*.log "$dir"/log/*.out; do
		[ -s "$f" ] || continue
		echo "--- tail of $f" >&2
		tail -n 25 "$f" >&2
	done
	stop
	exit 1
}
trap 'fail "interrupted"' INT TERM

fsid=$(cat /proc/sys/kernel/random/uuid)
osd_uuid=$(cat /proc/sys/kernel/random/uuid)
mon_port=$(free_port)
rgw_port=${RGW_PORT:-$(free_port)}
store=${RGW_OSD_STORE:-bluestore}
gib=${RGW_OSD_GIB:-12}
conf="$dir/ceph.conf"
admin="$dir/admin.keyring"

cat >"$conf" <<EOF
[global]
fsid = $fsid
mon host = v1:127.0.0.1:$mon_port
public network = 127.0.0.0/8
ms bind ipv6 = false
auth cluster required = cephx
auth service required = cephx
auth client required = cephx
keyring = $dir/\$name.keyring
run dir = $dir/run
admin socket = $dir/run/\$name.asok
pid file = $dir/run/\$name.pid
log file = $dir/log/\$name.log
crash dir = $dir/crash
log to stderr = false
err to stderr = true
osd pool default size = 1
osd pool default min size = 1
osd pool default pg num = 8
osd pool default pgp num = 8
osd pool default pg autoscale mode = off
osd crush chooseleaf type = 0
mon allow pool size one = true
mon allow pool delete = true
mon warn on pool no redundancy = false
mon data avail warn = 2
mon data avail crit = 1

[mon]
mon data = $dir/\$name
mon initial members = a

[osd]
osd data = $dir/\$name
osd objectstore = $store
osd max object name len = 460
osd max object namespace len = 64
osd crush update on start = true
bluestore block create = true
bluestore block size = $((gib * 1024 * 1024 * 1024))
bluestore fsck on mount = false
memstore device bytes = $((gib * 1024 * 1024 * 1024))

[client.rgw.bench]
rgw data = $dir/rgw
rgw frontends = beast endpoint=127.0.0.1:$rgw_port
rgw dns name = 127.0.0.1
rgw enable usage log = false
EOF

# keys: the monitor's, the admin's (both in the monitor's keyring), the OSD's and
# the gateway's come from the monitor once it runs
ceph-authtool --create-keyring "$dir/mon.a.keyring" --gen-key -n mon. --cap mon 'allow *' >/dev/null
ceph-authtool --create-keyring "$admin" --gen-key -n client.admin \
	--cap mon 'allow *' --cap osd 'allow *' --cap mgr 'allow *' --cap mds 'allow *' >/dev/null
ceph-authtool "$dir/mon.a.keyring" --import-keyring "$admin" >/dev/null
cp "$admin" "$dir/client.admin.keyring"
monmaptool --create --fsid "$fsid" --addv a "[v1:127.0.0.1:$mon_port]" "$dir/monmap" >/dev/null
ceph-mon -c "$conf" --mkfs -i a --monmap "$dir/monmap" --keyring "$dir/mon.a.keyring" \
	>"$dir/log/mon.a.out" 2>&1 || fail "ceph-mon --mkfs failed"

# -f: stay in the foreground (this script's child); the pid file is the daemon's own
ceph-mon -c "$conf" -i a -f >>"$dir/log/mon.a.out" 2>&1 &
echo $! >"$dir/run/mon.a.pid"

ceph_() { timeout 60 ceph -c "$conf" -n client.admin -k "$admin" --connect-timeout 30 "$@"; }

i=0
until ceph_ mon stat >/dev/null 2>&1; do
	i=$((i + 1))
	[ $i -lt 30 ] || fail "the monitor did not answer"
	kill -0 "$(cat "$dir/run/mon.a.pid")" 2>/dev/null || fail "ceph-mon exited"
	sleep 1
done
echo "radosgw.sh: monitor up on 127.0.0.1:$mon_port" >&2

# the OSD: an id from the monitor, a key of its own, a store made by --mkfs
osd_key=$(ceph-authtool --gen-print-key)
printf '{"cephx_secret": "%s"}\n' "$osd_key" >"$dir/osd.0/new.json"
id=$(ceph_ osd new "$osd_uuid" -i "$dir/osd.0/new.json") || fail "ceph osd new failed"
[ "$id" = 0 ] || fail "the monitor gave OSD id $id, not 0"
rm -f "$dir/osd.0/new.json"
ceph-authtool --create-keyring "$dir/osd.0.keyring" --name osd.0 --add-key "$osd_key" >/dev/null
ceph-osd -c "$conf" -i 0 --mkfs --osd-uuid "$osd_uuid" >"$dir/log/osd.0.out" 2>&1 ||
	fail "ceph-osd --mkfs failed"
ceph-osd -c "$conf" -i 0 -f >>"$dir/log/osd.0.out" 2>&1 &
echo $! >"$dir/run/osd.0.pid"

i=0
until ceph_ osd dump 2>/dev/null | grep -q '^osd\.0 up'; do
	i=$((i + 1))
	[ $i -lt 90 ] || fail "osd.0 did not come up"
	kill -0 "$(cat "$dir/run/osd.0.pid")" 2>/dev/null || fail "ceph-osd exited"
	sleep 1
done
echo "radosgw.sh: osd.0 up ($store, $gib GiB)" >&2

# the gateway: a key with the caps radosgw needs to create its pools
ceph_ auth get-or-create client.rgw.bench mon 'allow rw' osd 'allow rwx' \
	>"$dir/client.rgw.bench.keyring" || fail "no key for the gateway"
radosgw -c "$conf" -n client.rgw.bench -f >"$dir/log/client.rgw.bench.out" 2>&1 &
echo $! >"$dir/run/client.rgw.bench.pid"

i=0
until python3 -c "import socket; socket.create_connection(('127.0.0.1', $rgw_port), 1).close()" 2>/dev/null; do
	i=$((i + 1))
	[ $i -lt 120 ] || fail "radosgw did not listen on 127.0.0.1:$rgw_port"
	kill -0 "$(cat "$dir/run/client.rgw.bench.pid")" 2>/dev/null || fail "radosgw exited"
	sleep 1
done

access=$(python3 -c 'import secrets; print("RGW" + secrets.token_hex(8).upper())')
secret=$(python3 -c 'import secrets; print(secrets.token_urlsafe(30))')
timeout 120 radosgw-admin -c "$conf" -n client.admin -k "$admin" user create --uid=bench \
	--display-name=bench --access-key="$access" --secret="$secret" >"$dir/log/user.out" 2>&1 ||
	fail "radosgw-admin user create failed"
trap - INT TERM
echo "radosgw.sh: radosgw up on http://127.0.0.1:$rgw_port" >&2
echo "RGW_ENDPOINT=http://127.0.0.1:$rgw_port"
echo "RGW_ACCESS_KEY=$access"
echo "RGW_SECRET_KEY=$secret"
echo "RGW_DIR=$dir"
