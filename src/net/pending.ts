// Requests waiting for their reply on one link, by request id, each with a deadline. A protocol keeps what it
// needs per request in `D` (the mesh: a callback) and says how one fails (timed out, link lost).
export class Pending<D> {
  private readonly waiting = new Map<number, { deadline: number; d: D }>();

  constructor(private readonly timeoutMs: number, private readonly fail: (d: D, err: string) => void) {}

  get size(): number {
    return this.waiting.size;
  }

  track(req: number, d: D): void {
    this.waiting.set(req, { deadline: performance.now() + this.timeoutMs, d });
  }

  /** The request answered now; undefined when it is not waiting (answered after its deadline). */
  take(req: number): D | undefined {
    const p = this.waiting.get(req);
    if (!p) return undefined;
    this.waiting.delete(req);
    return p.d;
  }

  /** Fails the requests whose deadline passed. */
  expire(now: number, err: string): void {
    // Deadlines grow with insertion order, so the expired requests are at the front.
    for (const [req, p] of this.waiting) {
      if (p.deadline > now) break;
      this.waiting.delete(req);
      this.fail(p.d, err);
    }
  }

  failAll(err: string): void {
    const all = [...this.waiting.values()];
    this.waiting.clear();
    for (const p of all) this.fail(p.d, err);
  }
}
