// The queues of an engine process as its configuration says: in memory, or fed from Redis Streams
// (engine.luavm.queue.backend naming one of the engine.luavm.redis pools).
import type { Config } from "../config/schema";
import { RedisPool } from "../redis/client";
import { Queues } from "./queues";
import { RedisFeed } from "./redis-feed";

export interface EngineQueues {
  queues: Queues;
  /** Stops reading from Redis and closes its connections (nothing to do in memory). */
  close(): void;
}

export function engineQueues(config: Config): EngineQueues {
  const q = config.engine.luavm.queue;
  const pool = q.backend === "memory" ? undefined : config.engine.luavm.redis.find((r) => r.name === q.backend);
  if (!pool) return { queues: new Queues(q), close: () => {} };
  const redis = new RedisPool(pool);
  const feed = new RedisFeed(redis, q, config.engine.apiServer.port);
  return {
    queues: new Queues(q, feed),
    close: () => {
      feed.stop();
      redis.close();
    },
  };
}
