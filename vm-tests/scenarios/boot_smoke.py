"""boot-smoke: the guest boots to multi-user with the units installed and enabled; the static
binary runs there; the units are loaded and ordered as DESIGN §2 says — both in their declared
dependencies and in the real start/finish times of this boot; the disk tools are present; the
host's HTTP server and the forwarded SSH port work (what the keys scenarios will need)."""

from harness import Boot, Scenario


def ssh_banner(ctx):
    """Host step: the guest's sshd answers on the forwarded port."""
    import socket
    with socket.create_connection(("127.0.0.1", ctx.ssh_port), timeout=20) as s:
        banner = s.recv(64).decode(errors="replace").strip()
    return banner.startswith("SSH-2.0-OpenSSH"), banner


CHECK = r'''
check "provision --version" sh -c 'provision --version | grep -q "^provision [0-9]"'
data_text version provision --version
check "static binary" sh -c 'ldd /usr/bin/provision 2>&1 | grep -Eq "statically linked|not a dynamic executable"'
check "provision --help" provision --help

for u in provision-disks.service provision-keys.service provision-secrets.service provision-secrets.target; do
    check_eq "$u loaded" "$(systemctl show -p LoadState --value $u)" loaded
    check_eq "$u enabled" "$(systemctl is-enabled $u 2>&1)" enabled
    check_eq "$u active" "$(systemctl show -p ActiveState --value $u)" active
done

# Declared dependencies (systemctl show lists each property space-separated).
has() { systemctl show -p "$2" --value "$1" | tr ' ' '\n' | grep -qx "$3"; }
dep() { check "$1 $2 $3" has "$1" "$2" "$3"; }
dep provision-disks.service Requires systemd-udevd.service
dep provision-disks.service After systemd-udevd.service
dep provision-disks.service After systemd-udev-trigger.service
dep provision-disks.service Before local-fs-pre.target
dep provision-disks.service Before local-fs.target
check "provision-disks.service not after sysinit.target" sh -c '! systemctl show -p After --value provision-disks.service | tr " " "\n" | grep -qx sysinit.target'
dep provision-keys.service Wants network-online.target
dep provision-keys.service After network-online.target
for u in ssh.service sshd-keygen.service systemd-user-sessions.service; do
    dep provision-keys.service Before $u
done
# Debian's ssh.service has Alias=sshd.service: systemd merges our Before=sshd.service into
# ssh.service, so check the unit file says it and that the alias resolves.
check "provision-keys.service declares Before=sshd.service" sh -c 'systemctl cat provision-keys.service | grep "^Before=" | tr " =" "\n\n" | grep -qx sshd.service'
check_eq "sshd.service is ssh.service here" "$(systemctl show -p Id --value sshd.service)" ssh.service
dep provision-secrets.service After provision-keys.service
dep provision-secrets.service After local-fs.target
dep provision-secrets.service Before provision-secrets.target
dep provision-secrets.target Requires provision-secrets.service

# The order things really happened in on this boot (monotonic µs).
ts() { systemctl show -p "$2" --value "$1"; }
before() { # before NAME A_UNIT A_PROP B_UNIT B_PROP : A's timestamp <= B's, both set
    a=$(ts "$2" "$3"); b=$(ts "$4" "$5")
    if [ -n "$a" ] && [ -n "$b" ] && [ "$a" -gt 0 ] && [ "$b" -gt 0 ] && [ "$a" -le "$b" ]; then
        result "$1" true "$a <= $b"
    else
        result "$1" false "$2 $3=$a, $4 $5=$b"
    fi
}
before "ran: udev trigger, then disks" systemd-udev-trigger.service ActiveEnterTimestampMonotonic provision-disks.service ExecMainStartTimestampMonotonic
before "ran: disks, then local-fs.target" provision-disks.service ExecMainExitTimestampMonotonic local-fs.target ActiveEnterTimestampMonotonic
before "ran: network-online, then keys" network-online.target ActiveEnterTimestampMonotonic provision-keys.service ExecMainStartTimestampMonotonic
before "ran: keys, then sshd" provision-keys.service ExecMainExitTimestampMonotonic ssh.service ExecMainStartTimestampMonotonic
before "ran: keys, then user sessions" provision-keys.service ExecMainExitTimestampMonotonic systemd-user-sessions.service ActiveEnterTimestampMonotonic
before "ran: keys, then secrets" provision-keys.service ExecMainExitTimestampMonotonic provision-secrets.service ExecMainStartTimestampMonotonic
before "ran: local-fs, then secrets" local-fs.target ActiveEnterTimestampMonotonic provision-secrets.service ExecMainStartTimestampMonotonic
before "ran: secrets, then its target" provision-secrets.service ExecMainExitTimestampMonotonic provision-secrets.target ActiveEnterTimestampMonotonic

for t in lvm pvcreate vgcreate lvcreate vgchange mkfs.ext4 mkfs.xfs mkfs.vfat mkswap e2fsck sgdisk wipefs blkid lsblk drbdadm thin_check curl sshd; do
    check "tool $t" command -v $t
done
check "dm-mod loads" modprobe dm-mod
check "dm-thin-pool loads" modprobe dm-thin-pool
check "network-online.target reached" systemctl is-active network-online.target
check "sshd running" systemctl is-active ssh.service
check "host http server reachable" sh -c 'curl -fsS -m 10 {http}/hello.txt | grep -qx hello-from-host'
host_step ssh-banner
'''

SCENARIO = Scenario(
    name="boot-smoke",
    doc="boots to multi-user; static binary runs; units loaded, enabled and ordered as designed",
    http_files={"hello.txt": "hello-from-host\n"},
    boots=[Boot(check=CHECK, host_steps={"ssh-banner": ssh_banner},
                expect_results=["provision --version", "host: ssh-banner",
                                "ran: keys, then sshd"])],
)
