// The mesh point: other engines connect here and ask this node to deliver (SEND, PUBLISH) or to run a
// connection method (CALL) on its own connections. Every request gets one reply with the same request id.
// The workers of a multi-core engine use it too (src/workers): a worker serves its primary's requests, and
// a primary serves each worker's requests (and takes its QUEUE items) with a target that answers later.
import type { Socket, TCPSocketListener } from "bun";
import { log } from "../log/logger";
import type { SendType } from "../engine/host";
import { FrameReader, Outbox } from "./frames";
import { shared } from "../handover/ports";
import type { Queues } from "../queue/queues";
import {
  INBOUND_IDLE_MS, MAX_UNSENT, MESH_VERSION, T, readF64, readShortText, readU16, readU32, textOf, writeCounts, writeEmpty, writeHello, writeText,
} from "./protocol";

interface Inbound {
  reader: FrameReader;
  out: Outbox;
  peer: string | null; // node id, after the hello
  lastHeard: number;
}
type S = Socket<Inbound>;

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
  private listener: TCPSocketListener<Inbound> | null = null;
  private readonly links = new Set<S>();
  private sweeper: Timer | undefined;

  /** `queues`: where QUEUE items go when `node` takes none itself (an engine's mesh point, from a draining predecessor). */
  constructor(private readonly node: MeshTarget, private readonly self: { id: string }, private readonly queues?: Queues) {}

  /** Shares the port (SO_REUSEPORT) with a successor during a handover (src/handover/ports.ts). */
  listen(bind: string, port: number): void {
    this.listener = Bun.listen<Inbound>({
      ...shared(bind, port),
      socket: {
        open: (s) => {
          s.setNoDelay(true);
          s.data = {
            reader: new FrameReader((f) => this.onFrame(s, f)),
            out: new Outbox(s, MAX_UNSENT),
            peer: null,
            lastHeard: performance.now(),
          };
          this.links.add(s);
        },
        data: (s, chunk) => {
          s.data.lastHeard = performance.now();
          const err = s.data.reader.push(chunk);
          if (err) this.refuse(s, err);
        },
        drain: (s) => s.data.out.drain(),
        close: (s) => this.closed(s),
        error: (s, e) => {
          log.debug(`mesh point: link from ${s.remoteAddress} failed (${e.message})`);
        },
      },
    });
    this.sweeper = setInterval(() => this.dropSilent(), 1000);
  }

  get port(): number {
    return this.listener?.port ?? 0;
  }

  private onFrame(s: S, f: Uint8Array): void {
    const d = s.data;
    if (f.length < 5) return void this.refuse(s, "short frame");
    const type = f[0]!;
    const req = readU32(f, 1);
    if (d.peer === null) return this.hello(s, type, f);
    const out = d.out;
    try {
      if (!this.serve(s, type, req, f)) return;
    } catch (e) {
      // The request fails, with the reason; the link and the node go on.
      log.error(`mesh point: request type ${type} from ${d.peer} failed: ${(e as Error).message}`);
      writeText(out, T.RESULT, req, `internal error: ${(e as Error).message}`);
    }
    if (out.full) return void this.refuse(s, "peer does not read its replies");
    out.schedule();
  }

  /** Answers one request; false when the frame was malformed and the link is being closed. */
  private serve(s: S, type: number, req: number, f: Uint8Array): boolean {
    const out = s.data.out;
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
    if (err === null) writeCounts(s.data.out, req, waiting, 0);
    else writeText(s.data.out, T.RESULT, req, err);
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
    writeHello(s.data.out, T.WELCOME, this.self.id, 0);
    s.data.out.flush();
    log.debug(`mesh point: node_id ${id[0]} (index ${readU16(f, 6)}) connected from ${s.remoteAddress}`);
  }

  /** Tells the peer why (BYE) and closes the link. */
  private refuse(s: S, reason: string): false {
    log.warn(`mesh point: closing the link from ${s.data.peer ?? s.remoteAddress}: ${reason}`);
    s.data.reader.stop();
    writeText(s.data.out, T.BYE, 0, reason);
    s.data.out.flush();
    s.end();
    return false;
  }

  private closed(s: S): void {
    this.links.delete(s);
    s.data?.out.detach();
  }

  private dropSilent(): void {
    const limit = performance.now() - INBOUND_IDLE_MS;
    for (const s of this.links) {
      if (s.data.lastHeard < limit) {
        log.warn(`mesh point: link from ${s.data.peer ?? s.remoteAddress} silent for ${INBOUND_IDLE_MS / 1000}s, closed`);
        s.end();
        this.links.delete(s);
      }
    }
  }

  stop(): void {
    clearInterval(this.sweeper);
    for (const s of this.links) s.end();
    this.links.clear();
    this.listener?.stop(true);
    this.listener = null;
  }
}
