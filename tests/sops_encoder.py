#!/usr/bin/env python3
"""An independent sops encoder, for tests: written from the sops sources' rules (sops.go,
aes/cipher.go, shamir/shamir.go, stores/*), not from provision's Rust code.

  sops_encoder.py check-real DIR      reproduce the real sops-written files' ciphertexts and MAC
                                      (sops-nix test assets): exit 0 when they match byte for byte
  sops_encoder.py generate OUTDIR     write test files in every format, hostile variants, the
                                      identities they need, and OUTDIR/cases.json describing
                                      what each must decrypt to (or how it must fail)

Needs the `cryptography` package (AES-GCM with 32-byte nonces, Ed25519/X25519), the `age` CLI
(wraps the data key) and `ssh-keygen`. Values are AES-256-GCM with a 32-byte IV, the key path
joined with ':' plus ':' as associated data; the MAC is SHA-512 over the plaintext leaves in
document order (booleans True/False, floats as Go's FormatFloat(f, 'f', -1)), upper-case hex,
encrypted with `lastmodified` as associated data.
"""

import base64
import hashlib
import json
import os
import re
import subprocess
import sys
from decimal import Decimal

from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import x25519

MAC_ONLY_ENCRYPTED_INIT = hashlib.sha256(b"sops").digest()


# ---------------------------------------------------------------------------------------------
# The plaintext tree: M (ordered mapping, may hold C comment items), L (list), C (comment),
# and Python str/bytes/int/float/bool/None leaves.

class M:
    def __init__(self, items):
        self.items = list(items)  # [(key, value)] or C


class L:
    def __init__(self, items):
        self.items = list(items)


class C:
    def __init__(self, text):
        self.text = text


def go_float(x):
    """Go strconv.FormatFloat(x, 'f', -1, 64)."""
    if x != x:
        return "NaN"
    if x in (float("inf"), float("-inf")):
        return "+Inf" if x > 0 else "-Inf"
    s = format(Decimal(repr(x)), "f")
    if "." in s:
        s = s.rstrip("0").rstrip(".")
    if s == "-0" or (x == 0 and str(x).startswith("-")):
        return "-0"
    return s


def to_bytes(v):
    """sops ToBytes."""
    if isinstance(v, bool):
        return b"True" if v else b"False"
    if isinstance(v, int):
        return str(v).encode()
    if isinstance(v, float):
        return go_float(v).encode()
    if isinstance(v, bytes):
        return v
    if isinstance(v, str):
        return v.encode()
    raise TypeError(type(v))


def type_of(v):
    if isinstance(v, bool):
        return "bool"
    if isinstance(v, int):
        return "int"
    if isinstance(v, float):
        return "float"
    return "str"


def enc_value(key, plain, kind, aad, iv=None):
    iv = iv if iv is not None else os.urandom(32)
    out = AESGCM(key).encrypt(iv, plain, aad.encode())
    b = lambda x: base64.b64encode(x).decode()
    return "ENC[AES256_GCM,data:%s,iv:%s,tag:%s,type:%s]" % (b(out[:-16]), b(iv), b(out[-16:]), kind)


class Rule:
    def __init__(self, kind="unencrypted_suffix", value="_unencrypted"):
        self.kind, self.value = kind, value

    def encrypted(self, path, comments, is_comment):
        k, v = self.kind, self.value
        if k == "unencrypted_suffix":
            return not any(p.endswith(v) for p in path)
        if k == "encrypted_suffix":
            return any(p.endswith(v) for p in path)
        if k == "unencrypted_regex":
            return not any(re.search(v, p) for p in path)
        if k == "encrypted_regex":
            return any(re.search(v, p) for p in path)
        if k == "unencrypted_comment_regex":
            return not any(re.search(v, c) for level in comments for c in level)
        if k == "encrypted_comment_regex":
            for i, level in enumerate(comments):
                for j, c in enumerate(level):
                    if is_comment and i == len(comments) - 1 and j == len(level) - 1:
                        continue
                    if re.search(v, c):
                        return True
            return False
        raise ValueError(k)


class Encryptor:
    """sops Tree.Encrypt: returns the encrypted tree and the MAC."""

    def __init__(self, key, rule, mac_only_encrypted):
        self.key, self.rule, self.moe = key, rule, mac_only_encrypted
        self.h = hashlib.sha512()
        if mac_only_encrypted:
            self.h.update(MAC_ONLY_ENCRYPTED_INIT)

    def leaf(self, v, path, comments):
        is_comment = isinstance(v, C)
        enc = self.rule.encrypted(path, comments, is_comment)
        if (not self.moe or enc) and not is_comment:
            self.h.update(to_bytes(v))
        if not enc:
            return v
        aad = ":".join(path) + ":"
        if is_comment:
            return C(enc_value(self.key, v.text.encode(), "comment", aad)) if v.text else v
        if v == "" or v == b"":
            return ""
        return enc_value(self.key, to_bytes(v), type_of(v), aad)

    def value(self, v, path, comments):
        if isinstance(v, M):
            return self.branch(v, path, comments)
        if isinstance(v, L):
            comments = comments + [[]]
            out = []
            for x in v.items:
                if isinstance(x, C):
                    comments[-1].append(x.text)
                out.append(self.value(x, path, comments))
                if not isinstance(x, C):
                    comments[-1] = []
            return L(out)
        if v is None:
            return None
        return self.leaf(v, path, comments)

    def branch(self, m, path, comments):
        comments = comments + [[]]
        out = []
        for it in m.items:
            if isinstance(it, C):
                comments[-1].append(it.text)
                out.append(self.leaf(it, path, comments))
                continue
            k, v = it
            out.append((k, self.value(v, path + [k], comments)))
            comments[-1] = []
        return M(out)

    def mac(self):
        return self.h.hexdigest().upper()


# ---------------------------------------------------------------------------------------------
# Shamir over GF(2^8) with the AES polynomial, by log/exp tables (generator 3): another way to
# the same field as sops' bitwise multiplication.

EXP = [0] * 512
LOG = [0] * 256
_x = 1
for _i in range(255):
    EXP[_i] = _x
    LOG[_x] = _i
    _x ^= (_x << 1) ^ (0x11B if _x & 0x80 else 0)  # multiply by 3
    _x &= 0xFF
for _i in range(255, 512):
    EXP[_i] = EXP[_i - 255]


def gmul(a, b):
    return 0 if a == 0 or b == 0 else EXP[LOG[a] + LOG[b]]


def shamir_split(secret, parts, threshold):
    out = [bytearray() for _ in range(parts)]
    for s in secret:
        coeffs = [s] + list(os.urandom(threshold - 1))
        for i in range(parts):
            x, y = i + 1, 0
            for c in reversed(coeffs):
                y = gmul(y, x) ^ c
            out[i].append(y)
    for i in range(parts):
        out[i].append(i + 1)
    return [bytes(p) for p in out]


# ---------------------------------------------------------------------------------------------
# age wrapping, ssh-to-age

def age_wrap(data, recipient):
    r = subprocess.run(["age", "-e", "-a", "-r", recipient], input=data, capture_output=True, check=True)
    return r.stdout.decode()


def bech32_encode(hrp, data):
    charset = "qpzry9x8gf2tvdw0s3jn54khce6mua7l"
    bits, acc, out = 0, 0, []
    for b in data:
        acc = (acc << 8) | b
        bits += 8
        while bits >= 5:
            bits -= 5
            out.append((acc >> bits) & 31)
    if bits:
        out.append((acc << (5 - bits)) & 31)

    def polymod(values):
        gen = [0x3B6A57B2, 0x26508E6D, 0x1EA119FA, 0x3D4233DD, 0x2A1462B3]
        chk = 1
        for v in values:
            top = chk >> 25
            chk = (chk & 0x1FFFFFF) << 5 ^ v
            for i in range(5):
                chk ^= gen[i] if (top >> i) & 1 else 0
        return chk

    hrp_l = hrp.lower()
    expand = [ord(c) >> 5 for c in hrp_l] + [0] + [ord(c) & 31 for c in hrp_l]
    pm = polymod(expand + out + [0] * 6) ^ 1
    checksum = [(pm >> 5 * (5 - i)) & 31 for i in range(6)]
    return hrp_l + "1" + "".join(charset[d] for d in out + checksum)


def ssh_to_age_recipient(ssh_private_key_path):
    """The age recipient of the X25519 key ssh-to-age derives from an ed25519 SSH key."""
    with open(ssh_private_key_path, "rb") as f:
        k = serialization.load_ssh_private_key(f.read(), password=None)
    seed = k.private_bytes(serialization.Encoding.Raw, serialization.PrivateFormat.Raw,
                           serialization.NoEncryption())
    scalar = hashlib.sha512(seed).digest()[:32]
    pub = x25519.X25519PrivateKey.from_private_bytes(scalar).public_key().public_bytes(
        serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    return bech32_encode("age", pub)


# ---------------------------------------------------------------------------------------------
# Emitting the formats

def metadata(data_key, groups, threshold, lastmodified, mac_enc, rule, moe, version="3.9.0"):
    """The nested `sops` mapping (key order as sops' serializer sorts it)."""
    md = []
    if len(groups) == 1:
        parts = [data_key]
    else:
        parts = shamir_split(data_key, len(groups), threshold)
    wrapped = [[{"recipient": r, "enc": age_wrap(part, r)} for r in g] for g, part in zip(groups, parts)]
    if len(groups) == 1:
        md.append(("age", L([M([("recipient", a["recipient"]), ("enc", a["enc"])]) for a in wrapped[0]])))
    else:
        md.append(("key_groups", L([M([("age", L([M([("recipient", a["recipient"]), ("enc", a["enc"])]) for a in g]))]) for g in wrapped])))
        md.append(("shamir_threshold", threshold))
    md.append(("lastmodified", lastmodified))
    md.append(("mac", mac_enc))
    if moe:
        md.append(("mac_only_encrypted", True))
    md.append((rule.kind, rule.value))
    md.append(("version", version))
    return M(md)


def yaml_scalar(v):
    if v is None:
        return "null"
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, int):
        return str(v)
    if isinstance(v, float):
        if v != v:
            return ".nan"
        if v in (float("inf"), float("-inf")):
            return ".inf" if v > 0 else "-.inf"
        return repr(v)
    return json.dumps(v, ensure_ascii=False)


def yaml_emit(v, indent=0):
    pad = " " * indent
    lines = []
    if isinstance(v, M):
        if not v.items:
            return ["{}"]
        for it in v.items:
            if isinstance(it, C):
                lines.append(pad + "#" + it.text)
                continue
            k, x = it
            key = json.dumps(k, ensure_ascii=False)
            if isinstance(x, (M, L)) and x.items:
                lines.append(pad + key + ":")
                lines += yaml_emit(x, indent + 4)
            elif isinstance(x, str) and "\n" in x and x.startswith("-----BEGIN"):
                lines.append(pad + key + ": |")
                lines += [pad + "    " + l for l in x.rstrip("\n").split("\n")]
            else:
                lines.append(pad + key + ": " + (yaml_emit(x)[0] if isinstance(x, (M, L)) else yaml_scalar(x)))
        return lines
    if isinstance(v, L):
        if not v.items:
            return ["[]"]
        for x in v.items:
            if isinstance(x, C):
                lines.append(pad + "#" + x.text)
            elif isinstance(x, (M, L)) and x.items:
                sub = yaml_emit(x, indent + 2)
                lines.append(pad + "- " + sub[0].lstrip())
                lines += sub[1:]
            else:
                lines.append(pad + "- " + (yaml_emit(x)[0] if isinstance(x, (M, L)) else yaml_scalar(x)))
        return lines
    return [yaml_scalar(v)]


def json_value(v):
    if isinstance(v, M):
        return "{" + ", ".join(json.dumps(k) + ": " + json_value(x) for k, x in (i for i in v.items if not isinstance(i, C))) + "}"
    if isinstance(v, L):
        return "[" + ", ".join(json_value(x) for x in v.items if not isinstance(x, C)) + "]"
    if isinstance(v, float):
        return repr(v)
    return json.dumps(v)


def flatten(v, prefix, out):
    """sops flattenTreeBranch: a__map_b, a__list_0."""
    if isinstance(v, M):
        for k, x in (i for i in v.items if not isinstance(i, C)):
            flatten(x, prefix + "__map_" + k if prefix else k, out)
    elif isinstance(v, L):
        for i, x in enumerate(y for y in v.items if not isinstance(y, C)):
            flatten(x, prefix + "__list_" + str(i), out)
    else:
        out.append((prefix, v))


def go_val_to_string(v):
    if isinstance(v, bool):
        return "true" if v else "false"
    return str(v)


def emit(fmt, tree, md):
    """tree: encrypted M (for yaml: a list of documents)."""
    if fmt == "yaml":
        docs = tree if isinstance(tree, list) else [tree]
        out = []
        for d in docs:
            out.append("\n".join(yaml_emit(M(d.items + [("sops", md)]))) + "\n")
        return "---\n".join(out).encode()
    if fmt in ("json", "binary"):
        return (json_value(M(tree.items + [("sops", md)])) + "\n").encode()
    if fmt == "dotenv":
        lines = []
        for it in tree.items:
            if isinstance(it, C):
                lines.append("#" + it.text)
            else:
                k, x = it
                lines.append(k + "=" + (x.replace("\n", "\\n") if isinstance(x, str) else go_val_to_string(x)))
        flat = []
        flatten(md, "", flat)
        for k, x in flat:
            lines.append("sops_" + k + "=" + (x.replace("\n", "\\n") if isinstance(x, str) else go_val_to_string(x)))
        return ("\n".join(lines) + "\n").encode()
    if fmt == "ini":
        out = []
        flat = []
        flatten(md, "", flat)
        sections = tree.items + [("sops", M([(k, x.replace("\n", "\\n") if isinstance(x, str) else go_val_to_string(x)) for k, x in flat]))]
        for name, sec in sections:
            items = list(sec.items)
            if items and isinstance(items[0], C):
                out.append("; " + items.pop(0).text)
            if name != "DEFAULT":
                out.append("[" + name + "]")
            pending = None
            for it in items:
                if isinstance(it, C):
                    pending = it.text
                    continue
                k, x = it
                if pending is not None:
                    out.append("; " + pending)
                    pending = None
                x = x if isinstance(x, str) else go_val_to_string(x)
                if "\n" in x or "`" in x:
                    x = '"""' + x + '"""'
                elif "#" in x or ";" in x:
                    x = "`" + x + "`"
                elif x.strip() != x:
                    x = '"' + x + '"'
                out.append(k + " = " + x)
            out.append("")
        return "\n".join(out).encode()
    raise ValueError(fmt)


def encrypt_file(fmt, plain, groups, threshold=0, rule=None, moe=False, lastmodified="2026-11-30T12:00:00Z", key=None):
    """Encrypt a plaintext tree (yaml: M or list of M documents) to sops file bytes."""
    key = key or os.urandom(32)
    rule = rule or Rule()
    e = Encryptor(key, rule, moe)
    if isinstance(plain, list):
        tree = [e.branch(d, [], []) for d in plain]
    else:
        tree = e.branch(plain, [], [])
    mac_enc = enc_value(key, e.mac().encode(), "str", lastmodified)
    md = metadata(key, groups, threshold, lastmodified, mac_enc, rule, moe)
    return emit(fmt, tree, md), key


# ---------------------------------------------------------------------------------------------
# The expected plaintext, in the JSON shape the Rust test builds from a decrypted document.

def expect(v, fmt):
    if isinstance(v, M):
        items = []
        for it in v.items:
            if isinstance(it, C):
                if fmt in ("dotenv", "ini"):
                    items.append(["#", it.text])
                continue
            items.append([it[0], expect(it[1], fmt)])
        return {"map": items}
    if isinstance(v, L):
        return {"list": [expect(x, fmt) for x in v.items if not isinstance(x, C)]}
    if v is None:
        return None
    if isinstance(v, bool):
        return {"bool": v}
    if isinstance(v, int):
        return {"int": v}
    if isinstance(v, float):
        return {"float": go_float(v)}
    if isinstance(v, bytes):
        try:
            return {"str": v.decode()}
        except UnicodeDecodeError:
            return {"bytes": v.hex()}
    return {"str": v}


# ---------------------------------------------------------------------------------------------

def check_real(d):
    """Reproduce ciphertexts and the MAC of the real sops files from their data key."""
    def data_key(path, identity):
        text = open(path).read()
        for block in re.findall(r"-----BEGIN AGE ENCRYPTED FILE-----.*?-----END AGE ENCRYPTED FILE-----", text, re.S):
            armored = "\n".join(l.strip() for l in block.split("\n")) + "\n"
            r = subprocess.run(["age", "-d", "-i", identity], input=armored.encode(), capture_output=True)
            if r.returncode == 0:
                return r.stdout, text
        raise SystemExit("%s: no age stanza opens with %s" % (path, identity))

    def iv_of(enc):
        return base64.b64decode(re.search(r"iv:([^,]+),", enc).group(1))

    failures = 0
    cases = [
        ("secrets.yaml", "age-keys.txt",
         M([("test_key", "test_value"), ("a_list", L(["e1", "e3"])),
            ("nested", M([("test", M([("file", "another value")]))]))])),
        ("secrets-native-ssh.yaml", "ssh-ed25519-key", M([("test_key", "test_value")])),
    ]
    for name, identity, plain in cases:
        key, text = data_key(os.path.join(d, name), os.path.join(d, identity))
        assert len(key) == 32, name
        # Every ENC value of the file, reproduced from the plaintext with the file's IV.
        encs = re.findall(r"^\s*(?:([\w]+):|-) (ENC\[[^\]]+\])$", text, re.M)
        lastmodified = re.search(r'lastmodified: "([^"]+)"', text).group(1)
        e = Encryptor(key, Rule(), False)
        leaves = []

        def walk(v, path):
            if isinstance(v, M):
                for k, x in v.items:
                    walk(x, path + [k])
            elif isinstance(v, L):
                for x in v.items:
                    walk(x, path)
            else:
                leaves.append((v, path))
        walk(plain, [])
        value_encs = [x[1] for x in encs if x[0] != "mac"]
        mac_enc = [x[1] for x in encs if x[0] == "mac"][0]
        for (v, path), enc in zip(leaves, value_encs):
            mine = enc_value(key, to_bytes(v), type_of(v), ":".join(path) + ":", iv_of(enc))
            if mine != enc:
                print("%s %s: ciphertext differs" % (name, "/".join(path)))
                failures += 1
        e.branch(plain, [], [])
        mine = enc_value(key, e.mac().encode(), "str", lastmodified, iv_of(mac_enc))
        if mine != mac_enc:
            print("%s: MAC differs" % name)
            failures += 1
        else:
            print("%s: %d values and the MAC reproduced byte for byte" % (name, len(leaves)))
    return failures


def generate(out):
    os.makedirs(out, exist_ok=True)
    p = lambda n: os.path.join(out, n)

    def keygen(name):
        r = subprocess.run(["age-keygen", "-o", p(name)], capture_output=True, check=True)
        return re.search(r"age1\w+", r.stderr.decode()).group(0)

    def sshkeygen(name, t, bits=None):
        args = ["ssh-keygen", "-q", "-t", t, "-N", "", "-C", "test", "-f", p(name)]
        if bits:
            args += ["-b", str(bits)]
        subprocess.run(args, check=True)
        return open(p(name) + ".pub").read().strip().rsplit(" ", 1)[0]

    node = keygen("node.agekey")
    other = keygen("other.agekey")
    g2 = keygen("group2.agekey")
    ed = sshkeygen("host_ed25519", "ed25519")
    rsa = sshkeygen("host_rsa", "rsa", 2048)
    ed_as_age = ssh_to_age_recipient(p("host_ed25519"))

    rich = M([
        C(" a comment, encrypted"),
        ("str", "hello"),
        ("empty", ""),
        ("multiline", "line 1\nline 2\n"),
        ("int", 42),
        ("negative", -7),
        ("float", 0.1),
        ("big_float", 1e21),
        ("neg_float", -2.5),
        ("yes", True),
        ("no", False),
        ("nothing", None),
        ("clé", "unicode ключ 日本"),
        ("日本語", "キー"),
        ("nested", M([("deeper", M([("leaf", "x"), ("n", 1)])), C(" inner comment"), ("list", L(["a", C(" in a list"), 2, L(["x", "y"]), M([("k", "v")])]))])),
        ("port_unencrypted", 8080),
        ("flag_unencrypted", True),
        ("ratio_unencrypted", 1.5),
        ("name_unencrypted", "plain text"),
    ])
    flat = M([C(" top comment"), ("hello", "world"), ("multi", "a\nb"), ("spaces", "  padded  "),
              ("unicode", "ключ"), ("k_unencrypted", "clear"), ("empty", "")])
    ini_tree = M([
        ("DEFAULT", M([("top", "t")])),
        ("first", M([C(" about first"), ("a", "1"), ("b", "two words"), ("c_unencrypted", "clear")])),
        ("second", M([("x", "ключ"), ("multi", "l1\nl2")])),
    ])
    binary = bytes(range(256)) + b"\xff\xfe not utf-8"

    cases = []

    def add(name, fmt, plain, groups, ids, threshold=0, rule=None, moe=False, mutate=None, error=None, expect_tree=None):
        data, _ = encrypt_file(fmt, plain, groups, threshold, rule, moe)
        if mutate:
            data = mutate(data)
        open(p(name), "wb").write(data)
        case = {"file": name, "format": fmt, "identities": ids}
        if error:
            case["error"] = error
        else:
            if fmt == "binary":
                case["binary"] = (plain.items[0][1]).hex()
            else:
                docs = plain if isinstance(plain, list) else [plain]
                case["expect"] = [expect(d, fmt)["map"] for d in (expect_tree or docs)]
        cases.append(case)
        return data

    add("rich.yaml", "yaml", rich, [[node]], ["node.agekey"])
    add("rich.json", "json", rich, [[ed]], ["host_ed25519"])
    add("multi-doc.yaml", "yaml", [M([("a", "1")]), M([("b", L([1, 2]))])], [[node]], ["node.agekey"])
    add("data.bin", "binary", M([("data", binary)]), [[rsa]], ["host_rsa"])
    add("flat.env", "dotenv", flat, [[ed_as_age]], ["host_ed25519"])
    add("sections.ini", "ini", ini_tree, [[node]], ["node.agekey"])
    add("moe.yaml", "yaml", rich, [[node]], ["node.agekey"], moe=True)
    add("encrypted-regex.yaml", "yaml",
        M([("apiVersion", "v1"), ("data", M([("password", "s3cret"), ("n", 3)])), ("stringData", M([("token", "t")]))]),
        [[node]], ["node.agekey"], rule=Rule("encrypted_regex", "^(data|stringData)$"))
    add("encrypted-suffix.json", "json", M([("user", "u"), ("pw_enc", "p"), ("list_enc", L([1, True]))]),
        [[node]], ["node.agekey"], rule=Rule("encrypted_suffix", "_enc"))
    add("comment-rule.env", "dotenv", M([C("sops:enc"), ("a", "secret"), ("b", "clear")]),
        [[node]], ["node.agekey"], rule=Rule("encrypted_comment_regex", "sops:enc"))
    add("shamir.yaml", "yaml", rich, [[other], [node], [g2]], ["node.agekey", "group2.agekey"], threshold=2)
    add("shamir.env", "dotenv", flat, [[node, other], [g2], [other]], ["node.agekey", "group2.agekey"], threshold=2)
    add("shamir-short.yaml", "yaml", rich, [[other], [node], [g2]], ["node.agekey"], threshold=2,
        error={"kind": "key", "contains": "1 of the 2 key groups"})
    add("other-recipient.yaml", "yaml", rich, [[other]], ["node.agekey"],
        error={"kind": "key", "contains": "match none of our identities"})

    def flip_value(field):
        def f(data):
            text = data.decode()
            m = re.search(r"%s\W+ENC\[AES256_GCM,data:([^,]+)," % re.escape(field), text)
            raw = bytearray(base64.b64decode(m.group(1)))
            raw[0] ^= 1
            return (text[:m.start(1)] + base64.b64encode(bytes(raw)).decode() + text[m.end(1):]).encode()
        return f

    def swap(a, b):
        def f(data):
            text = data.decode()
            ma = re.search(r'("%s": ")(ENC\[[^\]]+\])' % a, text)
            mb = re.search(r'("%s": ")(ENC\[[^\]]+\])' % b, text)
            ea, eb = ma.group(2), mb.group(2)
            return text.replace(ea, "\0").replace(eb, ea).replace("\0", eb).encode()
        return f

    def sub(pattern, repl, count=1):
        return lambda data: re.sub(pattern.encode(), repl.encode(), data, count=count)

    add("flipped.yaml", "yaml", rich, [[node]], ["node.agekey"], mutate=flip_value('"int"'),
        error={"kind": "value", "at": "int", "contains": "authentication failed"})
    add("flipped.ini", "ini", ini_tree, [[node]], ["node.agekey"], mutate=flip_value("b ="),
        error={"kind": "value", "at": "first/b", "contains": "authentication failed"})
    add("moved.json", "json", rich, [[node]], ["node.agekey"], mutate=swap("str", "multiline"),
        error={"kind": "value", "at": "str", "contains": "authentication failed"})
    add("unencrypted-changed.yaml", "yaml", rich, [[node]], ["node.agekey"],
        mutate=sub(r'"port_unencrypted": 8080', '"port_unencrypted": 8081'),
        error={"kind": "mac", "contains": "MAC mismatch"})
    add("key-added.json", "json", rich, [[node]], ["node.agekey"],
        mutate=sub(r'\{"str"', '{"extra_unencrypted": "x", "str"'),
        error={"kind": "mac", "contains": "MAC mismatch"})
    add("list-reordered.yaml", "yaml", M([("l", L(["first", "second"]))]), [[node]], ["node.agekey"],
        mutate=lambda d: re.sub(rb'(- "ENC\[[^\]]+\]")\n(\s+)(- "ENC\[[^\]]+\]")', rb"\3\n\2\1", d),
        error={"kind": "mac", "contains": "MAC mismatch"})
    add("lastmodified-changed.env", "dotenv", flat, [[node]], ["node.agekey"],
        mutate=sub(r"sops_lastmodified=2026", "sops_lastmodified=2027"),
        error={"kind": "mac", "contains": "cannot open the MAC"})
    add("plaintext-injected.yaml", "yaml", rich, [[node]], ["node.agekey"],
        mutate=sub(r'"negative": "ENC\[[^\]]+\]"', '"negative": -8'),
        error={"kind": "value", "at": "negative", "contains": "plaintext integer"})
    add("mac-removed.json", "json", rich, [[node]], ["node.agekey"],
        mutate=sub(r'"mac": "ENC\[[^\]]+\]"', '"mac": ""'),
        error={"kind": "mac", "contains": "MAC mismatch"})

    # A wrong MAC: the right data key, but the MAC of other values.
    def wrong_mac(data):
        text = data.decode()
        lm = re.search(r'"lastmodified": "([^"]+)"', text).group(1)
        key = KEYS["wrong-mac.yaml"]
        fake = enc_value(key, hashlib.sha512(b"something else").hexdigest().upper().encode(), "str", lm)
        return re.sub(r'"mac": "ENC\[[^\]]+\]"', '"mac": "%s"' % fake, text).encode()
    KEYS["wrong-mac.yaml"] = os.urandom(32)
    data, _ = encrypt_file("yaml", rich, [[node]], key=KEYS["wrong-mac.yaml"])
    open(p("wrong-mac.yaml"), "wb").write(wrong_mac(data))
    cases.append({"file": "wrong-mac.yaml", "format": "yaml", "identities": ["node.agekey"],
                  "error": {"kind": "mac", "contains": "MAC mismatch"}})

    json.dump({"cases": cases, "ssh_to_age": {"host_ed25519": ed_as_age}}, open(p("cases.json"), "w"), indent=1)
    print("%d cases in %s" % (len(cases), out))


KEYS = {}

if __name__ == "__main__":
    if len(sys.argv) != 3 or sys.argv[1] not in ("check-real", "generate"):
        sys.exit(__doc__)
    if sys.argv[1] == "check-real":
        sys.exit(1 if check_real(sys.argv[2]) else 0)
    generate(sys.argv[2])
