"""disks-tokens (disks issue, scenario 3): wipe-once tokens on the shipped layouts/vm.yaml (one
virtio disk). homelab.provision_disks=tok1 provisions and records the token as a VG tag; the same
token on the next boot wipes nothing (mount-only); a new token tok2 wipes and provisions again."""

from harness import Boot, Scenario, repo_file

LAYOUT = repo_file("layouts/vm.yaml")
CONFIG = "disks:\n  layout: vm.yaml\n"

COMMON = r'''
check_eq "LVs" "$(lvs --noheadings -o lv_name --sort lv_name pool_state | tr -d ' ' | tr '\n' ' ')" "home state swap "
check_eq "/var/lib/state" "$(findmnt -n -o SOURCE,FSTYPE /var/lib/state | tr -s ' ')" "/dev/mapper/pool_state-state ext4"
check_eq "/home" "$(findmnt -n -o SOURCE /home)" /dev/mapper/pool_state-home
check_eq "swap" "$(swapon --show=NAME --noheadings | tr -d ' ')" "$(readlink -f /dev/pool_state/swap)"
check_eq "ensure_dirs" "$(stat -c %a /var/lib/state/services)" 755
has_tag() { vgs --noheadings -o vg_tags pool_state | tr ',' '\n' | tr -d ' ' | grep -qx "$1"; }
lacks_tag() { ! has_tag "$1"; }
'''

SCENARIO = Scenario(
    name="disks-tokens",
    doc="token tok1 twice wipes once; tok2 wipes again (tokens recorded as VG tags)",
    disks=["virtio:6G"],
    config=CONFIG,
    layout=None,
    files={"/etc/provision/vm.yaml": LAYOUT},
    boots=[
        Boot(cmdline="homelab.provision_disks=tok1", check=COMMON + r'''
check "report: provision" grep -q '"mode": "provision"' /run/provision/report.json
check "token tok1 recorded" has_tag provision.token=tok1
check "write canary" sh -c 'echo from-tok1 >/var/lib/state/canary && sync'
'''),
        Boot(cmdline="homelab.provision_disks=tok1", check=COMMON + r'''
check "report: mount-only (token consumed)" grep -q '"mode": "mount-only"' /run/provision/report.json
check "journal says the token was consumed" sh -c 'journalctl -b -u provision-disks.service | grep -q "already consumed"'
check_eq "canary kept" "$(cat /var/lib/state/canary)" from-tok1
'''),
        Boot(cmdline="homelab.provision_disks=tok2", check=COMMON + r'''
check "report: provision" grep -q '"mode": "provision"' /run/provision/report.json
check "token tok2 recorded" has_tag provision.token=tok2
check "tok1 tag gone with the old VG" lacks_tag provision.token=tok1
check "canary wiped" test ! -e /var/lib/state/canary
'''),
    ],
)
