// /metrics with the Redis queue backend, against a real redis-server: the page reads the streams' lengths
// when scraped, waits for them only so long, and scrapes made while Redis does not answer share one read
// instead of piling up commands (and pool connections) in Redis.
import { afterAll, expect, test } from "bun:test";
import { RedisPool, type Reply } from "../../src/redis/client";
import { RedisFeed } from "../../src/queue/redis-feed";
import { Queues } from "../../src/queue/queues";
import { EngineNode } from "../../src/engine/node";
import { ClientIds } from "../../src/net/client-ids";
import { engineMetrics } from "../../src/metrics/engine";
import { RequestRefusals } from "../../src/access/access";
import { defaultConfig, defaultRedis } from "../../src/config/schema";
import { REDIS, RedisProcess } from "../helpers/redis.ts";
import { freePort } from "../helpers/ports.ts";

const maybe = REDIS ? test : test.skip;
const redis = new RedisProcess(freePort());
afterAll(() => redis.kill());

/** The number of times Redis ran `command` since its stats were reset (INFO commandstats). */
async function calls(admin: RedisPool, command: string): Promise<number> {
  const info = (await admin.command("INFO", ["commandstats"])) as Reply;
  const text = info instanceof Uint8Array ? new TextDecoder().decode(info) : String(info);
  return Number(new RegExp(`^cmdstat_${command}:calls=(\\d+)`, "m").exec(text)?.[1] ?? 0);
}

maybe("scrapes while Redis does not answer share one read of the streams' lengths", async () => {
  await redis.start();
  const config = (name: string) => ({ ...defaultRedis(), name, addr: `127.0.0.1:${redis.port}`, minIdleConns: 0 });
  const pool = new RedisPool(config("queues"));
  const admin = new RedisPool(config("admin"));
  const queueConfig = { ...defaultConfig().engine.luavm.queue, backend: "queues" };
  const feed = new RedisFeed(pool, queueConfig, 1);
  const node = new EngineNode(new ClientIds(1), new Queues(queueConfig, feed));
  const metrics = engineMetrics(node, defaultConfig().prometheus.summary, { apiRefusals: new RequestRefusals() });
  const length = (page: string) => /^connmix_engine_queue_stream_length\{topic="jobs"\} (\d+)$/m.exec(page)?.[1];
  try {
    expect(await feed.push("jobs", '"x"', 0)).toEqual([1, null]);
    expect(length(await metrics.page(1000))).toBe("1");
    expect(await admin.command("CONFIG", ["RESETSTAT"])).toBe("OK");

    redis.signal("SIGSTOP");
    const scrapes = 8;
    for (let i = 0; i < scrapes; i++) expect(length(await metrics.page(20))).toBeUndefined(); // no answer in time
    redis.signal("SIGCONT");

    // Once Redis answers again the page has the length back, and Redis ran the read once, not once per scrape.
    expect(length(await metrics.page(2000))).toBe("1");
    expect(await calls(admin, "smembers")).toBeLessThanOrEqual(2);
  } finally {
    redis.signal("SIGCONT");
    pool.close();
    admin.close();
  }
});
