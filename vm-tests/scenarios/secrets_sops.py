"""secrets-sops (sops-nix issue): a node whose secrets are sops files, as a sops-nix fleet keeps
them, encrypted to the node's SSH host key — which the node only gets from the boot server.

Boot 1: the keys stage fetches the bundle (root key and an ed25519 host key) and installs it;
the secrets stage then decrypts, with that host key and no other program:
- `secrets/secrets.yaml` (YAML) to the host key converted to an age key the way `ssh-to-age`
  does — sops-nix's usual setup — selecting the nested key `db/password` (owner daemon, 0440)
  and `api_token` with a custom path (a symlink);
- `secrets/app.env` (dotenv, the whole file) to the host key as a native `ssh-ed25519` recipient
  (sops ≥ 3.10);
- a template rendering `db/password` through its placeholder;
all under /run/secrets (a generation on ramfs) before a dependent service starts and reads them.
Boot 2 is a plain reboot: the same again on a fresh /run. Boot 3 carries a secrets.yaml with one
byte of db/password's ciphertext changed: the secrets stage fails closed (exit 8) naming the
file, writes nothing under /run/secrets, and the dependent service does not start.

The sops files are written on the host for each run by tests/sops_encoder.py, the independent
encoder the corpus tests check against sops' own files byte for byte."""

import hashlib
import importlib.util
import subprocess

from _common import key_bundle
from harness import Boot, Scenario, image

HOST = "node2"
DB_PASSWORD = "correct horse battery staple"
API_TOKEN = "tok-5b1e0c"
ENV_PLAIN = "APP_USER=app\nAPP_KEY=k3y with spaces\n"


def _encoder():
    spec = importlib.util.spec_from_file_location("sops_encoder",
                                                  image.REPO / "tests" / "sops_encoder.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def _make():
    """The bundle, the host key's fingerprint and the two sops files — made for each run."""
    bundle, pubs, fps = key_bundle(HOST, {"root_privkey": "ed25519", "host_privkey": "ed25519"})
    try:
        enc = _encoder()
        as_age = enc.ssh_to_age_recipient(str(pubs["host_privkey"].with_suffix("")))
        native = pubs["host_privkey"].read_text().strip().rsplit(" ", 1)[0]
        yaml_file, _ = enc.encrypt_file("yaml", enc.M([
            ("db", enc.M([("password", DB_PASSWORD), ("user", "app")])),
            ("api_token", API_TOKEN)]), [[as_age]])
        env_file, _ = enc.encrypt_file("dotenv", enc.M(
            [(k, v) for k, v in (line.split("=", 1) for line in ENV_PLAIN.splitlines())]),
            [[native]])
    except (ImportError, FileNotFoundError, subprocess.CalledProcessError) as e:
        # Only `--list` gets here (vm-tests/run installs the tools before loading scenarios).
        yaml_file = env_file = f"cannot encrypt on this host ({e}): run tools/install-deps".encode()
    return bundle, fps["host_privkey"], yaml_file, env_file


BUNDLE, HOST_FP, YAML_FILE, ENV_FILE = _make()


def _tampered(doc: bytes) -> bytes:
    """db/password's value with its first ciphertext character changed (still valid base64)."""
    at = doc.index(b"ENC[AES256_GCM,data:") + len(b"ENC[AES256_GCM,data:")
    return doc[:at] + (b"B" if doc[at:at + 1] == b"A" else b"A") + doc[at + 1:]


TAMPERED = _tampered(YAML_FILE) if b"ENC[" in YAML_FILE else YAML_FILE  # else: --list without tools
SHA = hashlib.sha256(BUNDLE).hexdigest()
PLACEHOLDER = f"<SOPS:{hashlib.sha256(b'db/password').hexdigest()}:PLACEHOLDER>"

CONFIG = f"""keys:
  members:
    root_privkey: {{ path: /root/.ssh/id_ed25519 }}
    host_privkey: {{ path: /etc/ssh/ssh_host_ed25519_key }}
sops:
  defaultSopsFile: secrets/secrets.yaml
  secrets:
    db/password: {{ owner: daemon, mode: "0440" }}
    api_token: {{ path: /etc/app/api-token }}
    app-env: {{ sopsFile: secrets/app.env, format: dotenv }}
  templates:
    app.conf:
      content: "password = {PLACEHOLDER}\\n"
      owner: daemon
"""

APP_UNIT = """[Unit]
Description=service that reads sops secrets
Requires=provision-secrets.target
After=provision-secrets.target

[Service]
Type=oneshot
RemainAfterExit=yes
ExecStart=/bin/sh -c 'cat /run/secrets/db/password /etc/app/api-token /run/secrets/rendered/app.conf /run/secrets/app-env | sha256sum | cut -d" " -f1 >/run/sops-app.sha'
"""

APP_SHA = hashlib.sha256((DB_PASSWORD + API_TOKEN + f"password = {DB_PASSWORD}\n" + ENV_PLAIN)
                         .encode()).hexdigest()

CHECK = rf'''
check_eq "keys: ed25519 host key" "$(ssh-keygen -lf /etc/ssh/ssh_host_ed25519_key.pub | cut -d' ' -f2)" "{HOST_FP}"
check_eq "db/password (ssh-to-age)" "$(cat /run/secrets/db/password)" "{DB_PASSWORD}"
check_eq "db/password owner and mode" "$(stat -L -c %U:%G:%a /run/secrets/db/password)" daemon:daemon:440
check_eq "api_token at its custom path" "$(cat /etc/app/api-token)" "{API_TOKEN}"
check_eq "custom path is a symlink into /run/secrets" "$(readlink /etc/app/api-token)" /run/secrets/api_token
check_eq "app-env, whole dotenv file (native ssh-ed25519)" "$(sha256sum </run/secrets/app-env | cut -d' ' -f1)" "{hashlib.sha256(ENV_PLAIN.encode()).hexdigest()}"
check_eq "template rendered" "$(cat /run/secrets/rendered/app.conf)" "password = {DB_PASSWORD}"
check_eq "template owner" "$(stat -L -c %U /run/secrets/rendered/app.conf)" daemon
check_eq "on ramfs" "$(findmnt -n -o FSTYPE /run/secrets.d)" ramfs
check_eq "/run/secrets is a generation" "$(readlink /run/secrets)" /run/secrets.d/1
check_eq "service read the secrets" "$(cat /run/sops-app.sha)" "{APP_SHA}"
ts() {{ systemctl show -p "$2" --value "$1"; }}
check "order: keys before secrets" test "$(ts provision-keys.service ExecMainExitTimestampMonotonic)" -le "$(ts provision-secrets.service ExecMainStartTimestampMonotonic)"
check "order: secrets before the service" test "$(ts provision-secrets.service ExecMainExitTimestampMonotonic)" -le "$(ts sops-app.service ExecMainStartTimestampMonotonic)"
check "no secret value in the journal" sh -c '! journalctl -b | grep -Fq "{DB_PASSWORD}"'
data_text "provision journal" journalctl -b -o short-monotonic --no-hostname -u provision-keys -u provision-secrets -u sops-app
'''

CMDLINE = (f"homelab.hostname={HOST} homelab.keys_url={{http}}/keys/{{hostname}}.tar.gz "
           f"homelab.keys_sha256={SHA}")

SCENARIO = Scenario(
    name="secrets-sops",
    doc="sops-nix files (YAML via ssh-to-age, dotenv via native ssh-ed25519, a template) decrypted with the provisioned host key before a dependent service; again after a reboot",
    config=CONFIG,
    files={
        "/etc/provision/secrets/secrets.yaml": YAML_FILE,
        "/etc/provision/secrets/app.env": ENV_FILE,
        "/etc/systemd/system/sops-app.service": APP_UNIT,
        "/etc/systemd/system/multi-user.target.d/sops-app.conf": "[Unit]\nWants=sops-app.service\n",
    },
    http_files={f"keys/{HOST}.tar.gz": BUNDLE},
    boots=[
        Boot(cmdline=CMDLINE, check=CHECK,
             expect_results=["db/password (ssh-to-age)", "service read the secrets"]),
        Boot(cmdline=CMDLINE, check=CHECK, expect_results=["template rendered"]),
        Boot(cmdline=CMDLINE, files={"/etc/provision/secrets/secrets.yaml": TAMPERED},
             expect_units={"provision-secrets.service": 8, "provision-secrets.target": "inactive"},
             check=r'''
check "nothing under /run/secrets" sh -c '! test -e /run/secrets && ! test -e /etc/app/api-token'
check "the dependent service did not start" sh -c '! test -e /run/sops-app.sha'
check "the journal names the file" sh -c 'journalctl -b -u provision-secrets.service | grep -q "secrets.yaml"'
data_text "provision journal" journalctl -b -o short-monotonic --no-hostname -u provision-secrets -u sops-app
''', expect_results=["nothing under /run/secrets", "the dependent service did not start"]),
    ],
)
