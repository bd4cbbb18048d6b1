// What the handover tests run against a reloading engine: a fleet of clients that count every message
// they get, a stream of API publishes and sends, and a client that connects in a tight loop.
import { existsSync, readFileSync } from "node:fs";
import { ENTRY, type ClusterDir } from "../cluster/helpers.ts";
import { Client } from "../helpers/ws.ts";
import { alive } from "../../src/handover/pidfile.ts";

const MIGRATE_REQ = "/proc/sys/net/ipv4/tcp_migrate_req";
/** Whether this host hands a closing listener's queued connections to another listener (docs/deployment.md). */
export const migrates = existsSync(MIGRATE_REQ) && readFileSync(MIGRATE_REQ, "utf8").trim() === "1";

/** The cluster entry plus `q <topic> <data>`: mix.queue.push(topic, {d = data}), answered `queued <n> <err>`. */
export const HANDOVER_ENTRY = ENTRY.replace(
  `  elseif cmd == "wait" then`,
  `  elseif cmd == "q" then
    local n, err = mix.queue.push(arg, { d = rest })
    conn:send("queued " .. tostring(n) .. " " .. tostring(err))
  elseif cmd == "wait" then`,
);

/** One client of the fleet: its id, the publishes ("p:<seq>") and sends ("s:<token>") it got, how it closed. */
export interface Member {
  ws: WebSocket;
  id: string;
  pubs: Map<number, number>; // seq -> times received
  sends: Map<string, number>; // token -> times received
  replies: string[];
  closed: { code: number; at: number } | null;
}

/** `count` clients on `url`, each subscribed to `channel`; opened `batch` at a time. */
export async function openFleet(url: string, count: number, channel: string, batch = 100): Promise<Member[]> {
  const fleet: Member[] = [];
  for (let start = 0; start < count; start += batch) {
    const opened = await Promise.all(Array.from({ length: Math.min(batch, count - start) }, () => openMember(url, channel)));
    fleet.push(...opened);
  }
  return fleet;
}

function openMember(url: string, channel: string): Promise<Member> {
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(url);
    const m: Member = { ws, id: "", pubs: new Map(), sends: new Map(), replies: [], closed: null };
    ws.onmessage = (e) => {
      const text = String(e.data);
      if (text.startsWith("p:")) {
        const seq = Number(text.slice(2));
        m.pubs.set(seq, (m.pubs.get(seq) ?? 0) + 1);
      } else if (text.startsWith("s:")) {
        m.sends.set(text, (m.sends.get(text) ?? 0) + 1);
      } else if (text.startsWith("id ")) {
        m.id = text.slice(3);
        ws.send(`sub ${channel}`);
      } else if (text.startsWith("subscribed ")) {
        resolve(m);
      } else {
        m.replies.push(text);
      }
    };
    ws.onopen = () => ws.send("id");
    ws.onerror = () => reject(new Error(`cannot open ${url}`));
    ws.onclose = (e) => (m.closed = { code: e.code, at: Date.now() });
  });
}

async function post(api: number, path: string, body: object): Promise<{ E: unknown; r?: { s: number; f: number } }> {
  const res = await fetch(`http://127.0.0.1:${api}${path}`, { method: "POST", body: JSON.stringify(body) });
  return (await res.json()) as { E: unknown; r?: { s: number; f: number } };
}

/**
 * Publishes `p:<seq>` to `channel` and sends `s:<n>` to a random member, each through the API ports in turn
 * (every `everyMs`), until stopped; remembers what succeeded and what did not.
 */
export class Traffic {
  /** Publishes that were answered without error, with their counts. */
  readonly published: { seq: number; s: number; f: number }[] = [];
  /** Sends answered without error: token -> member index. */
  readonly sent = new Map<string, number>();
  readonly failures: string[] = [];
  private running = true;
  private readonly loops: Promise<void>[];

  constructor(private readonly apis: number[], private readonly fleet: Member[], channel: string, everyMs = 20) {
    let seq = 0;
    let token = 0;
    this.loops = [
      this.loop(everyMs, async (api) => {
        const n = ++seq;
        const r = await post(api, "/v1/mesh/publish", { c: channel, d: `p:${n}` });
        if (r.E === null && r.r) this.published.push({ seq: n, s: r.r.s, f: r.r.f });
        else this.failures.push(`publish ${n} via ${api}: ${JSON.stringify(r.E)}`);
      }),
      this.loop(everyMs, async (api) => {
        const k = Math.floor(Math.random() * fleet.length);
        const t = `s:${++token}`;
        const r = await post(api, "/v1/mesh/send", { c: fleet[k]!.id, d: t });
        if (r.E === null) this.sent.set(t, k);
        else this.failures.push(`send ${t} via ${api}: ${JSON.stringify(r.E)}`);
      }),
    ];
  }

  private async loop(everyMs: number, step: (api: number) => Promise<void>): Promise<void> {
    for (let i = 0; this.running; i++) {
      const api = this.apis[i % this.apis.length]!;
      try {
        await step(api);
      } catch (e) {
        this.failures.push(`request via ${api}: ${(e as Error).message}`);
      }
      await Bun.sleep(everyMs);
    }
  }

  async stop(): Promise<void> {
    this.running = false;
    await Promise.all(this.loops);
  }

  /** True once every member got every publish and every send addressed to it. */
  delivered(): boolean {
    for (const m of this.fleet) for (const p of this.published) if (!m.pubs.has(p.seq)) return false;
    for (const [t, k] of this.sent) if (!this.fleet[k]!.sends.has(t)) return false;
    return true;
  }

  /** Deliveries that are missing, doubled or went to the wrong member, as text (empty when exact). */
  problems(): string[] {
    const out: string[] = [];
    const seqs = new Set(this.published.map((p) => p.seq));
    this.fleet.forEach((m, i) => {
      for (const p of this.published) if ((m.pubs.get(p.seq) ?? 0) !== 1) out.push(`member ${i}: publish ${p.seq} received ${m.pubs.get(p.seq) ?? 0} times`);
      for (const [seq] of m.pubs) if (!seqs.has(seq)) out.push(`member ${i}: publish ${seq} arrived although its request failed`);
      for (const [t, n] of m.sends) if (n !== 1 || this.sent.get(t) !== i) out.push(`member ${i}: send ${t} received ${n} times (meant for ${this.sent.get(t)})`);
    });
    for (const [t, k] of this.sent) if (!this.fleet[k]!.sends.has(t)) out.push(`member ${k}: send ${t} never arrived`);
    return out;
  }
}

/** Opens and closes WebSocket connections to `url` one after the other until stopped; counts both outcomes. */
export class Connector {
  opened = 0;
  readonly refused: string[] = [];
  private running = true;
  private readonly done: Promise<void>;

  constructor(url: string) {
    this.done = (async () => {
      while (this.running) {
        const err = await new Promise<string | null>((resolve) => {
          const ws = new WebSocket(url);
          ws.onopen = () => {
            ws.close();
            resolve(null);
          };
          ws.onerror = (e) => resolve((e as ErrorEvent).message ?? "error");
        });
        if (err === null) this.opened++;
        else this.refused.push(err);
      }
    })();
  }

  async stop(): Promise<void> {
    this.running = false;
    await this.done;
  }
}

/** The center's /v1/nodes, without the client counts (they follow heartbeats). */
export async function nodes(d: ClusterDir): Promise<{ id: string; index: number; state: string }[]> {
  const r = await fetch(`http://127.0.0.1:${d.centerApi}/v1/nodes`);
  return ((await r.json()) as { nodes: { id: string; index: number; state: string; clients?: number }[] }).nodes.map(({ clients: _, ...n }) => n);
}

/** A Client on `url`, opened again (every 50 ms, for up to 5 s) while the server refuses it. */
export async function openRetrying(url: string): Promise<Client> {
  const end = Date.now() + 5000;
  for (;;) {
    try {
      return await Client.open(url);
    } catch (e) {
      if (Date.now() > end) throw e;
      await Bun.sleep(50);
    }
  }
}

/** Polls `check` every 50 ms until it holds or `ms` passed; returns whether it held. */
export async function eventually(check: () => boolean | Promise<boolean>, ms: number): Promise<boolean> {
  const end = Date.now() + ms;
  while (!(await check())) {
    if (Date.now() > end) return false;
    await Bun.sleep(50);
  }
  return true;
}

/**
 * Ends a handover test's processes: the successor (its pid, 0 when none started) is told to stop first, so it
 * shuts down while `stopOthers` stops the rest, then it is waited for.
 */
export async function stopWithSuccessor(successor: number, stopOthers: () => (Promise<unknown> | undefined)[]): Promise<void> {
  if (successor && alive(successor)) process.kill(successor, "SIGTERM");
  await Promise.all(stopOthers());
  if (successor) await eventually(() => !alive(successor), 8000);
}
