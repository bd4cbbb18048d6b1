// Cluster tests run real nodes: `bun src/main.ts center|engine|dev -f <config>` as separate processes on
// free loopback ports, in a temp working directory holding their configs and Lua entry scripts.
import { mkdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { tempDir } from "../helpers/files.ts";
import { freePort } from "../helpers/ports.ts";
import { BUN, MAIN, Proc } from "../helpers/process.ts";
import { makeCerts, type Certs } from "../helpers/certs.ts";
import { SECRET, type TlsPem } from "./links.ts";

/**
 * The test entry script. Text commands from a client: `id`, `sub <channel>`, `send <client id> <text>`,
 * `pub <channel> <text>`, `wait <key>` (blocks on wait_context_value); each is answered with one line.
 */
export const ENTRY = `
function on_handshake(client_id, headers, server) end
function on_close(client_id, err) end
function on_message(msg)
  local conn = mix.websocket()
  local cmd, arg, rest = msg.data:match("^(%S+) ?(%S*) ?(.*)$")
  if cmd == "id" then
    conn:send("id " .. string.format("%d", conn:client_id()))
  elseif cmd == "sub" then
    conn:subscribe(arg)
    conn:send("subscribed " .. arg)
  elseif cmd == "send" then
    local err = mix.mesh.send(arg, rest)
    conn:send("sent " .. tostring(err))
  elseif cmd == "pub" then
    local s, f = mix.mesh.publish(arg, rest)
    conn:send("published " .. s .. " " .. f)
  elseif cmd == "wait" then
    conn:send("waiting " .. arg)
    conn:send("value " .. tostring(conn:wait_context_value(arg)))
  end
end
`;

export interface EnginePorts {
  mesh: number;
  api: number;
  lua: number;
  /** A second websocket server of the same engine (its own Lua VM), path /other. */
  lua2: number;
}

/** center.registry timings in ms (conf/connmix.yaml); short ones keep tests that wait for them short. */
export interface Timings {
  heartbeat: number;
  dropTimeout: number;
  doubtTimeout: number;
}

/** Short timings for tests that wait for them: drops after 1 s, doubts for 10 s. */
export const SHORT: Timings = { heartbeat: 200, dropTimeout: 1000, doubtTimeout: 10_000 };

/**
 * How the nodes' links are secured, from CONNMIX_TEST_CLUSTER: `secret` (the default: cluster.secret), `tls`
 * (the secret and mutual TLS with certificates made by openssl), `plain` (neither: protected mode, loopback).
 */
export const SECURITY = (process.env.CONNMIX_TEST_CLUSTER ?? "secret") as "secret" | "tls" | "plain";

export class ClusterDir {
  readonly dir = tempDir("cluster");
  readonly registry = freePort();
  readonly centerApi = freePort();
  /** The nodes' cluster.secret ("" in plain mode): a test that plays a node of the cluster uses it. */
  readonly secret = SECURITY === "plain" ? "" : SECRET;
  private readonly clusterSection: string;

  /** What a raw client of this cluster presents in tls mode. */
  get tls(): TlsPem | undefined {
    if (!certs || SECURITY !== "tls") return undefined;
    return { cert: readFileSync(certs.cert, "utf8"), key: readFileSync(certs.key, "utf8"), ca: readFileSync(certs.ca, "utf8") };
  }

  /** Without `timings` the center uses the production defaults. */
  constructor(private readonly timings?: Timings) {
    mkdirSync(join(this.dir, "lua"));
    writeFileSync(join(this.dir, "lua/entry.lua"), ENTRY);
    this.clusterSection = clusterSection();
  }

  center(): string {
    return this.write("center", this.centerSection());
  }

  /** `engineKeys`: more `engine:` keys, one per line without indentation (`drainTimeout: 3`). */
  engine(name: string, engineKeys: string[] = []): [string, EnginePorts] {
    const p = this.ports();
    // An engine uses its own file's center.registry timings until its center sends them.
    return [this.write(name, this.timingsSection() + this.engineSection(p, engineKeys)), p];
  }

  /** Center and engine in one config, for `dev`. */
  dev(engineKeys: string[] = []): [string, EnginePorts] {
    const p = this.ports();
    return [this.write("dev", this.centerSection() + this.engineSection(p, engineKeys)), p];
  }

  private ports(): EnginePorts {
    return { mesh: freePort(), api: freePort(), lua: freePort(), lua2: freePort() };
  }

  private centerSection(): string {
    return `center:\n  registry: { port: ${this.registry}, bind: 127.0.0.1${this.timingKeys()} }\n  apiServer: { port: ${this.centerApi}, bind: 127.0.0.1 }\n`;
  }

  private timingKeys(): string {
    const t = this.timings;
    return t ? `, heartbeat: ${t.heartbeat}, dropTimeout: ${t.dropTimeout}, doubtTimeout: ${t.doubtTimeout}` : "";
  }

  private timingsSection(): string {
    return this.timings ? `center:\n  registry: { port: ${this.registry}${this.timingKeys()} }\n` : "";
  }

  private engineSection(p: EnginePorts, engineKeys: string[] = []): string {
    return (
      `engine:\n  centerRegistry: 127.0.0.1:${this.registry}\n  meshPoint: { port: ${p.mesh}, bind: 127.0.0.1 }\n` +
      engineKeys.map((k) => `  ${k}\n`).join("") +
      `  apiServer: { port: ${p.api}, bind: 127.0.0.1 }\n` +
      `  servers:\n    - { port: ${p.lua}, bind: 127.0.0.1, entry: lua/entry.lua, byteCodeExpires: 0, options: [{ name: path, value: /chat }] }\n` +
      `    - { port: ${p.lua2}, bind: 127.0.0.1, entry: lua/entry.lua, byteCodeExpires: 0, options: [{ name: path, value: /other }] }\n`
    );
  }

  private write(name: string, body: string): string {
    const file = join(this.dir, `${name}.yaml`);
    writeFileSync(file, `logging: { filename: logs/${name}.log, level: debug }\n${this.clusterSection}${body}`);
    return file;
  }

  remove(): void {
    rmSync(this.dir, { recursive: true, force: true });
  }
}

/** The cluster: section of SECURITY's mode; the certificates are made once per test file. */
let certs: Certs | null = null;
function clusterSection(): string {
  if (SECURITY === "plain") return "";
  if (SECURITY === "secret") return `cluster: { secret: ${SECRET} }\n`;
  certs ??= makeCerts();
  return `cluster:\n  secret: ${SECRET}\n  tls: { cert: ${certs.cert}, key: ${certs.key}, ca: ${certs.ca} }\n`;
}

/**
 * A node process: `bun src/main.ts <mode> -f <config> [-p <cpus>]` in `cwd`. `cpus` defaults to the
 * environment's CONNMIX_TEST_CPUS (so `CONNMIX_TEST_CPUS=2 bun test test/cluster` runs every engine with two
 * workers), and without it to connmix's own default (all of the machine's CPUs).
 */
export class Node extends Proc {
  constructor(mode: string, config: string, cwd: string, cpus = process.env.CONNMIX_TEST_CPUS) {
    super(mode, [BUN, MAIN, mode, "-f", config, ...(cpus ? ["-p", cpus] : [])], { cwd });
  }

  /**
   * Waits for a log line matching `re` after `from`, 15 s by default: a deadline for what should come, not a
   * measure (bin/test runs files side by side, and a process start on a loaded machine takes seconds).
   */
  override waitFor(re: RegExp, ms = 15_000, from = 0): Promise<RegExpMatchArray> {
    return super.waitFor(re, ms, from);
  }

  /** Log messages (tab-separated field 4) in order. */
  messages(): string[] {
    return this.out.split("\n").map((l) => l.split("\t")[3]).filter((m): m is string => m !== undefined);
  }
}
