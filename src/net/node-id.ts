// Node ids in the style of xid (github.com/rs/xid): 12 bytes — seconds since the epoch (4), a machine
// tag (3), the process id (2), a counter (3) — written as 20 lowercase base32hex characters, so ids sort
// by creation time and two engines never pick the same one.
import { createHash, randomBytes } from "node:crypto";
import { hostname } from "node:os";

const ALPHABET = "0123456789abcdefghijklmnopqrstuv";
const machine = createHash("md5").update(hostname()).digest().subarray(0, 3);
let counter = randomBytes(3).readUIntBE(0, 3);

export const NODE_ID = /^[0-9a-v]{20}$/;

export function newNodeId(now = Date.now()): string {
  const b = Buffer.alloc(12);
  b.writeUInt32BE(Math.floor(now / 1000) >>> 0, 0);
  machine.copy(b, 4);
  b.writeUInt16BE(process.pid & 0xffff, 7);
  counter = (counter + 1) & 0xffffff;
  b.writeUIntBE(counter, 9, 3);
  return base32hex(b);
}

/** 96 bits as 20 characters of 5 bits, most significant first (the last 4 bits are zero padding). */
function base32hex(b: Uint8Array): string {
  let out = "";
  let acc = 0;
  let bits = 0;
  for (const byte of b) {
    acc = (acc << 8) | byte;
    bits += 8;
    while (bits >= 5) {
      bits -= 5;
      out += ALPHABET[(acc >>> bits) & 31];
    }
    acc &= (1 << bits) - 1;
  }
  if (bits > 0) out += ALPHABET[(acc << (5 - bits)) & 31];
  return out;
}
