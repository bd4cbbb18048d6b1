// Child processes for tests: connmix (`bun src/main.ts`, bin/connmix, the built executable), nginx, the
// examples' programs. Their stdout and stderr are collected; waitFor watches the output for a log line.
import type { Subprocess } from "bun";
import { join } from "node:path";
import { onCleanup } from "./files.ts";

export const ROOT = join(import.meta.dir, "..", "..");
export const BUN = join(ROOT, "node_modules/.bin/bun");
export const MAIN = join(ROOT, "src/main.ts");

const escape = (text: string) => text.replace(/[.*+?^${}()|[\]\\]/g, "\\$&");

/** A child process whose output is collected; cleanupAll stops it. */
export class Proc {
  /** stdout and stderr as they arrive. */
  out = "";
  /** stdout alone. */
  stdout = "";
  readonly proc: Subprocess<"ignore", "pipe", "pipe">;
  private readonly drained: Promise<unknown>;

  constructor(readonly name: string, cmd: string[], opts: { cwd?: string; env?: Record<string, string> } = {}) {
    this.proc = Bun.spawn(cmd, {
      cwd: opts.cwd ?? ROOT,
      env: { ...process.env, ...opts.env },
      stdin: "ignore",
      stdout: "pipe",
      stderr: "pipe",
    });
    this.drained = Promise.all([this.drain(this.proc.stdout, true), this.drain(this.proc.stderr, false)]);
    onCleanup(() => this.stop());
  }

  private async drain(stream: ReadableStream<Uint8Array>, isStdout: boolean): Promise<void> {
    const decoder = new TextDecoder();
    for await (const chunk of stream) {
      const text = decoder.decode(chunk, { stream: true });
      this.out += text;
      if (isStdout) this.stdout += text;
    }
  }

  get pid(): number {
    return this.proc.pid;
  }

  get exitCode(): number | null {
    return this.proc.exitCode;
  }

  private get exited(): boolean {
    return this.proc.exitCode !== null || this.proc.signalCode !== null;
  }

  /** Where the output ends now; pass it to waitFor to look only at what comes later. */
  mark(): number {
    return this.out.length;
  }

  /**
   * Waits until the output after `from` contains `text` (or matches it) and returns the match; fails at
   * once when the process exits without having written it.
   */
  async waitFor(text: string | RegExp, ms = 15_000, from = 0): Promise<RegExpMatchArray> {
    const re = typeof text === "string" ? new RegExp(escape(text)) : text;
    const end = Date.now() + ms;
    for (;;) {
      const exited = this.exited;
      if (exited) await Promise.race([this.drained, Bun.sleep(200)]); // the last output
      const m = this.out.slice(from).match(re);
      if (m) return m;
      if (exited || Date.now() > end) {
        const why = exited ? `exited with ${this.proc.exitCode ?? this.proc.signalCode}` : `not within ${ms} ms`;
        throw new Error(`${this.name}: no ${re} (${why}); output:\n${this.out.slice(from).slice(-3000)}`);
      }
      await Bun.sleep(20);
    }
  }

  /** Sends `signal` and waits for the exit (SIGKILL after `ms`, then an error); returns the exit code. */
  async stop(signal: NodeJS.Signals = "SIGTERM", ms = 8000): Promise<number> {
    if (!this.exited) this.proc.kill(signal);
    const code = await Promise.race([this.proc.exited, Bun.sleep(ms).then(() => null)]);
    if (code !== null) return code;
    this.proc.kill("SIGKILL");
    await this.proc.exited;
    throw new Error(`${this.name} did not stop within ${ms} ms of ${signal}`);
  }
}

/** Runs `cmd` to the end (killed after `timeoutMs`): exit code, stdout and stderr. */
export function runSync(cmd: string[], cwd = ROOT, timeoutMs = 30_000): { code: number | null; out: string; err: string } {
  const r = Bun.spawnSync(cmd, { cwd, stdout: "pipe", stderr: "pipe", timeout: timeoutMs, env: { ...process.env } });
  return { code: r.exitCode, out: r.stdout.toString(), err: r.stderr.toString() };
}
