// Engine-wide limits that the configuration does not name (documented in docs/lua-api.md).

/** Largest WebSocket message, and largest unframed backlog of a socket connection: bigger closes it (1009). */
export const MAX_MESSAGE_BYTES = 1 << 20;
/** The reason Bun (uWebSockets) closes with after refusing a message over maxPayloadLength (the peer sees 1009). */
export const BUN_TOO_BIG = "Received too big message";
/**
 * Whether a WebSocket close handler's (code, reason) is Bun refusing a message over maxPayloadLength. The close
 * handler then gets 1006: a peer can send any reason, but not code 1006 (Bun turns it into "Received invalid
 * close code"), so a client cannot pass its own close for one.
 */
export const closedTooBig = (code: number, reason: string) => code === 1006 && reason === BUN_TOO_BIG;
/** Bytes queued for a client that does not read before it is dropped, whatever writeTimeout says. */
export const MAX_PENDING_BYTES = 4 << 20;
/** How often idle readers and stalled writers are checked against readTimeout and writeTimeout. */
export const SWEEP_MS = 1000;
/** Bytes conn:send may hold for a WebSocket still in on_handshake (they go out when the upgrade completes). */
export const MAX_EARLY_BYTES = 1 << 20;
/**
 * A WebSocket server's read batch this large (messages, or their data: a text's length, bytes' count) goes to
 * Lua at once, inside the read, instead of at the end of the turn (read-batch.ts).
 */
export const MAX_BATCH_MESSAGES = 4096;
export const MAX_BATCH_BYTES = 4 << 20;
/** Data held for writing after a batch (outbox.ts) or a read (held-writes.ts) past which it is written at once. */
export const MAX_HELD_BYTES = 1 << 20;
/** Seconds a TLS client of a socket server may take for its handshake when readTimeout is 0 (no limit). */
export const TLS_HANDSHAKE_SECONDS = 10;
