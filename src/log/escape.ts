// Values that come from the network (a peer's node id or address, a refusal text, a header) go into log lines
// through escapeText: control characters cannot start a forged line or hide text, and one value cannot
// make a line huge.

/** Longest value kept whole in a log line. */
export const LOG_VALUE_MAX = 200;

const UNSAFE = /[\x00-\x1f\x7f-\x9f\u2028\u2029]/g;
const escapeChar = (c: string): string => {
  const code = c.charCodeAt(0);
  if (c === "\n") return "\\n";
  if (c === "\r") return "\\r";
  if (c === "\t") return "\\t";
  return code < 0x100 ? `\\x${code.toString(16).padStart(2, "0")}` : `\\u${code.toString(16)}`;
};

/** `s` with control characters written as escapes (\n, \x00, \u2028) and cut to `max` characters. */
export function escapeText(s: string, max = LOG_VALUE_MAX): string {
  const cut = s.length > max ? `${s.slice(0, max)}…(${s.length} chars)` : s;
  return cut.replace(UNSAFE, escapeChar);
}
