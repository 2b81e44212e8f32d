# Wrote cosign.key (password "berth-test") and cosign.pub here, in the layout of cosign's
# generate-key-pair, with implementations other than Berth's: PyNaCl's secretbox (Debian
# python3-nacl, libsodium), Python's hashlib.scrypt and pyca/cryptography's P-256 keys.
# Run with /usr/bin/python3 in this folder; ImageSigningKeysTest reads the result.
import base64, hashlib, json, os
import nacl.secret
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives import serialization
key = ec.generate_private_key(ec.SECP256R1())
der = key.private_bytes(serialization.Encoding.DER, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
pub = key.public_key().public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
password = b"berth-test"
salt = os.urandom(32)
n, r, p = 32768, 8, 1
k = hashlib.scrypt(password, salt=salt, n=n, r=r, p=p, dklen=32, maxmem=64*1024*1024)
nonce = os.urandom(24)
box = nacl.secret.SecretBox(k).encrypt(der, nonce)
ct = box.ciphertext  # tag || ciphertext
doc = {"kdf": {"name": "scrypt", "params": {"N": n, "r": r, "p": p}, "salt": base64.b64encode(salt).decode()},
       "cipher": {"name": "nacl/secretbox", "nonce": base64.b64encode(nonce).decode()},
       "ciphertext": base64.b64encode(ct).decode()}
body = base64.b64encode(json.dumps(doc, separators=(",", ":")).encode()).decode()
lines = [body[i:i+64] for i in range(0, len(body), 64)]
open("cosign.key", "w").write("-----BEGIN ENCRYPTED SIGSTORE PRIVATE KEY-----\n" + "\n".join(lines) + "\n-----END ENCRYPTED SIGSTORE PRIVATE KEY-----\n")
open("cosign.pub", "wb").write(pub)
