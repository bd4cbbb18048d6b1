// A worker's route to everything beyond its own clients (a client of another worker or node, the other
// subscribers of a publish, queue items): its primary, over one mesh link (src/app/worker.ts wires it).
import type { Peers } from "../engine/node";
import type { SendType } from "../engine/host";
import { PeerLink, type LinkSecurity, type PeerInfo } from "../mesh/link";
import { callOver, publishTo, queueOver, sendOver } from "../mesh/requests";

/** A worker's route to everything beyond its own clients: its primary. */
export class Upstream implements Peers {
  readonly link: PeerLink;
  private readonly links: PeerLink[];

  constructor(primary: PeerInfo, self: { id: string; index: number }, sec: LinkSecurity) {
    this.link = new PeerLink(primary, self, sec, "the primary");
    this.links = [this.link];
  }

  hasPeers(): boolean {
    return true; // the other workers, at least
  }

  sendRemote(id: number, data: Uint8Array | string, type: SendType): Promise<string | null> {
    return sendOver(this.link, id, data, type);
  }

  publishRemote(channel: string, data: Uint8Array | string, type: SendType): Promise<[number, number]> {
    return publishTo(this.links, channel, data, type);
  }

  callRemote(id: number, method: string, args: unknown[]): Promise<string | null> {
    return callOver(this.link, id, method, args);
  }

  queuePush(topic: string, json: string, clientId: number): Promise<[number, string | null]> {
    return queueOver(this.link, topic, json, clientId);
  }

  stop(): void {
    this.link.close();
  }
}
