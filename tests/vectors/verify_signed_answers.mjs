// Checks the signed-source-answer vectors (signed-source-answer-v2.json) with code that shares
// nothing with the gateway's: node:crypto for Ed25519 and ES256 signatures and key ids,
// @hpke/core with @hpke/dhkem-x25519 and @hpke/chacha20poly1305 for the sealed box. The signed
// statement and the HPKE `info` are computed here from docs/sealed-answers.md ("Signed source
// answers"), not read from the file, and then compared with it.
//
//   node verify_signed_answers.mjs --modules DIR [--vectors FILE]
//
// DIR holds the packages of tests/vectors/node/package.json (`npm ci`). Prints one JSON object:
// per case whether its statement, info and key id match, its signature verifies and its box
// opens to the plaintext; per negative whether it was refused and at which stage; and, per
// case, a fresh answer sealed and signed here for the caller to check. Exits 0 only when
// every check holds.

import {
  createHash,
  createPrivateKey,
  createPublicKey,
  sign as signWith,
  verify as verifyWith,
} from "node:crypto";
import { readFileSync } from "node:fs";
import { createRequire } from "node:module";
import { dirname, join } from "node:path";
import { fileURLToPath, pathToFileURL } from "node:url";
import { parseArgs } from "node:util";

const HERE = dirname(fileURLToPath(import.meta.url));
const FORMAT_VERSION = 2;
const SUITE_NAME = "DHKEM(X25519, HKDF-SHA256)/HKDF-SHA256/ChaCha20Poly1305";
const INFO_LABEL = "ketenpoort/v1 sealed-submission";
const SIGNATURE_LABEL = "ketenpoort/v2 signed-source-answer";
const ENC_LENGTH = 32;
const TAG_LENGTH = 16;
const X25519_PKCS8_PREFIX = Buffer.from("302e020100300506032b656e04220420", "hex");
const ED25519_PKCS8_PREFIX = Buffer.from("302e020100300506032b657004220420", "hex");
const PACKAGES = ["@hpke/core", "@hpke/dhkem-x25519", "@hpke/chacha20poly1305"];

const { values: args } = parseArgs({
  options: {
    modules: { type: "string", default: join(HERE, "node") },
    vectors: { type: "string", default: join(HERE, "signed-source-answer-v2.json") },
  },
});

const requireFrom = createRequire(join(args.modules, "package.json"));
const load = (name) => {
  const path = requireFrom.resolve(`${name}/package.json`);
  const manifest = JSON.parse(readFileSync(path, "utf8"));
  return import(pathToFileURL(join(dirname(path), manifest.exports["."].import)).href);
};
const [{ CipherSuite, HkdfSha256 }, { DhkemX25519HkdfSha256 }, { Chacha20Poly1305 }] =
  await Promise.all(PACKAGES.map(load));
const suite = new CipherSuite({
  kem: new DhkemX25519HkdfSha256(),
  kdf: new HkdfSha256(),
  aead: new Chacha20Poly1305(),
});

const hex = (bytes) => Buffer.from(bytes).toString("hex");
const unhex = (text) => new Uint8Array(Buffer.from(text, "hex"));
const utf8 = (text) => new TextEncoder().encode(text);

function lengthPrefixed(label, parts) {
  const chunks = [utf8(label)];
  for (const part of parts) {
    const bytes = typeof part === "string" ? utf8(part) : part;
    const length = new Uint8Array(4);
    new DataView(length.buffer).setUint32(0, bytes.length, false);
    chunks.push(length, bytes);
  }
  return Buffer.concat(chunks);
}

const statementOf = (binding, sealed) =>
  lengthPrefixed(SIGNATURE_LABEL, [
    String(FORMAT_VERSION),
    binding.operation,
    binding.gateway_id,
    binding.source_id,
    binding.request_id,
    binding.reference,
    sealed.gateway_key_id,
    sealed.signer_key_id,
    unhex(sealed.ciphertext),
  ]);

const infoOf = (binding, gatewayKeyId) =>
  lengthPrefixed(INFO_LABEL, [
    String(FORMAT_VERSION),
    binding.operation,
    binding.source_id,
    gatewayKeyId,
    binding.request_id,
  ]);

const publicKeyOf = (signer) => createPublicKey({ key: signer.public_jwk, format: "jwk" });

// Key ids as docs/sealed-answers.md and the registry compute them: SHA-256 over the raw key for
// Ed25519 and X25519, over the DER SubjectPublicKeyInfo for others; "k_" and 16 hex digits.
function keyIdOf(signer) {
  const material =
    signer.algorithm === "EdDSA"
      ? Buffer.from(signer.public_jwk.x, "base64url")
      : publicKeyOf(signer).export({ type: "spki", format: "der" });
  return "k_" + createHash("sha256").update(material).digest("hex").slice(0, 16);
}

function privateKeyOf(signer) {
  if (signer.algorithm === "EdDSA") {
    return createPrivateKey({
      key: Buffer.concat([ED25519_PKCS8_PREFIX, Buffer.from(signer.private_key, "hex")]),
      format: "der",
      type: "pkcs8",
    });
  }
  const d = Buffer.from(signer.private_key, "hex").toString("base64url");
  return createPrivateKey({ key: { ...signer.public_jwk, d }, format: "jwk" });
}

// Ed25519 takes no digest; ES256 is ECDSA P-256 with SHA-256, signatures as r || s.
const digestOf = (signer) => (signer.algorithm === "EdDSA" ? null : "sha256");
const signatureVerifies = (signer, statement, signature) =>
  verifyWith(
    digestOf(signer),
    statement,
    { key: publicKeyOf(signer), dsaEncoding: "ieee-p1363" },
    Buffer.from(signature),
  );

function x25519PublicOf(privateKey) {
  const key = createPrivateKey({
    key: Buffer.concat([X25519_PKCS8_PREFIX, Buffer.from(privateKey)]),
    format: "der",
    type: "pkcs8",
  });
  return new Uint8Array(Buffer.from(createPublicKey(key).export({ format: "jwk" }).x, "base64url"));
}

// What the gateway does with a source answer: format, signature, then HPKE. Throws with the
// stage that refused it.
async function accept(sealed, binding, signer, gatewayPrivate) {
  const data = unhex(sealed.ciphertext);
  if (
    sealed.format_version !== FORMAT_VERSION ||
    sealed.suite !== SUITE_NAME ||
    sealed.signer_key_id !== keyIdOf(signer) ||
    sealed.signature.length === 0 ||
    data.length < ENC_LENGTH + TAG_LENGTH
  ) {
    throw Object.assign(new Error("refused before verification"), { stage: "format" });
  }
  if (!signatureVerifies(signer, statementOf(binding, sealed), unhex(sealed.signature))) {
    throw Object.assign(new Error("signature"), { stage: "signature" });
  }
  const recipientKey = await suite.kem.importKey("raw", gatewayPrivate.slice().buffer, false);
  try {
    const plaintext = await suite.open(
      {
        recipientKey,
        enc: data.slice(0, ENC_LENGTH).buffer,
        info: infoOf(binding, sealed.gateway_key_id),
      },
      data.slice(ENC_LENGTH).buffer,
    );
    return new Uint8Array(plaintext);
  } catch (error) {
    throw Object.assign(new Error(error.name || "open failed"), { stage: "hpke" });
  }
}

async function sealAndSign(vector, gatewayPrivate, gatewayKeyId) {
  const recipientPublicKey = await suite.kem.importKey(
    "raw",
    x25519PublicOf(gatewayPrivate).slice().buffer,
    true,
  );
  const plaintext = unhex(vector.plaintext);
  const { enc, ct } = await suite.seal(
    { recipientPublicKey, info: infoOf(vector.binding, gatewayKeyId) },
    plaintext.slice().buffer,
  );
  const sealed = {
    format_version: FORMAT_VERSION,
    suite: SUITE_NAME,
    gateway_key_id: gatewayKeyId,
    ciphertext: hex(new Uint8Array(enc)) + hex(new Uint8Array(ct)),
    signer_key_id: keyIdOf(vector.signer),
    signature: "",
  };
  const statement = statementOf(vector.binding, sealed);
  sealed.signature = hex(
    signWith(digestOf(vector.signer), statement, {
      key: privateKeyOf(vector.signer),
      dsaEncoding: "ieee-p1363",
    }),
  );
  return { case: vector.name, sealed };
}

const document = JSON.parse(readFileSync(args.vectors, "utf8"));
const gatewayPrivate = unhex(document.gateway.private_key);
const gatewayKeyId =
  "k_" + createHash("sha256").update(x25519PublicOf(gatewayPrivate)).digest("hex").slice(0, 16);
const headerOk =
  document.format_version === FORMAT_VERSION &&
  document.suite === SUITE_NAME &&
  document.info_label === INFO_LABEL &&
  document.signature_label === SIGNATURE_LABEL &&
  document.gateway.key_id === gatewayKeyId;

const byName = Object.fromEntries(document.cases.map((c) => [c.name, c]));
const cases = [];
for (const vector of document.cases) {
  const result = {
    name: vector.name,
    key_id_ok: keyIdOf(vector.signer) === vector.signer.kid,
    statement_ok: hex(statementOf(vector.binding, vector.sealed)) === vector.statement,
    info_ok: hex(infoOf(vector.binding, vector.sealed.gateway_key_id)) === vector.info,
    accepted: false,
    plaintext_ok: false,
    error: null,
  };
  try {
    const plaintext = await accept(vector.sealed, vector.binding, vector.signer, gatewayPrivate);
    result.accepted = true;
    result.plaintext_ok = hex(plaintext) === vector.plaintext;
  } catch (error) {
    result.error = `${error.stage}: ${error.message}`;
  }
  cases.push(result);
}

const negatives = [];
for (const vector of document.negatives) {
  const signer = byName[vector.case].signer;
  const result = {
    name: vector.name,
    statement_ok: hex(statementOf(vector.binding, vector.sealed)) === vector.statement,
    refused: false,
    stage: null,
  };
  try {
    await accept(vector.sealed, vector.binding, signer, gatewayPrivate);
  } catch (error) {
    result.refused = true;
    result.stage = error.stage;
  }
  negatives.push(result);
}

const sealed = [];
for (const vector of document.cases) {
  sealed.push(await sealAndSign(vector, gatewayPrivate, gatewayKeyId));
}
const ownOk = [];
for (const box of sealed) {
  const vector = byName[box.case];
  const plaintext = await accept(box.sealed, vector.binding, vector.signer, gatewayPrivate);
  ownOk.push(hex(plaintext) === vector.plaintext);
}

const ok =
  headerOk &&
  cases.length > 0 &&
  cases.every((c) => c.key_id_ok && c.statement_ok && c.info_ok && c.plaintext_ok) &&
  negatives.length > 0 &&
  negatives.every((n) => n.statement_ok && n.refused) &&
  ownOk.every(Boolean);

process.stdout.write(
  JSON.stringify({ ok, header_ok: headerOk, cases, negatives, sealed }, null, 2) + "\n",
);
process.exitCode = ok ? 0 : 1;
