// Failed API logins, counted per source IP in a bounded table. After `maxFailures` failures within
// `windowMs` of the first one, every login from that IP is refused until the window ends (a right
// password too: otherwise the lockout would still answer which guess was right).
import { log } from "../log/logger";
import { escapeText } from "../log/escape";

export interface LoginLimitOptions {
  /** Failures allowed per IP and window (default 10). */
  maxFailures?: number;
  /** The window, from an IP's first failure (default 60 s). */
  windowMs?: number;
  /** IPs tracked at once (default 10 000); past it the oldest entry is forgotten. */
  maxTracked?: number;
  /** What the log lines call the server ("engine API"). */
  label?: string;
}

interface Entry {
  failures: number;
  since: number;
}

export class LoginLimit {
  private readonly entries = new Map<string, Entry>();
  private readonly maxFailures: number;
  private readonly windowMs: number;
  private readonly maxTracked: number;
  private readonly label: string;

  constructor(opts: LoginLimitOptions = {}) {
    this.maxFailures = opts.maxFailures ?? 10;
    this.windowMs = opts.windowMs ?? 60_000;
    this.maxTracked = opts.maxTracked ?? 10_000;
    this.label = opts.label ?? "API";
  }

  /** Seconds until `ip` may try again, or 0 when it may try now. */
  lockedFor(ip: string, now = performance.now()): number {
    const e = this.entries.get(ip);
    if (!e || e.failures < this.maxFailures) return 0;
    const left = e.since + this.windowMs - now;
    if (left > 0) return Math.ceil(left / 1000);
    this.entries.delete(ip);
    return 0;
  }

  /** Counts a failed login of `user` from `ip` and logs it (the lockout once, not every refused try). */
  failed(ip: string, user: string | null, now = performance.now()): void {
    let e = this.entries.get(ip);
    if (!e || now - e.since >= this.windowMs) {
      if (e) this.entries.delete(ip);
      else this.makeRoom(now);
      e = { failures: 0, since: now };
      this.entries.set(ip, e);
    }
    e.failures++;
    const who = user === null ? "no valid credentials" : `user "${escapeText(user, 64)}"`;
    log.warn(`${this.label}: failed login from ${escapeText(ip, 64)} (${who}), ${e.failures} in ${Math.round((now - e.since) / 1000)}s`);
    if (e.failures === this.maxFailures) {
      log.warn(`${this.label}: ${e.failures} failed logins from ${escapeText(ip, 64)}; its logins are refused (429) for ${Math.ceil((e.since + this.windowMs - now) / 1000)}s`);
    }
  }

  /** Tracked IPs (for tests and bounds). */
  get size(): number {
    return this.entries.size;
  }

  /**
   * Before adding an IP to a full table: drop the expired entries, else the oldest one. Entries are in the
   * order of their `since` (a new window re-inserts), so the expired ones are at the front.
   */
  private makeRoom(now: number): void {
    if (this.entries.size < this.maxTracked) return;
    for (const [ip, e] of this.entries) {
      if (now - e.since < this.windowMs) break;
      this.entries.delete(ip);
    }
    if (this.entries.size >= this.maxTracked) this.entries.delete(this.entries.keys().next().value!);
  }
}
