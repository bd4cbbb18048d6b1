// The mesh: one outgoing link per peer the center lists (other nodes' requests arrive at the mesh point,
// src/mesh/server.ts). It is the EngineNode's `Peers`: a send or conn.call goes to the node that owns the client id
// (nodeOf(id), no lookup); a publish goes to every peer, one frame each, and the counts are summed.
// A peer that is unreachable, congested or silent counts as a failure, never as a silent success; so does a
// peer the center dropped for silence while it may still hold live clients (a "doubted" peer, see update).
import { log } from "../log/logger";
import { nodeOf } from "../net/client-ids";
import type { Peers } from "../engine/node";
import type { SendType } from "../engine/host";
import { PeerLink, type LinkSecurity, type PeerInfo } from "./link";
import { callOver, publishTo, sendOver } from "./requests";
import type { Membership } from "./membership";

export type { PeerInfo };

/** How often doubts about peers the center stopped listing are settled. */
const TICK_MS = 250;

export class Mesh implements Peers {
  private ownIndex = 0;
  private readonly byId = new Map<string, PeerLink>();
  private readonly byIndex = new Map<number, PeerLink>();
  /** Peers the center no longer lists but whose clients may be alive, with when that began. */
  private readonly doubted = new Map<PeerLink, number>();
  private links: PeerLink[] = [];
  /** Failed requests (PeerLink.failed) of links dropped since. */
  private failedBefore = 0;
  /** True once a node list from the center was applied. */
  private listed = false;
  private readonly ticker: Timer;

  /** `membership` says how current this node's view of the cluster is; `sec` how its links authenticate. */
  constructor(readonly id: string, private readonly membership: Membership, private readonly sec: LinkSecurity) {
    // Links tick themselves (src/net/link.ts); this settles the doubts about peers the center stopped listing.
    this.ticker = setInterval(() => {
      if (this.doubted.size > 0) this.settleDoubts(performance.now());
    }, TICK_MS);
  }

  /** This node's index in client ids (0 until the center assigned one). */
  get index(): number {
    return this.ownIndex;
  }

  /** The center assigned this node an index (at registration, or another one after it lost the node). */
  assignIndex(index: number): void {
    this.ownIndex = index;
  }

  /**
   * Applies the center's node list. A list that is not `complete` (the center just started) only adds.
   * A peer a complete list leaves out is forgotten at once when it is `gone` (it left: its clients were
   * closed first) or its mesh point refuses connections (its process is gone, and its clients with it). Otherwise it is "doubted": the center cannot tell a frozen
   * or cut-off node from a dead one, so its link stays and keeps delivering when it can, and a publish it
   * cannot answer counts it as failed, until it is proven gone, is listed again, or `doubt` ms passed.
   */
  update(nodes: PeerInfo[], complete: boolean, gone?: string): void {
    this.listed = true;
    const listed = new Set<string>();
    for (const p of nodes) {
      if (p.id === this.id) continue;
      listed.add(p.id);
      const old = this.byId.get(p.id);
      if (old && old.peer.ip === p.ip && old.peer.meshPort === p.meshPort && old.peer.index === p.index) {
        if (this.doubted.delete(old)) log.info(`node_id ${p.id} is listed again`);
        continue;
      }
      if (old) this.drop(old, "moved");
      const holder = this.byIndex.get(p.index);
      if (holder) this.drop(holder, `its index ${p.index} now belongs to node_id ${p.id}`);
      const link = new PeerLink(p, this, this.sec);
      this.byId.set(p.id, link);
      this.byIndex.set(p.index, link);
      log.info(`node_id ${p.id} joined the mesh (${link.addr}, index ${p.index})`);
    }
    if (complete) {
      for (const link of this.byId.values()) {
        if (listed.has(link.peer.id)) continue;
        if (link.gone || link.peer.id === gone) this.drop(link, "dropped by the center");
        else if (!this.doubted.has(link)) this.doubt(link);
      }
    }
    this.links = [...this.byId.values()];
  }

  private doubt(link: PeerLink): void {
    this.doubted.set(link, performance.now());
    log.warn(
      `node_id ${link.peer.id} was dropped by the center, but its clients may still be connected: ` +
        `publishes count it as failed until it is gone or listed again (at most ${this.membership.doubtMs / 1000}s)`,
    );
  }

  private settleDoubts(now: number): void {
    const limit = this.membership.doubtMs;
    let changed = false;
    for (const [link, since] of this.doubted) {
      if (link.gone) this.drop(link, "dropped by the center; its mesh point refuses connections");
      else if (now - since > limit) this.drop(link, `dropped by the center, no longer counted after ${limit / 1000}s`);
      else continue;
      changed = true;
    }
    if (changed) this.links = [...this.byId.values()];
  }

  private drop(link: PeerLink, why: string): void {
    this.byId.delete(link.peer.id);
    this.doubted.delete(link);
    if (this.byIndex.get(link.peer.index) === link) this.byIndex.delete(link.peer.index);
    link.close();
    this.failedBefore += link.failed;
    log.info(`node_id ${link.peer.id} left the mesh (${why})`);
  }

  /** Listed peers as [node id, index], told to a restarted center so it keeps their indexes for them. */
  known(): [string, number][] {
    return this.links.filter((l) => !this.doubted.has(l)).map((l) => [l.peer.id, l.peer.index]);
  }

  /** Null when mesh calls can be answered, else why not (the API refuses them). */
  notReady(): string | null {
    return this.membership.notReady();
  }

  /** Resolves true once the center's list was applied and every listed peer's link is up; false after `ms`. */
  async settled(ms: number): Promise<boolean> {
    const end = performance.now() + ms;
    while (!this.listed || !this.links.every((l) => l.up || this.doubted.has(l))) {
      if (performance.now() > end) return false;
      await Bun.sleep(10);
    }
    return true;
  }

  /** The link to the node with this id, if the center lists it. */
  link(id: string): PeerLink | undefined {
    return this.byId.get(id);
  }

  /** Requests to other nodes that got no answer (unreachable, congested, too large, timed out, cut off). */
  forwardFailures(): number {
    let n = this.failedBefore;
    for (const link of this.byId.values()) n += link.failed;
    return n;
  }

  hasPeers(): boolean {
    return this.links.length > 0 || this.membership.unsure() !== null;
  }

  sendRemote(id: number, data: Uint8Array | string, type: SendType): Promise<string | null> {
    const link = this.byIndex.get(nodeOf(id));
    // An index no known peer has: "not found" only when the view is current.
    if (!link) return Promise.resolve(this.membership.unsure() ?? "client not found");
    return sendOver(link, id, data, type);
  }

  callRemote(id: number, method: string, args: unknown[]): Promise<string | null> {
    const link = this.byIndex.get(nodeOf(id));
    if (!link) return Promise.resolve(this.membership.unsure() ?? "client not found");
    return callOver(link, id, method, args);
  }

  /**
   * [delivered, failed] over all peers; a peer that cannot answer adds one failure, and so do the engines
   * this node may not know of while its view is not current.
   */
  publishRemote(channel: string, data: Uint8Array | string, type: SendType): Promise<[number, number]> {
    const sent = publishTo(this.links, channel, data, type);
    if (this.membership.unsure() === null) return sent;
    return sent.then(([ok, fail]) => [ok, fail + 1]);
  }

  stop(): void {
    clearInterval(this.ticker);
    this.doubted.clear();
    for (const link of this.links) link.close();
    this.byId.clear();
    this.byIndex.clear();
    this.links = [];
  }
}
