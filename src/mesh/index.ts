// The mesh: this engine's mesh point (serving peers) plus one outgoing link per peer the center lists.
// It is the EngineNode's `Peers`: a send or conn.call goes to the node that owns the client id
// (nodeOf(id), no lookup); a publish goes to every peer, one frame each, and the counts are summed.
// A peer that is unreachable, congested or silent counts as a failure, never as a silent success.
import { log } from "../log/logger";
import { nodeOf } from "../engine/ids";
import type { Peers } from "../engine/node";
import type { SendType } from "../engine/host";
import { PeerLink, type PeerInfo } from "./link";
import { MeshPoint, type MeshTarget } from "./server";
import { callOver, publishTo, sendOver } from "./requests";
import type { Queues } from "../queue/queues";

export type { PeerInfo };

const TICK_MS = 250;

export class Mesh implements Peers {
  /** This node's index in client ids (0 until the center assigned one). */
  index = 0;
  private readonly point: MeshPoint;
  private readonly byId = new Map<string, PeerLink>();
  private readonly byIndex = new Map<number, PeerLink>();
  private links: PeerLink[] = [];
  /** True once a node list from the center was applied. */
  private listed = false;
  private readonly ticker: Timer;

  /** `target` serves the requests of other nodes: the EngineNode, or the workers of a multi-core engine. */
  /** `queues` take the QUEUE items a draining predecessor hands over (src/handover). */
  constructor(target: MeshTarget, readonly id: string, queues?: Queues) {
    this.point = new MeshPoint(target, this, queues);
    this.ticker = setInterval(() => {
      const now = performance.now();
      for (const link of this.links) link.tick(now);
    }, TICK_MS);
  }

  listen(bind: string, port: number): void {
    this.point.listen(bind, port);
    log.info(`start the mesh point (${bind}:${port})`);
  }

  /** Applies the center's node list. A list that is not `complete` (the center just started) only adds. */
  update(nodes: PeerInfo[], complete: boolean): void {
    this.listed = true;
    const listed = new Set<string>();
    for (const p of nodes) {
      if (p.id === this.id) continue;
      listed.add(p.id);
      const old = this.byId.get(p.id);
      if (old && old.peer.ip === p.ip && old.peer.meshPort === p.meshPort && old.peer.index === p.index) continue;
      if (old) this.drop(old, "moved");
      const link = new PeerLink(p, this);
      this.byId.set(p.id, link);
      this.byIndex.set(p.index, link);
      log.info(`node_id ${p.id} joined the mesh (${link.addr}, index ${p.index})`);
    }
    if (complete) for (const link of this.byId.values()) if (!listed.has(link.peer.id)) this.drop(link, "dropped by the center");
    this.links = [...this.byId.values()];
  }

  private drop(link: PeerLink, why: string): void {
    this.byId.delete(link.peer.id);
    if (this.byIndex.get(link.peer.index) === link) this.byIndex.delete(link.peer.index);
    link.close();
    log.info(`node_id ${link.peer.id} left the mesh (${why})`);
  }

  /** Peers as [node id, index], told to a restarted center so it keeps their indexes for them. */
  known(): [string, number][] {
    return this.links.map((l) => [l.peer.id, l.peer.index]);
  }

  /** Resolves true once the center's list was applied and every listed peer's link is up; false after `ms`. */
  async settled(ms: number): Promise<boolean> {
    const end = performance.now() + ms;
    while (!this.listed || !this.links.every((l) => l.up)) {
      if (performance.now() > end) return false;
      await Bun.sleep(10);
    }
    return true;
  }

  /** The link to the node with this id, if the center lists it. */
  link(id: string): PeerLink | undefined {
    return this.byId.get(id);
  }

  hasPeers(): boolean {
    return this.links.length > 0;
  }

  sendRemote(id: number, data: Uint8Array | string, type: SendType): Promise<string | null> {
    return sendOver(this.byIndex.get(nodeOf(id)), id, data, type);
  }

  callRemote(id: number, method: string, args: unknown[]): Promise<string | null> {
    return callOver(this.byIndex.get(nodeOf(id)), id, method, args);
  }

  /** [delivered, failed] over all peers; a peer that cannot answer adds one failure. */
  publishRemote(channel: string, data: Uint8Array | string, type: SendType): Promise<[number, number]> {
    return publishTo(this.links, channel, data, type);
  }

  stop(): void {
    clearInterval(this.ticker);
    for (const link of this.links) link.close();
    this.byId.clear();
    this.byIndex.clear();
    this.links = [];
    this.point.stop();
  }
}
