// The mesh point: other engines connect here and ask this node to deliver (SEND, PUBLISH) or to run a
// connection method (CALL) on its own connections. Every request gets one reply with the same request id.
import type { Socket, TCPSocketListener } from "bun";
import { log } from "../log/logger";
import type { EngineNode } from "../engine/node";
import type { SendType } from "../engine/host";
import { FrameReader, Outbox } from "./frames";
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

export class MeshPoint {
  private listener: TCPSocketListener<Inbound> | null = null;
  private readonly links = new Set<S>();
  private sweeper: Timer | undefined;

  constructor(private readonly node: EngineNode, private readonly self: { id: string }) {}

  listen(bind: string, port: number): void {
    this.listener = Bun.listen<Inbound>({
      hostname: bind,
      port,
      socket: {
        open: (s) => {
          s.setNoDelay(true);
          s.data = {
            reader: new FrameReader((f) => this.onFrame(s, f)),
            out: new Outbox(s, MAX_UNSENT),
            peer: null,
            lastHeard: Date.now(),
          };
          this.links.add(s);
        },
        data: (s, chunk) => {
          s.data.lastHeard = Date.now();
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
        const err = this.node.sendLocal(readF64(f, 5), f.subarray(14), f[13] as SendType);
        writeText(out, T.RESULT, req, err === null ? "" : err === "remote" ? "client not found" : err);
        break;
      }
      case T.PUBLISH: {
        if (f.length < 8 || 8 + readU16(f, 6) > f.length) return this.refuse(s, "short PUBLISH frame");
        const end = 8 + readU16(f, 6);
        const [ok, fail] = this.node.publishLocal(textOf(f.subarray(8, end)), f.subarray(end), f[5] as SendType);
        writeCounts(out, req, ok, fail);
        break;
      }
      case T.CALL: {
        if (f.length < 13) return this.refuse(s, "short CALL frame");
        writeText(out, T.RESULT, req, this.call(readF64(f, 5), f.subarray(13)));
        break;
      }
      case T.PING:
        writeEmpty(out, T.PONG);
        break;
      default:
        // A newer peer's request this version does not know: answer, so the peer sees an error, not a timeout.
        writeText(out, T.RESULT, req, `unknown mesh request type ${type}`);
    }
    return true;
  }

  private call(id: number, body: Uint8Array): string {
    let method: unknown, args: unknown;
    try {
      [method, args] = JSON.parse(textOf(body));
    } catch {
      return "invalid conn.call request";
    }
    if (typeof method !== "string" || !Array.isArray(args)) return "invalid conn.call request";
    const err = this.node.callLocal(id, method, args);
    return err === null ? "" : err === "remote" ? "client not found" : err;
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
    const limit = Date.now() - INBOUND_IDLE_MS;
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
