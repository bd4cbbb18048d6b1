// The text exposition format's escaping and number rules, shared by every metric type.

export const CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8";

const escapeHelp = (s: string) => s.replace(/\\/g, "\\\\").replace(/\n/g, "\\n");
const escapeValue = (s: string) => s.replace(/\\/g, "\\\\").replace(/"/g, '\\"').replace(/\n/g, "\\n");

/** `{a="x",b="y"}` for the given names and values, or "" when there are none. */
export function labelText(names: readonly string[], values: readonly string[]): string {
  if (names.length === 0) return "";
  let s = "{";
  for (let i = 0; i < names.length; i++) s += `${i ? "," : ""}${names[i]}="${escapeValue(values[i] ?? "")}"`;
  return s + "}";
}

/** Go-style number text: NaN, +Inf, -Inf, otherwise the shortest round-tripping decimal. */
export function formatValue(v: number): string {
  if (Number.isNaN(v)) return "NaN";
  if (v === Infinity) return "+Inf";
  if (v === -Infinity) return "-Inf";
  return String(v);
}

export function header(out: string[], name: string, help: string, type: string): void {
  out.push(`# HELP ${name} ${escapeHelp(help)}`, `# TYPE ${name} ${type}`);
}
