// The engine's JS <-> Lua contract, in one place: the events JS delivers to the families' Lua (their numbers,
// payloads and extra values), the constants the Lua side reads (handed to the chunks, never typed twice)
// and the hooks the chunks return for JS to call. docs/internals.md describes it.
import { FAILED, hook } from "../../lua/family";
import type { Scheduler } from "../../lua/scheduler";
import type { Connection } from "../connection";
import type { SendType } from "../host";
import { MAX_SHORT_TEXT } from "../../net/frames";

/** Event numbers: the Lua families' handlers are H[EV.<name>]; the chunks get this table as `F.EV`. */
export const EV = { open: 10, close: 11, handshake: 20, message: 21, connect: 30, data: 31 } as const;

/** A message's type (the `extra` of EV.message, and what conn:send and the API send): `F.TYPE` in Lua. */
export const TYPE = { text: 1, binary: 2 } as const satisfies Record<string, SendType>;

/** The longest channel name, in bytes: what the mesh carries (a longer one could reach no other engine). */
export const MAX_CHANNEL_BYTES = MAX_SHORT_TEXT;

/** The constants the connection and protocol families read. */
export const EVENT_CONSTANTS = { EV, TYPE };

/** Payload of EV.open (the handshake and connect handlers open the connection object with theirs). */
export type OpenInfo = { addr: string; binary?: boolean };
/** Payload of EV.handshake: what on_handshake sees of the upgrade request. */
export type HandshakeInfo = { addr: string; headers: Record<string, string>; server: Record<string, string> };

/**
 * The events, one typed method each: what `Scheduler.dispatch(owner, kind, id, payload, extra)` carries for
 * each kind. The payload and `extra` of every event are fixed here; the scheduler passes them on unread.
 */
export class LuaEvents {
  constructor(private readonly scheduler: Scheduler) {}

  /** A WebSocket upgrade request: on_handshake, whose answer comes back through the host's handshakeResult. */
  handshake(conn: Connection, info: HandshakeInfo): void {
    this.scheduler.dispatch(conn, EV.handshake, conn.id, info);
  }

  /** A WebSocket message: on_message; extra is its TYPE. */
  message(conn: Connection, data: string | Uint8Array): void {
    this.scheduler.dispatch(conn, EV.message, conn.id, data, typeof data === "string" ? TYPE.text : TYPE.binary);
  }

  /** A TCP connection: on_connect. */
  connect(conn: Connection): void {
    const info: OpenInfo = { addr: conn.remoteAddr, binary: true };
    this.scheduler.dispatch(conn, EV.connect, conn.id, info);
  }

  /** Bytes from a TCP client: the framing loop; extra is how many bytes may wait without a whole package. */
  data(conn: Connection, chunk: Uint8Array, limit: number): void {
    this.scheduler.dispatch(conn, EV.data, conn.id, chunk, limit);
  }

  /** The connection is gone: on_close; extra is the reason, absent for a clean close. */
  close(conn: Connection, reason: string | null): void {
    this.scheduler.dispatch(conn, EV.close, conn.id, undefined, reason ?? undefined);
  }
}

// The hooks, by the family that returns them (connection.lua, socket.lua, entry.lua).
/** Restores the current connection after a failed callback: the runtime's own hook (src/lua/family.ts). */
export { FAILED };
/** Drops the connection object of a refused upgrade (no on_close will). */
export const FORGET = hook<[id: number]>("forget");
/** Runs set_context_value, set_context, subscribe or unsubscribe for the API's conn.call: an error text or nil. */
export const CONN_CALL = hook<[id: number, method: string, args: unknown[]]>("conn_call");
/** The context table of a connection (connmix test, the console); nil when unknown. */
export const CONTEXT = hook<[id: number]>("context");
/** The script's protocol_encode of pushed data (no id for a publish): the bytes to send, or nil. */
export const ENCODE = hook<[data: Uint8Array, id: number | undefined, type: SendType]>("encode", true);
/** How many messages protocol_decode produced. */
export const DECODED = hook<[]>("decoded");
/** How many connections buffered more than the limit without a complete package (and were closed). */
export const OVERSIZED = hook<[]>("oversized");
/** The bytecode of on_connect, on_close and on_handshake, for the convention detection. */
export const CALLBACK_DUMPS = hook<[]>("callback_dumps", true);
/** Tells the Lua side the callback convention ("1.0.1" or "1.0.3"). */
export const SET_CONVENTION = hook<[convention: string]>("set_convention");
/** Runs the script's init() if it has one: whether it had. */
export const INIT = hook<[]>("init");
