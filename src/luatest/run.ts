// Runs the cases of a case file against an entry script, each case on a fresh MemoryServer (a fresh Lua
// state): actions feed the script, expectations check what it did. A case stops at its first failed
// expectation; frames nobody expected and requests nothing was canned for fail it at the end.
import type { Connection } from "../engine/connection";
import type { CaseFile, Step, TestCase } from "./cases";
import { MemoryServer, type Frame } from "./memory-server";
import { CONTEXT } from "../engine/mix/contract";
import { describe, matches, parseJson, substitute } from "./match";

export interface CaseResult {
  name: string;
  line: number;
  ms: number;
  /** file:line and what went wrong; null when the case passed. */
  failure: { line: number; message: string } | null;
  /** Log lines written while the case ran (Lua errors, mix.log). */
  log: string[];
}

export interface FileResult {
  path: string;
  entry: string;
  cases: CaseResult[];
}

/** How long blocking calls (canned, so quick) may keep a case from settling. */
const SETTLE_MS = 5000;

class StepFailure extends Error {
  constructor(readonly line: number, message: string) {
    super(message);
  }
}

/** Receives every log line; set by the caller to where the current case's lines go. */
export type LogSink = { lines: string[] };

export async function runCaseFile(entry: string, file: CaseFile, sink: LogSink): Promise<FileResult> {
  const cases: CaseResult[] = [];
  for (const c of file.cases) cases.push(await runCase(entry, file, c, sink));
  return { path: file.path, entry, cases };
}

async function runCase(entry: string, file: CaseFile, testCase: TestCase, sink: LogSink): Promise<CaseResult> {
  const started = performance.now();
  sink.lines = [];
  const result = (failure: CaseResult["failure"]): CaseResult => ({
    name: testCase.name,
    line: testCase.line,
    ms: performance.now() - started,
    failure,
    log: sink.lines.join("").split("\n").filter(Boolean),
  });
  let server: MemoryServer;
  try {
    server = new MemoryServer(file, testCase, entry);
  } catch (e) {
    return result({ line: testCase.line, message: `the entry does not load: ${(e as Error).message}` });
  }
  try {
    await new CaseRun(server, sink).run(testCase);
    return result(null);
  } catch (e) {
    if (e instanceof StepFailure) return result({ line: e.line, message: e.message });
    throw e;
  } finally {
    await server.stop();
  }
}

class CaseRun {
  private readonly clients = new Map<string, Connection>();
  private readonly ids: Record<string, number> = {};
  private pending = 0;
  private published = 0;
  private pushed = 0;

  constructor(private readonly server: MemoryServer, private readonly sink: LogSink) {
    // Count the blocking calls in flight (all but wait_context_value), to know when the script is idle.
    for (const [name, entry] of server.vm.blocking) {
      if (name === "connection.wait") continue;
      server.vm.blocking.set(name, {
        ...entry,
        run: async (args, task) => {
          this.pending++;
          try {
            return await entry.run(args, task);
          } finally {
            this.pending--;
          }
        },
      });
    }
  }

  async run(testCase: TestCase): Promise<void> {
    for (const step of testCase.steps) {
      await this.step(step);
      await this.settle(step.line);
    }
    for (const [name, conn] of this.clients) {
      const left = this.server.record.frames.get(conn.id)!;
      if (left.length > 0) throw new StepFailure(testCase.line, `${name} received ${left.length} frame(s) no step expected, the first: ${describe(left[0]!)}`);
    }
    const missing = this.server.record.unanswered[0];
    if (missing) throw new StepFailure(testCase.line, `the script made a request the case has no canned answer for: ${missing.what}`);
  }

  /** Lets callbacks, their blocking calls and backlogs run until nothing but waits is left. */
  private async settle(line: number): Promise<void> {
    const end = performance.now() + SETTLE_MS;
    do {
      await new Promise((r) => setImmediate(r));
      await new Promise((r) => setImmediate(r));
      if (performance.now() > end) throw new StepFailure(line, `callbacks still busy after ${SETTLE_MS / 1000}s`);
    } while (this.pending > 0);
  }

  private client(name: string, line: number): Connection {
    const conn = this.clients.get(name);
    if (!conn) throw new StepFailure(line, `no client ${name} (open it first)`);
    return conn;
  }

  /** `{ alice: x, bob: y }` as [name, value] pairs; a bare name or list of names with value null. */
  private named(step: Step): [string, unknown][] {
    const arg = step.arg;
    if (typeof arg === "string") return [[arg, null]];
    if (Array.isArray(arg) && arg.every((a) => typeof a === "string")) return arg.map((a) => [a, null]);
    if (arg && typeof arg === "object" && !Array.isArray(arg)) return Object.entries(arg);
    throw new StepFailure(step.line, `${step.kind} takes a client name, a list of names, or { name: value }`);
  }

  private step(step: Step): void {
    const line = step.line;
    const server = this.server;
    const record = server.record;
    switch (step.kind) {
      case "open":
        for (const [name, opts] of this.named(step)) {
          if (this.clients.has(name)) throw new StepFailure(line, `client ${name} is already open`);
          const o = (opts ?? {}) as { headers?: Record<string, string>; path?: string };
          const conn = server.open(Object.fromEntries(Object.entries(o.headers ?? {}).map(([k, v]) => [k, String(v)])), o.path ?? "/");
          this.clients.set(name, conn);
          this.ids[name] = conn.id;
        }
        return;
      case "send":
        for (const [name, data] of this.named(step)) {
          const conn = this.client(name, line);
          if (typeof data === "string") server.receive(conn, substitute(data, this.ids));
          else if (data && typeof data === "object" && "binary" in data) server.receive(conn, Buffer.from(String(data.binary), "base64"));
          else if (data && typeof data === "object" && "json" in data) server.receive(conn, JSON.stringify(data.json));
          else throw new StepFailure(line, `send ${name}: a text, { json: value } or { binary: base64 }`);
        }
        return;
      case "close":
        for (const [name] of this.named(step)) server.hangUp(this.client(name, line));
        return;
      case "call":
        for (const [name, call] of this.named(step)) {
          if (!Array.isArray(call) || typeof call[0] !== "string") throw new StepFailure(line, `call ${name}: [method, arg, ...] as conn.call takes them`);
          const err = server.node.callLocal(this.client(name, line).id, call[0], call.slice(1));
          if (err !== null) throw new StepFailure(line, `call ${name} ${call[0]} failed: ${err}`);
        }
        return;
      case "publish": {
        const p = step.arg as { channel?: unknown; data?: unknown };
        if (typeof p?.channel !== "string") throw new StepFailure(line, "publish takes { channel, data }");
        const data = typeof p.data === "string" ? p.data : JSON.stringify(p.data);
        server.node.publishLocal(p.channel, substitute(data, this.ids), 1);
        record.publishes.pop(); // the case's own publish is not the script's
        return;
      }
      case "recv":
        for (const [name, expected] of this.named(step)) {
          const frame = record.frames.get(this.client(name, line).id)!.shift();
          if (!frame) throw new StepFailure(line, `recv ${name}: expected ${show(expected)}, but no frame arrived`);
          this.expectFrame(line, `recv ${name}`, expected, frame);
        }
        return;
      case "no_recv":
        for (const [name] of this.named(step)) {
          const left = record.frames.get(this.client(name, line).id)!;
          if (left.length > 0) throw new StepFailure(line, `no_recv ${name}: got ${describe(left[0]!)}`);
        }
        return;
      case "refused":
        for (const [name, status] of this.named(step)) {
          const hs = record.handshakes.get(this.client(name, line).id);
          if (!hs || hs.accept) throw new StepFailure(line, `refused ${name}: the handshake was ${hs ? "accepted" : "not answered"}`);
          if (status !== null && status !== hs.status) throw new StepFailure(line, `refused ${name}: expected status ${status}, got ${hs.status} ${hs.message}`);
        }
        return;
      case "closed":
        for (const [name, code] of this.named(step)) {
          const closed = record.closes.get(this.client(name, line).id);
          if (!closed) throw new StepFailure(line, `closed ${name}: the connection is still open`);
          if (code !== null && code !== closed.code) throw new StepFailure(line, `closed ${name}: expected code ${code}, got ${closed.code}`);
        }
        return;
      case "context":
        for (const [name, want] of this.named(step)) {
          if (!want || typeof want !== "object") throw new StepFailure(line, `context ${name}: { key: value, ... }`);
          const ctx = (server.vm.call(CONTEXT, this.client(name, line).id) ?? {}) as Record<string, unknown>;
          for (const [key, value] of Object.entries(want)) {
            const got = Array.isArray(ctx) ? undefined : ctx[key];
            if (!matches(value, got ?? null, this.ids)) throw new StepFailure(line, `context ${name}.${key}: expected ${show(value)}, got ${show(got ?? null)}`);
          }
        }
        return;
      case "subscribed":
        for (const [name, want] of this.named(step)) {
          const list = (Array.isArray(want) ? want : want === null ? [] : [want]).map((c) => substitute(String(c), this.ids)).sort();
          const got = [...(this.client(name, line).channels ?? [])].sort();
          if (JSON.stringify(got) !== JSON.stringify(list)) throw new StepFailure(line, `subscribed ${name}: expected ${show(list)}, got ${show(got)}`);
        }
        return;
      case "published": {
        const want = step.arg as { channel?: unknown; data?: unknown };
        const got = record.publishes[this.published++];
        if (!got) throw new StepFailure(line, `published: expected a publish to ${show(want?.channel)}, but the script published nothing more`);
        if (want?.channel !== undefined && substitute(String(want.channel), this.ids) !== got.channel) {
          throw new StepFailure(line, `published: expected channel ${show(want.channel)}, got ${show(got.channel)} (${show(got.data)})`);
        }
        if (want?.data !== undefined) this.expectFrame(line, `published to ${got.channel}`, want.data, { type: "text", data: got.data });
        return;
      }
      case "pushed": {
        const want = step.arg as { topic?: unknown; data?: unknown };
        const got = record.pushes[this.pushed++];
        if (!got) throw new StepFailure(line, `pushed: expected a queue push to ${show(want?.topic)}, but the script pushed nothing more`);
        if (want?.topic !== undefined && want.topic !== got.topic) throw new StepFailure(line, `pushed: expected topic ${show(want.topic)}, got ${show(got.topic)} (${got.json})`);
        if (want && "data" in want && !matches(want.data, parseJson(got.json), this.ids)) {
          throw new StepFailure(line, `pushed to ${got.topic}: expected ${show(want.data)}, got ${got.json}`);
        }
        return;
      }
      case "logged": {
        const re = new RegExp(substitute(String(step.arg), this.ids));
        const lines = this.sink.lines.join("").split("\n");
        if (!lines.some((l) => re.test(l))) throw new StepFailure(line, `logged: no log line matches /${re.source}/`);
        return;
      }
    }
  }

  /** A frame against a text (exact, {{name}} = client id), { json }, { match: regex } or { binary: base64 }. */
  private expectFrame(line: number, what: string, expected: unknown, frame: Frame): void {
    // A socket server writes bytes, not typed frames: its writes compare as UTF-8 text too.
    const asText = frame.type === "text" || this.server.protocol === "socket";
    const data = typeof frame.data === "string" ? frame.data : Buffer.from(frame.data).toString(asText ? "utf8" : "latin1");
    if (typeof expected === "string") {
      const want = substitute(expected, this.ids);
      if (asText && data === want) return;
      throw new StepFailure(line, `${what}: expected ${describe({ type: "text", data: want })}\n  got ${describe(frame)}`);
    }
    const e = (expected ?? {}) as { json?: unknown; match?: unknown; binary?: unknown };
    if ("json" in e) {
      if (matches(e.json, parseJson(data), this.ids)) return;
      throw new StepFailure(line, `${what}: expected JSON ${show(e.json)}\n  got ${describe(frame)}`);
    }
    if ("match" in e) {
      if (new RegExp(substitute(String(e.match), this.ids)).test(data)) return;
      throw new StepFailure(line, `${what}: expected a frame matching /${e.match}/\n  got ${describe(frame)}`);
    }
    if ("binary" in e) {
      const want = Buffer.from(String(e.binary), "base64");
      if (want.equals(Buffer.from(frame.data))) return;
      throw new StepFailure(line, `${what}: expected binary ${want.toString("base64")}\n  got ${describe(frame)}`);
    }
    throw new StepFailure(line, `${what}: expect a text, { json: value }, { match: regex } or { binary: base64 }`);
  }
}

const show = (v: unknown) => JSON.stringify(v) ?? String(v);
