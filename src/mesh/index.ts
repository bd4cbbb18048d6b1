// The mesh: this engine's mesh point (serving peers) plus one outgoing link per peer the center lists.
// It is the EngineNode's `Peers`: a send or conn.call goes to the node that owns the client id
// (nodeOf(id), no lookup); a publish goes to every peer, one frame each, and the counts are summed.
// A peer that is unreachable, congested or silent counts as a failure, never as a silent success.
import { log } from "../log/logger";
import { nodeOf } from "../engine/ids";
import type { EngineNode, Peers } from "../engine/node";
import type { SendType } from "../engine/host";
import { FrameWriter, MAX_FRAME } from "./frames";
import { PeerLink, type Done, type PeerInfo } from "./link";
import { MeshPoint } from "./server";
import { writeCall, writePublish, writeSend } from "./protocol";

export type { PeerInfo };

const TICK_MS = 250;

export class Mesh implements Peers {
  /** This node's index in client ids (0 until the center assigned one). */
  index = 0;
  private readonly point: MeshPoint;
  private readonly byId = new Map<string, PeerLink>();
  private readonly byIndex = new Map<number, PeerLink>();
  private links: PeerLink[] = [];
  private req = 0;
  private readonly scratch = new FrameWriter();
  private readonly ticker: Timer;

  constructor(node: EngineNode, readonly id: string) {
    this.point = new MeshPoint(node, this);
    this.ticker = setInterval(() => {
      const now = Date.now();
      for (const link of this.links) link.tick(now);
    }, TICK_MS);
  }

  listen(bind: string, port: number): void {
    this.point.listen(bind, port);
    log.info(`start the mesh point (${bind}:${port})`);
  }

  /** Applies the center's node list. A list that is not `complete` (the center just started) only adds. */
  update(nodes: PeerInfo[], complete: boolean): void {
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

  hasPeers(): boolean {
    return this.links.length > 0;
  }

  sendRemote(id: number, data: Uint8Array | string, type: SendType): Promise<string | null> {
    const link = this.byIndex.get(nodeOf(id));
    if (!link) return Promise.resolve("client not found");
    const busy = link.ready();
    if (busy) return Promise.resolve(busy);
    const req = this.nextReq();
    writeSend(link.out, req, id, data, type);
    return this.await(link, req);
  }

  callRemote(id: number, method: string, args: unknown[]): Promise<string | null> {
    const link = this.byIndex.get(nodeOf(id));
    if (!link) return Promise.resolve("client not found");
    const busy = link.ready();
    if (busy) return Promise.resolve(busy);
    const req = this.nextReq();
    writeCall(link.out, req, id, method, args);
    return this.await(link, req);
  }

  private await(link: PeerLink, req: number): Promise<string | null> {
    if (link.out.frameSize() > MAX_FRAME) {
      link.out.cancel();
      return Promise.resolve("message too large for the mesh");
    }
    return new Promise((resolve) => link.track(req, (err) => resolve(err)));
  }

  /** [delivered, failed] over all peers; a peer that cannot answer adds one failure. */
  publishRemote(channel: string, data: Uint8Array | string, type: SendType): Promise<[number, number]> {
    const links = this.links;
    if (links.length === 0) return Promise.resolve([0, 0]);
    const req = this.nextReq();
    const w = this.scratch;
    w.reset();
    writePublish(w, req, channel, data, type);
    if (w.frameSize() > MAX_FRAME) return Promise.resolve([0, links.length]);
    const frame = w.frame();
    return new Promise((resolve) => {
      let ok = 0;
      let fail = 0;
      let left = links.length;
      const done: Done = (err, o, f) => {
        if (err === null) (ok += o), (fail += f);
        else fail++;
        if (--left === 0) resolve([ok, fail]);
      };
      for (const link of links) {
        if (link.ready() !== null) {
          done("unreachable", 0, 0);
          continue;
        }
        link.out.append(frame);
        link.track(req, done);
      }
    });
  }

  private nextReq(): number {
    this.req = (this.req + 1) >>> 0 || 1;
    return this.req;
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
