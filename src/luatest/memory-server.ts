// A Lua server without a port, for `connmix test`: the real LuaServer (its VM, the real mix.* families and
// the real EngineHost over a real EngineNode and Queues), with a transport that records what the script
// sends, publishes, queues and closes instead of writing to sockets.
import { resolve } from "node:path";
import { engineFamilies } from "../engine/mix";
import { socketEvents, websocketEvents } from "../engine/mix/connection";
import { FORGET } from "../engine/mix/contract";
import { Queues, type QueueLimits } from "../queue/queues";
import { ClientIds } from "../net/client-ids";
import { EngineNode } from "../engine/node";
import { Connection } from "../engine/connection";
import type { SendType } from "../engine/host";
import { LuaServer } from "../engine/lua-server";
import { MAX_MESSAGE_BYTES } from "../engine/limits";
import { defaultServer } from "../config/schema";
import { cannedHttpFamily, cannedRedisPools, type Unanswered } from "./canned";
import type { CaseFile, TestCase } from "./cases";

export interface Frame {
  type: "text" | "binary";
  data: string | Uint8Array;
}

/** What the script did that a case can expect, in order. */
export class Recording {
  readonly frames = new Map<number, Frame[]>();
  readonly publishes: { channel: string; data: string }[] = [];
  readonly pushes: { topic: string; json: string }[] = [];
  readonly closes = new Map<number, { code: number; reason: string }>();
  readonly handshakes = new Map<number, { accept: boolean; status: number; message: string }>();
  readonly unanswered: Unanswered[] = [];
}

const text = (data: string | Uint8Array) => (typeof data === "string" ? data : Buffer.from(data).toString());

class RecordingQueues extends Queues {
  constructor(limits: QueueLimits, private readonly record: Recording) {
    super(limits);
  }
  override push(topic: string, json: string, clientId = 0): [number, string | null] {
    const result = super.push(topic, json, clientId);
    if (result[1] === null) this.record.pushes.push({ topic, json });
    return result;
  }
}

class RecordingNode extends EngineNode {
  constructor(queues: Queues, private readonly record: Recording) {
    super(new ClientIds(1), queues);
  }
  override publishLocal(channel: string, data: Uint8Array | string, type: SendType): [number, number] {
    this.record.publishes.push({ channel, data: text(data) });
    return super.publishLocal(channel, data, type);
  }
}

export class MemoryServer extends LuaServer {
  readonly protocol: "websocket" | "socket";
  readonly record: Recording;

  constructor(file: CaseFile, testCase: TestCase, entry: string) {
    const record = new Recording();
    const node = new RecordingNode(new RecordingQueues(file.server.queue, record), record);
    const events = file.server.protocol === "websocket" ? websocketEvents : socketEvents;
    super({
      config: {
        ...defaultServer(),
        port: 0,
        protocol: file.server.protocol,
        entry: resolve(entry),
        options: Object.entries(file.server.options).map(([name, value]) => ({ name, value })),
        byteCodeExpires: 0,
      },
      node,
      families: [...engineFamilies, events, cannedHttpFamily(testCase.http, record.unanswered)],
      budgetMs: file.server.callbackTimeout,
      redis: cannedRedisPools(testCase.redis, record.unanswered),
    });
    this.protocol = file.server.protocol;
    this.record = record;
    node.addServer(this);
  }

  /** A client connects: on_handshake (websocket, with these headers) or on_connect (socket). */
  open(headers: { [name: string]: string }, path: string): Connection {
    const conn = this.accept(new Connection(this.opening("127.0.0.1:40000")));
    this.record.frames.set(conn.id, []);
    if (this.protocol === "socket") {
      this.events.connect(conn);
      return conn;
    }
    const server = { Method: "GET", RequestUri: path, ServerProtocol: "HTTP/1.1", Host: headers.Host ?? "127.0.0.1", RemoteAddr: conn.remoteAddr };
    this.events.handshake(conn, { addr: conn.remoteAddr, headers, server });
    return conn;
  }

  /** A frame (websocket) or bytes (socket) from the client. */
  receive(conn: Connection, data: string | Uint8Array): void {
    this.node.stats.read[this.protocol]++;
    if (this.protocol === "socket") {
      this.events.data(conn, typeof data === "string" ? Buffer.from(data) : data, MAX_MESSAGE_BYTES);
    } else {
      this.events.message(conn, data);
    }
  }

  /** The client goes away (WebSocket close 1000: on_close gets no error). */
  hangUp(conn: Connection): void {
    this.closed(conn, null);
  }

  protected override handshakeResult(id: number, accept: boolean, status: number, message: string): void {
    this.record.handshakes.set(id, { accept, status, message });
    const conn = this.node.connections.get(id);
    if (accept || !conn) return;
    this.node.remove(conn);
    conn.open = false;
    this.vm.call(FORGET, id);
  }

  sendTo(conn: Connection, data: Uint8Array | string, type: SendType, raw: boolean): string | null {
    if (!conn.open || this.record.closes.has(conn.id)) return "connection closed";
    let out = data;
    if (this.protocol === "socket" && !raw) {
      const encoded = this.encode(typeof data === "string" ? Buffer.from(data) : data, conn.id, type);
      if (typeof encoded === "string") return encoded;
      out = encoded;
    }
    this.record.frames.get(conn.id)!.push({ type: type === 2 ? "binary" : "text", data: type === 2 ? Buffer.from(out as Uint8Array) : text(out) });
    return null;
  }

  /** WebSocket subscribers: the connections whose channel set (kept by the node without Bun) has it. */
  publishNative(channel: string, data: Uint8Array | string, type: SendType): [number, number] {
    if (this.protocol === "socket") return [0, 0];
    let n = 0;
    for (const conn of this.node.connections.values()) {
      if (conn.channels?.has(channel) && this.sendTo(conn, data, type, true) === null) n++;
    }
    return [n, 0];
  }

  closeConnection(conn: Connection, code: number, reason: string): void {
    if (this.record.closes.has(conn.id)) return;
    this.record.closes.set(conn.id, { code, reason });
    // The transport reports the close later, as a socket would.
    queueMicrotask(() => this.closed(conn, null));
  }

  protected terminate(conn: Connection): void {
    this.closeConnection(conn, 1006, "");
  }

  async listen(): Promise<void> {}

  /** Nothing listens: nothing to stop accepting. */
  stopAccepting(): void {}

  async stop(): Promise<void> {
    this.vm.close();
  }
}
