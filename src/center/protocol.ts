// The registry protocol between an engine and the center (docs/cluster.md): JSON messages in the mesh's
// length-prefixed frames over one TCP connection per engine. Control traffic only, so JSON is fine here.
import { isIP } from "node:net";
import type { RegistryConfig } from "../config/schema";
import type { Outbox } from "../net/frames";
import { MAX_NODE } from "../net/client-ids";
import { NODE_ID } from "../net/node-id";

export const REGISTRY_VERSION = 1;

/**
 * Membership timings (center.registry in the config), all in ms. The center owns them and hands them to every
 * engine in `registered`, so the cluster agrees on them. An engine heartbeats every `hb`; the center drops a
 * node it has not heard from for `drop` (measured with performance.now(), so a step of the wall clock drops
 * nobody); a node dropped that way may still hold live clients, and its peers count it as failed for `doubt`.
 */
export interface Timings {
  hb: number;
  drop: number;
  doubt: number;
}

/** The defaults; an engine uses them until its center told it otherwise. */
export const TIMINGS: Readonly<Timings> = { hb: 1000, drop: 5000, doubt: 30_000 };

/** The timings of a center.registry section: the center's, and an engine's until its center sends them. */
export const timingsOf = (r: RegistryConfig): Timings => ({ hb: r.heartbeat, drop: r.dropTimeout, doubt: r.doubtTimeout });

/** The registry's link timings (src/net), beside the membership timings. */
export interface LinkTimings {
  /** How often the center checks its deadlines, and an engine its link. */
  sweepMs: number;
  /** An engine's redial backoff, doubling up to the max (and to half the drop timeout). */
  retryMinMs: number;
  retryMaxMs: number;
  /** A connection that has not authenticated this long after connecting is closed. */
  handshakeMs: number;
}

export const LINK_TIMINGS: Readonly<LinkTimings> = { sweepMs: 250, retryMinMs: 250, retryMaxMs: 2500, handshakeMs: 3000 };

/** Unauthenticated connections the registry holds at once. */
export const MAX_UNAUTHENTICATED = 64;
/** Peers an engine may report when it registers (more than any mesh holds). */
export const MAX_PEERS = MAX_NODE;

/** Engine -> center, first message on every connection. */
export interface RegisterMsg {
  t: "register";
  v: number; // REGISTRY_VERSION
  id: string; // node id, kept for the life of the engine process
  index: number; // the node index it had before (a center restart), 0 for none
  ip: string; // advertised IP, "" = the address the center sees
  api_port: number;
  mesh_port: number;
  peers: [string, number][]; // [node id, index] of the peers it knows, so a restarted center keeps their indexes
  after?: string; // a successor's predecessor (src/handover): same mesh address, but it is not gone
  draining?: boolean; // this node hands over to a successor and takes no new clients
}

/** Engine -> center every HEARTBEAT_MS; a graceful stop sends "leave". */
export interface HeartbeatMsg {
  t: "hb";
  clients: number;
}
export interface LeaveMsg {
  t: "leave";
}
/** The engine started draining (a successor took over its ports); it stays a node until it leaves. */
export interface DrainMsg {
  t: "drain";
}

export interface NodeInfo {
  id: string;
  index: number;
  ip: string;
  api_port: number;
  mesh_port: number;
}

/**
 * Center -> engine. `listed` is false when the center had forgotten a node it may have known (it dropped it,
 * or its first lists went out without it): the other engines stopped counting it meanwhile. Older centers
 * send neither `listed` nor the timings.
 */
export type CenterMsg =
  | ({ t: "registered"; index: number; ip: string; listed?: boolean } & Partial<Timings>)
  // complete: false while a fresh center may not know every node yet; gone: the node whose removal this list
  // brings was certainly gone (it left, or a new node took its address), not merely silent
  | { t: "nodes"; complete: boolean; nodes: NodeInfo[]; gone?: string }
  | { t: "hb" }
  | { t: "error"; m: string };

export type EngineMsg = RegisterMsg | HeartbeatMsg | LeaveMsg | DrainMsg;

const decoder = new TextDecoder();

/** Unsent registry bytes past which the other side is considered stuck and the connection is closed. */
export const MAX_UNSENT = 1 << 20;

/** Queues one JSON message as a frame; false when the other side stopped reading (close the connection). */
export function sendMsg(out: Outbox, msg: CenterMsg | EngineMsg): boolean {
  out.begin();
  out.text(JSON.stringify(msg));
  out.end();
  out.schedule();
  return !out.full;
}

export function readMsg<M>(frame: Uint8Array): M | null {
  try {
    const m = JSON.parse(decoder.decode(frame));
    return m && typeof m === "object" && typeof m.t === "string" ? (m as M) : null;
  } catch {
    return null;
  }
}

export const validPort = (p: unknown): p is number => Number.isInteger(p) && (p as number) > 0 && (p as number) < 65536;
export const validIndex = (i: unknown): i is number => Number.isInteger(i) && (i as number) >= 1 && (i as number) <= MAX_NODE;
export const validNodeId = (id: unknown): id is string => typeof id === "string" && NODE_ID.test(id);
/** An IP address literal (v4 or v6), no host name: the mesh dials it as given. */
export const isIpLiteral = (ip: unknown): ip is string => typeof ip === "string" && ip.length <= 45 && isIP(ip) !== 0;

/** Why a node of the center's list cannot be dialed, or null when it can. */
export function nodeProblem(n: unknown): string | null {
  if (!n || typeof n !== "object") return "not an object";
  const { id, index, ip, api_port, mesh_port } = n as Record<string, unknown>;
  if (!validNodeId(id)) return "invalid node id";
  if (!validIndex(index)) return "invalid node index";
  if (!isIpLiteral(ip)) return "ip is not an IP address";
  if (!validPort(api_port) || !validPort(mesh_port)) return "invalid ports";
  return null;
}

/** "host:port" or "[v6]:port" -> [host, port]; null when malformed. */
export function splitAddr(addr: string): [string, number] | null {
  const m = /^\[?([^\]]*?)\]?:(\d+)$/.exec(addr.trim());
  const port = m ? Number(m[2]) : NaN;
  return m && m[1] && port > 0 && port < 65536 ? [m[1], port] : null;
}

/** An IP as a host part of "ip:port". */
export const hostPart = (ip: string) => (ip.includes(":") ? `[${ip}]` : ip);
