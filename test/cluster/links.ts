// In-process cluster links for tests: short timings (so a timeout is waited out in a fraction of a second),
// a test secret, and a raw client that speaks the link handshake for real, then sends whatever frames a test
// builds (including bad ones).
import { Keys, checkAccept, respond, type LinkKind } from "../../src/net/auth";
import { FrameReader, FrameWriter } from "../../src/net/frames";
import type { LinkSecurity } from "../../src/mesh/link";
import type { MeshTimings } from "../../src/mesh/protocol";
import { TIMINGS, type LinkTimings, type Timings } from "../../src/center/protocol";
import { Membership } from "../../src/mesh/membership";
import { Mesh } from "../../src/mesh/index";
import { MeshPoint, type MeshTarget } from "../../src/mesh/server";
import { newNodeId } from "../../src/net/node-id";
import { EngineNode } from "../../src/engine/node";
import { ClientIds } from "../../src/net/client-ids";
import { Queues } from "../../src/queue/queues";
import { until } from "../helpers/wait.ts";

export const SECRET = "test-cluster-secret-0123456789";

export const FAST_MESH: MeshTimings = {
  pingMs: 100,
  silentMs: 600,
  inboundIdleMs: 1000,
  requestMs: 600,
  retryMinMs: 50,
  retryMaxMs: 400,
  handshakeMs: 500,
  tickMs: 50,
};

export const FAST_REGISTRY: { timings: Timings; link: LinkTimings } = {
  timings: { hb: 100, drop: 800, doubt: 2000 },
  link: { sweepMs: 50, retryMinMs: 50, retryMaxMs: 400, handshakeMs: 500 },
};

/** A membership that has its node list and never hears of its center losing it. */
export function settled(): Membership {
  const m = new Membership("test", { ...TIMINGS, drop: Infinity });
  m.listApplied();
  return m;
}

export function meshSecurity(secrets: string[] = [SECRET], timings = FAST_MESH): LinkSecurity {
  return { kind: "mesh", keys: new Keys(secrets), tls: null, timings };
}

export function registrySecurity(secrets: string[] = [SECRET], t = FAST_REGISTRY) {
  return { keys: new Keys(secrets), tls: null, ...t };
}

/** PEM texts of a certificate, its key and the CA, for a raw client of a cluster with mutual TLS. */
export interface TlsPem {
  cert: string;
  key: string;
  ca: string;
}

export interface RawClient {
  /** Frames received (after the handshake, when it authenticated). */
  frames: Uint8Array[];
  /** Why the handshake failed, as this side saw it (null: it did not). */
  failure: string | null;
  closed(): boolean;
  send(build: (w: FrameWriter) => void): void;
  raw(b: Uint8Array): number;
  end(): void;
}

/**
 * A raw TCP client. With `kind` it authenticates first (as a real node would, with `secret`) and resolves
 * once the listener accepted; without, it sends nothing on its own (an outsider).
 */
export async function rawClient(port: number, kind?: LinkKind, secret = SECRET, allowFailure = false, tls?: TlsPem): Promise<RawClient> {
  const frames: Uint8Array[] = [];
  let failure: string | null = null;
  let closed = false;
  let stage: "challenge" | "accept" | "up" = kind ? "challenge" : "up";
  let nonces: [Uint8Array, Uint8Array] | null = null;
  const keys = new Keys([secret]);
  const w = new FrameWriter();
  const write = (payload: Uint8Array) => {
    w.reset();
    w.begin();
    w.bytes(payload);
    w.end();
    socket.write(w.buf.subarray(0, w.len));
  };
  const reader = new FrameReader((f) => {
    if (stage === "up") return void frames.push(f.slice());
    if (stage === "challenge") {
      const r = respond(f, kind!, keys);
      if (typeof r === "string") return void (failure = r);
      nonces = [r[1], r[2]];
      stage = "accept";
      return write(r[0]);
    }
    failure = checkAccept(f, kind!, keys, ...nonces!);
    if (!failure) stage = "up";
  });
  const socket = await Bun.connect({
    hostname: "127.0.0.1",
    port,
    tls: tls ? { ...tls, rejectUnauthorized: false } : undefined,
    socket: { data: (_s, d) => void reader.push(d), close: () => void (closed = true) },
  });
  if (kind) await until(() => stage === "up" || closed || failure !== null, 2000, "link handshake");
  if (kind && stage !== "up" && !allowFailure) throw new Error(`link handshake failed: ${failure ?? "closed"}`);
  return {
    frames,
    get failure() {
      return failure;
    },
    closed: () => closed,
    send(build) {
      w.reset();
      build(w);
      socket.write(w.buf.subarray(0, w.len));
    },
    raw: (b) => socket.write(b),
    end: () => socket.end(),
  };
}

export const newNode = () => new EngineNode(new ClientIds(1), new Queues({ topicSize: 10, maxTopics: 10 }));

/** A node's mesh with its mesh point on a free port serving `target`, as src/app/engine.ts wires an engine. */
export class MeshNode extends Mesh {
  readonly point: MeshPoint;

  constructor(sec = meshSecurity(), target: MeshTarget = newNode()) {
    super(newNodeId(), settled(), sec);
    this.point = new MeshPoint(target, this, sec);
    this.point.listen("127.0.0.1", 0);
  }

  get port(): number {
    return this.point.port;
  }

  override stop(): void {
    super.stop();
    this.point.stop();
  }
}
