// `websocket` servers: Bun.serve does the protocol; each upgrade on the configured path runs on_handshake,
// each message on_message and each close on_close in the server's Lua VM.
import type { Server, ServerWebSocket } from "bun";
import { websocketEvents, EV } from "../lua/api/connection";
import { Connection } from "./connection";
import type { SendType } from "./host";
import { LuaServer, type LuaServerOptions } from "./lua-server";
import { MAX_EARLY_BYTES, MAX_MESSAGE_BYTES, MAX_PENDING_BYTES } from "./limits";
import { STEER_MS, steerToSuccessor } from "../handover/steer";

type WS = ServerWebSocket<Connection>;

interface PendingHandshake {
  req: Request;
  resolve: (r: Response | undefined) => void;
}

/** Longest a closing listener waits for upgrades in on_handshake (a handover, src/handover). */
const HANDSHAKE_WAIT_MS = 1000;

/** Go-style canonical header name (`sec-websocket-key` -> `Sec-Websocket-Key`), as the original exposed. */
const canonical = (name: string) => name.replace(/(^|-)([a-z])/g, (_, dash: string, c: string) => dash + c.toUpperCase());

/** The response refusing an upgrade; a status the script gave that no Response can carry (99, 204, 1000) is 403. */
function refusal(message: string, status: number): Response {
  try {
    return new Response(message, { status });
  } catch {
    return new Response(message, { status: 403 });
  }
}

export class WebSocketServer extends LuaServer {
  readonly protocol = "websocket" as const;
  private server: Server<Connection> | null = null;
  private readonly path: string;
  private readonly handshakes = new Map<number, PendingHandshake>();

  constructor(opts: LuaServerOptions) {
    super({ ...opts, families: [...opts.families, websocketEvents] });
    this.path = this.option("path") ?? "/";
  }

  async listen(): Promise<void> {
    const self = this;
    const cfg = this.config;
    this.server = Bun.serve<Connection>({
      hostname: cfg.bind,
      port: cfg.port,
      reusePort: this.reusePort,
      fetch: (req, srv) => this.upgrade(req, srv),
      websocket: {
        idleTimeout: 0, // readTimeout is enforced by dropIdle
        maxPayloadLength: MAX_MESSAGE_BYTES,
        backpressureLimit: MAX_PENDING_BYTES,
        closeOnBackpressureLimit: true,
        sendPings: false,
        perMessageDeflate: false,
        open(ws: WS) {
          const conn = ws.data;
          conn.ws = ws;
          conn.readTick = self.tick;
          if (conn.channels) for (const ch of conn.channels) ws.subscribe(ch);
          conn.channels = null;
          const early = conn.early;
          conn.early = null;
          conn.pendingBytes = 0;
          if (early) for (const [data, type] of early) self.sendTo(conn, data, type as SendType);
          // conn:close() during on_handshake: the messages it sent go out, then the connection closes.
          if (conn.closeOnOpen) ws.close(conn.closeOnOpen[0], conn.closeOnOpen[1]);
        },
        message(ws: WS, message: string | Buffer) {
          const conn = ws.data;
          conn.readTick = self.tick;
          self.node.stats.read.websocket++;
          self.vm.scheduler.dispatch(conn, EV.message, conn.id, message, typeof message === "string" ? 1 : 2);
        },
        // A client's pings (and pongs) keep it alive; Bun answers pings itself.
        ping(ws: WS) {
          ws.data.readTick = self.tick;
        },
        pong(ws: WS) {
          ws.data.readTick = self.tick;
        },
        drain(ws: WS) {
          self.unstall(ws.data);
        },
        close(ws: WS, code: number, reason: string) {
          const conn = ws.data;
          const err = conn.closeReason ?? (code === 1000 || code === 1001 ? null : `close ${code}${reason ? " " + reason : ""}`);
          self.closed(conn, err, EV.close);
        },
      },
    });
    this.startSweeping();
  }

  private upgrade(req: Request, srv: Server<Connection>): Response | Promise<Response | undefined> | undefined {
    const url = new URL(req.url);
    if (url.pathname !== this.path) return new Response("not found", { status: 404 });
    if (req.headers.get("upgrade")?.toLowerCase() !== "websocket") {
      return new Response("websocket upgrade required", { status: 426 });
    }
    const ip = srv.requestIP(req);
    const remoteAddr = ip ? `${ip.address}:${ip.port}` : "";
    const conn = this.newConnection(remoteAddr);
    const headers: Record<string, string> = {};
    req.headers.forEach((value, name) => (headers[canonical(name)] = value));
    const info = {
      addr: remoteAddr,
      headers,
      server: {
        Method: req.method,
        RequestUri: url.pathname + url.search,
        ServerProtocol: "HTTP/1.1",
        Host: req.headers.get("host") ?? "",
        RemoteAddr: remoteAddr,
      },
    };
    return new Promise<Response | undefined>((resolve) => {
      this.handshakes.set(conn.id, { req, resolve });
      // If on_handshake fails before answering, the upgrade is refused with 500.
      conn.settled = () => {
        conn.settled = undefined;
        if (this.handshakes.has(conn.id)) this.handshakeResult(conn.id, false, 500, "handshake failed");
      };
      this.vm.scheduler.dispatch(conn, EV.handshake, conn.id, info);
    });
  }

  protected override handshakeResult(id: number, accept: boolean, status: number, message: string): void {
    const pending = this.handshakes.get(id);
    const conn = this.node.connections.get(id);
    if (!pending || !conn) return;
    this.handshakes.delete(id);
    if (accept && this.server?.upgrade(pending.req, { data: conn })) {
      pending.resolve(undefined);
      return;
    }
    this.node.remove(conn);
    conn.open = false;
    // The Lua connection object was made for on_handshake; no on_close will ever drop it.
    if (!this.vm.closed) this.vm.callGlobal("__connmix_forget", [id]);
    pending.resolve(refusal(message || "Forbidden", accept ? 400 : status));
  }

  sendTo(conn: Connection, data: Uint8Array | string, type: SendType, _raw?: boolean): string | null {
    const ws = conn.ws;
    if (!ws) {
      if (!conn.open) return "connection closed";
      // Held until the upgrade completes, within a bound (sent at once on open, it must also fit the send buffer).
      if (conn.pendingBytes + data.length > MAX_EARLY_BYTES) return "send failed: too much data before the upgrade completed";
      conn.pendingBytes += data.length;
      (conn.early ??= []).push([typeof data === "string" ? data : Buffer.from(data), type]);
      return null;
    }
    const status = type === 2 ? ws.sendBinary(data as Uint8Array) : ws.sendText(typeof data === "string" ? data : Buffer.from(data).toString());
    if (status > 0) return null;
    if (status === 0) return "send failed: connection closed";
    this.markStalled(conn);
    return null; // queued behind earlier data (backpressure)
  }

  /** Bun publishes once to every subscriber; delivered = subscribers, failed = none it could detect. */
  publishNative(channel: string, data: Uint8Array | string, type: SendType): [number, number] {
    const server = this.server;
    if (!server) return [0, 0];
    const n = server.subscriberCount(channel);
    if (n === 0) return [0, 0];
    if (type === 2) server.publish(channel, data as Uint8Array);
    else server.publish(channel, typeof data === "string" ? data : Buffer.from(data).toString());
    return [n, 0];
  }

  closeConnection(conn: Connection, code: number, reason: string): void {
    if (conn.ws) conn.ws.close(code, reason);
    else conn.closeOnOpen = [code, reason];
  }

  protected terminate(conn: Connection): void {
    conn.ws?.terminate();
  }

  stopAccepting(): void {
    const steered = steerToSuccessor(this.config.port);
    // Stopping drops the upgrades still waiting for on_handshake (their clients see a reset): wait for them,
    // within a bound. Not forced: open WebSockets stay, and publish() and subscriberCount() keep working on them.
    const end = performance.now() + HANDSHAKE_WAIT_MS;
    const close = () => {
      if (this.handshakes.size > 0 && performance.now() < end) return void setTimeout(close, 10);
      void this.server?.stop();
    };
    setTimeout(close, steered ? STEER_MS : 0);
  }

  async stop(): Promise<void> {
    this.stopSweeping();
    for (const conn of this.node.connections.values()) {
      if (conn.server === this) conn.ws?.close(1001, "server shutting down");
    }
    await this.server?.stop();
    this.server = null;
  }
}

