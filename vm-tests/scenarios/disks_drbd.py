"""disks-drbd (disks issue, scenario 5): the DRBD filter, for real. After provisioning the shipped
ganeti-node layout, boot 1 does what Ganeti does: an LV on pool_gnt, a DRBD resource on it
(single node, made primary), and — as an instance's OS would — a VG inside /dev/drbd0. The
node's lvm (which reads the lvmlocal.conf the agent wrote) and the agent's own discovery never
see that VG, nor /dev/drbd0 or the backing LV as a PV; a control run of lvm without the filter
does see it (so the check can fail). A reprovision while drbd0 is up is refused, naming DRBD.
Boot 2 (plain reboot, DRBD down): mount-only works, the inner VG is still invisible."""

from harness import Boot, Scenario, repo_file

RES = """resource r0 {
  protocol C;
  on provision-vm {
    device /dev/drbd0;
    disk /dev/pool_gnt/disk0;
    address 127.0.0.1:7789;
    meta-disk internal;
  }
  on drbd-peer {
    device /dev/drbd0;
    disk /dev/pool_gnt/disk0;
    address 127.0.0.2:7789;
    meta-disk internal;
  }
}
"""


INVISIBLE = r'''
data_text "pvs (node)" sh -c 'pvs -a -o pv_name,vg_name,dev_size 2>&1; echo ---; vgs -o vg_name,pv_name 2>&1; echo ---; cat /etc/lvm/lvmlocal.conf; echo ---; lvmconfig --type full devices/global_filter devices/scan_lvs devices/use_devicesfile 2>&1; ls -l /dev/drbd* /dev/drbd/by-res/*/* 2>&1'
check "node lvm: no VG inner" sh -c '! vgs --noheadings -o vg_name | grep -qw inner'
check "node lvm: no PV on drbd or on the backing LV" sh -c '! pvs --noheadings -o pv_name | grep -Eq "drbd|pool_gnt-disk0|pool_gnt/disk0"'
check "agent discovery: no VG inner" sh -c 'provision status --output json >/tmp/status.json && ! grep -q "\"inner\"" /tmp/status.json'
'''

# lvm as an instance's OS (or a node without our filter) would run it: nothing filtered.
NOFILTER = r'''
nf() { "$@" --config 'devices { global_filter = [ "a|.*|" ] scan_lvs = 0 use_devicesfile = 0 }'; }
inner_vg() { nf pvcreate -qy /dev/drbd0 && nf vgcreate -q inner /dev/drbd0 && nf lvcreate -qy -n root -L 64M inner; }
sees_inner() { nf vgs --noheadings -o vg_name | grep -qw inner; }
'''

BOOT1 = NOFILTER + r'''
check "Ganeti-style LV" lvcreate -qy -n disk0 -L 256M pool_gnt
check "drbd module" modprobe drbd
hostname provision-vm
check "drbd create-md" sh -c 'yes yes | drbdadm create-md --force r0'
check "drbd up" drbdadm up r0
check "drbd primary" drbdadm primary --force r0
check "drbd0 is up" wait_for 20 test -b /dev/drbd0
check "a VG inside drbd0 (as an instance OS would)" inner_vg
check "control: lvm without the filter sees it" sees_inner
''' + INVISIBLE + r'''
provision --cmdline "homelab.provision_disks=tok9" disks >/tmp/reprov.out 2>&1; rc=$?
check_eq "reprovision while drbd0 is up: refused" "$rc" 4
check "the refusal names DRBD" grep -q "backs active DRBD device drbd0" /tmp/reprov.out
check "pool_gnt intact" lvs pool_gnt/disk0
down() { nf vgchange -qan inner; drbdadm down r0; }
check "bring DRBD down" down
'''

BOOT2 = INVISIBLE + r'''
check_eq "mount-only" "$(findmnt -n -o SOURCE /var)" /dev/mapper/pool_host-var
check "backing LV still there" lvs pool_gnt/disk0
'''

SCENARIO = Scenario(
    name="disks-drbd",
    doc="DRBD on a pool_gnt LV with a VG inside: invisible to the node's lvm and the agent; reprovision refused while drbd0 is up",
    disks=["nvme:64G", "sata:160G"],
    config="disks:\n  layout: ganeti-node.yaml\n",
    layout=None,
    files={"/etc/provision/ganeti-node.yaml": repo_file("layouts/ganeti-node.yaml"),
           "/etc/drbd.d/r0.res": RES},
    boots=[
        Boot(cmdline="homelab.provision_disks=true", check=BOOT1, timeout=420,
             expect_results=["drbd primary", "reprovision while drbd0 is up: refused"]),
        Boot(check=BOOT2, expect_results=["mount-only"]),
    ],
)
