// The old process's side of a handover (`connmix reload`, SIGUSR2): it starts a successor, the program as it
// is on disk now with the same arguments, which binds the same ports beside it (ports.ts) and registers as a
// node of its own. Once the successor says it serves, the center's table goes to it (center, dev, single) and
// the engine drains (drain.ts); then this process exits. A successor that fails to start changes nothing here:
// the reason is logged and this process keeps serving. One handover at a time.
import type { Subprocess } from "bun";
import { log } from "../log/logger";
import { shutdown } from "../lifecycle";
import type { NodeParts } from "../app/modes";
import { warnUnlessQueuesMigrate } from "./steer";
import { HANDOVER_ENV, type FromSuccessor, type ToSuccessor } from "./predecessor";

/**
 * The executable's path, read at start-up: Bun reads it from /proc/self/exe when asked, which names a replaced
 * executable `<path> (deleted)`; the path as it was names the new one.
 */
const EXEC_PATH = process.execPath;

/** The successor's command: the program at the same path (the files as they are now), with the same arguments. */
export function successorCommand(): string[] {
  const args = process.argv.slice(2);
  // A compiled executable's entry lives in its embedded file system (/$bunfs/...): run the executable itself.
  if (Bun.main.startsWith("/$bunfs/")) return [EXEC_PATH, ...args];
  return [EXEC_PATH, ...process.execArgv, Bun.main, ...args];
}

type Phase = { t: "idle" } | { t: "starting"; pid: number } | { t: "draining"; pid: number; since: number };

export class Handover {
  private phase: Phase = { t: "idle" };

  /** `startMs`: how long the successor may take to serve before it is given up (killed). */
  constructor(private readonly parts: NodeParts, private readonly startMs: number) {}

  /** A reload was asked for (`why`: "received SIGUSR2"). */
  request(why: string): void {
    if (this.refused(why, "reload")) return;
    void this.run(why);
  }

  /**
   * A drain without a successor (`connmix drain`, SIGUSR1; a Kubernetes preStop hook): no new clients, the
   * API stays open, and the process exits once its clients left or at engine.drainTimeout.
   */
  drain(why: string): void {
    if (this.refused(why, "drain")) return;
    this.phase = { t: "draining", pid: 0, since: performance.now() };
    log.info(`${why}: draining, this process exits once its clients left`);
    void (this.parts.engine?.drain(null) ?? Promise.resolve()).then(() => shutdown("drained"));
  }

  /** True (and logged) when a reload or a drain is already under way. */
  private refused(why: string, what: string): boolean {
    const p = this.phase;
    if (p.t === "starting") log.warn(`${why}: ${what} refused, a successor (pid ${p.pid}) is starting`);
    else if (p.t === "draining" && p.pid === 0) log.warn(`${why}: ${what} refused, this process is draining`);
    else if (p.t === "draining") {
      const secs = Math.round((performance.now() - p.since) / 1000);
      log.warn(`${why}: ${what} refused, this process handed over to pid ${p.pid} and has been draining for ${secs}s; reload that one`);
    }
    return p.t !== "idle";
  }

  private async run(why: string): Promise<void> {
    const cmd = successorCommand();
    log.info(`${why}: reload, starting a successor: ${cmd.join(" ")}`);
    warnUnlessQueuesMigrate();
    const heard: FromSuccessor[] = [];
    let wake = () => {};
    let proc: Subprocess;
    try {
      proc = Bun.spawn(cmd, {
        cwd: process.cwd(),
        env: { ...process.env, [HANDOVER_ENV]: JSON.stringify({ pid: process.pid, node: this.parts.engine?.nodeId ?? null }) },
        stdio: ["ignore", "inherit", "inherit"],
        serialization: "json",
        ipc: (msg: FromSuccessor) => {
          heard.push(msg);
          wake();
        },
      });
    } catch (e) {
      return log.error(`reload failed: cannot start ${cmd[0]} (${(e as Error).message}); this process keeps serving`);
    }
    this.phase = { t: "starting", pid: proc.pid };
    const deadline = performance.now() + this.startMs;
    void proc.exited.then(() => wake());
    let successorNode: string | null = null;
    for (;;) {
      const msg = heard.shift();
      if (msg?.t === "ready") {
        successorNode = msg.node;
        break;
      }
      const failure =
        msg?.t === "failed" ? msg.message
        : proc.exitCode !== null || proc.signalCode !== null ? `it exited with ${proc.signalCode ?? `code ${proc.exitCode}`} before serving`
        : performance.now() > deadline ? `it did not serve within ${this.startMs / 1000}s`
        : null;
      if (failure !== null) {
        proc.kill("SIGKILL");
        this.phase = { t: "idle" };
        return log.error(`reload failed: the successor (pid ${proc.pid}) did not start: ${failure}; this process keeps serving`);
      }
      if (!msg) await new Promise<void>((resolve) => ((wake = resolve), setTimeout(resolve, 250)));
    }
    this.phase = { t: "draining", pid: proc.pid, since: performance.now() };
    log.info(`reload: the successor (pid ${proc.pid}) serves; this process hands over and drains`);
    if (this.parts.center) {
      const msg: ToSuccessor = { t: "center", nodes: this.parts.center.handOver() };
      proc.send(msg);
    }
    await this.parts.engine?.drain(successorNode);
    await shutdown(`handed over to pid ${proc.pid}`);
  }
}
