// Comparing what a script produced with what a case expects. `{{alice}}` in an expectation stands for the
// client id of client alice (ids are made at run time); alone as a JSON value it matches the id as a
// number or as a decimal string.
import type { Frame } from "./memory-server";

const PLACEHOLDER = /\{\{(\w+)\}\}/g;
const ALONE = /^\{\{(\w+)\}\}$/;

export function substitute(text: string, ids: Record<string, number>): string {
  return text.replace(PLACEHOLDER, (whole, name: string) => (name in ids ? String(ids[name]) : whole));
}

/** Deep equality of an expected YAML value and an actual JSON/Lua value; objects must have the same keys. */
export function matches(expected: unknown, actual: unknown, ids: Record<string, number>): boolean {
  if (typeof expected === "string") {
    const alone = ALONE.exec(expected);
    if (alone && alone[1]! in ids) return actual === ids[alone[1]!] || actual === String(ids[alone[1]!]);
    return actual === substitute(expected, ids);
  }
  if (expected === null || typeof expected !== "object") return expected === actual;
  if (Array.isArray(expected)) {
    // An empty Lua table reads as an empty list; {} and [] are the same thing to a script.
    if (expected.length === 0) return isEmpty(actual);
    return Array.isArray(actual) && actual.length === expected.length && expected.every((e, i) => matches(e, actual[i], ids));
  }
  if (!actual || typeof actual !== "object") return false;
  const keys = Object.keys(expected);
  if (keys.length === 0) return isEmpty(actual);
  if (Array.isArray(actual)) return false;
  const a = actual as Record<string, unknown>;
  return keys.length === Object.keys(a).length && keys.every((k) => k in a && matches((expected as Record<string, unknown>)[k], a[k], ids));
}

const isEmpty = (v: unknown) => !!v && typeof v === "object" && Object.keys(v).length === 0;

/** JSON text as a value; text that is not JSON stays a string (so it fails a comparison readably). */
export function parseJson(text: string): unknown {
  try {
    return JSON.parse(text);
  } catch {
    return text;
  }
}

/** A frame for a report: text as it is (JSON-quoted when it has control characters), binary as base64. */
export function describe(frame: Frame): string {
  if (frame.type === "text") return /[\x00-\x1f]/.test(frame.data as string) ? JSON.stringify(frame.data) : `'${frame.data}'`;
  return `binary ${Buffer.from(frame.data as Uint8Array).toString("base64")}`;
}
