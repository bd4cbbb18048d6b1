// /ws/v1: requests `{"m": method, "p": params, "i": id}` answered with `{"E":null,"r":...,"i":id}` or
// `{"E":{"c":code,"m":message},"i":id}`, plus queue.pop events. A request that names its id `"id"` (as the
// docs' mesh.send example does) gets it back as both "i" and "id". Bun answers WebSocket pings with pongs,
// and a text message `ping` is answered `pong` (for browsers, which cannot send pings). A bad request
// (malformed JSON, too large, unknown method) gets a 101 error and the connection stays open. A request
// with "method" instead of "m" is the older protocol (legacy.ts).
import type { ServerWebSocket, WebSocketHandler } from "bun";
import type { ApiServerConfig } from "../config/schema";
import { log } from "../log/logger";
import { MAX_UNREAD_BYTES, type ApiSocket } from "./consumer";
import { ApiError, CODE, Dispatcher, HARD_LIMIT_BYTES, MAX_REQUEST_BYTES, TooLarge, errorJson } from "./dispatcher";
import type { RequestRefusals } from "../access/access";
import { closedTooBig } from "../engine/limits";
import { legacyRequest, type LegacyRequest } from "./legacy";

type WS = ServerWebSocket<ApiSocket>;

/** Bun's WebSocket idle timeout is at most 960 s (and 0 turns it off). */
const MAX_IDLE_SECONDS = 960;
/** How often backed-up connections are checked against writeTimeout, ms (the default of the constructor's). */
export const STALL_SWEEP_MS = 1000;

// `id` is the JSON of the request id followed by `}`, or by `,"id":<same>}` when the request called it "id".
const success = (r: string, id: string) => `{"E":null,"r":${r},"i":${id}`;
const failure = (e: unknown, m: unknown, id: string) => `{"E":${errorJson(e, m)},"i":${id}`;
const NO_ID = "null}";

/** Bytes of a text frame, counted only when it might be over the limit. */
const tooBig = (raw: string | Buffer) =>
  typeof raw !== "string" ? raw.length > MAX_REQUEST_BYTES : raw.length * 3 > MAX_REQUEST_BYTES && Buffer.byteLength(raw) > MAX_REQUEST_BYTES;

export class ApiWebSockets {
  readonly sockets = new Set<ApiSocket>();
  private readonly sweeper: Timer;
  private readonly handlers: WebSocketHandler<ApiSocket>;

  /** `refused`: the API's refused requests, where requests too large are counted. */
  constructor(
    private readonly dispatcher: Dispatcher,
    private readonly settings: () => ApiServerConfig,
    private readonly refused: RequestRefusals,
    stallSweepMs = STALL_SWEEP_MS,
  ) {
    const self = this;
    this.handlers = {
      maxPayloadLength: HARD_LIMIT_BYTES,
      backpressureLimit: MAX_UNREAD_BYTES,
      perMessageDeflate: false,
      open(ws: WS) {
        ws.data.ws = ws;
        self.sockets.add(ws.data);
      },
      message(ws: WS, raw: string | Buffer) {
        self.request(ws.data, raw);
      },
      drain(ws: WS) {
        ws.data.drained();
      },
      pong(ws: WS, data: Buffer) {
        ws.data.pong(data);
      },
      close(ws: WS, code: number, reason: string) {
        // Over HARD_LIMIT_BYTES Bun stops reading and closes (1009): the request is lost, the backend sees why.
        if (closedTooBig(code, reason)) {
          self.refused.too_large++;
          log.warn(`api connection ${ws.data.address} sent a message over ${HARD_LIMIT_BYTES} bytes, closed (1009)`);
        }
        self.sockets.delete(ws.data);
        ws.data.closed();
      },
    };
    this.sweeper = setInterval(() => this.dropStalled(), stallSweepMs);
    this.sweeper.unref();
  }

  /** The handler for Bun.serve (and server.reload, after a readTimeout edit): idle timeout from the settings. */
  get handler(): WebSocketHandler<ApiSocket> {
    return { ...this.handlers, idleTimeout: Math.min(Math.max(0, Math.round(this.settings().readTimeout)), MAX_IDLE_SECONDS) };
  }

  private request(socket: ApiSocket, raw: string | Buffer): void {
    if (raw === "ping") return socket.reply("pong");
    if (tooBig(raw)) {
      this.refused.too_large++;
      return socket.reply(failure(new TooLarge(Buffer.byteLength(raw)), undefined, NO_ID));
    }
    let req: { m?: unknown; p?: unknown; i?: unknown; id?: unknown } & LegacyRequest;
    try {
      req = JSON.parse(typeof raw === "string" ? raw : raw.toString());
    } catch (e) {
      return socket.reply(failure(new ApiError(CODE.invalidArgument, `malformed JSON: ${(e as Error).message}`), undefined, NO_ID));
    }
    if (req === null || typeof req !== "object" || Array.isArray(req)) {
      return socket.reply(failure(new ApiError(CODE.invalidArgument, 'a request is an object {"m": method, "p": params, "i": id}'), undefined, NO_ID));
    }
    if (req.m === undefined && req.method !== undefined) return legacyRequest(this.dispatcher, req, socket);
    let id = NO_ID;
    if (req.i !== undefined) id = JSON.stringify(req.i) + "}";
    else if (req.id !== undefined) id = `${JSON.stringify(req.id)},"id":${JSON.stringify(req.id)}}`;
    let r;
    try {
      r = this.dispatcher.call(req.m, req.p, socket);
    } catch (e) {
      return socket.reply(failure(e, req.m, id));
    }
    if (typeof r === "string") socket.reply(success(r, id));
    else r.then((text) => socket.reply(success(text, id)), (e) => socket.reply(failure(e, req.m, id)));
  }

  /** Drops connections whose peer took nothing for writeTimeout seconds (their items in flight are settled as on any close). */
  private dropStalled(): void {
    const limit = performance.now() - this.settings().writeTimeout * 1000;
    for (const s of this.sockets) {
      if (s.stalledSince && s.stalledSince < limit) {
        log.warn(`api connection ${s.address} did not read for ${this.settings().writeTimeout}s, dropped`);
        s.goneReason = "write_timeout";
        s.ws?.terminate();
      }
    }
  }

  /** Closes every connection (1001 by default) and stops the sweep. */
  close(code = 1001, reason = "server shutting down"): void {
    clearInterval(this.sweeper);
    for (const s of this.sockets) s.ws?.close(code, reason);
  }
}
