// The case file of `connmix test` (YAML): server settings, canned mix.http / mix.redis answers, and cases,
// each a list of steps (actions and expectations), every one remembered with its line for the report.
// Format: docs/lua-test.md. A file that does not fit the format is one error naming file:line.
import { readFileSync } from "node:fs";
import { isMap, isSeq, LineCounter, parseDocument, type Node } from "yaml";

export const ACTIONS = ["open", "send", "close", "call", "publish"] as const;
export const EXPECTATIONS = ["recv", "refused", "closed", "context", "subscribed", "published", "pushed", "logged", "no_recv"] as const;
export type StepKind = (typeof ACTIONS)[number] | (typeof EXPECTATIONS)[number];

export interface Step {
  kind: StepKind;
  /** The step's value as written (its own shape is checked when it runs). */
  arg: unknown;
  line: number;
}

export interface CannedHttp {
  method?: string;
  url: string;
  /** When given, the request body must equal it. */
  body?: string;
  status: number;
  headers: Record<string, string>;
  response: string;
  /** An error for the script (mix.http.request returns nil, error) instead of a response. */
  error?: string;
  line: number;
}

export interface CannedRedis {
  pool: string;
  command: string[];
  reply: unknown;
  line: number;
}

export interface TestCase {
  name: string;
  line: number;
  steps: Step[];
  http: CannedHttp[];
  redis: CannedRedis[];
}

export interface ServerSettings {
  protocol: "websocket" | "socket";
  options: Record<string, string>;
  /** engine.luavm.callbackTimeout, ms. */
  callbackTimeout: number;
  queue: { topicSize: number; maxTopics: number };
}

export interface CaseFile {
  path: string;
  server: ServerSettings;
  cases: TestCase[];
}

export class CaseFileError extends Error {}

const STEP_KINDS = new Set<string>([...ACTIONS, ...EXPECTATIONS]);

/** Reads and checks a case file; throws CaseFileError with file:line. */
export function loadCaseFile(path: string): CaseFile {
  let text: string;
  try {
    text = readFileSync(path, "utf8");
  } catch (e) {
    throw new CaseFileError(`${path}: ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}`);
  }
  const lines = new LineCounter();
  const doc = parseDocument(text, { lineCounter: lines, uniqueKeys: true });
  const lineOf = (node: unknown) => (node && (node as Node).range ? lines.linePos((node as Node).range![0]).line : 1);
  const fail = (node: unknown, msg: string): never => {
    throw new CaseFileError(`${path}:${lineOf(node)}: ${msg}`);
  };
  if (doc.errors.length > 0) {
    const e = doc.errors[0]!;
    throw new CaseFileError(`${path}:${e.linePos?.[0].line ?? 1}: ${e.message.split("\n")[0]}`);
  }
  const root = doc.contents;
  if (!isMap(root)) return fail(root, "a case file is a mapping with `cases:`");
  for (const pair of root.items) {
    const key = String((pair.key as { value?: unknown })?.value);
    if (!["server", "http", "redis", "cases"].includes(key)) fail(pair.key, `unknown key ${key} (server, http, redis, cases)`);
  }
  const server = serverSettings(root.get("server", true), fail);
  const http = cannedHttp(root.get("http", true), lineOf, fail);
  const redis = cannedRedis(root.get("redis", true), lineOf, fail);
  const casesNode = root.get("cases", true);
  if (!isSeq(casesNode) || casesNode.items.length === 0) return fail(casesNode ?? root, "cases must be a non-empty list");
  const cases = casesNode.items.map((c): TestCase => {
    if (!isMap(c)) return fail(c, "a case is a mapping with name and steps");
    for (const pair of c.items) {
      const key = String((pair.key as { value?: unknown })?.value);
      if (!["name", "steps", "http", "redis"].includes(key)) fail(pair.key, `unknown case key ${key} (name, steps, http, redis)`);
    }
    const name = c.get("name");
    if (typeof name !== "string" || name === "") fail(c, "a case needs a name");
    const stepsNode = c.get("steps", true);
    if (!isSeq(stepsNode) || stepsNode.items.length === 0) fail(stepsNode ?? c, `case "${name}": steps must be a non-empty list`);
    const steps = (stepsNode as unknown as { items: unknown[] }).items.map((s): Step => {
      if (!isMap(s) || s.items.length !== 1) return fail(s, "a step is a mapping with one key, e.g. `- send: { alice: hello }`");
      const kind = String((s.items[0]!.key as { value?: unknown })?.value);
      if (!STEP_KINDS.has(kind)) fail(s, `unknown step ${kind} (${[...STEP_KINDS].join(", ")})`);
      return { kind: kind as StepKind, arg: (s.toJSON() as Record<string, unknown>)[kind], line: lineOf(s) };
    });
    return {
      name: name as string,
      line: lineOf(c),
      steps,
      http: [...cannedHttp(c.get("http", true), lineOf, fail), ...http],
      redis: [...cannedRedis(c.get("redis", true), lineOf, fail), ...redis],
    };
  });
  return { path, server, cases };
}

type Fail = (node: unknown, msg: string) => never;

function serverSettings(node: unknown, fail: Fail): ServerSettings {
  const settings: ServerSettings = { protocol: "websocket", options: {}, callbackTimeout: 1000, queue: { topicSize: 2000, maxTopics: 100 } };
  if (node === undefined) return settings;
  if (!isMap(node)) return fail(node, "server must be a mapping (protocol, options, callbackTimeout, queue)");
  const s = node.toJSON() as Record<string, unknown>;
  for (const key of Object.keys(s)) {
    if (!["protocol", "options", "callbackTimeout", "queue"].includes(key)) fail(node.get(key, true) ?? node, `unknown server key ${key}`);
  }
  if (s.protocol !== undefined) {
    if (s.protocol !== "websocket" && s.protocol !== "socket") fail(node.get("protocol", true), "server.protocol must be websocket or socket");
    settings.protocol = s.protocol as ServerSettings["protocol"];
  }
  if (s.options !== undefined) {
    if (!s.options || typeof s.options !== "object" || Array.isArray(s.options)) fail(node.get("options", true), "server.options maps option names to values");
    for (const [k, v] of Object.entries(s.options as object)) settings.options[k] = String(v);
  }
  if (s.callbackTimeout !== undefined) {
    if (typeof s.callbackTimeout !== "number" || s.callbackTimeout < 0) fail(node.get("callbackTimeout", true), "server.callbackTimeout is milliseconds (0 = no limit)");
    settings.callbackTimeout = s.callbackTimeout as number;
  }
  if (s.queue !== undefined) {
    const q = s.queue as Record<string, unknown>;
    for (const k of ["topicSize", "maxTopics"] as const) {
      if (q?.[k] === undefined) continue;
      if (!Number.isInteger(q[k]) || (q[k] as number) < 1) fail(node.get("queue", true), `server.queue.${k} must be a positive whole number`);
      settings.queue[k] = q[k] as number;
    }
  }
  return settings;
}

function entries(node: unknown, what: string, fail: Fail): { item: Record<string, unknown>; node: unknown }[] {
  if (node === undefined) return [];
  if (!isSeq(node)) return fail(node, `${what} must be a list`);
  return node.items.map((n) => {
    if (!isMap(n)) return fail(n, `each ${what} entry is a mapping`);
    return { item: n.toJSON() as Record<string, unknown>, node: n };
  });
}

function cannedHttp(node: unknown, lineOf: (n: unknown) => number, fail: Fail): CannedHttp[] {
  return entries(node, "http", fail).map(({ item, node: n }) => {
    for (const key of Object.keys(item)) {
      if (!["method", "url", "body", "status", "headers", "response", "error"].includes(key)) fail(n, `unknown http key ${key} (method, url, body, status, headers, response, error)`);
    }
    if (typeof item.url !== "string" || item.url === "") fail(n, "an http entry needs the url it answers");
    const headers: Record<string, string> = {};
    for (const [k, v] of Object.entries((item.headers as object) ?? {})) headers[k.toLowerCase()] = String(v);
    const response = item.response === undefined ? "" : typeof item.response === "string" ? item.response : JSON.stringify(item.response);
    return {
      method: item.method === undefined ? undefined : String(item.method).toUpperCase(),
      url: item.url as string,
      body: item.body === undefined ? undefined : typeof item.body === "string" ? item.body : JSON.stringify(item.body),
      status: item.status === undefined ? 200 : Number(item.status),
      headers,
      response,
      error: item.error === undefined ? undefined : String(item.error),
      line: lineOf(n),
    };
  });
}

function cannedRedis(node: unknown, lineOf: (n: unknown) => number, fail: Fail): CannedRedis[] {
  return entries(node, "redis", fail).map(({ item, node: n }) => {
    for (const key of Object.keys(item)) {
      if (!["pool", "command", "reply"].includes(key)) fail(n, `unknown redis key ${key} (pool, command, reply)`);
    }
    if (!Array.isArray(item.command) || item.command.length === 0) fail(n, "a redis entry needs command: [NAME, arg, ...]");
    if (!("reply" in item)) fail(n, "a redis entry needs a reply (null for nil, {error: text} for an error)");
    return {
      pool: item.pool === undefined ? "default" : String(item.pool),
      command: (item.command as unknown[]).map(String),
      reply: item.reply,
      line: lineOf(n),
    };
  });
}
