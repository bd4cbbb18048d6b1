// The older /ws/v1 protocol, as connmix's 1.0.1-era docs (zh-cn websocket-api) and the PHP client's
// SyncSyncNode/AsyncSyncNode speak it: {"method", "params", "id"} answered {"error", "result", "id"},
// and queue items as {"event":"queue.consume","result":{"client_id","queue","data"},"id":null}. Each
// request is translated onto the dispatcher's methods; only this module knows the old shapes.
import type { ApiSocket } from "./consumer";
import { ApiError, CODE, errorJson, type Dispatcher, type Result } from "./dispatcher";

export interface LegacyRequest {
  method?: unknown;
  params?: unknown;
  id?: unknown;
}

const SUCCESS = '{"success":true}';

/** `params` is a list holding one object (the docs) or the object itself (the PHP client). */
function one(params: unknown): Record<string, unknown> {
  const p = Array.isArray(params) ? params[0] : params;
  return p !== null && typeof p === "object" && !Array.isArray(p) ? (p as Record<string, unknown>) : {};
}

const then = (r: Result, f: (text: string) => string): Result => (typeof r === "string" ? f(r) : r.then(f));

/** Runs one old-style request; its result in the old shape. */
function call(d: Dispatcher, req: LegacyRequest, socket: ApiSocket): Result {
  const p = one(req.params);
  switch (req.method) {
    case "server.ping":
      return '{"status":"server.pong"}';
    case "queue.consume":
      socket.useLegacyEvents();
      return then(d.call("queue.pop", req.params, socket), () => SUCCESS);
    case "queue.unconsume":
      return then(d.call("queue.unpop", {}, socket), () => SUCCESS);
    case "conn.call":
      return then(d.call("conn.call", { c: p.client_id, f: p.func, a: p.args }, socket), () => SUCCESS);
    case "mesh.send":
      return then(d.call("mesh.send", { c: p.client_id, d: p.data, t: p.type }, socket), () => '{"fail":0,"success":true,"total":1}');
    case "mesh.publish":
      return then(d.call("mesh.publish", { c: p.channel, d: p.data, t: p.type }, socket), (r) => {
        const { s, f } = JSON.parse(r) as { s: number; f: number };
        return `{"fail":${f},"success":true,"total":${s + f}}`;
      });
    default:
      throw new ApiError(CODE.invalidArgument, `unknown method: ${JSON.stringify(req.method)}`);
  }
}

/** Answers an old-style request on `socket`. */
export function legacyRequest(d: Dispatcher, req: LegacyRequest, socket: ApiSocket): void {
  const id = JSON.stringify(req.id ?? null);
  const failed = (e: unknown) => {
    const { c, m } = JSON.parse(errorJson(e, req.method)) as { c: number; m: string };
    socket.reply(`{"error":{"code":${c},"message":${JSON.stringify(m)}},"id":${id}}`);
  };
  let r: Result;
  try {
    r = call(d, req, socket);
  } catch (e) {
    return failed(e);
  }
  const ok = (text: string) => socket.reply(`{"error":null,"result":${text},"id":${id}}`);
  if (typeof r === "string") ok(r);
  else r.then(ok, failed);
}
