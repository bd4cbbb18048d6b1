// Engine-wide limits that the configuration does not name (documented in docs/configuration.md).

/** Largest WebSocket message, and largest unframed backlog of a socket connection: bigger closes it (1009). */
export const MAX_MESSAGE_BYTES = 1 << 20;
/** Bytes queued for a client that does not read before it is dropped, whatever writeTimeout says. */
export const MAX_PENDING_BYTES = 4 << 20;
/** How often idle readers and stalled writers are checked against readTimeout and writeTimeout. */
export const SWEEP_MS = 1000;
