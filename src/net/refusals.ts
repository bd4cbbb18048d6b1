// Log lines for connections a listener refuses before authentication. Each one names the peer, but a flood
// (a scanner, an attacker) must not flood the log: past `perSecond` lines in a second the rest are counted
// and the count is logged with the next line that gets through.
import { log } from "../log/logger";

export class RefusalLog {
  private second = 0;
  private lines = 0;
  private skipped = 0;
  /** Refusals since start, logged or not. */
  total = 0;

  constructor(private readonly name: string, private readonly perSecond = 10) {}

  note(peer: string, reason: string): void {
    this.total++;
    const now = Math.floor(performance.now() / 1000);
    if (now !== this.second) {
      this.second = now;
      this.lines = 0;
    }
    if (++this.lines > this.perSecond) return void this.skipped++;
    const more = this.skipped ? ` (${this.skipped} more refused connections were not logged)` : "";
    this.skipped = 0;
    log.warn(`${this.name}: closing the connection from ${peer} before authentication: ${reason}${more}`);
  }
}
