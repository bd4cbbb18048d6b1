// `websocket` servers: Bun.serve does the protocol; each upgrade on the configured path runs on_handshake,
// each message on_message (in batches: read-batch.ts) and each close on_close in the server's Lua VM.
import type { Server, ServerWebSocket, WebSocketHandler } from "bun";
import { websocketEvents } from "./mix/connection";
import { FORGET } from "./mix/contract";
import { WsConnection } from "./connection";
import { ReadBatch } from "./read-batch";
import { Outbox } from "./outbox";
import { log } from "../log/logger";
import type { SendType } from "./host";
import { LuaServer, type LuaServerOptions } from "./lua-server";
import { Listeners } from "../net/listeners";
import { serveErrors } from "../net/http";
import { closedTooBig, MAX_EARLY_BYTES, MAX_MESSAGE_BYTES, MAX_PENDING_BYTES } from "./limits";
import { STEER_MS, steerToSuccessor } from "../handover/steer";

type WS = ServerWebSocket<WsConnection>;
const NOTHING = [0, 0] as const;

interface PendingHandshake {
  conn: WsConnection;
  req: Request;
  /** The listener the request came to, which must upgrade it. */
  srv: Server<WsConnection>;
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
  /** The Bun.serve listeners of the port: one, or during a certificate change also the old one (net/listeners.ts). */
  private listeners: Listeners<Server<WsConnection>> | null = null;
  private readonly path: string;
  private readonly handshakes = new Map<number, PendingHandshake>();
  private readonly outbox = new Outbox(
    (conn, status) => this.heldNotWritten(conn, status),
    (channel, data, type) => this.publishNow(channel, data, type),
  );
  private readonly batch = new ReadBatch((conn, data) => this.deliver(conn, data), this.outbox);

  constructor(opts: LuaServerOptions) {
    super({ ...opts, families: [...opts.families, websocketEvents] });
    this.path = this.option("path") ?? "/";
  }

  async listen(): Promise<void> {
    const cfg = this.config;
    const websocket = this.handler();
    let port = cfg.port;
    this.listeners = new Listeners<Server<WsConnection>>({
      tls: cfg.tls,
      label: `lua server ${cfg.bind}:${cfg.port}`,
      start: (pem) =>
        Bun.serve<WsConnection>({
          hostname: cfg.bind,
          port,
          reusePort: this.reusePort,
          fetch: (req, srv) => this.upgrade(req, srv),
          websocket,
          ...serveErrors(`lua server ${cfg.bind}:${cfg.port}`),
          ...(pem && { tls: pem }),
        }),
      retire: (old) => this.retire([old], 0),
    });
    port = this.listeners.current.port!;
    this.startSweeping();
  }

  private handler(): WebSocketHandler<WsConnection> {
    const self = this;
    return {
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
        conn.earlyBytes = 0;
        if (early) for (const [data, type] of early) self.sendTo(conn, data, type as SendType);
        // conn:close() during on_handshake: the messages it sent go out, then the connection closes.
        if (conn.closeOnOpen) ws.close(conn.closeOnOpen[0], conn.closeOnOpen[1]);
      },
      message(ws: WS, message: string | Buffer) {
        const conn = ws.data;
        conn.readTick = self.tick;
        self.node.stats.read.websocket++;
        self.batch.add(conn, message);
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
        if (closedTooBig(code, reason) && conn.closeReason === null) self.droppedTooLarge(conn);
        const err = conn.closeReason ?? (code === 1000 || code === 1001 ? null : `close ${code}${reason ? " " + reason : ""}`);
        self.closed(conn, err);
      },
    };
  }

  /** A message of the read batch to Lua: not once the engine closed the connection (uWebSockets stops
   * reading then), so a script that closed it sees no more of its messages. */
  private deliver(conn: WsConnection, data: string | Uint8Array): void {
    if (!conn.closedByServer) return this.events.message(conn, data);
    conn.droppedAfterClose++;
    this.node.stats.droppedMessages.after_close.websocket++;
  }

  /** What the client sent before it closed reaches on_message before on_close. */
  protected override closeEvent(conn: WsConnection, err: string | null): void {
    this.batch.flushConnection(conn);
    if (conn.droppedAfterClose > 0) {
      log.info(`client ${conn.id}: ${conn.droppedAfterClose} message(s) read with the engine's close of it were not delivered`);
    }
    super.closeEvent(conn, err);
  }

  /** Bun refused a message over MAX_MESSAGE_BYTES and closed the connection: counted and logged, as other drops. */
  private droppedTooLarge(conn: WsConnection): void {
    this.node.stats.droppedMessages.too_large.websocket++;
    log.warn(`client ${conn.id} sent a message over ${MAX_MESSAGE_BYTES} bytes, closed (1009)`);
  }

  private upgrade(req: Request, srv: Server<WsConnection>): Response | Promise<Response | undefined> | undefined {
    const url = new URL(req.url);
    if (url.pathname !== this.path) return new Response("not found", { status: 404 });
    if (req.headers.get("upgrade")?.toLowerCase() !== "websocket") {
      return new Response("websocket upgrade required", { status: 426 });
    }
    const ip = srv.requestIP(req);
    const remoteAddr = ip ? `${ip.address}:${ip.port}` : "";
    const conn = this.accept(new WsConnection(this.opening(remoteAddr)));
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
      this.handshakes.set(conn.id, { conn, req, srv, resolve });
      // If on_handshake fails before answering, the upgrade is refused with 500.
      conn.settled = () => {
        conn.settled = undefined;
        if (this.handshakes.has(conn.id)) this.handshakeResult(conn.id, false, 500, "handshake failed");
      };
      this.events.handshake(conn, info);
    });
  }

  protected override handshakeResult(id: number, accept: boolean, status: number, message: string): void {
    const pending = this.handshakes.get(id);
    if (!pending || !this.node.connections.has(id)) return;
    const conn = pending.conn;
    this.handshakes.delete(id);
    if (accept && pending.srv.upgrade(pending.req, { data: conn })) {
      pending.resolve(undefined);
      return;
    }
    this.node.remove(conn);
    conn.open = false;
    // The Lua connection object was made for on_handshake; no on_close will ever drop it.
    if (!this.vm.closed) this.vm.call(FORGET, id);
    pending.resolve(refusal(message || "Forbidden", accept ? 400 : status));
  }

  sendTo(conn: WsConnection, data: Uint8Array | string, type: SendType, _raw?: boolean): string | null {
    const ws = conn.ws;
    if (!ws) {
      if (!conn.open) return "connection closed";
      // Held until the upgrade completes, within a bound (sent at once on open, it must also fit the send buffer).
      if (conn.earlyBytes + data.length > MAX_EARLY_BYTES) return "send failed: too much data before the upgrade completed";
      conn.earlyBytes += data.length;
      (conn.early ??= []).push([typeof data === "string" ? data : Buffer.from(data), type]);
      return null;
    }
    const payload = type === 2 ? data : typeof data === "string" ? data : Buffer.from(data).toString();
    if (this.outbox.hold(conn, payload, type)) return null;
    this.outbox.flush(); // a held publication to this connection goes first
    const status = type === 2 ? ws.sendBinary(payload as Uint8Array) : ws.sendText(payload as string);
    if (status > 0) return null;
    if (status === 0) return "send failed: connection closed";
    this.markStalled(conn);
    return null; // queued behind earlier data (backpressure)
  }

  /**
   * Bun publishes once to every subscriber; delivered = subscribers, failed = none it could detect. Usually
   * one listener; during a certificate change the old one still holds its clients' subscriptions. During a
   * read batch the publication is held in its place among the held sends (outbox.ts).
   */
  publishNative(channel: string, data: Uint8Array | string, type: SendType): readonly [number, number] {
    const all = this.listeners?.all;
    if (!all) return NOTHING;
    let n = 0;
    for (let i = 0; i < all.length; i++) n += all[i]!.subscriberCount(channel);
    if (n === 0) return NOTHING;
    const payload = type === 2 ? data : typeof data === "string" ? data : Buffer.from(data).toString();
    if (!this.outbox.holdPublication(channel, payload, type)) this.publishNow(channel, payload, type);
    return [n, 0];
  }

  /** (A listener without subscribers to the channel finds none: publishing to it costs a lookup.) */
  private publishNow(channel: string, data: Uint8Array | string, type: number): void {
    for (const server of this.listeners?.all ?? []) {
      if (type === 2) server.publish(channel, data as Uint8Array);
      else server.publish(channel, data as string);
    }
  }

  /** Held sends and publications go before a subscription changes. */
  override flushHeld(): void {
    this.outbox.flush();
  }

  /** A held send (outbox.ts) that Bun queued behind earlier data (-1), or lost when it closed the connection (0). */
  private heldNotWritten(conn: WsConnection, status: number): void {
    if (status < 0) return this.markStalled(conn);
    this.node.stats.sent.websocket--;
    this.node.stats.sendErrors.websocket++;
  }

  closeConnection(conn: WsConnection, code: number, reason: string): void {
    this.outbox.flush(); // held sends go before the close
    conn.closedByServer = true;
    if (conn.ws) conn.ws.close(code, reason);
    else conn.closeOnOpen = [code, reason];
  }

  protected terminate(conn: WsConnection): void {
    this.outbox.flush();
    conn.closedByServer = true;
    conn.ws?.terminate();
  }

  stopAccepting(): void {
    this.listeners?.close(); // no new certificate's listener from now on
    void this.retire(this.listeners?.all ?? [], steerToSuccessor(this.config.port) ? STEER_MS : 0);
  }

  /**
   * Stops `servers` listening after `delayMs`. Stopping drops the upgrades still waiting for on_handshake
   * (their clients see a reset): wait for them, within a bound. Not forced: open WebSockets stay, and
   * publish() and subscriberCount() keep working on them. Resolves once their last connection closed.
   */
  private retire(servers: Server<WsConnection>[], delayMs: number): Promise<unknown> {
    const end = performance.now() + delayMs + HANDSHAKE_WAIT_MS;
    return new Promise((resolve) => {
      const close = () => {
        if (this.handshakes.size > 0 && performance.now() < end) return void setTimeout(close, 10);
        resolve(Promise.all(servers.map((server) => server.stop())));
      };
      setTimeout(close, delayMs);
    });
  }

  async stop(): Promise<void> {
    this.stopSweeping();
    this.batch.flush();
    for (const conn of this.node.connections.values()) {
      if (conn.server === this && conn instanceof WsConnection) conn.ws?.close(1001, "server shutting down");
    }
    this.listeners?.close();
    await Promise.all((this.listeners?.all ?? []).map((server) => server.stop()));
    this.listeners = null;
  }
}

