// What the mix.* families may ask of the engine. One interface, so the families stay independent of how
// connections, channels and the mesh are implemented; each family declares the slice of it it needs.
import type { RedisPool } from "../redis/client";

/** What mix.redis needs of a pool: running one command (a RedisPool, or canned replies in `connmix test`). */
export type RedisCommands = Pick<RedisPool, "command">;

export type SendType = 1 | 2; // 1 = text, 2 = binary (raw bytes for socket connections)

export interface EngineHost {
  /** `options` of the server this VM belongs to (`mix.server.option`). */
  option(name: string): string | undefined;
  /**
   * Sends to a connection of this node: null on success, else an error text; "remote" when it lives
   * elsewhere. `raw` (conn:send) skips a socket server's protocol_encode.
   */
  sendLocal(id: number, data: Uint8Array | string, type: SendType, raw?: boolean): string | null | "remote";
  /** The same to a client on another worker or node. */
  sendRemote(id: number, data: Uint8Array | string, type: SendType): Promise<string | null>;
  /** Publishes to this node's subscribers: [delivered, failed]. */
  publishLocal(channel: string, data: Uint8Array | string, type: SendType): [number, number];
  /** True when other workers or nodes must also be asked. */
  hasPeers(): boolean;
  publishRemote(channel: string, data: Uint8Array | string, type: SendType): Promise<[number, number]>;
  subscribe(id: number, channels: string[]): string | null;
  unsubscribe(id: number, channels: string[]): string | null;
  close(id: number): string | null;
  /** Pushes an item (JSON text) from client `clientId` (0: none) to a queue topic: [queued count, error]. */
  queuePush(topic: string, json: string, clientId: number): [number, string | null];
  /** True when the queues live in another process (a worker's primary): pushes go through queuePushRemote. */
  queuesElsewhere(): boolean;
  queuePushRemote(topic: string, json: string, clientId: number): Promise<[number, string | null]>;
  /** Resolves when `wake(id)` is called or the connection closes. */
  waitContext(id: number): Promise<void>;
  wake(id: number): void;
  /** Reply of an on_handshake callback: accept, or refuse with an HTTP status and message. */
  handshakeResult(id: number, accept: boolean, status: number, message: string): void;
  /** This engine's node index, the `n` of mix.redis.push items. */
  nodeIndex(): number;
  /** The pool of the `engine.luavm.redis` entry with this name (`mix.redis.connection`). */
  redis(name: string): RedisCommands | undefined;
}
