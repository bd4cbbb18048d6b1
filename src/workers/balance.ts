// Evening out a multi-core engine's clients between its workers after a worker restarted. The kernel hands a
// new connection to any worker listening on the port (SO_REUSEPORT, by a hash of the addresses), so while one
// worker is restarting every reconnecting client lands on the others and stays there. Once all workers run
// again, a worker holding more than its share beyond the tolerance closes some of its newest clients (1012):
// they reconnect and the kernel spreads them over all workers. Those that land on the same worker again are
// the cost of not being able to steer the kernel; the amount is chosen so the split is even in expectation
// after one round, and a few more rounds at most bring it within the bound.

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
