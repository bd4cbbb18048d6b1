// Orderly stop on SIGINT/SIGTERM: shutdown hooks run newest first (servers registered last
// stop accepting first), each bounded in time (2 s, or its own budget), then the log is flushed and the
// process exits. The whole stop takes at most 5 s plus what the hooks with a budget of their own add.
import { log } from "./log/logger.ts";

type Hook = { name: string; fn: () => void | Promise<void>; ms: number };

const HOOK_MS = 2000;
const TOTAL_MS = 5000;

const hooks: Hook[] = [];
let stopping: Promise<never> | null = null;
let signalsHandled = false;
export type Request = "reload" | "drain";
let requested: ((what: Request, why: string) => void) | null = null;

/** What SIGUSR2 (reload: a handover to a successor) and SIGUSR1 (drain, then exit) do once the node serves (src/handover). */
export function onRequest(fn: (what: Request, why: string) => void): void {
  requested = fn;
}

// Returns a function that removes the hook (for things that stop on their own). `ms`: its budget, when
// it needs longer than HOOK_MS (it then extends the total by the difference).
export function onShutdown(name: string, fn: () => void | Promise<void>, ms = HOOK_MS): () => void {
  const hook = { name, fn, ms };
  hooks.push(hook);
  return () => {
    const i = hooks.indexOf(hook);
    if (i >= 0) hooks.splice(i, 1);
  };
}

// Runs the hooks once and exits with `code`; later calls return the same promise.
export function shutdown(reason: string, code = 0): Promise<never> {
  stopping ??= runHooks(reason, code);
  return stopping;
}

async function runHooks(reason: string, code: number): Promise<never> {
  log.info(`${reason}, shutting down`);
  const deadline = Date.now() + TOTAL_MS + hooks.reduce((extra, h) => extra + Math.max(0, h.ms - HOOK_MS), 0);
  for (const hook of hooks.toReversed()) {
    const budget = Math.min(hook.ms, deadline - Date.now());
    if (budget <= 0) {
      log.warn(`shutdown: skipped ${hook.name}, out of time`);
      continue;
    }
    let timer: ReturnType<typeof setTimeout> | undefined;
    const outcome = await Promise.race([
      Promise.resolve()
        .then(hook.fn)
        .then(
          () => "done",
          (e) => `failed: ${e instanceof Error ? e.message : String(e)}`,
        ),
      new Promise<string>((done) => (timer = setTimeout(() => done("timeout"), budget))),
    ]);
    clearTimeout(timer);
    if (outcome === "timeout") log.warn(`shutdown: ${hook.name} did not finish within ${budget} ms`);
    else if (outcome !== "done") log.error(`shutdown: ${hook.name} ${outcome}`);
  }
  log.info("stopped");
  await log.flush();
  process.exit(code);
}

// A second signal while stopping exits at once (the log is still flushed by the exit handler).
export function handleSignals(): void {
  if (signalsHandled) return;
  signalsHandled = true;
  for (const sig of ["SIGINT", "SIGTERM"] as const) {
    process.on(sig, () => {
      if (stopping) {
        log.warn(`received ${sig} again, exiting now`);
        process.exit(1);
      }
      void shutdown(`received ${sig}`);
    });
  }
  for (const [sig, what] of [["SIGUSR2", "reload"], ["SIGUSR1", "drain"]] as const) {
    process.on(sig, () => {
      if (stopping) log.warn(`received ${sig}: ${what} refused, this process is stopping`);
      else if (!requested) log.warn(`received ${sig}: ${what} refused, this process is still starting`);
      else requested(what, `received ${sig}`);
    });
  }
}
