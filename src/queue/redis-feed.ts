// Durable queues in Redis (engine.luavm.queue.backend: <pool name>). Each topic is a stream
// `connmix:queue:<topic>` read through the consumer group `connmix`; every engine reads as the group consumer
// `<host>:<api port>`, a name it keeps across restarts. Scripts push with XADD (an EVAL that also applies
// topicSize and maxTopics); an engine with consumers of a topic reads it with XREADGROUP into its in-memory
// queues, ahead of its consumers by at most FEED_AHEAD items; an item is XACKed (and XDELed) once its consumer
// settled it. So an item lives in Redis until a consumer acknowledged it:
//  - an engine killed mid-stream leaves its delivered items pending under its consumer name; restarted, it
//    reads them again first (XREADGROUP from id 0);
//  - an engine that does not come back: any engine claims its pending items once they have been idle for
//    claimIdle seconds (XAUTOCLAIM), and delivers them again.
import { hostname } from "node:os";
import type { QueueConfig } from "../config/schema";
import { log } from "../log/logger";
import { escapeText } from "../log/escape";
import { ReplyError, type RedisPool, type Reply } from "../redis/client";
import type { DurableStore, FeedTarget, Item } from "./queues";

const GROUP = "connmix";
const TOPICS_KEY = "connmix:queue:topics";
const streamKey = (topic: string) => `connmix:queue:${topic}`;
/** How long one XREADGROUP waits for new items. */
const BLOCK_MS = 500;
/** Pause after a Redis error, and while the local queue is full. */
const RETRY_MS = 1000;
const IDLE_POLL_MS = 20;
const ACK_SLICE = 1000;

// KEYS: stream, topic set. ARGV: topicSize, maxTopics, topic, json, client id. Returns items in the stream, or
// -1 (topic full) / -2 (too many topics).
const PUSH = `
local n = redis.call('XLEN', KEYS[1])
if n >= tonumber(ARGV[1]) then return -1 end
if redis.call('SISMEMBER', KEYS[2], ARGV[3]) == 0 then
  if redis.call('SCARD', KEYS[2]) >= tonumber(ARGV[2]) then return -2 end
  redis.call('SADD', KEYS[2], ARGV[3])
end
redis.call('XADD', KEYS[1], '*', 'd', ARGV[4], 'c', ARGV[5])
return n + 1`;

// KEYS: stream, topic set. ARGV: group, topic, ids... Acknowledges and deletes the items; an emptied topic
// no longer counts against maxTopics.
const ACK = `
redis.call('XACK', KEYS[1], ARGV[1], unpack(ARGV, 3))
redis.call('XDEL', KEYS[1], unpack(ARGV, 3))
if redis.call('XLEN', KEYS[1]) == 0 then redis.call('SREM', KEYS[2], ARGV[2]) end
return 0`;

const text = (r: Reply | undefined) => (r instanceof Uint8Array ? Buffer.from(r).toString() : String(r ?? ""));

/** The entries of an XREADGROUP or XAUTOCLAIM reply ([[id, [field, value, ...]], ...]) as items. */
function items(entries: Reply): Item[] {
  const out: Item[] = [];
  if (!Array.isArray(entries)) return out;
  for (const entry of entries) {
    if (!Array.isArray(entry) || !Array.isArray(entry[1])) continue; // deleted meanwhile: no fields
    const fields = entry[1];
    let json = "null";
    let client = 0;
    for (let i = 0; i + 1 < fields.length; i += 2) {
      const name = text(fields[i]);
      if (name === "d") json = text(fields[i + 1]);
      else if (name === "c") client = Number(text(fields[i + 1])) || 0;
    }
    out.push([json, client, text(entry[0])]);
  }
  return out;
}

export class RedisFeed implements DurableStore {
  /** This engine's consumer name in every topic's group. */
  readonly consumer: string;
  private readonly following = new Set<string>();
  /** Topics whose pending items (from an earlier run under the same name) were read once already. */
  private readonly recovered = new Set<string>();
  private stopped = false;
  private lastError = "";

  constructor(private readonly pool: RedisPool, private readonly limits: QueueConfig, apiPort: number) {
    this.consumer = `${hostname()}:${apiPort}`;
  }

  async push(topic: string, json: string, clientId: number): Promise<[number, string | null]> {
    const { topicSize, maxTopics } = this.limits;
    let r: Reply;
    try {
      r = await this.pool.command("EVAL", [PUSH, "2", streamKey(topic), TOPICS_KEY, String(topicSize), String(maxTopics), topic, json, String(clientId)]);
    } catch (e) {
      return [0, `queue push failed: ${(e as Error).message}`];
    }
    if (r instanceof ReplyError) return [0, `queue push failed: ${r.message}`];
    if (r === -1) return [topicSize, `queue topic ${topic} is full (topicSize ${topicSize})`];
    if (r === -2) return [0, `too many queue topics (maxTopics ${maxTopics})`];
    return [Number(r), null];
  }

  settled(topic: string, refs: string[]): void {
    // In slices: Lua's unpack takes a few thousand values at most.
    for (let i = 0; i < refs.length; i += ACK_SLICE) {
      this.pool.command("EVAL", [ACK, "2", streamKey(topic), TOPICS_KEY, GROUP, topic, ...refs.slice(i, i + ACK_SLICE)]).then(
        (r) => r instanceof ReplyError && this.failed(topic, r.message),
        (e) => this.failed(topic, (e as Error).message),
      );
    }
  }

  async backlog(): Promise<[string, number][]> {
    const topics = await this.pool.command("SMEMBERS", [TOPICS_KEY]);
    if (!Array.isArray(topics)) return [];
    const out: [string, number][] = [];
    for (const t of topics.map(text)) {
      const n = await this.pool.command("XLEN", [streamKey(t)]);
      if (typeof n === "number" && n > 0) out.push([t, n]);
    }
    return out;
  }

  released(topic: string): void {
    this.recovered.delete(topic); // the next follow reads this consumer's pending items again, from id 0
  }

  follow(topic: string, into: FeedTarget): void {
    if (this.following.has(topic) || this.stopped) return;
    this.following.add(topic);
    void this.read(topic, into).finally(() => this.following.delete(topic));
  }

  /** Reads topic `topic` into the local queue while it has consumers here. */
  private async read(topic: string, into: FeedTarget): Promise<void> {
    const key = streamKey(topic);
    let cursor = this.recovered.has(topic) ? ">" : "0"; // first what this consumer name left pending
    let claimed = performance.now();
    let grouped = false; // the group is created once per read, and again after an error (a Redis that lost it)
    while (!this.stopped) {
      const want = into.wants();
      if (want < 0) return;
      if (cursor === ">" && !this.recovered.has(topic)) cursor = "0"; // released meanwhile: read them again
      if (want === 0) {
        await Bun.sleep(IDLE_POLL_MS);
        continue;
      }
      try {
        if (!grouped) await this.ensureGroup(key);
        grouped = true;
        const args = ["GROUP", GROUP, this.consumer, "COUNT", String(want)];
        if (cursor === ">") args.push("BLOCK", String(BLOCK_MS));
        const r = await this.pool.command("XREADGROUP", [...args, "STREAMS", key, cursor]);
        if (r instanceof ReplyError) throw new Error(r.message);
        const entries = Array.isArray(r) && Array.isArray(r[0]) ? r[0][1]! : [];
        const got = items(entries);
        if (cursor !== ">") {
          // Pending entries come in id order; an empty page ends them.
          if (!Array.isArray(entries) || entries.length === 0) {
            cursor = ">";
            this.recovered.add(topic);
          } else cursor = text((entries as Reply[][])[entries.length - 1]![0]);
        }
        const fresh = got.filter((i) => !into.holds(i[2]));
        if (fresh.length > 0) into.append(fresh);
        if (performance.now() - claimed > (this.limits.claimIdle * 1000) / 2) {
          claimed = performance.now();
          await this.claim(key, into);
        }
        this.lastError = "";
      } catch (e) {
        grouped = false;
        this.failed(topic, (e as Error).message);
        await Bun.sleep(RETRY_MS);
      }
    }
  }

  /** Takes items other consumers (engines that are gone) left pending longer than claimIdle. */
  private async claim(key: string, into: FeedTarget): Promise<void> {
    const want = into.wants();
    if (want <= 0) return;
    const r = await this.pool.command("XAUTOCLAIM", [key, GROUP, this.consumer, String(Math.round(this.limits.claimIdle * 1000)), "0-0", "COUNT", String(want)]);
    if (r instanceof ReplyError) throw new Error(r.message);
    const got = Array.isArray(r) ? items(r[1]!).filter((i) => !into.holds(i[2])) : [];
    if (got.length > 0) {
      log.info(`queue ${escapeText(key)}: ${got.length} items left pending by a consumer that is gone, claimed`);
      into.append(got);
    }
  }

  private async ensureGroup(key: string): Promise<void> {
    const r = await this.pool.command("XGROUP", ["CREATE", key, GROUP, "0", "MKSTREAM"]);
    if (r instanceof ReplyError && !r.message.startsWith("BUSYGROUP")) throw new Error(r.message);
  }

  /** Logs a Redis failure once until the next success (the items stay in Redis meanwhile). */
  private failed(topic: string, message: string): void {
    if (message === this.lastError) return;
    this.lastError = message;
    log.error(`queue ${escapeText(topic)}: redis failed (${message}); its items stay in Redis and are delivered once it answers`);
  }

  stop(): void {
    this.stopped = true;
  }
}
