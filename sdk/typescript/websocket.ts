// The WebSocket class to use: the global one (Bun, Node 22+, browsers) or, where there is none (Node 20),
// the `ws` package. Both take { headers } as a second argument for HTTP Basic credentials (Bun's and
// ws's own extension; browsers cannot send them).
export interface SocketLike {
  readonly readyState: number;
  onopen: ((e: unknown) => void) | null;
  onmessage: ((e: { data: unknown }) => void) | null;
  onclose: ((e: { code: number; reason: string }) => void) | null;
  onerror: ((e: unknown) => void) | null;
  send(data: string): void;
  close(code?: number, reason?: string): void;
}
export type SocketClass = new (url: string, options?: { headers?: Record<string, string> }) => SocketLike;

let found: Promise<SocketClass> | null = null;

export function socketClass(): Promise<SocketClass> {
  found ??= (async () => {
    const global = (globalThis as { WebSocket?: unknown }).WebSocket;
    if (typeof global === "function") return global as SocketClass;
    try {
      const mod = (await import("ws")) as { WebSocket?: unknown; default?: unknown };
      return (mod.WebSocket ?? mod.default) as SocketClass;
    } catch {
      throw new Error("connmix sdk: no global WebSocket here; install the ws package (npm install ws)");
    }
  })();
  return found;
}
