// The mesh point: other engines connect here and ask this node to deliver (SEND, PUBLISH) or to run a
// connection method (CALL) on its own connections. Every request gets one reply with the same request id.
// The workers of a multi-core engine use it too (src/workers): a worker serves its primary's requests, and
// a primary serves each worker's requests (and takes its QUEUE items) with a target that answers later.
import { log } from "../log/logger";
import { escapeText } from "../log/escape";
import type { SendType } from "../engine/host";
import { MAX_FRAME, type Outbox } from "../net/frames";
import { Listener, type Conn } from "../net/listener";
import type { LinkSecurity } from "./link";
import type { Queues } from "../queue/queues";
import {
  MAX_UNAUTHENTICATED, MAX_UNSENT, MESH_VERSION, T, readF64, readShortText, readU16, readU32, textOf, writeCounts, writeEmpty, writeHello, writeText,
} from "./protocol";

interface Inbound {
  peer: string | null; // node id, after the hello
}
type S = Conn<Inbound>;

/**
 * What a mesh point delivers to: an EngineNode (its own connections, answered at once), or the workers of a
 * multi-core engine (answered once they replied). "remote" means the client is not this node's.
 */
export interface MeshTarget {
  sendLocal(id: number, data: Uint8Array, type: SendType): string | null | Promise<string | null>;
  publishLocal(channel: string, data: Uint8Array, type: SendType): [number, number] | Promise<[number, number]>;
  callLocal(id: number, method: string, args: unknown[]): string | null | Promise<string | null>;
  /** Queue items a worker hands to its primary: [items waiting, error]. Only a primary's targets take them. */
  queuePush?(topic: string, json: string, clientId: number): [number, string | null];
}

export class MeshPoint {
  private readonly listener: Listener<Inbound>;

  private readonly name: string;
  /** Where QUEUE items go when `node` takes none itself (an engine's mesh point, from a draining predecessor). */
  private readonly queues: Queues | undefined;

  /** `name` is how log lines call this port: "mesh point", or a worker link's. */
  constructor(private readonly node: MeshTarget, private readonly self: { id: string }, sec: LinkSecurity, o: { name?: string; queues?: Queues } = {}) {
    const t = sec.timings;
    const name = (this.name = o.name ?? "mesh point");
    this.queues = o.queues;
    this.listener = new Listener<Inbound>(
      {
        name,
        kind: sec.kind,
        keys: sec.keys,
        tls: sec.tls,
        maxFrame: MAX_FRAME,
        maxUnsent: MAX_UNSENT,
        maxUnauthenticated: MAX_UNAUTHENTICATED,
        timings: { handshakeMs: t.handshakeMs, idleMs: t.inboundIdleMs, sweepMs: t.tickMs },
      },
      {
        open: () => ({ peer: null }),
        frame: (c, f) => this.onFrame(c, f),
        refuse: (c, reason) => void this.refuse(c, reason),
      },
    );
  }

  listen(bind: string, port: number): void {
    this.listener.listen(bind, port);
  }

  get port(): number {
    return this.listener.port;
  }

  private onFrame(s: S, f: Uint8Array): void {
    const d = s.data;
    if (f.length < 5) return void this.refuse(s, "short frame");
    const type = f[0]!;
    const req = readU32(f, 1);
    if (d.peer === null) return this.hello(s, type, f);
    const out = s.out!;
    try {
      if (!this.serve(s, type, req, f)) return;
    } catch (e) {
      // The request fails, with the reason; the link and the node go on.
      log.error(`${this.name}: request type ${type} from ${s.label} failed: ${escapeText((e as Error).message)}`);
      writeText(out, T.RESULT, req, `internal error: ${(e as Error).message}`);
    }
    if (out.full) return void this.refuse(s, "peer does not read its replies");
    out.schedule();
  }

  /** Answers one request; false when the frame was malformed and the link is being closed. */
  private serve(s: S, type: number, req: number, f: Uint8Array): boolean {
    const out = s.out!;
    switch (type) {
      case T.SEND: {
        if (f.length < 14) return this.refuse(s, "short SEND frame");
        this.result(out, req, this.node.sendLocal(readF64(f, 5), f.subarray(14), f[13] as SendType));
        break;
      }
      case T.PUBLISH: {
        if (f.length < 8 || 8 + readU16(f, 6) > f.length) return this.refuse(s, "short PUBLISH frame");
        const end = 8 + readU16(f, 6);
        this.counts(out, req, this.node.publishLocal(textOf(f.subarray(8, end)), f.subarray(end), f[5] as SendType));
        break;
      }
      case T.CALL: {
        if (f.length < 13) return this.refuse(s, "short CALL frame");
        this.result(out, req, this.call(readF64(f, 5), f.subarray(13)));
        break;
      }
      case T.PING:
        writeEmpty(out, T.PONG);
        break;
      case T.QUEUE:
        if (this.node.queuePush || this.queues) return this.queue(s, req, f);
      // falls through: only a primary's worker links and an engine's mesh point take queue items
      default:
        // A newer peer's request this version does not know: answer, so the peer sees an error, not a timeout.
        writeText(out, T.RESULT, req, `unknown mesh request type ${type}`);
    }
    return true;
  }

  /** A RESULT for an error text (null: success), now or once an asynchronous target answered. */
  private result(out: Outbox, req: number, r: string | null | Promise<string | null>): void {
    if (r instanceof Promise) {
      r.then(
        (err) => {
          this.result(out, req, err);
          out.schedule();
        },
        (e: Error) => {
          this.result(out, req, `internal error: ${e.message}`);
          out.schedule();
        },
      );
      return;
    }
    writeText(out, T.RESULT, req, r === null ? "" : r === "remote" ? "client not found" : r);
  }

  /** COUNTS of a publish, now or once an asynchronous target answered. */
  private counts(out: Outbox, req: number, r: [number, number] | Promise<[number, number]>): void {
    if (r instanceof Promise) {
      r.then(
        (n) => {
          writeCounts(out, req, n[0], n[1]);
          out.schedule();
        },
        (e: Error) => {
          this.result(out, req, `internal error: ${e.message}`);
          out.schedule();
        },
      );
      return;
    }
    writeCounts(out, req, r[0], r[1]);
  }

  private call(id: number, body: Uint8Array): string | null | Promise<string | null> {
    let method: unknown, args: unknown;
    try {
      [method, args] = JSON.parse(textOf(body));
    } catch {
      return "invalid conn.call request";
    }
    if (typeof method !== "string" || !Array.isArray(args)) return "invalid conn.call request";
    return this.node.callLocal(id, method, args);
  }

  /** QUEUE: COUNTS (items waiting) when the item was queued, else a RESULT with the reason. */
  private queue(s: S, req: number, f: Uint8Array): boolean {
    const topic = readShortText(f, 5);
    if (!topic || topic[1] + 8 > f.length) return this.refuse(s, "short QUEUE frame");
    const at = topic[1];
    const json = textOf(f.subarray(at + 8));
    const [waiting, err] = this.node.queuePush ? this.node.queuePush(topic[0], json, readF64(f, at)) : this.queues!.push(topic[0], json, readF64(f, at));
    if (err === null) writeCounts(s.out!, req, waiting, 0);
    else writeText(s.out!, T.RESULT, req, err);
    return true;
  }

  private hello(s: S, type: number, f: Uint8Array): void {
    if (type !== T.HELLO || f.length < 8) return void this.refuse(s, "expected a hello");
    const version = f[5]!;
    if (version !== MESH_VERSION) {
      return void this.refuse(s, `mesh protocol version ${version} is not supported (this node speaks ${MESH_VERSION})`);
    }
    const id = readShortText(f, 8);
    if (!id) return void this.refuse(s, "bad hello");
    s.data.peer = id[0];
    s.label = `node_id ${escapeText(id[0])}`;
    writeHello(s.out!, T.WELCOME, this.self.id, 0);
    s.out!.flush();
    log.debug(`${this.name}: ${s.label} (index ${readU16(f, 6)}) connected from ${s.remote}`);
  }

  /** Tells the peer why (BYE) and closes the link. */
  private refuse(s: S, reason: string): false {
    log.warn(`${this.name}: closing the link from ${s.label}: ${reason}`);
    writeText(s.out!, T.BYE, 0, reason);
    s.end();
    return false;
  }

  stop(): void {
    this.listener.stop();
  }
}
