#!/usr/bin/env bash
# Benchmark of the binary itself (DESIGN §11): stripped size (<= 8 MiB), peak RSS of a full run
# (<= 20 MiB, GNU time -v) and `--dry-run` wall time on the reference layout (<= 20 ms).
# Not a timed test: it prints the figures and one `ratio:` line per budget (figure / budget,
# <= 1.00 is within budget).
#
# The full run is `provision all` on this host under a temporary --root, every stage doing real
# work: disks provisions a loop device (GPT, two ext4 filesystems, swap, a tmpfs, ensure_dirs —
# no LVM: the host has none; the LVM path is measured in the VM benches), keys fetches a bundle
# from a local HTTP server (sha256-verified) and installs an ssh-ed25519 host key, secrets
# decrypts N secrets (default 200) encrypted to that key with `age -R`.
# The dry run plans layouts/ganeti-node.yaml with homelab.provision_disks=true, against the
# provisioned node's snapshot (benches/ganeti-node.state.json, taken from the VM guest by
# `provision status --output json`) and against this host's own disks.
#
# Needs root (loop device, mounts), losetup, age, ssh-keygen, python3, /usr/bin/time.
#   usage: benches/binary.sh   (env: N=200 REPEAT=50 PROVISION_BIN=…)
set -euo pipefail

N=${N:-200}
REPEAT=${REPEAT:-50}
here=$(cd "$(dirname "$0")/.." && pwd)
target=${CARGO_TARGET_DIR:-$here/target}
bin=${PROVISION_BIN:-$target/x86_64-unknown-linux-gnu/release/provision}
[ -x "$bin" ] || { echo "no release binary at $bin: cargo build --release first" >&2; exit 1; }
[ "$(id -u)" = 0 ] || { echo "must run as root (loop device, mounts)" >&2; exit 1; }
for t in age ssh-keygen losetup python3 /usr/bin/time; do
    command -v "$t" >/dev/null || { echo "$t not found" >&2; exit 1; }
done

work=$(mktemp -d /tmp/provision-binbench.XXXXXX)
loopdev= httpd=
cleanup() {
    [ -n "$httpd" ] && kill "$httpd" 2>/dev/null
    grep -o " $work[^ ]*" /proc/self/mounts | sort -r | while read -r m; do umount "$m" 2>/dev/null; done
    [ -n "$loopdev" ] && { swapoff "${loopdev}p2" 2>/dev/null; losetup -d "$loopdev"; }
    rm -rf "$work"
}
trap cleanup EXIT
awk_ratio() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.2f", a / b }'; }

echo "provision binary: $bin, built $(date -r "$bin" '+%F %T')"
echo

# 1. Size (the release profile strips; strip(1) again to be sure nothing is left).
size=$(stat -c %s "$bin")
strip -o "$work/stripped" "$bin"
ssize=$(stat -c %s "$work/stripped")
linkage=$(file -b "$bin" | grep -o 'static[-a-z]* linked\|dynamically linked' || echo unknown)
echo "size: $size bytes as built, $ssize bytes after strip(1) ($(awk -v s="$ssize" 'BEGIN { printf "%.2f", s / 1048576 }') MiB, $linkage)"

# 2. Peak RSS of a full run.
root=$work/root conf=$work/conf
mkdir -p "$root/etc/ssh" "$root/root/.ssh" "$conf/secrets" "$work/www/keys" "$work/keys"
printf 'root:x:0:0:root:/root:/bin/sh\nsvc:x:4242:4343::/:/bin/false\n' >"$root/etc/passwd"
printf 'root:x:0:\nsvc:x:4343:\n' >"$root/etc/group"
ssh-keygen -q -t ed25519 -N "" -C host -f "$work/keys/host_privkey"
ssh-keygen -q -t ed25519 -N "" -C root -f "$work/keys/root_privkey"
tar -C "$work/keys" -czf "$work/www/keys/node1.tar.gz" root_privkey host_privkey
sha=$(sha256sum "$work/www/keys/node1.tar.gz" | cut -d' ' -f1)
truncate -s 256M "$work/disk.img"
loopdev=$(losetup -P --show -f "$work/disk.img")
port=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
python3 -m http.server --bind 127.0.0.1 --directory "$work/www" "$port" >/dev/null 2>&1 &
httpd=$!
cat >"$conf/layout.yaml" <<EOT
disk:
  data:
    type: disk
    device: $loopdev
    content:
      type: gpt
      partitions:
        main: { size: 96M, content: { type: filesystem, format: ext4, mountpoint: /data } }
        swap: { size: 16M, content: { type: swap } }
        rest: { size: 100%, content: { type: filesystem, format: ext4, mountpoint: /data/rest } }
nodev:
  /scratch: { fsType: tmpfs, mountOptions: [size=4M] }
ensure_dirs:
  - { path: /data/svc, owner: svc, group: svc, mode: "0750" }
EOT
{
    echo "disks: { layout: layout.yaml }"
    echo "keys:"
    echo "  url: http://127.0.0.1:$port/keys/{hostname}.tar.gz"
    echo "  sha256: $sha"
    echo "  members:"
    echo "    root_privkey: { path: /root/.ssh/id_ed25519 }"
    echo "    host_privkey: { path: /etc/ssh/ssh_host_ed25519_key }"
    echo "secrets:"
    echo "  identity_paths: [/etc/ssh/ssh_host_ed25519_key]"
    echo "  secrets:"
} >"$conf/config.yaml"
for i in $(seq -w 1 "$N"); do
    head -c 4096 /dev/urandom | age -R "$work/keys/host_privkey.pub" -o "$conf/secrets/s$i.age"
    echo "    - {name: s$i, file: secrets/s$i.age}" >>"$conf/config.yaml"
done
for _ in 1 2 3 4 5; do curl -fsS -o /dev/null "http://127.0.0.1:$port/keys/node1.tar.gz" 2>/dev/null && break; sleep 0.2; done
/usr/bin/time -v -o "$work/time.txt" "$bin" --root "$root" --config "$conf/config.yaml" \
    --cmdline "homelab.provision_disks=true homelab.hostname=node1 homelab.wipe_foreign=true" all \
    >"$work/run.log" 2>&1 || { cat "$work/run.log" >&2; cat "$work/time.txt" >&2; exit 1; }
[ "$(ls "$root$(readlink "$root/run/agenix")" | wc -l)" = "$N" ] || { echo "secrets missing" >&2; cat "$work/run.log" >&2; exit 1; }
findmnt "$root/data/rest" >/dev/null || { echo "disks not mounted" >&2; exit 1; }
rss_full=$(awk -F': ' '/Maximum resident/ { print $2 }' "$work/time.txt")
wall_full=$(awk -F': ' '/Elapsed \(wall/ { print $2 }' "$work/time.txt")
echo "full run (provision all: disks on a loop device, keys over HTTP, $N ssh-ed25519 secrets): peak RSS $rss_full KiB, wall $wall_full"
/usr/bin/time -v -o "$work/time2.txt" "$bin" --root "$root" --config "$conf/config.yaml" \
    --cmdline "homelab.hostname=node1" all >"$work/run2.log" 2>&1 || { cat "$work/run2.log" >&2; exit 1; }
rss_boot=$(awk -F': ' '/Maximum resident/ { print $2 }' "$work/time2.txt")
echo "every-boot run (provision all, no flag: mount-only, keys, secrets): peak RSS $rss_boot KiB"

# 3. --dry-run wall time on the reference layout (median of REPEAT runs, process start to exit).
median_ms() {  # median_ms ARGS… — runs the binary REPEAT times
    python3 - "$REPEAT" "$@" <<'PY'
import subprocess, sys, time, statistics
n, argv = int(sys.argv[1]), sys.argv[2:]
ts = []
for _ in range(n):
    t0 = time.perf_counter()
    r = subprocess.run(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    ts.append((time.perf_counter() - t0) * 1000)
    if r.returncode not in (0, 4, 9):
        sys.exit(f"exit {r.returncode}: {argv}")
print(f"{statistics.median(ts):.1f} {min(ts):.1f} {max(ts):.1f}")
PY
}
read -r dry_state dry_state_min dry_state_max < <(median_ms "$bin" --dry-run --layout "$here/layouts/ganeti-node.yaml" \
    --state "$here/benches/ganeti-node.state.json" --cmdline homelab.provision_disks=true disks)
read -r dry_live dry_live_min dry_live_max < <(median_ms "$bin" --dry-run --layout "$here/layouts/ganeti-node.yaml" \
    --cmdline homelab.provision_disks=true disks)
echo "--dry-run, ganeti-node.yaml + provision flag, against the node's snapshot: median $dry_state ms (min $dry_state_min, max $dry_state_max, $REPEAT runs)"
echo "--dry-run, ganeti-node.yaml + provision flag, against this host's disks:   median $dry_live ms (min $dry_live_min, max $dry_live_max; $(command -v lvm >/dev/null && echo "with" || echo "no") lvm here)"
echo
echo "ratio: size $(awk_ratio "$ssize" $((8 << 20))) (stripped size / 8 MiB)"
echo "ratio: rss $(awk_ratio "$rss_full" $((20 << 10))) (peak RSS of the full run / 20 MiB)"
echo "ratio: dry-run $(awk_ratio "$dry_state" 20) (median --dry-run wall time / 20 ms)"
