// The primary's side of a multi-core engine: N worker processes of this same program, each with its own
// Lua VMs on the shared Lua ports. It starts them once the center assigned the node index, links each one
// both ways over the mesh protocol, hands them hot config changes, sums their stats (for /metrics and the
// center), writes their log lines into this process's log, restarts one that dies, and stops them all.
import type { Subprocess } from "bun";
import type { Config } from "../config/schema";
import type { HotConfig } from "../config/hot";
import { SEQUENCE_LIMIT } from "../net/client-ids";
import { NodeStats, addCounters, type LuaMemory } from "../engine/node";
import type { ClientsView } from "../engine/introspect";
import { log } from "../log/logger";
import { PeerLink } from "../mesh/link";
import { MeshPoint } from "../mesh/server";
import { countOtherProcesses } from "../metrics/process";
import { REBALANCE, Rebalancer } from "./balance";
import { linkUp, workerCommand, workerLinks, type FromWorker, type ToWorker, type WorkerStats } from "./messages";
import { randomBytes } from "node:crypto";
import type { WorkerRouter } from "./router";
import type { WorkerPool } from "./primary";
import type { DrainTarget } from "../handover/drain";

/** The pool's timings, ms (WORKER_TIMINGS in production; tests shorten them). */
export interface WorkerTimings {
  /** Longest a worker may take to start (create its Lua VMs, link up, listen). */
  startMs: number;
  /** A worker that dies soon after a restart is restarted after this delay, doubled for each further quick
   * death in a row up to the max (the first restart waits engine.workers.restartDelay)... */
  restartMinMs: number;
  restartMaxMs: number;
  /** ...where soon means within this long of its start. */
  stableMs: number;
  /** Longest the workers may take to say how many clients they closed (or list them for the console). */
  closeMs: number;
  /** A worker told to stop that is still running after this long is killed. */
  stopMs: number;
}

export const WORKER_TIMINGS: Readonly<WorkerTimings> = { startMs: 15_000, restartMinMs: 500, restartMaxMs: 10_000, stableMs: 10_000, closeMs: 1000, stopMs: 1800 };

/** A restarted worker's client ids continue this far past its predecessor's last reported one (stats come
 * every second), so an id of a lost client is not handed to a new one. */
const SEQUENCE_GAP = 1_000_000;

type WorkerProcess = Subprocess<"ignore", "inherit", "pipe">;

interface Slot {
  k: number;
  /** Where this worker's requests arrive; the same port for every incarnation. */
  point: MeshPoint;
  proc: WorkerProcess | null;
  link: PeerLink | null;
  stats: WorkerStats | null;
  sequence: number;
  startedAt: number;
  quickDeaths: number;
  restartTimer: Timer | undefined;
  /** The pending start of the current incarnation; `kill` it unless it exits by itself (it said why). */
  starting: { resolve(): void; reject(e: Error, kill?: boolean): void } | null;
  /** Why the current incarnation did not start, if it did not. */
  failure: string | null;
  /** Resolves when the current incarnation's log output ended. */
  logged: Promise<void>;
}

export class Workers implements DrainTarget, WorkerPool {
  /** What exited workers counted plus what the running ones last reported (the primary node's counters). */
  readonly stats = new NodeStats();
  private readonly slots: Slot[];
  private started = false;
  private stopping = false;
  /** Handing over (src/handover): a worker that exits now is not restarted, the successor's take the clients. */
  private draining = false;
  /** The last hot config change, handed to restarted workers too. */
  private latest: Config | null = null;
  /** Totals of workers that exited, so summed counters never go down. */
  private readonly retired = new NodeStats();
  private retiredCpuSeconds = 0;
  /** This engine's secret for its worker links: any other local process (a sidecar) cannot open one. */
  private readonly secret = randomBytes(32).toString("base64");
  private readonly links = workerLinks(this.secret);
  private readonly unfollow: () => void;
  /** Answers to "index" and "shed" requests, by request number. */
  private readonly asked = new Map<number, (k: number, closed: number, clients: number) => void>();
  private lastAsk = 0;
  private readonly viewsAsked = new Map<number, (view: ClientsView) => void>();
  private readonly balance: Rebalancer;

  constructor(private readonly config: Config, private readonly router: WorkerRouter, count: number, hot: HotConfig, private readonly t: WorkerTimings = WORKER_TIMINGS) {
    this.slots = Array.from({ length: count }, (_, k) => {
      const point = new MeshPoint(router.targetFor(k), { id: router.id }, this.links, { name: `worker ${k} link` });
      point.listen("127.0.0.1", 0);
      return { k, point, proc: null, link: null, stats: null, sequence: 0, startedAt: 0, quickDeaths: 0, restartTimer: undefined, starting: null, failure: null, logged: Promise.resolve() };
    });
    this.balance = new Rebalancer(
      {
        settled: () => !this.stopping && !this.draining && this.slots.every((s) => s.proc && !s.starting),
        counts: async () => {
          const answers = await this.askCounts();
          return answers.size === this.slots.length ? this.slots.map((s) => answers.get(s.k)![1]) : null;
        },
        shed: async (plan) => {
          await this.ask((req, s) => (plan[s.k]! > 0 ? { t: "shed", req, ...REBALANCE, count: plan[s.k]! } : null));
        },
      },
      config.engine.workers.rebalanceDelay,
    );
    countOtherProcesses({
      cpuSeconds: () => this.slots.reduce((sum, s) => sum + (s.stats?.cpuSeconds ?? 0), this.retiredCpuSeconds),
      residentBytes: () => this.slots.reduce((sum, s) => sum + (s.stats?.residentBytes ?? 0), 0),
    });
    // Each worker's HotConfig applies what its own parts follow (src/app/worker.ts).
    const applied = ["logging.level", "engine.servers[].readTimeout", "engine.servers[].writeTimeout"] as const;
    this.unfollow = hot.follow(applied, (next) => {
      this.latest = next;
      this.tell({ t: "config", config: next });
    });
  }

  /** Starts every worker; rejects (with every worker stopped) when one of them cannot start. */
  async start(): Promise<void> {
    try {
      await Promise.all(this.slots.map((s) => this.spawn(s)));
    } catch (e) {
      await this.stop();
      throw e;
    }
    this.started = true;
  }

  clientCount(): number {
    return this.slots.reduce((sum, s) => sum + (s.stats?.clients ?? 0), 0);
  }

  count(): number {
    return this.clientCount();
  }

  async stopAccepting(): Promise<void> {
    this.draining = true;
    for (const s of this.slots) clearTimeout(s.restartTimer);
    this.tell({ t: "drain" });
    // The counts last reported may predate the newest clients (a stale 0 would end the drain at once and drop
    // them): ask each worker now, after its listeners stopped, and count what it answers.
    for (const [k, [, clients]] of await this.askCounts()) {
      const slot = this.slots[k];
      if (slot?.stats) slot.stats = { ...slot.stats, clients };
    }
  }

  /** Each running worker's client count, asked now: worker index -> [0, clients]. */
  private askCounts(): Promise<Map<number, [number, number]>> {
    return this.ask((req) => ({ t: "shed", req, code: 1000, reason: "", count: 0 }));
  }

  closeAll(): void {
    this.tell({ t: "close" });
  }

  /** What the running workers last reported of their Lua states. */
  luaMemory(): LuaMemory[] {
    return this.slots.flatMap((s) => s.stats?.luaMemory ?? []);
  }

  /** Tells every worker the new node index; resolves with the number of clients they closed. */
  async renumber(index: number): Promise<number> {
    return closedIn(await this.ask((req) => ({ t: "index", req, index })));
  }

  /** Closes every worker's clients with `code`; resolves with how many were closed. */
  async closeClients(code: number, reason: string): Promise<number> {
    return closedIn(await this.ask((req) => ({ t: "shed", req, code, reason, count: null })));
  }

  /**
   * Sends `make(req, slot)` to each running worker it gives a message for; resolves with the answers that
   * came within closeMs: worker index -> [clients closed, clients left].
   */
  private ask(make: (req: number, slot: Slot) => ToWorker | null): Promise<Map<number, [number, number]>> {
    const req = ++this.lastAsk;
    const asked = this.slots.filter((s) => {
      const msg = s.proc ? make(req, s) : null;
      if (msg) this.tell(msg, [s]);
      return msg !== null;
    });
    return new Promise((resolve) => {
      const answers = new Map<number, [number, number]>();
      const done = () => {
        clearTimeout(timer);
        this.asked.delete(req);
        resolve(answers);
      };
      const timer = setTimeout(done, this.t.closeMs);
      this.asked.set(req, (k, closed, clients) => {
        answers.set(k, [closed, clients]);
        if (answers.size === asked.length) done();
      });
      if (asked.length === 0) done();
    });
  }

  /** Each running worker's clients and channels (the console); those that answer within closeMs. */
  introspect(): Promise<ClientsView[]> {
    const req = ++this.lastAsk;
    const running = this.slots.filter((s) => s.proc && !s.starting);
    this.tell({ t: "introspect", req }, running);
    return new Promise((resolve) => {
      const views: ClientsView[] = [];
      const done = () => {
        clearTimeout(timer);
        this.viewsAsked.delete(req);
        resolve(views);
      };
      const timer = setTimeout(done, this.t.closeMs);
      this.viewsAsked.set(req, (view) => {
        views.push(view);
        if (views.length === running.length) done();
      });
      if (running.length === 0) done();
    });
  }

  private tell(msg: ToWorker, slots = this.slots): void {
    for (const s of slots) {
      try {
        s.proc?.send(msg);
      } catch {
        // exiting: its exit is handled on its own
      }
    }
  }

  private spawn(slot: Slot): Promise<void> {
    const proc: WorkerProcess = Bun.spawn(workerCommand(), {
      stdin: "ignore",
      stdout: "inherit", // Lua's print
      stderr: "pipe", // log lines, and whatever a crash prints
      serialization: "json",
      ipc: (msg: FromWorker) => void this.message(slot, proc, msg),
    });
    slot.proc = proc;
    slot.stats = null;
    slot.failure = null;
    slot.startedAt = performance.now();
    slot.logged = forwardLog(proc.stderr);
    const id = `${this.router.id}.w${slot.k}.${proc.pid}`;
    log.debug(`worker ${slot.k} started (pid ${proc.pid})`);
    const primary = { id: this.router.id, port: slot.point.port };
    this.tell({ t: "start", worker: slot.k, id, index: this.router.index, sequence: slot.sequence, config: this.config, primary, secret: this.secret }, [slot]);
    if (this.latest) this.tell({ t: "config", config: this.latest }, [slot]);
    void proc.exited.then(() => this.exited(slot, proc));
    return new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => fail(new Error(`worker ${slot.k} did not start within ${this.t.startMs / 1000}s`)), this.t.startMs);
      const fail = (e: Error, kill = true) => {
        clearTimeout(timer);
        slot.starting = null;
        slot.failure = e.message;
        if (kill) proc.kill("SIGKILL");
        reject(e);
      };
      slot.starting = {
        resolve: () => {
          clearTimeout(timer);
          slot.starting = null;
          resolve();
        },
        reject: fail,
      };
    });
  }

  private async message(slot: Slot, proc: WorkerProcess, msg: FromWorker): Promise<void> {
    if (slot.proc !== proc) return; // from an incarnation that is gone
    switch (msg.t) {
      case "point": {
        const peer = { id: `${this.router.id}.w${slot.k}.${proc.pid}`, index: this.router.index, ip: "127.0.0.1", meshPort: msg.port };
        const link = new PeerLink(peer, this.router.mesh, this.links, `worker ${slot.k}`);
        slot.link = link;
        try {
          await linkUp(link, `worker ${slot.k}`, this.t.startMs);
        } catch (e) {
          return slot.starting?.reject(e as Error);
        }
        if (slot.proc !== proc) return;
        this.router.setLink(slot.k, link);
        this.tell({ t: "listen" }, [slot]);
        break;
      }
      case "ready":
        slot.starting?.resolve();
        break;
      case "failed":
        slot.starting?.reject(new Error(msg.message), false);
        break;
      case "closed":
        this.asked.get(msg.req)?.(slot.k, msg.closed, msg.clients);
        break;
      case "introspection":
        this.viewsAsked.get(msg.req)?.(msg.view);
        break;
      case "stats":
        slot.stats = msg;
        slot.sequence = msg.sequence;
        this.sum();
    }
  }

  /** The node's counters: what exited workers counted plus what the running ones report. */
  private sum(): void {
    const total = new NodeStats();
    addCounters(total, this.retired);
    for (const s of this.slots) if (s.stats) addCounters(total, s.stats);
    Object.assign(this.stats, total);
  }

  private async exited(slot: Slot, proc: WorkerProcess): Promise<void> {
    if (slot.proc !== proc) return;
    slot.proc = null;
    this.router.setLink(slot.k, undefined);
    slot.link?.close();
    slot.link = null;
    const last = slot.stats;
    if (last) {
      addCounters(this.retired, last);
      this.retiredCpuSeconds += last.cpuSeconds;
      slot.stats = null;
    }
    slot.sequence = (slot.sequence + SEQUENCE_GAP) % SEQUENCE_LIMIT;
    await slot.logged; // what it printed last comes before the line about its exit
    const how = proc.signalCode ? `signal ${proc.signalCode}` : `code ${proc.exitCode}`;
    slot.starting?.reject(new Error(`worker ${slot.k} exited with ${how} while starting`));
    if (this.stopping || !this.started || this.draining) return;
    if (performance.now() - slot.startedAt >= this.t.stableMs) slot.quickDeaths = 0;
    // The first restart comes at once by default, before most of its clients are back (they would all land
    // on the other workers); one that keeps dying soon after its start backs off.
    const q = slot.quickDeaths++;
    const delay = q === 0 ? this.config.engine.workers.restartDelay : Math.min(this.t.restartMinMs * 2 ** (q - 1), this.t.restartMaxMs);
    const what = slot.failure === null ? `exited with ${how}: its clients are disconnected` : `could not start (${slot.failure})`;
    log.error(`worker ${slot.k} (pid ${proc.pid}) ${what}, restarting it ${delay === 0 ? "now" : `in ${delay / 1000}s`}`);
    slot.restartTimer = setTimeout(() => {
      // A start that fails ends in this process's exit, which reports it and tries again.
      this.spawn(slot).then(
        () => {
          log.info(`worker ${slot.k} restarted (pid ${slot.proc?.pid})`);
          this.balance.restarted();
        },
        () => {},
      );
    }, delay);
  }

  /** Stops every worker (they close their clients with 1001); one that does not exit in time is killed. */
  async stop(): Promise<void> {
    this.stopping = true;
    this.balance.stop();
    this.unfollow();
    const running = this.slots.filter((s) => s.proc);
    for (const s of this.slots) clearTimeout(s.restartTimer);
    this.tell({ t: "stop" }, running);
    await Promise.all(
      running.map(async (s) => {
        const proc = s.proc!;
        const timer = setTimeout(() => proc.kill("SIGKILL"), this.t.stopMs);
        await proc.exited;
        clearTimeout(timer);
        await s.logged;
      }),
    );
    for (const s of this.slots) {
      s.link?.close();
      s.point.stop();
    }
  }
}

const closedIn = (answers: Map<number, [number, number]>) => [...answers.values()].reduce((n, [closed]) => n + closed, 0);

/** Writes a worker's stderr (its log lines) into this process's log, whole lines at a time. */
async function forwardLog(stream: ReadableStream<Uint8Array>): Promise<void> {
  const decoder = new TextDecoder();
  let rest = "";
  for await (const chunk of stream) {
    const text = rest + decoder.decode(chunk, { stream: true });
    const end = text.lastIndexOf("\n") + 1;
    rest = text.slice(end);
    if (end > 0) log.forward(end === text.length ? text : text.slice(0, end));
  }
  if (rest) log.forward(rest + "\n");
}
