// The challenge–response that opens every cluster link (registry, mesh, worker links) before any protocol
// frame is taken. Both ends prove they hold a shared secret; the secret itself never travels:
//   listener → CHALLENGE  u8 0xA1 | u8 AUTH_VERSION | u8 kind | 32-byte listener nonce
//   dialer   → RESPONSE   u8 0xA2 | 32-byte dialer nonce | HMAC-SHA256(key, "connmix dialer" | kind | ln | dn)
//   listener → ACCEPT     u8 0xA3 | HMAC-SHA256(key, "connmix listener" | kind | ln | dn)
//           or DENY       u8 0xA4 | reason text, and the listener closes
// Fresh nonces on both sides make every proof single-use; the role and link kind in the MAC keep a proof
// from being replayed in the other direction or on another kind of port. Each side proves with the first of
// its keys and accepts a proof made with any of them, so a secret can be rotated without downtime.
import { createHmac, randomBytes, timingSafeEqual } from "node:crypto";

export const AUTH_VERSION = 1;
export const NONCE = 32;
const MAC = 32;

export const enum A {
  CHALLENGE = 0xa1,
  RESPONSE = 0xa2,
  ACCEPT = 0xa3,
  DENY = 0xa4,
}

/** What a port serves; a dialer that reaches the wrong kind of port learns it from the challenge. */
export const KINDS = { registry: 1, mesh: 2, worker: 3 } as const;
export type LinkKind = keyof typeof KINDS;
const kindName = (k: number) => (Object.keys(KINDS) as LinkKind[]).find((n) => KINDS[n] === k) ?? `kind ${k}`;

/**
 * The secrets a node proves with (the first) and accepts (any). With none configured the key is empty: the
 * handshake still runs (one code path), and the listeners take loopback peers only (protected mode).
 */
export class Keys {
  private list: Buffer[] = [];

  constructor(secrets: readonly string[]) {
    this.set(secrets);
  }

  /** Replaces the secrets (a hot config change); links already up stay up. */
  set(secrets: readonly string[]): void {
    this.list = secrets.length ? secrets.map((s) => Buffer.from(s, "utf8")) : [Buffer.alloc(0)];
  }

  /** True when no secret is configured. */
  get open(): boolean {
    return this.list[0]!.length === 0;
  }

  proof(role: "dialer" | "listener", kind: LinkKind, ln: Uint8Array, dn: Uint8Array): Buffer {
    return mac(this.list[0]!, role, kind, ln, dn);
  }

  accepts(got: Uint8Array, role: "dialer" | "listener", kind: LinkKind, ln: Uint8Array, dn: Uint8Array): boolean {
    if (got.length !== MAC) return false;
    let ok = false;
    for (const key of this.list) ok = timingSafeEqual(mac(key, role, kind, ln, dn), got) || ok;
    return ok;
  }
}

function mac(key: Buffer, role: string, kind: LinkKind, ln: Uint8Array, dn: Uint8Array): Buffer {
  return createHmac("sha256", key).update(`connmix ${role}\0${kind}\0`).update(ln).update(dn).digest();
}

export const nonce = (): Uint8Array => new Uint8Array(randomBytes(NONCE));

/** The listener's first frame. */
export function challenge(kind: LinkKind, ln: Uint8Array): Uint8Array {
  const f = new Uint8Array(3 + NONCE);
  f[0] = A.CHALLENGE;
  f[1] = AUTH_VERSION;
  f[2] = KINDS[kind];
  f.set(ln, 3);
  return f;
}

/** The dialer's answer to a challenge: [frame to send, listener nonce, dialer nonce], or an error text. */
export function respond(f: Uint8Array, kind: LinkKind, keys: Keys): [Uint8Array, Uint8Array, Uint8Array] | string {
  if (f[0] === A.DENY) return refusal(f);
  if (f[0] !== A.CHALLENGE || f.length !== 3 + NONCE) return "the peer does not speak the connmix link handshake";
  if (f[1] !== AUTH_VERSION) return `link handshake version ${f[1]} is not supported (this node speaks ${AUTH_VERSION})`;
  if (f[2] !== KINDS[kind]) return `the port is a ${kindName(f[2]!)} port, not a ${kind} port`;
  const ln = f.slice(3);
  const dn = nonce();
  const out = new Uint8Array(1 + NONCE + MAC);
  out[0] = A.RESPONSE;
  out.set(dn, 1);
  out.set(keys.proof("dialer", kind, ln, dn), 1 + NONCE);
  return [out, ln, dn];
}

/** The listener checks a response: the dialer nonce, or null when the proof is wrong or the frame malformed. */
export function checkResponse(f: Uint8Array, kind: LinkKind, keys: Keys, ln: Uint8Array): Uint8Array | null {
  if (f[0] !== A.RESPONSE || f.length !== 1 + NONCE + MAC) return null;
  const dn = f.slice(1, 1 + NONCE);
  return keys.accepts(f.subarray(1 + NONCE), "dialer", kind, ln, dn) ? dn : null;
}

export function accept(kind: LinkKind, keys: Keys, ln: Uint8Array, dn: Uint8Array): Uint8Array {
  const f = new Uint8Array(1 + MAC);
  f[0] = A.ACCEPT;
  f.set(keys.proof("listener", kind, ln, dn), 1);
  return f;
}

/** The dialer checks the listener's answer: null when the listener proved the secret, else why not. */
export function checkAccept(f: Uint8Array, kind: LinkKind, keys: Keys, ln: Uint8Array, dn: Uint8Array): string | null {
  if (f[0] === A.DENY) return refusal(f);
  if (f[0] !== A.ACCEPT || !keys.accepts(f.subarray(1), "listener", kind, ln, dn)) {
    return "the peer failed authentication (it does not hold this node's cluster.secret)";
  }
  return null;
}

/** A DENY as a log text; its reason is the peer's and is escaped where it is logged. */
const refusal = (f: Uint8Array) => `refused by the peer: ${new TextDecoder().decode(f.subarray(1))}`;

export function deny(reason: string): Uint8Array {
  const text = new TextEncoder().encode(reason);
  const f = new Uint8Array(1 + text.length);
  f[0] = A.DENY;
  f.set(text, 1);
  return f;
}
