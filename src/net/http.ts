// What every HTTP listener of connmix (the Lua servers, the engine API, the center API) shares against
// hostile requests: request bodies read with a bound, and a plain answer when a handler fails.
import { log } from "../log/logger";
import { escapeText } from "../log/escape";

/** A request body: its text, or, when it is over the bound, how many bytes it has (`partial`: at least). */
export type Body = string | { bytes: number; partial: boolean };

const utf8 = new TextDecoder();

/**
 * The body of `req` if it holds at most `max` bytes. A larger Content-Length is refused unread; a body
 * without one (chunked) is read as it arrives and given up once it passes `max`, where Bun would buffer it
 * up to its own limit, and wait for its end, before the size could be checked.
 */
export async function readBody(req: Request, max: number): Promise<Body> {
  const length = req.headers.get("content-length");
  if (length !== null) {
    const declared = Number(length);
    if (declared > max) return { bytes: declared, partial: false };
    return req.text();
  }
  if (!req.body) return "";
  const reader = req.body.getReader();
  const chunks: Uint8Array[] = [];
  let size = 0;
  for (;;) {
    const { done, value } = await reader.read();
    if (done) return utf8.decode(Buffer.concat(chunks, size));
    size += value.byteLength;
    if (size > max) {
      void reader.cancel().catch(() => {});
      return { bytes: size, partial: true };
    }
    chunks.push(value);
  }
}

/**
 * Bun.serve options for a handler that throws: one escaped log line and a plain 500. Bun's default is its
 * development error page, which shows the failing source lines, file paths and working directory to
 * whoever sent the request, and an unescaped stack on stderr.
 */
export function serveErrors(label: string) {
  return {
    development: false,
    error(e: Error): Response {
      log.error(`${label}: a request failed: ${escapeText(`${e.name}: ${e.message}`)}`);
      return new Response("internal error\n", { status: 500 });
    },
  };
}
