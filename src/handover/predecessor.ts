// The successor's side of a handover (the old process's side is successor.ts): a process started by its
// predecessor finds out from the environment, and talks to it over the IPC channel it was started with.
import type { NodeState } from "../center/registry";

/** Set by the predecessor for the successor it starts: `{"pid":N,"node":"<engine node id>"|null}`. */
export const HANDOVER_ENV = "CONNMIX_HANDOVER";

export type FromSuccessor =
  /** It serves (registered, listening): the predecessor drains. `node`: its engine's node id. */
  | { t: "ready"; node: string | null }
  /** It could not start: why (it exits). */
  | { t: "failed"; message: string };

/** The predecessor's center table, sent once the successor is ready; the successor's center then listens. */
export type ToSuccessor = { t: "center"; nodes: NodeState[] };

export interface Predecessor {
  pid: number;
  /** Its engine's node id: the successor's registration names it, so the center keeps both. */
  node: string | null;
}

function read(): Predecessor | null {
  const raw = process.env[HANDOVER_ENV];
  delete process.env[HANDOVER_ENV]; // not for the workers this process starts
  if (!raw || !process.send) return null;
  try {
    const p = JSON.parse(raw) as Predecessor;
    return Number.isInteger(p.pid) ? { pid: p.pid, node: typeof p.node === "string" ? p.node : null } : null;
  } catch {
    return null;
  }
}

export const predecessor = read();

/** Tells the predecessor (no-op in a process started by hand; a predecessor that is gone is ignored). */
export function tellPredecessor(msg: FromSuccessor): void {
  if (!predecessor) return;
  try {
    process.send?.(msg);
  } catch {
    // it exited: nothing to tell
  }
}

/** The predecessor's center table; null when none came within `ms` (then the center starts empty, as after a restart). */
export function predecessorCenter(ms: number): Promise<NodeState[] | null> {
  return new Promise((resolve) => {
    const timer = setTimeout(() => done(null), ms);
    const onMessage = (msg: ToSuccessor) => {
      if (msg?.t === "center" && Array.isArray(msg.nodes)) done(msg.nodes);
    };
    const done = (nodes: NodeState[] | null) => {
      clearTimeout(timer);
      process.off("message", onMessage);
      resolve(nodes);
    };
    process.on("message", onMessage);
  });
}
