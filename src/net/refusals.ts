// Connections a listener refuses before authentication. Each is counted by the listener's kind and a short
// reason (for /metrics), and logged with the peer; but a flood (a scanner, an attacker) must not flood the
// log: past `perSecond` lines in a second the rest are only counted, and the number not logged is logged
// with the next line that gets through.
import { log } from "../log/logger";
import type { LinkKind } from "./auth";

/** Why a connection was refused before authentication: the `reason` label of the refused-connections metrics. */
export const REFUSAL_REASONS = ["not_loopback", "too_many", "tls", "bad_frame", "early", "auth_failed", "timeout"] as const;
export type RefusalReason = (typeof REFUSAL_REASONS)[number];

export type RefusalCounts = Record<RefusalReason, number>;
export const noRefusals = (): RefusalCounts => Object.fromEntries(REFUSAL_REASONS.map((r) => [r, 0])) as RefusalCounts;

/**
 * Refusals of this process's listeners since start, by kind of listener and reason. One per process, like
 * its CPU time: every listener of a kind (a mesh point, its replacement for a new certificate, a multi-core
 * engine's worker links) adds to the same counts, which the engine's and the center's /metrics read.
 */
export const refusedConnections: Record<LinkKind, RefusalCounts> = { registry: noRefusals(), mesh: noRefusals(), worker: noRefusals() };

/**
 * [[kind, reason], count] of the given kinds, every reason included (0 until one happens), plus what other
 * processes counted (`more`: a multi-core engine's workers, at their own link ports).
 */
export function refusalSamples(kinds: readonly LinkKind[], more: Partial<Record<LinkKind, RefusalCounts>> = {}): [string[], number][] {
  return kinds.flatMap((k) => REFUSAL_REASONS.map((r): [string[], number] => [[k, r], refusedConnections[k][r] + (more[k]?.[r] ?? 0)]));
}

export class RefusalLog {
  private second = 0;
  private lines = 0;
  private skipped = 0;
  private readonly counts: RefusalCounts;

  constructor(private readonly name: string, kind: LinkKind, private readonly perSecond = 10) {
    this.counts = refusedConnections[kind];
  }

  note(peer: string, reason: RefusalReason, text: string): void {
    this.counts[reason]++;
    const now = Math.floor(performance.now() / 1000);
    if (now !== this.second) {
      this.second = now;
      this.lines = 0;
    }
    if (++this.lines > this.perSecond) return void this.skipped++;
    const more = this.skipped ? ` (${this.skipped} more refused connections were not logged)` : "";
    this.skipped = 0;
    log.warn(`${this.name}: closing the connection from ${peer} before authentication: ${text}${more}`);
  }
}
