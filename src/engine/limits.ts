// Engine-wide limits that the configuration does not name (documented in docs/configuration.md).

/** Largest WebSocket message, and largest unframed backlog of a socket connection: bigger closes it (1009). */
export const MAX_MESSAGE_BYTES = 1 << 20;
/** Bytes queued for a client that does not read before it is dropped, whatever writeTimeout says. */
export const MAX_PENDING_BYTES = 4 << 20;
/** Bun's idleTimeout is at most 960 s; 0 disables it. */
export const MAX_IDLE_SECONDS = 960;
/** How often stalled writers are checked against writeTimeout. */
export const STALL_SWEEP_MS = 1000;

export const idleSeconds = (readTimeout: number) => Math.min(Math.max(0, Math.round(readTimeout)), MAX_IDLE_SECONDS);
