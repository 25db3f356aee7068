// Checks the sealed-answer test vectors (sealed-answer-v1.json, sealed-answer-v2.json) with an
// HPKE implementation that shares no code with the gateway's: @hpke/core for the key schedule,
// @hpke/dhkem-x25519 (noble-curves X25519) for the KEM and @hpke/chacha20poly1305
// (noble-ciphers) for the AEAD. The `info` bytes and key ids are computed here from
// docs/sealed-answers.md, not read from the file, and then compared with it. The file's
// format_version says which construction it holds: version 1 (disclosure records bound to
// disclosure id, recipient, purpose and key id) or version 2 (records and triage answers,
// bound also to the case id and the request nonce).
//
//   node open_sealed_vectors.mjs --modules DIR [--vectors FILE] [--challenge HEX]
//
// DIR is a directory where `npm ci` was run on tests/vectors/node/package.json (default:
// tests/vectors/node). With --challenge, the challenge bytes are also sealed to the first
// case's key, so the caller can show that a message it chose was sealed here.
//
// Prints one JSON object: per case whether it opened to the expected plaintext, per negative
// whether it was refused, and fresh ciphertexts sealed here for the caller to open. Exits 0
// only when every check holds.

import { createHash, createPrivateKey, createPublicKey } from "node:crypto";
import { readFileSync } from "node:fs";
import { createRequire } from "node:module";
import { dirname, join } from "node:path";
import { fileURLToPath, pathToFileURL } from "node:url";
import { parseArgs } from "node:util";

const HERE = dirname(fileURLToPath(import.meta.url));
const SUITE_NAME = "DHKEM(X25519, HKDF-SHA256)/HKDF-SHA256/ChaCha20Poly1305";
// The labels of docs/sealed-answers.md, per format version and kind of answer.
const INFO_LABELS = {
  1: { record: "ketenpoort/v1 sealed-record" },
  2: { record: "ketenpoort/v2 sealed-record", triage: "ketenpoort/v2 sealed-triage" },
};
const ENC_LENGTH = 32;
const TAG_LENGTH = 16;
// PKCS#8 wrapping of a raw X25519 private key (RFC 8410), to let node:crypto derive the
// public key as a cross-check of the file's recipient_public_key.
const X25519_PKCS8_PREFIX = Buffer.from("302e020100300506032b656e04220420", "hex");
const PACKAGES = ["@hpke/core", "@hpke/dhkem-x25519", "@hpke/chacha20poly1305"];

const { values: args } = parseArgs({
  options: {
    modules: { type: "string", default: join(HERE, "node") },
    vectors: { type: "string", default: join(HERE, "sealed-answer-v1.json") },
    challenge: { type: "string" },
  },
});

// The packages live outside the repository, so resolve them from DIR rather than from here;
// each is loaded through its ESM entry point.
const requireFrom = createRequire(join(args.modules, "package.json"));
const manifestOf = (name) => {
  const path = requireFrom.resolve(`${name}/package.json`);
  return { path, manifest: JSON.parse(readFileSync(path, "utf8")) };
};
const load = (name) => {
  const { path, manifest } = manifestOf(name);
  return import(pathToFileURL(join(dirname(path), manifest.exports["."].import)).href);
};
const versionOf = (name) => manifestOf(name).manifest.version;

const [{ CipherSuite, HkdfSha256, KemId, KdfId, AeadId }, { DhkemX25519HkdfSha256 }, {
  Chacha20Poly1305,
}] = await Promise.all(PACKAGES.map(load));

const suite = new CipherSuite({
  kem: new DhkemX25519HkdfSha256(),
  kdf: new HkdfSha256(),
  aead: new Chacha20Poly1305(),
});

const hex = (bytes) => Buffer.from(bytes).toString("hex");
const unhex = (text) => new Uint8Array(Buffer.from(text, "hex"));
const utf8 = (text) => new TextEncoder().encode(text);
const equal = (a, b) => Buffer.compare(Buffer.from(a), Buffer.from(b)) === 0;

function lengthPrefixed(label, parts) {
  const chunks = [utf8(label)];
  for (const part of parts) {
    // Strings as their UTF-8 bytes, as given; byte strings (the nonce) as they are.
    const bytes = typeof part === "string" ? utf8(part) : part;
    const length = new Uint8Array(4);
    new DataView(length.buffer).setUint32(0, bytes.length, false);
    chunks.push(length, bytes);
  }
  return Buffer.concat(chunks);
}

// Version 1 vectors have no `kind`: they are all disclosure records.
const kindOf = (vector) => vector.kind ?? "record";

function info(version, kind, binding, keyId) {
  const parts = [
    String(version),
    kind === "record" ? binding.disclosure_id : binding.triage_id,
    binding.recipient_id,
    binding.purpose,
    keyId,
  ];
  if (version === 2) parts.push(binding.case_id, unhex(binding.request_nonce));
  return lengthPrefixed(INFO_LABELS[version][kind], parts);
}

function publicKeyOf(privateKey) {
  const key = createPrivateKey({
    key: Buffer.concat([X25519_PKCS8_PREFIX, Buffer.from(privateKey)]),
    format: "der",
    type: "pkcs8",
  });
  return new Uint8Array(Buffer.from(createPublicKey(key).export({ format: "jwk" }).x, "base64url"));
}

function keyIdOf(publicKey) {
  return "k_" + createHash("sha256").update(publicKey).digest("hex").slice(0, 16);
}

// The opener of docs/sealed-answers.md: format checks first, then HPKE with the `info` it
// computes from its own key and expectations. Returns the plaintext, or throws.
// The opener expects exactly the version of the file: a client that sent a nonce accepts
// only version 2, and one that did not can only open version 1.
async function openSealed(sealed, privateKeyBytes, kind, binding) {
  const keyId = keyIdOf(publicKeyOf(privateKeyBytes));
  const data = unhex(sealed.ciphertext);
  if (
    sealed.format_version !== FORMAT_VERSION ||
    sealed.suite !== SUITE_NAME ||
    sealed.recipient_key_id !== keyId ||
    data.length < ENC_LENGTH + TAG_LENGTH
  ) {
    throw Object.assign(new Error("refused before decryption"), { stage: "format" });
  }
  const recipientKey = await suite.kem.importKey("raw", privateKeyBytes.slice().buffer, false);
  try {
    const plaintext = await suite.open(
      {
        recipientKey,
        enc: data.slice(0, ENC_LENGTH).buffer,
        info: info(FORMAT_VERSION, kind, binding, keyId),
      },
      data.slice(ENC_LENGTH).buffer,
    );
    return new Uint8Array(plaintext);
  } catch (error) {
    throw Object.assign(new Error(error.name || "open failed"), { stage: "hpke" });
  }
}

async function checkCase(vector) {
  const privateKey = unhex(vector.recipient_private_key);
  const publicKey = publicKeyOf(privateKey);
  const keyId = keyIdOf(publicKey);
  const result = {
    name: vector.name,
    public_key_ok: hex(publicKey) === vector.recipient_public_key,
    key_id_ok: keyId === vector.recipient_key_id && keyId === vector.sealed.recipient_key_id,
    info_ok: hex(info(FORMAT_VERSION, kindOf(vector), vector.binding, keyId)) === vector.info,
    opened: false,
    plaintext_ok: false,
    error: null,
  };
  try {
    const plaintext = await openSealed(vector.sealed, privateKey, kindOf(vector), vector.binding);
    result.opened = true;
    result.plaintext_ok = equal(plaintext, unhex(vector.plaintext));
  } catch (error) {
    result.error = `${error.stage}: ${error.message}`;
  }
  return result;
}

async function checkNegative(vector) {
  const privateKey = unhex(vector.recipient_private_key);
  const keyId = keyIdOf(publicKeyOf(privateKey));
  const result = {
    name: vector.name,
    info_ok: hex(info(FORMAT_VERSION, kindOf(vector), vector.binding, keyId)) === vector.info,
    refused: false,
    stage: null,
    stage_ok: false,
  };
  try {
    await openSealed(vector.sealed, privateKey, kindOf(vector), vector.binding);
  } catch (error) {
    result.refused = true;
    result.stage = error.stage;
  }
  // A negative the file marks "hpke" passes every format check: HPKE itself must refuse it.
  result.stage_ok = result.stage === vector.refused_by;
  return result;
}

// Seals with the same construction the gateway uses, for the caller to open with its own
// opener: HPKE enc || ct, `info` from the binding and the recipient's key id, empty aad.
async function sealTo(vector, plaintext) {
  const publicKey = unhex(vector.recipient_public_key);
  const keyId = keyIdOf(publicKey);
  const recipientPublicKey = await suite.kem.importKey("raw", publicKey.slice().buffer, true);
  const { enc, ct } = await suite.seal(
    { recipientPublicKey, info: info(FORMAT_VERSION, kindOf(vector), vector.binding, keyId) },
    plaintext.slice().buffer,
  );
  return {
    case: vector.name,
    kind: kindOf(vector),
    format_version: FORMAT_VERSION,
    suite: SUITE_NAME,
    recipient_key_id: keyId,
    plaintext: hex(plaintext),
    ciphertext: hex(new Uint8Array(enc)) + hex(new Uint8Array(ct)),
  };
}

const document = JSON.parse(readFileSync(args.vectors, "utf8"));
const FORMAT_VERSION = document.format_version;
const suiteIds = document.suite;
const labelsOk =
  FORMAT_VERSION === 1
    ? document.info_label === INFO_LABELS[1].record
    : JSON.stringify(document.info_labels) === JSON.stringify(INFO_LABELS[FORMAT_VERSION]);
const suiteOk =
  FORMAT_VERSION in INFO_LABELS &&
  suiteIds.name === SUITE_NAME &&
  suiteIds.kem_id === KemId.DhkemX25519HkdfSha256 &&
  suiteIds.kdf_id === KdfId.HkdfSha256 &&
  suiteIds.aead_id === AeadId.Chacha20Poly1305 &&
  labelsOk;

const cases = [];
for (const vector of document.cases) cases.push(await checkCase(vector));
const negatives = [];
for (const vector of document.negatives) negatives.push(await checkNegative(vector));

const sealed = [];
for (const vector of document.cases) sealed.push(await sealTo(vector, unhex(vector.plaintext)));
if (args.challenge !== undefined) {
  sealed.push({ ...(await sealTo(document.cases[0], unhex(args.challenge))), challenge: true });
}
// What this implementation seals, it must also open (the caller checks the other direction).
const sealedOwnOk = [];
for (const [index, box] of sealed.entries()) {
  const vector = document.cases[box.challenge ? 0 : index];
  const opened = await openSealed(
    box, unhex(vector.recipient_private_key), kindOf(vector), vector.binding,
  );
  sealedOwnOk.push(equal(opened, unhex(box.plaintext)));
}

const ok =
  suiteOk &&
  cases.length > 0 &&
  cases.every((c) => c.public_key_ok && c.key_id_ok && c.info_ok && c.plaintext_ok) &&
  negatives.length > 0 &&
  negatives.every((n) => n.info_ok && n.refused && n.stage_ok) &&
  sealedOwnOk.every(Boolean);

process.stdout.write(
  JSON.stringify(
    {
      ok,
      implementation: {
        node: process.version,
        packages: Object.fromEntries(PACKAGES.map((name) => [name, versionOf(name)])),
      },
      suite_ok: suiteOk,
      cases,
      negatives,
      sealed,
    },
    null,
    2,
  ) + "\n",
);
process.exitCode = ok ? 0 : 1;
