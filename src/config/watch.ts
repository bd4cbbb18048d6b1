// Hot reload of the config file. A bad edit is logged and ignored (the last good config stays); a good one
// is handed to the process's HotConfig (hot.ts), whose followers apply it. Each edited key is logged with
// what became of it: applied live, needs a restart, or has no effect.
import { watch, statSync, type FSWatcher } from "node:fs";
import { basename, dirname } from "node:path";
import { log } from "../log/logger.ts";
import { parseConfig, readConfigText } from "./load.ts";
import type { Config, Mode } from "./schema.ts";
import type { HotConfig } from "./hot.ts";

export interface WatchOptions {
  mode?: Mode; // passed to parseConfig, as at start-up
  pollMs?: number; // stat poll, for file systems where fs.watch misses edits
  debounceMs?: number; // editors write in several steps
}

export interface ConfigWatcher {
  close(): void;
}

function changedKeys(a: unknown, b: unknown, path: string, out: string[]): string[] {
  if (a && b && typeof a === "object" && typeof b === "object" && Array.isArray(a) === Array.isArray(b)) {
    const ra = a as Record<string, unknown>;
    const rb = b as Record<string, unknown>;
    for (const k of new Set([...Object.keys(ra), ...Object.keys(rb)])) {
      changedKeys(ra[k], rb[k], Array.isArray(a) ? `${path}[${k}]` : path ? `${path}.${k}` : k, out);
    }
  } else if (a !== b) {
    out.push(path);
  }
  return out;
}

export function watchConfig(
  path: string,
  current: Config,
  hot: HotConfig,
  opts: WatchOptions = {},
): ConfigWatcher {
  let good = current;
  let lastText: string | undefined = tryRead(path);
  let lastStat = statKey(path);
  let timer: ReturnType<typeof setTimeout> | null = null;

  const reload = () => {
    timer = null;
    let text: string;
    try {
      text = readConfigText(path);
    } catch (e) {
      if (lastText !== undefined) log.error((e as Error).message);
      lastText = undefined;
      return;
    }
    if (text === lastText) return;
    lastText = text;
    let next: Config;
    try {
      next = parseConfig(text, path, { mode: opts.mode });
    } catch (e) {
      log.error(`${(e as Error).message}; keeping the previous configuration`);
      return;
    }
    const prev = good;
    good = next;
    log.setLevel(next.logging.level); // before this reload's own lines
    log.info(`config ${path} reloaded`);
    hot.apply(next, prev);
    for (const key of changedKeys(prev, next, "", [])) {
      const c = hot.classify(key);
      if (c.kind === "hot") log.info(`config ${path}: ${key} ${c.how}`);
      else if (c.kind === "inert") log.info(`config ${path}: ${key} has no effect (${c.why})`);
      else log.warn(`config ${path}: ${key} changed but needs a restart to apply; the running value stays`);
    }
  };
  const schedule = () => {
    if (timer) clearTimeout(timer);
    timer = setTimeout(reload, opts.debounceMs ?? 200);
    timer.unref();
  };

  // Watch the directory, not the file: editors replace the file, which ends a file watch.
  let watcher: FSWatcher | null = null;
  try {
    watcher = watch(dirname(path), (_event, name) => {
      if (!name || name === basename(path)) schedule();
    });
    watcher.unref();
  } catch (e) {
    log.warn(`cannot watch ${path} (${(e as Error).message}); polling only`);
  }
  const poll = setInterval(() => {
    const key = statKey(path);
    if (key !== lastStat) schedule();
    lastStat = key;
  }, opts.pollMs ?? 2000);
  poll.unref();

  return {
    close() {
      watcher?.close();
      clearInterval(poll);
      if (timer) clearTimeout(timer);
    },
  };
}

function tryRead(path: string): string | undefined {
  try {
    return readConfigText(path);
  } catch {
    return undefined;
  }
}

function statKey(path: string): string {
  try {
    const st = statSync(path);
    return `${st.ino}:${st.size}:${st.mtimeMs}`;
  } catch {
    return "missing";
  }
}
