// src/net/http.ts against a real Bun.serve: a handler that throws is answered with a plain 500 and one
// escaped log line, never Bun's development page with the source, paths and working directory.
import { expect, test } from "bun:test";
import { serveErrors } from "../src/net/http";
import { captureLog } from "./helpers/log.ts";

const readLog = captureLog();

test("a handler that throws: a plain 500, and one escaped log line", async () => {
  const server = Bun.serve({
    hostname: "127.0.0.1",
    port: 0,
    fetch() {
      throw new URIError("bad\nFAKE LINE");
    },
    ...serveErrors("test API"),
  });
  try {
    const res = await fetch(`http://127.0.0.1:${server.port}/x`);
    expect(res.status).toBe(500);
    expect(await res.text()).toBe("internal error\n");
    expect(readLog()).toContain("test API: a request failed: URIError: bad\\nFAKE LINE");
  } finally {
    await server.stop(true);
  }
});
