"""disks-ganeti (disks issue, scenarios 1 and 2): blank NVMe + SATA disks, the shipped
layouts/ganeti-node.yaml unchanged (sparse 64G NVMe and 160G SATA images hold its 32G swap and
100G home), homelab.provision_disks=true → the guest's real LVM state, mounts, swap and
directories match the layout; a reboot without the flag wipes nothing (files written after
provisioning are still there) and mounts everything again."""

from harness import Boot, Scenario, repo_file

LAYOUT = repo_file("layouts/ganeti-node.yaml")
CONFIG = "disks:\n  layout: ganeti-node.yaml\n"

COMMON = r'''
lvsize() { lvs --noheadings --units b --nosuffix -o lv_size "$1" | tr -d ' '; }
check_eq "VGs" "$(vgs --noheadings -o vg_name --sort vg_name | tr -d ' ' | tr '\n' ' ')" "pool_gnt pool_host "
check_eq "pool_gnt is the whole NVMe" "$(pvs --noheadings -o pv_name -S vg_name=pool_gnt | tr -d ' ')" /dev/nvme0n1
check_eq "pool_host is sda2" "$(pvs --noheadings -o pv_name -S vg_name=pool_host | tr -d ' ')" /dev/sda2
check_eq "swap LV is 32G" "$(lvsize pool_host/swap)" 34359738368
check_eq "home LV is 100G" "$(lvsize pool_host/home)" 107374182400
check_eq "var takes the rest" "$(vgs --noheadings --units b --nosuffix -o vg_free pool_host | tr -d ' ')" 0
check_eq "ESP partition name" "$(blkid -o value -s PARTLABEL /dev/sda1)" disk-hdd-ESP
check_eq "ESP type code" "$(sgdisk -i 1 /dev/sda | sed -n 's/^Partition GUID code: \([^ ]*\).*/\1/p')" C12A7328-F81F-11D2-BA4B-00A0C93EC93B
check_eq "PV partition type code" "$(sgdisk -i 2 /dev/sda | sed -n 's/^Partition GUID code: \([^ ]*\).*/\1/p')" E6D6D379-F507-44C2-A23C-238F2A3DF928
check_eq "/boot" "$(findmnt -n -o SOURCE,FSTYPE /boot | tr -s ' ')" "/dev/sda1 vfat"
check_eq "/home" "$(findmnt -n -o SOURCE,FSTYPE /home | tr -s ' ')" "/dev/mapper/pool_host-home ext4"
check_eq "/var" "$(findmnt -n -o SOURCE,FSTYPE /var | tr -s ' ')" "/dev/mapper/pool_host-var ext4"
check "/var mounted noatime" sh -c 'findmnt -n -o OPTIONS /var | grep -q noatime'
check_eq "swap is pool_host/swap" "$(swapon --show=NAME --noheadings | tr -d ' ')" "$(readlink -f /dev/pool_host/swap)"
check_eq "/var/lib/ganeti 0750" "$(stat -c %a:%U:%G /var/lib/ganeti)" 750:root:root
check_eq "/var/lib/ganeti/export 0750" "$(stat -c %a /var/lib/ganeti/export)" 750
check "lvmlocal.conf has the DRBD global_filter" grep -qF 'global_filter = [ "r|^/dev/drbd[0-9]+$|", "r|^/dev/drbd/|" ]' /etc/lvm/lvmlocal.conf
check "completion recorded as a VG tag" sh -c 'vgs --noheadings -o vg_tags pool_host | grep -q "provision.layout="'
check "report: disks ok" grep -q '"outcome": "ok"' /run/provision/report.json
check "mounted before local-fs.target" sh -c '[ "$(systemctl show -p ExecMainExitTimestampMonotonic --value provision-disks.service)" -le "$(systemctl show -p ActiveEnterTimestampMonotonic --value local-fs.target)" ]'
'''

BOOT1 = COMMON + r'''
check "report: mode provision" grep -q '"mode": "provision"' /run/provision/report.json
check "write canaries" sh -c 'echo var-canary >/var/canary && echo home-canary >/home/canary && echo boot-canary >/boot/canary && sync'
'''

BOOT2 = COMMON + r'''
check "report: mode mount-only" grep -q '"mode": "mount-only"' /run/provision/report.json
check_eq "/var canary kept" "$(cat /var/canary)" var-canary
check_eq "/home canary kept" "$(cat /home/canary)" home-canary
check_eq "/boot canary kept" "$(cat /boot/canary)" boot-canary
'''

SCENARIO = Scenario(
    name="disks-ganeti",
    doc="provision the shipped ganeti-node layout on blank NVMe+SATA, reboot without the flag: data kept, all mounted",
    disks=["nvme:64G", "sata:160G"],
    config=CONFIG,
    layout=None,
    files={"/etc/provision/ganeti-node.yaml": LAYOUT},
    boots=[
        Boot(cmdline="homelab.provision_disks=true", check=BOOT1, observe=True,
             expect_results=["write canaries"], timeout=420),
        Boot(check=BOOT2, observe=True, expect_results=["/var canary kept"]),
    ],
)
