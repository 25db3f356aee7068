"""Check a Ketenpoort inclusion proof with nothing but `cryptography` and the standard library.

Usage: python check_proof.py PROOF.json LOG_PUBLIC_KEY.pem   (prints "ok" or exits 1)
Format: docs/accountability-log.md. Hashes: RFC 9162; checkpoint: C2SP signed note, Ed25519.
"""

import base64
import hashlib
import json
import sys

from cryptography.hazmat.primitives import serialization as ser

proof, pem = json.load(open(sys.argv[1])), open(sys.argv[2], "rb").read()  # noqa: SIM115
key = ser.load_pem_public_key(pem)
text, sigs = proof["checkpoint"].split("\n\n", 1)
origin, size, root = text.split("\n")[:3]
raw = key.public_bytes(ser.Encoding.Raw, ser.PublicFormat.Raw)
key_hash = hashlib.sha256(origin.encode() + b"\n\x01" + raw).digest()[:4]
blobs = [base64.b64decode(line.rsplit(" ", 1)[1]) for line in sigs.splitlines()]
signed = [b for b in blobs if b[:4] == key_hash]
key.verify(signed[0][4:], (text + "\n").encode())  # raises InvalidSignature if forged
h = lambda *parts: hashlib.sha256(b"".join(parts)).digest()  # noqa: E731
index = proof["leaf_index"]  # step 1: the leaf lies inside the signed tree, at its seq
ok = 0 <= index < int(size) == proof["tree_size"] and proof["seq"] == index + 1
node, fn, sn = h(b"\x00", proof["record"].encode()), index, int(size) - 1
for p in map(bytes.fromhex, proof["path"]):  # RFC 9162 section 2.1.3.2
    ok = ok and sn != 0  # step 4a: a path longer than the tree is high fails
    if fn & 1 or fn == sn:
        node = h(b"\x01", p, node)
        while fn and not fn & 1:
            fn, sn = fn >> 1, sn >> 1
    else:
        node = h(b"\x01", node, p)
    fn, sn = fn >> 1, sn >> 1
ok = ok and sn == 0 and node == base64.b64decode(root)
print("ok" if ok else "proof does NOT check")
sys.exit(0 if ok else 1)
