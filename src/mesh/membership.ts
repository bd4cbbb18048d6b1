// How sure this engine is of its view of the cluster, which decides what the mesh may answer (docs/cluster.md,
// "Membership states"). Until the center's first node list is applied the engine knows no peer at all: mesh
// calls are refused ("node not ready"), never answered with a success that counted nobody. Once the center
// has been silent for longer than it takes to drop a node, engines may have joined that this one does not
// know: what the known peers get is still delivered, but a publish counts the unknown part as one failure
// and a client id of an unknown node is "not ready" rather than "not found".
import { TIMINGS, type Timings } from "../center/protocol";
import { NOT_READY } from "../engine/node";

/** What every such answer starts with; the API maps it to its own error code (docs/api.md). */

export class Membership {
  private applied = false;
  private confirmedAt = 0;
  /** `center` names the registry in messages; `timings` apply until the center sends its own. */
  constructor(private readonly center: string, private timings: Timings = { ...TIMINGS }) {}

  /** The center's own timings, sent when this node registered: they decide when its silence makes a view unsure. */
  adopt(timings: Timings): void {
    this.timings = timings;
  }

  /** How long (ms) a peer that stopped answering is doubted before the center drops it. */
  get doubtMs(): number {
    return this.timings.doubt;
  }

  /** The center's node list was applied (the first one makes the node ready). */
  listApplied(): void {
    this.applied = true;
    this.confirmedAt = performance.now();
  }

  /** The center showed that it lists this node. */
  confirmed(): void {
    this.confirmedAt = performance.now();
  }

  /** Null once the first node list was applied, else why the node cannot answer mesh calls yet. */
  notReady(): string | null {
    return this.applied ? null : `${NOT_READY}: no node list from the center ${this.center} yet`;
  }

  /** Null while the view of the cluster is current, else why it may be incomplete. */
  unsure(now = performance.now()): string | null {
    if (!this.applied) return this.notReady();
    const silent = now - this.confirmedAt;
    if (silent <= this.timings.drop) return null;
    return `${NOT_READY}: no word from the center ${this.center} for ${(silent / 1000).toFixed(1)}s, engines may have joined unseen`;
  }
}
