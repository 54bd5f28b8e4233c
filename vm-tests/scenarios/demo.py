"""demo (the README's first command, and the fresh-node scenario of the units issue): a netbooted
node with blank NVMe and SATA disks boots the shipped layouts/ganeti-node.yaml and
layouts/ganeti-node.config.yaml unchanged. Boot 1 carries homelab.provision_disks=true and the
key bundle's URL and sha256 (as the boot server's iPXE script would): the disks are laid out and
mounted, the SSH keys are fetched from the host (10.0.2.2) and installed before sshd — which then
presents exactly the provisioned host key (checked from the host with ssh-keyscan) — and the age
secret, encrypted by Debian's age CLI to that host key, is decrypted into /run/agenix before a
dependent service starts and reads it. Boot 2 is a plain reboot: nothing wiped, all mounted,
keys and secrets in place again."""

import hashlib
import subprocess

from _common import METRICS_SH, key_bundle, metrics_verify, stage_metrics
from harness import Boot, Scenario, repo_file

HOST = "node1"
SECRET = b"cluster token for node1: 6f1e2d3c\n"


def _make_keys():
    """ssh-keygen keys, the bundle, and the age file — made on the host for each run."""
    bundle, pubs, fps = key_bundle(HOST, {"root_privkey": "ed25519", "host_privkey": "rsa-3072"})
    try:
        age = subprocess.run(["age", "-R", str(pubs["host_privkey"])], input=SECRET, check=True,
                             capture_output=True).stdout
    except FileNotFoundError:
        # Only `--list` gets here (vm-tests/run installs age before loading scenarios).
        age = b"age CLI missing on the host: run tools/install-deps"
    return bundle, fps["root_privkey"], fps["host_privkey"], age


BUNDLE, ROOT_FP, HOST_FP, AGE_FILE = _make_keys()
SHA = hashlib.sha256(BUNDLE).hexdigest()
SECRET_SHA = hashlib.sha256(SECRET).hexdigest()

APP_UNIT = """[Unit]
Description=demo service that needs a secret
Requires=provision-secrets.target
After=provision-secrets.target

[Service]
Type=oneshot
RemainAfterExit=yes
ExecStart=/bin/sh -c 'sha256sum /run/agenix/cluster-token | cut -d" " -f1 >/run/demo-app.sha; echo "demo-app: read cluster-token, sha256 $(cat /run/demo-app.sha)"'
"""


def sshd_host_key(ctx):
    """Host step: the guest's sshd presents exactly the provisioned RSA host key."""
    out = subprocess.run(["ssh-keyscan", "-T", "20", "-t", "rsa", "-p", str(ctx.ssh_port),
                          "127.0.0.1"], capture_output=True, text=True, timeout=60).stdout
    line = next((l for l in out.splitlines() if "ssh-rsa" in l), "")
    if not line:
        return False, f"ssh-keyscan got no rsa key: {out!r}"
    fp = subprocess.run(["ssh-keygen", "-lf", "-"], input=line, capture_output=True,
                        text=True).stdout.split()
    got = fp[1] if len(fp) > 1 else "?"
    return got == HOST_FP, f"sshd presents {got}, provisioned {HOST_FP}"


COMMON = rf'''
check_eq "disks: /var" "$(findmnt -n -o SOURCE /var)" /dev/mapper/pool_host-var
check_eq "disks: /home" "$(findmnt -n -o SOURCE /home)" /dev/mapper/pool_host-home
check_eq "disks: /boot" "$(findmnt -n -o FSTYPE /boot)" vfat
check "disks: swap on" sh -c 'swapon --show=NAME --noheadings | grep -q .'
check_eq "keys: host key" "$(ssh-keygen -lf /etc/ssh/ssh_host_rsa_key.pub | cut -d' ' -f2)" "{HOST_FP}"
check_eq "keys: root key" "$(ssh-keygen -lf /root/.ssh/id_ed25519.pub | cut -d' ' -f2)" "{ROOT_FP}"
check_eq "keys: modes" "$(stat -c %a /etc/ssh/ssh_host_rsa_key /root/.ssh/id_ed25519 /root/.ssh | tr '\n' ' ')" "600 600 700 "
check_eq "secrets: content" "$(sha256sum /run/agenix/cluster-token | cut -d' ' -f1)" "{SECRET_SHA}"
check_eq "secrets: owner and mode" "$(stat -L -c %U:%a /run/agenix/cluster-token)" root:400
check_eq "secrets: on ramfs" "$(findmnt -n -o FSTYPE /run/agenix.d)" ramfs
check_eq "secrets: /run/agenix is a generation" "$(readlink /run/agenix)" /run/agenix.d/1
check_eq "service read the secret" "$(cat /run/demo-app.sha)" "{SECRET_SHA}"
ts() {{ systemctl show -p "$2" --value "$1"; }}
check "order: disks before local-fs.target" test "$(ts provision-disks.service ExecMainExitTimestampMonotonic)" -le "$(ts local-fs.target ActiveEnterTimestampMonotonic)"
check "order: keys before sshd" test "$(ts provision-keys.service ExecMainExitTimestampMonotonic)" -le "$(ts ssh.service ExecMainStartTimestampMonotonic)"
check "order: keys before secrets" test "$(ts provision-keys.service ExecMainExitTimestampMonotonic)" -le "$(ts provision-secrets.service ExecMainStartTimestampMonotonic)"
check "order: secrets before the service" test "$(ts provision-secrets.service ExecMainExitTimestampMonotonic)" -le "$(ts demo-app.service ExecMainStartTimestampMonotonic)"
host_step sshd-host-key
data_text "provision status" provision status
{METRICS_SH}data_text "provision journal" journalctl -b -o short-monotonic --no-hostname -u provision-disks -u provision-keys -u provision-secrets -u demo-app
'''


def metrics(mode: str):
    """The boot's metrics files: every stage succeeded; the disks plan's mode; only a
    provisioning boot destroys anything; one secret decrypted."""
    destroyed = ("> 0", lambda v: v > 0) if mode == "provision" else 0.0
    return metrics_verify(
        *stage_metrics("disks", 0, True), *stage_metrics("keys", 0, True),
        *stage_metrics("secrets", 0, True),
        *[("disks", "provision_disks_mode", {"mode": m}, 1.0 if m == mode else 0.0)
          for m in ("mount-only", "provision", "refused")],
        ("disks", "provision_disks_steps_destructive", {}, destroyed),
        ("disks", "provision_disks_steps_done", {}, ("> 0", lambda v: v > 0)),
        ("keys", "provision_keys_fetch_attempts", {}, (">= 1", lambda v: v >= 1)),
        ("secrets", "provision_secrets_decrypted", {"stage": "secrets"}, 1.0),
        ("secrets", "provision_secrets_failed", {"stage": "secrets"}, 0.0),
    )


CMDLINE = (f"homelab.hostname={HOST} homelab.keys_url={{http}}/keys/{{hostname}}.tar.gz "
           f"homelab.keys_sha256={SHA}")

SCENARIO = Scenario(
    name="demo",
    doc="fresh node, shipped ganeti-node layout + config: disks, keys (sshd host key), secrets before a dependent service; reboot keeps it all",
    disks=["nvme:64G", "sata:160G"],
    config=repo_file("layouts/ganeti-node.config.yaml"),
    layout=None,
    files={
        "/etc/provision/ganeti-node.yaml": repo_file("layouts/ganeti-node.yaml"),
        "/etc/provision/secrets/cluster-token.age": AGE_FILE,
        "/etc/systemd/system/demo-app.service": APP_UNIT,
        "/etc/systemd/system/multi-user.target.d/demo-app.conf": "[Unit]\nWants=demo-app.service\n",
    },
    http_files={f"keys/{HOST}.tar.gz": BUNDLE},
    show=["provision journal", "provision status"],
    boots=[
        Boot(cmdline="homelab.provision_disks=true " + CMDLINE, timeout=480,
             check=COMMON + 'check "write canary" sh -c "echo kept >/var/canary && sync"\n',
             host_steps={"sshd-host-key": sshd_host_key}, expect_results=["write canary"],
             verify=metrics("provision")),
        Boot(cmdline=CMDLINE, check=COMMON + 'check_eq "canary kept" "$(cat /var/canary)" kept\n',
             host_steps={"sshd-host-key": sshd_host_key}, expect_results=["canary kept"],
             verify=metrics("mount-only")),
    ],
)
