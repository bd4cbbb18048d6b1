// Evening out a multi-core engine's clients between its workers after a worker restarted. The kernel hands a
// new connection to any worker listening on the port (SO_REUSEPORT, by a hash of the addresses), so while one
// worker is restarting every reconnecting client lands on the others and stays there. Once all workers run
// again, a worker holding more than its share beyond the tolerance closes some of its newest clients (1012):
// they reconnect and the kernel spreads them over all workers. Those that land on the same worker again are
// the cost of not being able to steer the kernel; the amount is chosen so the split is even in expectation
// after one round, and a few more rounds at most bring it within the bound.
import { log } from "../log/logger";

/** Close code and reason for clients moved to even out the workers. */
export const REBALANCE = { code: 1012, reason: "rebalancing the engine's workers, reconnect" };

/** A worker within this many clients (or this share of the mean, if more) above the mean is left alone. */
export const TOLERANCE = { clients: 2, share: 0.2 };
/** Checks after one restart, at most (a check that finds clients still reconnecting closes nobody). */
export const MAX_ROUNDS = 5;

/** True when no worker holds more than the tolerance above the mean. */
export function balanced(counts: readonly number[]): boolean {
  return shedPlan(counts).every((n) => n === 0);
}

/**
 * How many clients each worker should close: for a worker above the bound, its excess over the mean scaled by
 * N/(N-1), since a closed client comes back to the same worker with probability 1/N.
 */
export function shedPlan(counts: readonly number[]): number[] {
  const n = counts.length;
  if (n < 2) return counts.map(() => 0);
  const mean = counts.reduce((a, b) => a + b, 0) / n;
  const allowed = Math.max(TOLERANCE.clients, TOLERANCE.share * mean);
  return counts.map((c) => (c - mean > allowed ? Math.min(c, Math.ceil(((c - mean) * n) / (n - 1))) : 0));
}

/** What the rebalancer needs of the supervisor. */
export interface Workforce {
  /** False while a worker is missing or starting, or the node is stopping or draining: no check then. */
  settled(): boolean;
  /** Clients per worker, in worker order; null when not every worker answered. */
  counts(): Promise<number[] | null>;
  /** Closes that many of each worker's newest clients (1012). */
  shed(plan: number[]): Promise<void>;
}

/**
 * Checks the split `delayMs` after a worker (re)started and again after each round that closed clients, up
 * to MAX_ROUNDS checks. A check that finds fewer clients than the last round left (they are still
 * reconnecting) closes nobody and waits for the next.
 */
export class Rebalancer {
  private timer: Timer | undefined;

  constructor(private readonly workers: Workforce, private readonly delayMs: number) {}

  /** A worker (re)started: check from the first round. */
  restarted(): void {
    this.schedule(1, 0);
  }

  stop(): void {
    clearTimeout(this.timer);
  }

  private schedule(round: number, moving: number): void {
    clearTimeout(this.timer);
    this.timer = setTimeout(() => void this.check(round, moving), this.delayMs);
  }

  private async check(round: number, moving: number): Promise<void> {
    if (!this.workers.settled()) return; // the next start checks again
    const clients = await this.workers.counts();
    if (!clients) return;
    const total = clients.reduce((a, b) => a + b, 0);
    const last = round > MAX_ROUNDS;
    if (total < moving * 0.9 && !last) return this.schedule(round + 1, moving);
    const plan = shedPlan(clients);
    const split = clients.join(", ");
    if (plan.every((n) => n === 0)) {
      if (round > 1) log.info(`workers balanced again (clients per worker: ${split})`);
      return;
    }
    if (last) return void log.warn(`workers still unbalanced after ${MAX_ROUNDS} checks (clients per worker: ${split}), left so`);
    const moved = plan.flatMap((n, k) => (n > 0 ? [`${n} of worker ${k}'s`] : []));
    log.info(`workers unbalanced (clients per worker: ${split}): closing ${moved.join(", ")} newest clients (${REBALANCE.code}) so they reconnect spread over all workers`);
    await this.workers.shed(plan);
    this.schedule(round + 1, total);
  }
}
