// Ports during a handover. Every listener a successor takes over (Lua servers, API server, mesh point,
// registry, center API) binds with SO_REUSEPORT, so the successor binds the same port beside it and the
// kernel hands new connections to both until the old process closes its listeners. Only the two may
// share: a first start binds each port once without SO_REUSEPORT (checkFree), which fails when anything
// else holds it; a successor skips that check, its predecessor holds the ports.
import { predecessor } from "./predecessor";

/** Options for Bun.listen binding `hostname:port` shared (bun-types 1.4.4 declares reusePort for Bun.connect only). */
export function shared(hostname: string, port: number): { hostname: string; port: number } {
  return { hostname, port, reusePort: true } as { hostname: string; port: number };
}

/** Throws when another process holds the port (not checked in a successor). */
export function checkFree(hostname: string, port: number): void {
  if (predecessor) return;
  Bun.listen({ hostname, port, socket: { data() {} } }).stop(true);
}
