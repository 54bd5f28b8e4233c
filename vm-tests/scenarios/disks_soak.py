"""disks-soak (reliability issue): data survives ten reboots. Boot 1 provisions the shipped
ganeti-node layout with the token tok1 and writes random data to /var, /home and /boot (sha256
manifests kept on each filesystem). Then 10 reboots, mixing no flag, the consumed token tok1
again and provision_disks=false; two of them end in a power cut (sysrq o, after unsynced
writes on top of synced ones). Every boot: mount-only, nothing re-created, every synced file
written by any earlier boot still has its sha256; it then adds its own files."""

from harness import Boot, Scenario

from _common import GANETI_CONFIG, GANETI_DISKS, GANETI_FILES, SH

WRITE = r'''
write_gen() { # files of this boot on every filesystem, their sha256 appended to its manifest
    for fs in /var /home /boot; do
        mkdir -p "$fs/soak" &&
        dd if=/dev/urandom of="$fs/soak/boot$PT_BOOT" bs=64k count=16 2>/dev/null &&
        (cd "$fs/soak" && sha256sum "boot$PT_BOOT" >>manifest) || return 1
    done
    sync
}
verify_all() { # every manifest entry still matches
    for fs in /var /home /boot; do
        (cd "$fs/soak" && sha256sum --quiet -c manifest) || { echo "$fs: sha256 mismatch"; return 1; }
    done
}
'''

FIRST = SH + WRITE + r'''
check "provisioned" verify_layout tok1
check "write boot 1's data" write_gen
'''


def later(crash: bool) -> str:
    s = SH + WRITE + r'''
check "report: mount-only" grep -q '"mode": "mount-only"' /run/provision/report.json
check "layout intact" verify_layout tok1
check_eq "files of every earlier boot" "$(ls /var/soak | grep -c '^boot')" "$(cat /var/soak/manifest | wc -l)"
check "every earlier boot's data intact (sha256)" verify_all
data_text "files" sh -c 'wc -l /var/soak/manifest /home/soak/manifest /boot/soak/manifest'
check "write this boot's data" write_gen
'''
    if crash:  # unsynced writes on top, then the power goes
        s += r'''
dd if=/dev/urandom of=/var/soak/unsynced bs=1M count=8 2>/dev/null
dd if=/dev/urandom of=/home/soak/unsynced bs=1M count=8 2>/dev/null
crash_now
'''
    return s


CMDLINES = ["", "homelab.provision_disks=tok1", "", "homelab.provision_disks=false",
            "homelab.provision_disks=tok1", "", "", "homelab.provision_disks=tok1", "",
            "homelab.provision_disks=0"]
CRASH_AFTER = {3, 7}  # reboots (1-based among the ten) that end in a power cut

SCENARIO = Scenario(
    name="disks-soak",
    doc="provision, then 10 reboots (no flag / consumed token / false; two power cuts): every synced file survives",
    disks=GANETI_DISKS, config=GANETI_CONFIG, layout=None, files=GANETI_FILES,
    boots=[Boot(cmdline="homelab.provision_disks=tok1", check=FIRST, timeout=420,
                expect_results=["write boot 1's data"])] + [
        Boot(cmdline=c, check=later(i in CRASH_AFTER), expect_done=i not in CRASH_AFTER,
             expect_results=["every earlier boot's data intact (sha256)", "write this boot's data"])
        for i, c in enumerate(CMDLINES, 1)],
)
