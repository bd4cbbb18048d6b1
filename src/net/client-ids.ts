// Client ids: integers below 10^14 that carry the engine's node index and worker, so any node can route a
// send without a lookup. Below 10^14 because real Lua 5.1 turns numbers into text with "%.14g": every
// id then prints exactly through tostring, "..", string.format("%d") and as a table key.
//   id = node * 2^36 + worker * 2^31 + sequence     (1 <= node <= 1023, worker < 32, 1 <= sequence < 2^31)
// The largest id is 1023 * 2^36 + 2^36 - 1 = 2^46 - 1 = 70368744177663 (14 digits).
const NODE_UNIT = 2 ** 36;
const WORKER_UNIT = 2 ** 31;
export const MAX_NODE = 1023;
export const MAX_WORKER = 31;
/** Sequences wrap below this (2^31 ids per worker before an id repeats). */
export const SEQUENCE_LIMIT = WORKER_UNIT;
const MAX_ID = (MAX_NODE + 1) * NODE_UNIT - 1;

export class ClientIds {
  /** `sequence`: the last one handed out (a restarted worker continues past its predecessor's ids). */
  constructor(readonly node: number, readonly worker = 0, private sequence = 0) {
    if (!Number.isInteger(node) || node < 1 || node > MAX_NODE) throw new Error(`node index out of range: ${node}`);
    if (!Number.isInteger(worker) || worker < 0 || worker > MAX_WORKER) throw new Error(`worker out of range: ${worker}`);
  }
  next(): number {
    this.sequence = (this.sequence + 1) % SEQUENCE_LIMIT || 1;
    return this.node * NODE_UNIT + this.worker * WORKER_UNIT + this.sequence;
  }
  /** The sequence of the last id handed out. */
  get last(): number {
    return this.sequence;
  }
}

export const nodeOf = (id: number) => Math.floor(id / NODE_UNIT);
export const workerOf = (id: number) => Math.floor(id / WORKER_UNIT) % (MAX_WORKER + 1);

/** Parses an id given as a number or a decimal string; null when it is not a valid client id. */
export function parseClientId(v: unknown): number | null {
  const n = typeof v === "string" && /^\d{1,14}$/.test(v) ? Number(v) : v;
  return typeof n === "number" && Number.isInteger(n) && n >= NODE_UNIT && n <= MAX_ID ? n : null;
}
