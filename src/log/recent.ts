// The last log lines of this process, for the console's "recent log" (engine introspection, the center).
// A ring of at most RECENT_LINES lines, each cut at RECENT_LINE_BYTES characters, filled by the logger's
// tap (set by the node commands), so its memory is bounded whatever is logged.
export const RECENT_LINES = 200;
const RECENT_LINE_BYTES = 2000;

const ring: string[] = [];
let next = 0;

/** The logger's tap: `lines` is one or more whole lines, each ending in "\n". */
export function keepRecent(lines: string): void {
  let start = 0;
  for (let end = lines.indexOf("\n"); end >= 0; end = lines.indexOf("\n", start)) {
    const line = lines.slice(start, Math.min(end, start + RECENT_LINE_BYTES));
    start = end + 1;
    if (ring.length < RECENT_LINES) ring.push(line);
    else ring[next] = line;
    next = (next + 1) % RECENT_LINES;
  }
}

/** The kept lines, oldest first; at most `n`. */
export function recentLines(n = RECENT_LINES): string[] {
  const ordered = ring.length < RECENT_LINES ? ring.slice() : [...ring.slice(next), ...ring.slice(0, next)];
  return ordered.slice(-n);
}
