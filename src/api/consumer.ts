// One /ws/v1 connection, as the queues see it: a Consumer of the topics it popped. Items go out as
// `{"e":"queue.pop","p":{"n":node,"c":"client id","t":topic,"d":data},"id":null}`, built around the pushed
// JSON text without parsing it. While the socket is backed up (more than writeBufferSize bytes not yet
// taken by the peer) it takes no item, so nothing piles up in memory that a disconnect would lose; the
// items wait in their topic and flow again on drain.
import type { ServerWebSocket } from "bun";
import type { Consumer, Queues } from "../queue/queues";

export class ApiSocket implements Consumer {
  ws: ServerWebSocket<ApiSocket> | null = null;
  readonly topics = new Set<string>();
  /** When writes started to back up (ms); 0 when they are not. */
  stalledSince = 0;
  /** `","t":"<topic>","d":` per topic: the part of an event that depends on the topic. */
  private readonly topicParts = new Map<string, string>();
  private readonly head: string;

  constructor(private readonly queues: Queues, nodeId: string, private readonly backlogLimit: () => number) {
    this.head = `{"e":"queue.pop","p":{"n":${JSON.stringify(nodeId)},"c":"`;
  }

  deliver(topic: string, json: string, clientId: number): boolean {
    const ws = this.ws;
    if (!ws || ws.getBufferedAmount() > this.backlogLimit()) return false;
    let part = this.topicParts.get(topic);
    if (part === undefined) this.topicParts.set(topic, (part = `","t":${JSON.stringify(topic)},"d":`));
    return this.sent(ws.sendText(this.head + clientId + part + json + '},"id":null}'));
  }

  /** Sends a response; a reply that cannot be sent any more (closed socket) is dropped. */
  reply(text: string): void {
    if (this.ws) this.sent(this.ws.sendText(text));
  }

  /** Bun's send result: >0 written, -1 buffered behind earlier data, 0 dropped (closed or over the limit). */
  private sent(status: number): boolean {
    if (status === -1 && !this.stalledSince) this.stalledSince = performance.now();
    return status !== 0;
  }

  /** Takes the items waiting in its topics, as far as the socket accepts them. */
  pull(): void {
    for (const topic of this.topics) this.queues.drain(topic);
  }

  /** The peer took the backlog: hand over whatever waited meanwhile. */
  drained(): void {
    this.stalledSince = 0;
    this.pull();
  }

  /** Gone: every topic it consumed forgets it; items not yet sent stay queued. */
  closed(): void {
    this.ws = null;
    this.queues.cancel(this, this.topics);
    this.topics.clear();
  }
}
