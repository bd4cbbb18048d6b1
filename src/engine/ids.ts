// Client ids: integers below 2^53 (exact in Lua and JSON) that carry the engine's node index and worker,
// so any node can route a send without a lookup.
//   id = node * 2^37 + worker * 2^32 + sequence      (node < 65536, worker < 32, sequence < 2^32)
const NODE_UNIT = 2 ** 37;
const WORKER_UNIT = 2 ** 32;
export const MAX_NODE = 65535;
export const MAX_WORKER = 31;

export class ClientIds {
  /** `sequence`: the last one handed out (a restarted worker continues past its predecessor's ids). */
  constructor(readonly node: number, readonly worker = 0, private sequence = 0) {
    if (!Number.isInteger(node) || node < 1 || node > MAX_NODE) throw new Error(`node index out of range: ${node}`);
    if (!Number.isInteger(worker) || worker < 0 || worker > MAX_WORKER) throw new Error(`worker out of range: ${worker}`);
  }
  next(): number {
    this.sequence = (this.sequence + 1) % WORKER_UNIT || 1;
    return this.node * NODE_UNIT + this.worker * WORKER_UNIT + this.sequence;
  }
  /** The sequence of the last id handed out. */
  get last(): number {
    return this.sequence;
  }
}

export const nodeOf = (id: number) => Math.floor(id / NODE_UNIT);
export const workerOf = (id: number) => Math.floor(id / WORKER_UNIT) % 32;

/** Parses an id given as a number or a decimal string; null when it is not a valid client id. */
export function parseClientId(v: unknown): number | null {
  const n = typeof v === "string" && /^\d{1,16}$/.test(v) ? Number(v) : v;
  return typeof n === "number" && Number.isSafeInteger(n) && n >= NODE_UNIT ? n : null;
}
