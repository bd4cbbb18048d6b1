// How an engine joins the cluster: its mesh point, its registration with the center (which assigns the
// node index that client ids carry), and the mesh links to the peers the center lists.
import type { Config } from "../config/schema";
import { log } from "../log/logger";
import { onShutdown } from "../lifecycle";
import type { EngineNode } from "../engine/node";
import { RegistryClient } from "../center/client";
import { Mesh } from "./index";
import type { MeshTarget } from "./server";
import { newNodeId } from "./node-id";
import { checkFree } from "../handover/ports";
import { predecessor } from "../handover/predecessor";

const wildcard = (bind: string) => bind === "" || bind === "0.0.0.0" || bind === "::";

export class Cluster {
  readonly mesh: Mesh;
  private registry: RegistryClient | null = null;
  private draining = false;

  /** `target` serves other nodes' requests: the node itself, or the workers of a multi-core engine. */
  constructor(private readonly config: Config, private readonly node: EngineNode, target: MeshTarget = node) {
    this.mesh = new Mesh(target, newNodeId(), node.queues);
  }

  /** Starts the mesh point and makes the mesh the node's route to other nodes. */
  listen(): void {
    const { bind, port } = this.config.engine.meshPoint;
    try {
      checkFree(bind, port);
      this.mesh.listen(bind, port);
    } catch (e) {
      throw new Error(`cannot start the mesh point on ${bind}:${port} (${(e as Error).message})`);
    }
    this.node.peers = this.mesh;
    onShutdown("mesh", () => this.mesh.stop());
  }

  /**
   * Registers with the center, retrying until it answers; resolves at the first registration, when the
   * node index is known. Re-registrations (center restarts) keep going in the background.
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
        registered: (index) => {
          this.setIndex(index);
          resolve();
        },
        nodes: (list, complete) => {
          this.mesh.update(list.map((n) => ({ id: n.id, index: n.index, ip: n.ip, meshPort: n.mesh_port })), complete);
        },
        clients: () => this.node.clientCount(),
      });
      this.registry = client;
      onShutdown("center registry", () => client.stop());
      client.start();
    });
  }

  /** This node hands over to a successor: the center shows it as draining (src/handover). */
  drain(): void {
    this.draining = true;
    this.registry?.drain();
  }

  private setIndex(index: number): void {
    const old = this.mesh.index;
    if (index === old) return;
    // Another node took this node's index while the center was away: ids handed out so far would now
    // route to that node, so their connections are closed (clients reconnect and get new ids).
    const closed = this.node.renumber(index);
    if (old !== 0) {
      void Promise.resolve(closed).then((n) => {
        log.warn(`the center assigned node index ${index} (was ${old}): closing ${n} client connections, their ids no longer route here`);
      });
    }
    this.mesh.index = index;
  }
}
