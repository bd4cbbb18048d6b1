// A redis-server child process without persistence, on a loopback port (Debian's redis-server package).
import type { Subprocess } from "bun";
import { waitForPort } from "./ports.ts";

export const REDIS = Bun.which("redis-server");

export class RedisProcess {
  private proc: Subprocess | null = null;
  constructor(readonly port: number, private readonly extra: string[] = []) {}

  async start(): Promise<void> {
    this.proc = Bun.spawn(
      [REDIS!, "--port", String(this.port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no", ...this.extra],
      { stdout: "ignore", stderr: "inherit" },
    );
    await waitForPort(this.port, 5000);
  }

  signal(sig: "SIGSTOP" | "SIGCONT"): void {
    this.proc?.kill(sig);
  }

  async kill(): Promise<void> {
    this.proc?.kill("SIGKILL");
    await this.proc?.exited;
    this.proc = null;
  }
}
