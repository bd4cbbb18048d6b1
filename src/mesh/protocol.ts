// The node-to-node protocol (docs/cluster.md): frames of FrameReader/FrameWriter whose body is
//   u8 type | u32 request id | fields
// Requests carry an id chosen by the sender; the reply (RESULT or COUNTS) carries the same id.
import type { SendType } from "../engine/host";
import type { FrameWriter } from "../net/frames";

/** The protocol version this build speaks; a peer that offers another one is refused in the hello. */
export const MESH_VERSION = 1;

// Timing and limits (docs/cluster.md explains how they play together). Times are measured with
// performance.now(), which a step of the wall clock (NTP, a resumed VM) does not move.
export interface MeshTimings {
  /** A dialer pings its link this often when it has nothing else to say... */
  pingMs: number;
  /** ...and gives the link up when nothing came back for this long (also the deadline of a dial). */
  silentMs: number;
  /** The serving side closes a link that sent nothing (not even a ping) for this long. */
  inboundIdleMs: number;
  /** A request with no reply after this long fails with "timed out". */
  requestMs: number;
  /** Redial backoff of a link that dropped, doubling up to the max. */
  retryMinMs: number;
  retryMaxMs: number;
  /** A peer that has not authenticated this long after connecting is closed. */
  handshakeMs: number;
  /** How often links check the deadlines above. */
  tickMs: number;
}

export const MESH_TIMINGS: MeshTimings = {
  pingMs: 1000,
  silentMs: 3000,
  inboundIdleMs: 5000,
  requestMs: 3000,
  retryMinMs: 200,
  retryMaxMs: 2000,
  handshakeMs: 3000,
  tickMs: 250,
};

/** Unsent bytes per link past which new requests are refused (back-pressure) or a non-reading peer is dropped. */
export const MAX_UNSENT = 8 << 20;
/** Unauthenticated connections a mesh point holds at once; more are refused until some authenticate or leave. */
export const MAX_UNAUTHENTICATED = 64;

export const enum T {
  HELLO = 1, // u8 version, u16 node index, short text node id
  WELCOME = 2, // u8 version, short text node id
  BYE = 3, // text reason; the sender closes the link
  PING = 4,
  PONG = 5,
  SEND = 10, // f64 client id, u8 type, data
  PUBLISH = 11, // u8 type, short text channel, data
  CALL = 12, // f64 client id, JSON [method, args]
  QUEUE = 13, // short text topic, f64 client id, JSON item: a worker hands a queue item to its primary
  RESULT = 20, // text error, empty on success
  COUNTS = 21, // u32 delivered, u32 failed (QUEUE: u32 items waiting, 0)
}

/** Every frame starts with its type (u8) and request id (u32): readers find the body at offset 5. */
function head(w: FrameWriter, type: T, req: number): void {
  w.begin();
  w.u8(type);
  w.u32(req);
}

function data(w: FrameWriter, d: Uint8Array | string): void {
  if (typeof d === "string") w.text(d);
  else w.bytes(d);
}

export function writeHello(w: FrameWriter, type: T.HELLO | T.WELCOME, nodeId: string, index: number): void {
  head(w, type, 0);
  w.u8(MESH_VERSION);
  if (type === T.HELLO) w.u16(index);
  w.shortText(nodeId);
  w.end();
}

export function writeText(w: FrameWriter, type: T.BYE | T.RESULT, req: number, text: string): void {
  head(w, type, req);
  w.text(text);
  w.end();
}

export function writeEmpty(w: FrameWriter, type: T.PING | T.PONG): void {
  head(w, type, 0);
  w.end();
}

export function writeSend(w: FrameWriter, req: number, id: number, d: Uint8Array | string, type: SendType): void {
  head(w, T.SEND, req);
  w.f64(id);
  w.u8(type);
  data(w, d);
  w.end();
}

export function writePublish(w: FrameWriter, req: number, channel: string, d: Uint8Array | string, type: SendType): void {
  head(w, T.PUBLISH, req);
  w.u8(type);
  w.shortText(channel);
  data(w, d);
  w.end();
}

export function writeCall(w: FrameWriter, req: number, id: number, method: string, args: unknown[]): void {
  head(w, T.CALL, req);
  w.f64(id);
  w.text(JSON.stringify([method, args]));
  w.end();
}

export function writeQueuePush(w: FrameWriter, req: number, topic: string, json: string, clientId: number): void {
  head(w, T.QUEUE, req);
  w.shortText(topic);
  w.f64(clientId);
  w.text(json);
  w.end();
}

export function writeCounts(w: FrameWriter, req: number, ok: number, fail: number): void {
  head(w, T.COUNTS, req);
  w.u32(ok);
  w.u32(fail);
  w.end();
}

const decoder = new TextDecoder();
export const textOf = (b: Uint8Array) => decoder.decode(b);

// Field readers over a frame (big-endian, as DataView writes them), without a DataView per frame.
export const readU16 = (f: Uint8Array, at: number) => (f[at]! << 8) | f[at + 1]!;
export const readU32 = (f: Uint8Array, at: number) => ((f[at]! << 24) | (f[at + 1]! << 16) | (f[at + 2]! << 8) | f[at + 3]!) >>> 0;
const f64 = new Float64Array(1);
const f64Bytes = new Uint8Array(f64.buffer);
const littleEndian = new Uint8Array(new Uint16Array([1]).buffer)[0] === 1;
export function readF64(f: Uint8Array, at: number): number {
  for (let i = 0; i < 8; i++) f64Bytes[littleEndian ? 7 - i : i] = f[at + i]!;
  return f64[0]!;
}

/** Reads a u16-length text at `at`; returns [text, next offset] or null when it overruns the frame. */
export function readShortText(f: Uint8Array, at: number): [string, number] | null {
  if (at + 2 > f.length) return null;
  const end = at + 2 + readU16(f, at);
  if (end > f.length) return null;
  return [decoder.decode(f.subarray(at + 2, end)), end];
}
