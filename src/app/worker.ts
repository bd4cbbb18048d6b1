// A worker of a multi-core engine (`connmix __worker`, started by its primary): its own Lua VMs for every
// configured server, on ports shared with the other workers (SO_REUSEPORT), handing out client ids that
// carry its worker index. What is not its own (a client of another worker or node, the other subscribers
// of a publish, queue items) goes to the primary over a mesh link; the primary's requests for its clients
// arrive at its own mesh point. Its log lines go to stderr, which the primary writes into the node's log.
import type { Config } from "../config/schema";
import { HotConfig } from "../config/hot";
import { listenLuaServers, type Engine } from "../engine/servers";
import { ClientIds } from "../net/client-ids";
import { EngineNode } from "../engine/node";
import { localClients } from "../engine/introspect";
import { log } from "../log/logger";
import { MeshPoint } from "../mesh/server";
import { refusedConnections } from "../net/refusals";
import { engineQueues } from "../queue/index";
import { WORKER_ARG, linkUp, workerLinks, type FromWorker, type ToWorker } from "../workers/messages";
import { Upstream } from "../workers/upstream";

/** A worker's timings, ms. */
interface WorkerProcessTimings {
  /** Longest its link to the primary may take to come up. */
  linkMs: number;
  /** How often it reports its stats to the primary... */
  statsMs: number;
  /** ...and while draining, when the primary waits for the client count to reach 0. */
  drainStatsMs: number;
}

const TIMINGS: WorkerProcessTimings = { linkMs: 10_000, statsMs: 1000, drainStatsMs: 100 };

type Start = Extract<ToWorker, { t: "start" }>;

/** A worker's parts, built from its primary's "start" message: its route to the primary, its node and its mesh point. */
class Worker {
  private config: Config;
  private readonly hot = new HotConfig();
  private readonly upstream: Upstream;
  private readonly node: EngineNode;
  private readonly point: MeshPoint;
  private engine: Engine | null = null;
  private statsTimer: Timer | undefined;
  private stopping = false;

  constructor(msg: Start, private readonly send: (msg: FromWorker) => void, private readonly t = TIMINGS) {
    this.config = msg.config;
    log.configure({ filename: "", fd: 2, level: msg.config.logging.level });
    const links = workerLinks(msg.secret);
    const primary = { id: msg.primary.id, index: msg.index, ip: "127.0.0.1", meshPort: msg.primary.port };
    this.upstream = new Upstream(primary, { id: msg.id, index: msg.index }, links);
    this.node = new EngineNode(new ClientIds(msg.index, msg.worker, msg.sequence), engineQueues(msg.config).queues, { peers: this.upstream });
    this.point = new MeshPoint(this.node, { id: msg.id }, links, { name: "worker link" });
  }

  async handle(msg: ToWorker): Promise<void> {
    switch (msg.t) {
      case "start":
        return; // the one that made this worker
      case "listen":
        return this.listen();
      case "config":
        this.hot.apply(msg.config, this.config);
        this.config = msg.config;
        break;
      case "index":
        return this.closed(msg.req, this.node.renumber(msg.index) as number);
      case "drain":
        for (const s of this.engine?.servers ?? []) s.stopAccepting();
        clearInterval(this.statsTimer);
        this.statsTimer = setInterval(() => this.report(), this.t.drainStatsMs);
        break;
      case "close":
        for (const s of this.engine?.servers ?? []) s.closeAll(1012, "service restart");
        break;
      case "shed":
        return this.closed(msg.req, this.node.closeClients(msg.code, msg.reason, msg.count ?? Infinity) as number);
      case "introspect":
        return this.send({ t: "introspection", req: msg.req, view: localClients(this.node) });
      case "stop":
        return this.stop(0);
    }
  }

  private closed(req: number, closed: number): void {
    this.send({ t: "closed", req, closed, clients: this.node.connections.size - closed });
  }

  /** Listens for the primary's requests and links up to it; then tells the primary where it listens. */
  async start(msg: Start): Promise<void> {
    this.point.listen("127.0.0.1", 0);
    try {
      await linkUp(this.upstream.link, `worker ${msg.worker}`, this.t.linkMs);
    } catch (e) {
      return this.fail(e as Error);
    }
    this.send({ t: "point", port: this.point.port });
  }

  private async listen(): Promise<void> {
    try {
      this.engine = await listenLuaServers(this.config, this.node, { worker: true, hot: this.hot });
    } catch (e) {
      return this.fail(e as Error);
    }
    this.send({ t: "ready" });
    this.report();
    this.statsTimer = setInterval(() => this.report(), this.t.statsMs);
  }

  private report(): void {
    const { sent, sendErrors } = this.node.stats;
    const read = this.node.readCounts();
    const cpu = process.cpuUsage();
    this.send({
      t: "stats",
      clients: this.node.connections.size,
      read,
      sent,
      sendErrors,
      lua: this.node.luaFailures(),
      droppedMessages: this.node.droppedMessages(),
      droppedClients: this.node.stats.droppedClients,
      refusedWorkerLinks: refusedConnections.worker,
      sequence: this.node.ids.last,
      cpuSeconds: (cpu.user + cpu.system) / 1e6,
      residentBytes: process.memoryUsage.rss(),
      luaMemory: this.node.luaMemory(),
    });
  }

  private async fail(e: Error): Promise<void> {
    this.send({ t: "failed", message: e.message });
    await this.stop(1);
  }

  /** Closes the clients (1001) and the links, then exits. */
  async stop(code: number): Promise<void> {
    if (this.stopping) return;
    this.stopping = true;
    clearInterval(this.statsTimer);
    try {
      await this.engine?.stop();
    } catch (e) {
      log.error(`stopping the lua servers: ${(e as Error).message}`);
    }
    this.upstream.stop();
    this.point.stop();
    await log.flush();
    process.exit(code);
  }
}

export function runWorker(): void {
  const send = process.send?.bind(process);
  if (!send) {
    process.stderr.write(`connmix: ${WORKER_ARG} is how an engine started with -p N runs its workers, not a command\n`);
    process.exit(2);
  }
  let worker: Worker | null = null;
  process.on("message", (msg: ToWorker) => {
    if (worker) return void worker.handle(msg);
    if (msg.t !== "start") return; // the primary starts a worker before anything else
    worker = new Worker(msg, send);
    void worker.start(msg);
  });
  const stop = () => (worker ? void worker.stop(0) : process.exit(0));
  // Ctrl-C in a terminal signals the whole process group: the primary stops its workers in order.
  // A reload (SIGUSR2) is the primary's to handle.
  process.on("SIGINT", () => {});
  process.on("SIGUSR2", () => {});
  process.on("SIGTERM", stop);
  process.on("disconnect", stop); // the primary is gone
}
