// Files a node reads again when they change (certificates, a mounted secret): a stat poll, which sees a
// Kubernetes Secret update (a symlink swap) as well as an edit in place.
import { statSync } from "node:fs";

function stampOf(files: readonly string[]): string {
  return files
    .map((f) => {
      try {
        const st = statSync(f);
        return `${st.ino}:${st.size}:${st.mtimeMs}`;
      } catch {
        return "missing";
      }
    })
    .join("|");
}

/**
 * Calls `changed` when one of `files` changed, checked every `ms`; `changed` returns false when the files
 * could not be used yet (half written), so the next check tries again. Returns the way to stop.
 */
export function watchFiles(files: readonly string[], ms: number, changed: () => boolean): () => void {
  let stamp = stampOf(files);
  const timer = setInterval(() => {
    const now = stampOf(files);
    if (now !== stamp && changed()) stamp = now;
  }, ms);
  timer.unref();
  return () => clearInterval(timer);
}
