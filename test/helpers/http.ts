// HTTP requests of tests to the API servers: JSON in, JSON out.
import { connect } from "node:net";
import { until } from "./wait.ts";

/** POSTs `body` (JSON unless a string) and returns the status and the body, parsed when it is JSON. */
export async function postJson(url: string, body: unknown, headers: Record<string, string> = {}): Promise<{ status: number; body: any }> {
  const r = await fetch(url, { method: "POST", body: typeof body === "string" ? body : JSON.stringify(body), headers });
  const text = await r.text();
  let parsed: unknown = text;
  try {
    parsed = JSON.parse(text);
  } catch {}
  return { status: r.status, body: parsed };
}

/** POSTs `body` as JSON and returns the JSON answer; fails unless the status is 2xx. */
export async function post(url: string, body: unknown): Promise<any> {
  const { status, body: answer } = await postJson(url, body, { "content-type": "application/json" });
  if (status < 200 || status > 299) throw new Error(`POST ${url}: ${status} ${JSON.stringify(answer)}`);
  return answer;
}

export async function getJson(url: string): Promise<any> {
  const r = await fetch(url);
  return r.json();
}

/**
 * POSTs to `path` on the loopback `port` a chunked body that passes 2 MiB and never ends (`headers`: extra
 * header lines); returns the raw answer once the server closed the connection (fails after 5 s).
 */
export async function endlessChunkedPost(port: number, path: string, headers = ""): Promise<string> {
  const s = connect(port, "127.0.0.1");
  let got = "";
  let closed = false;
  s.on("data", (d) => (got += d));
  s.on("close", () => (closed = true));
  s.on("error", () => {});
  s.write(`POST ${path} HTTP/1.1\r\nHost: 127.0.0.1\r\n${headers}Transfer-Encoding: chunked\r\n\r\n`);
  const chunk = `100000\r\n${"x".repeat(1 << 20)}\r\n`; // 1 MiB each
  s.write(chunk);
  s.write(chunk);
  try {
    await until(() => closed, 5000, "the answer, then the close");
  } finally {
    s.destroy();
  }
  return got;
}
