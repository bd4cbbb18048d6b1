// Values that come from the network (user names, addresses, origins, peer fields) go into log lines
// through logValue: control characters would forge or break lines, and a huge value would flood the log.

/** Characters escaped in log values: C0 controls, DEL, C1 controls, and the Unicode line/paragraph separators. */
const UNSAFE = /[\u0000-\u001f\u007f-\u009f\u2028\u2029\\]/;
const UNSAFE_ALL = new RegExp(UNSAFE.source, "g");

const NAMED: Record<string, string> = { "\n": "\\n", "\r": "\\r", "\t": "\\t", "\\": "\\\\" };

function escapeChar(c: string): string {
  const code = c.charCodeAt(0);
  return NAMED[c] ?? (code > 0xff ? `\\u${code.toString(16)}` : `\\x${code.toString(16).padStart(2, "0")}`);
}

/**
 * `value` made safe for one log line: control characters and backslashes escaped (`\n`, `\x00`, `\\`),
 * and cut after `max` characters with a note of the full length.
 */
export function logValue(value: unknown, max = 128): string {
  const s = typeof value === "string" ? value : String(value);
  const cut = s.length > max ? s.slice(0, max) : s;
  const safe = UNSAFE.test(cut) ? cut.replace(UNSAFE_ALL, escapeChar) : cut;
  return s.length > max ? `${safe}…(${s.length} characters)` : safe;
}
