// How a multi-core engine's primary reaches clients. It holds none itself: every client lives in a worker,
// found by workerOf(id) for this node's ids, or on another node through the mesh. The API server (through
// the PrimaryNode's peers), the node's mesh point (requests from other nodes) and each worker's link (that
// worker's requests) all route here. Workers are local peers: the same requests over the same kind of link.
import { nodeOf, workerOf } from "../net/client-ids";
import type { Peers } from "../engine/node";
import type { SendType } from "../engine/host";
import type { Mesh } from "../mesh/index";
import type { PeerLink } from "../mesh/link";
import type { MeshTarget } from "../mesh/server";
import { callOver, publishTo, sendOver } from "../mesh/requests";
import type { Queues } from "../queue/queues";

export class WorkerRouter implements Peers, MeshTarget {
  /** The link to each worker's mesh point, by worker index; undefined while that worker (re)starts. */
  private readonly links: (PeerLink | undefined)[];
  /** Every worker's link, and per worker the others' (a publish from a worker skips it). */
  private all: PeerLink[] = [];
  private others: PeerLink[][] = [];

  /** `mesh`: the route to other nodes; `queues`: the node's, where the workers' queue items go. */
  constructor(readonly mesh: Mesh, private readonly queues: Queues, count: number) {
    this.links = new Array<PeerLink | undefined>(count).fill(undefined);
    this.setLink(0, undefined);
  }

  /** The node id, which the workers' ids extend. */
  get id(): string {
    return this.mesh.id;
  }

  /** The node index the center assigned (0 until then), which this node's client ids carry. */
  get index(): number {
    return this.mesh.index;
  }

  setLink(worker: number, link: PeerLink | undefined): void {
    this.links[worker] = link;
    this.all = this.links.filter((l): l is PeerLink => l !== undefined);
    this.others = this.links.map((mine) => this.all.filter((l) => l !== mine));
  }

  private own(id: number): boolean {
    return nodeOf(id) === this.mesh.index;
  }

  // Peers: the API's (and the workers') route to any client.
  notReady(): string | null {
    return this.mesh.notReady();
  }

  hasPeers(): boolean {
    return true;
  }

  forwardFailures(): number {
    return this.mesh.forwardFailures();
  }

  sendRemote(id: number, data: Uint8Array | string, type: SendType): Promise<string | null> {
    return this.own(id) ? sendOver(this.links[workerOf(id)], id, data, type) : this.mesh.sendRemote(id, data, type);
  }

  callRemote(id: number, method: string, args: unknown[]): Promise<string | null> {
    return this.own(id) ? callOver(this.links[workerOf(id)], id, method, args) : this.mesh.callRemote(id, method, args);
  }

  publishRemote(channel: string, data: Uint8Array | string, type: SendType): Promise<[number, number]> {
    return this.publish(this.all, channel, data, type);
  }

  // MeshTarget of the node's mesh point: other nodes' requests go to this node's workers.
  sendLocal(id: number, data: Uint8Array, type: SendType): string | Promise<string | null> {
    return this.own(id) ? sendOver(this.links[workerOf(id)], id, data, type) : "client not found";
  }

  publishLocal(channel: string, data: Uint8Array, type: SendType): Promise<[number, number]> {
    return publishTo(this.all, channel, data, type);
  }

  callLocal(id: number, method: string, args: unknown[]): string | Promise<string | null> {
    return this.own(id) ? callOver(this.links[workerOf(id)], id, method, args) : "client not found";
  }

  /** What worker k's requests reach: any client, a publish to all but k (it delivered its own), the queues. */
  targetFor(k: number): MeshTarget {
    return {
      sendLocal: (id, data, type) => this.sendRemote(id, data, type),
      publishLocal: (channel, data, type) => this.publish(this.others[k]!, channel, data, type),
      callLocal: (id, method, args) => this.callRemote(id, method, args),
      queuePush: (topic, json, clientId) => this.queues.push(topic, json, clientId),
    };
  }

  /** Publishes to these workers and to every other node; the counts are summed. */
  private publish(workers: PeerLink[], channel: string, data: Uint8Array | string, type: SendType): Promise<[number, number]> {
    const local = publishTo(workers, channel, data, type);
    if (!this.mesh.hasPeers()) return local;
    return Promise.all([local, this.mesh.publishRemote(channel, data, type)]).then(([a, b]) => [a[0] + b[0], a[1] + b[1]]);
  }
}
