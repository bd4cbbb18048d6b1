// How an engine joins the cluster: its mesh point, its registration with the center (which assigns the
// node index that client ids carry), and the mesh links to the peers the center lists. The mesh is made
// first (newMesh), the node over it, then the mesh point serving the node (src/app/engine.ts).
import type { Config } from "../config/schema";
import { log } from "../log/logger";
import { onShutdown } from "../lifecycle";
import type { NodeView } from "../engine/node";
import { RegistryClient } from "../center/client";
import { LINK_TIMINGS, nodeProblem, timingsOf, type LinkTimings, type NodeInfo, type Timings } from "../center/protocol";
import { escapeText } from "../log/escape";
import { warnIfProtected, type ClusterSecurity } from "../net/security";
import { Mesh } from "./index";
import { Membership } from "./membership";
import type { MeshPoint } from "./server";
import type { LinkSecurity } from "./link";
import { MESH_TIMINGS, type MeshTimings } from "./protocol";
import { newNodeId } from "../net/node-id";
import { checkFree } from "../handover/ports";
import { predecessor } from "../handover/predecessor";

const wildcard = (bind: string) => bind === "" || bind === "0.0.0.0" || bind === "::";

/** Close code and reason for clients of a node the other engines stopped counting for a while. */
const RESYNC = { code: 1012, reason: "this node was dropped from the cluster, reconnect" };

/** An engine's mesh (its links to other nodes), its view of the cluster, and how its links authenticate. */
export function newMesh(config: Config, sec: ClusterSecurity, timings: MeshTimings = MESH_TIMINGS): { mesh: Mesh; membership: Membership; links: LinkSecurity } {
  const membership = new Membership(config.engine.centerRegistry, timingsOf(config.center.registry));
  const links = { kind: "mesh" as const, keys: sec.keys, tls: sec.tls, timings };
  return { mesh: new Mesh(newNodeId(), membership, links), membership, links };
}

export interface ClusterParts {
  /** This engine's node: its clients are counted, closed and renumbered through it. */
  node: NodeView;
  mesh: Mesh;
  membership: Membership;
  /** Where other nodes' requests arrive: it serves the node itself, or a multi-core engine's workers. */
  point: MeshPoint;
}

export class Cluster {
  readonly mesh: Mesh;
  private readonly node: NodeView;
  private readonly point: MeshPoint;
  private registry: RegistryClient | null = null;
  private draining = false;
  private readonly membership: Membership;
  private registeredOnce = false;
  /** Node list entries found malformed, so each is logged once. */
  private readonly malformed = new Set<string>();

  /** `link`: the timings of the link to the center (its membership timings come from the config). */
  constructor(private readonly config: Config, parts: ClusterParts, private readonly sec: ClusterSecurity, private readonly link: LinkTimings = LINK_TIMINGS) {
    this.node = parts.node;
    this.mesh = parts.mesh;
    this.membership = parts.membership;
    this.point = parts.point;
  }

  /** Starts the mesh point. */
  listen(): void {
    const { bind, port } = this.config.engine.meshPoint;
    try {
      checkFree(bind, port);
      this.point.listen(bind, port);
    } catch (e) {
      throw new Error(`cannot start the mesh point on ${bind}:${port} (${(e as Error).message})`);
    }
    log.info(`start the mesh point (${bind}:${port})`);
    warnIfProtected(this.sec, "mesh point");
    onShutdown("mesh", () => this.stopMesh());
  }

  private stopMesh(): void {
    this.mesh.stop();
    this.point.stop();
  }

  /**
   * Registers with the center, retrying until it answers; resolves once the first node list is applied: the
   * node index is known and so are the peers. Re-registrations (center restarts) keep going in the background.
   */
  register(): Promise<void> {
    const e = this.config.engine;
    return new Promise((resolve) => {
      const client = new RegistryClient(e.centerRegistry, {
        registration: () => ({
          id: this.mesh.id,
          index: this.mesh.index,
          // A mesh point bound to one address advertises it; otherwise the center uses the address it sees.
          ip: wildcard(e.meshPoint.bind) ? "" : e.meshPoint.bind,
          api_port: e.apiServer.port,
          mesh_port: e.meshPoint.port,
          peers: this.mesh.known(),
          ...(predecessor?.node ? { after: predecessor.node } : {}),
          ...(this.draining ? { draining: true } : {}),
        }),
        registered: (index, listed, timings) => this.registered(index, listed, timings),
        nodes: (list, complete, gone) => {
          this.mesh.update(this.dialable(list), complete, gone);
          this.membership.listApplied();
          resolve();
        },
        confirmed: () => this.membership.confirmed(),
        clients: () => this.node.clientCount(),
      }, { keys: this.sec.keys, tls: this.sec.tls, link: this.link, timings: timingsOf(this.config.center.registry) });
      this.registry = client;
      onShutdown("center registry", () => client.stop());
      client.start();
    });
  }

  /** Leaves the cluster: tells the center (when registered) and closes every mesh link. */
  stop(): void {
    this.registry?.stop();
    this.stopMesh();
  }

  /** This node hands over to a successor: the center shows it as draining (src/handover). */
  drain(): void {
    this.draining = true;
    this.registry?.drain();
  }

  /** The peers of a node list that can be dialed; a malformed entry is skipped (logged once), the others kept. */
  private dialable(list: unknown[]): { id: string; index: number; ip: string; meshPort: number }[] {
    const peers = [];
    for (const n of list) {
      const problem = nodeProblem(n);
      if (problem === null) {
        const { id, index, ip, mesh_port } = n as NodeInfo;
        peers.push({ id, index, ip, meshPort: mesh_port });
        continue;
      }
      const text = escapeText(JSON.stringify(n) ?? String(n));
      if (this.malformed.has(text)) continue;
      if (this.malformed.size >= 1000) this.malformed.clear(); // bounded; a repeat is then logged again
      this.malformed.add(text);
      log.warn(`the center listed a node that cannot be dialed (${problem}), skipped: ${text}`);
    }
    return peers;
  }


  private registered(index: number, listed: boolean, timings: Timings): void {
    this.membership.adopt(timings);
    const again = this.registeredOnce;
    this.registeredOnce = true;
    if (this.setIndex(index) || listed || !again) return;
    // The center had dropped this node (frozen, or cut off from the center, for longer than the drop timeout):
    // the other engines stopped counting it, so its clients may have missed messages. They reconnect and resync.
    const closed = this.node.closeClients(RESYNC.code, RESYNC.reason);
    void Promise.resolve(closed).then((n) => {
      log.warn(`the center had dropped this node (no heartbeat for ${timings.drop / 1000}s): closing ${n} client connections (${RESYNC.code}) so they reconnect and resync`);
    });
  }

  /** Takes the index the center assigned; true when that closed the node's clients. */
  private setIndex(index: number): boolean {
    const old = this.mesh.index;
    if (index === old) return false;
    this.mesh.assignIndex(index);
    // Another node took this node's index while the center was away: ids handed out so far would now
    // route to that node, so their connections are closed (clients reconnect and get new ids).
    const closed = this.node.renumber(index);
    if (old === 0) return false;
    void Promise.resolve(closed).then((n) => {
      log.warn(`the center assigned node index ${index} (was ${old}): closing ${n} client connections, their ids no longer route here`);
    });
    return true;
  }
}
