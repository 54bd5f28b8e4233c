#!/bin/sh
# tests/units.sh — static checks of the systemd units in units/.
#
# Runs `systemd-analyze verify` on every unit in a throw-away root (--root), which holds a stub
# /usr/bin/provision (verify refuses units whose ExecStart is missing), a copy of the host's
# system units, and stub units for the dependencies this host may not have (a CI container has
# no udev and no sshd). Then a negative control: a unit with a missing executable must fail, so
# a silent verify cannot pass this test by accident. The ordering itself is proven in a real
# boot by the VM scenario `boot-smoke` (vm-tests/).
#
# Usage: tests/units.sh        (exit 0 = all good; needs systemd-analyze, i.e. systemd ≥ 250)
set -eu

here=$(cd "$(dirname "$0")/.." && pwd)
units=$here/units
command -v systemd-analyze >/dev/null || { echo "units.sh: systemd-analyze not found" >&2; exit 1; }

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
root=$tmp/root
mkdir -p "$root/usr/bin" "$root/etc/systemd/system" "$root/usr/lib/systemd/system"
printf '#!/bin/sh\nexit 0\n' >"$root/usr/bin/provision"
cp /bin/true "$root/usr/bin/true"
chmod 0755 "$root/usr/bin/provision" "$root/usr/bin/true"
for d in /usr/lib/systemd/system /lib/systemd/system; do
    [ -d "$d" ] && cp -a "$d/." "$root/usr/lib/systemd/system/" 2>/dev/null || true
done
# Units ours depend on that a build host may lack.
for u in systemd-udevd.service systemd-udev-trigger.service ssh.service sshd.service \
         sshd-keygen.service systemd-user-sessions.service; do
    [ -e "$root/usr/lib/systemd/system/$u" ] && continue
    # udev's units are early-boot units (no default dependencies), like the real ones.
    case $u in systemd-udev*) dd='DefaultDependencies=no\n' ;; *) dd='' ;; esac
    printf "[Unit]\nDescription=stub for units.sh\n${dd}[Service]\nType=oneshot\nExecStart=/usr/bin/true\n" \
        >"$root/usr/lib/systemd/system/$u"
done

fail=0
verify() { # verify FILE… : prints systemd-analyze's complaints, returns non-zero on any
    out=$(systemd-analyze verify --man=no --root="$root" "$@" 2>&1) && rc=0 || rc=$?
    # Complaints about the host's own units are not ours; anything naming provision is.
    ours=$(printf '%s\n' "$out" | grep -i 'provision' || true)
    if [ "$rc" -ne 0 ] || [ -n "$ours" ]; then
        printf '%s\n' "$out"
        return 1
    fi
}

n=0
for f in "$units"/*.service "$units"/*.target; do
    cp "$f" "$root/etc/systemd/system/"
    n=$((n + 1))
done
if verify "$root"/etc/systemd/system/provision-*; then
    echo "ok: systemd-analyze verify: $n units"
else
    echo "FAIL: systemd-analyze verify" >&2
    fail=1
fi

# Every unit has an [Install] section, runs the binary with its stage, is a oneshot that stays.
for s in disks keys secrets; do
    f=$units/provision-$s.service
    for want in "ExecStart=/usr/bin/provision $s" "Type=oneshot" "RemainAfterExit=yes" "WantedBy="; do
        grep -qF "$want" "$f" || { echo "FAIL: $f lacks '$want'" >&2; fail=1; }
    done
done
grep -q '^DefaultDependencies=no' "$units/provision-disks.service" ||
    { echo "FAIL: provision-disks.service must have DefaultDependencies=no" >&2; fail=1; }

# Negative control: the same check must catch a unit whose executable does not exist.
sed 's|^ExecStart=/usr/bin/provision|ExecStart=/usr/bin/provision-missing|' \
    "$units/provision-keys.service" >"$root/etc/systemd/system/provision-broken.service"
if verify "$root/etc/systemd/system/provision-broken.service" >/dev/null 2>&1; then
    echo "FAIL: negative control: verify accepted a unit with a missing executable" >&2
    fail=1
else
    echo "ok: negative control rejected"
fi
rm -f "$root/etc/systemd/system/provision-broken.service"

# Informational: the exposure score systemd gives each service (not an assertion).
for s in disks keys secrets; do
    line=$(systemd-analyze security --offline=yes --root="$root" --no-pager \
        "$root/etc/systemd/system/provision-$s.service" 2>/dev/null | grep -i 'overall exposure' || true)
    [ -z "$line" ] || echo "info: provision-$s.service: $line"
done

exit $fail
