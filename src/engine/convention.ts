// Which callback convention an entry script is written for (spec §4.2):
//   1.0.3: on_connect(client_id, conn), on_close(client_id, err, conn), on_handshake(client_id, headers, server, conn)
//   1.0.1: on_connect(conn),            on_close(err, conn),            on_handshake(headers, conn)
// The other callbacks get the same arguments in both. `auto` reads the parameter names of those three
// callbacks from their bytecode (string.dump keeps them): see docs/lua-api.md for the rule.
import type { ConventionSetting } from "../config/schema";
import type { LuaVM } from "../lua/vm";
import { CALLBACK_DUMPS, SET_CONVENTION } from "./mix/contract";

export type Convention = Exclude<ConventionSetting, "auto">;

const ID_NAME = /^(client_?id|clientid|cid|id)$/i;

/**
 * The parameter names of the main function of a Lua 5.1 string.dump (lundump.c layout): parameters are the
 * first `numparams` local variables of its debug information.
 */
export function paramNames(dump: Uint8Array): string[] {
  const v = new DataView(dump.buffer, dump.byteOffset, dump.byteLength);
  if (v.getUint32(0) !== 0x1b4c7561 || dump[4] !== 0x51) throw new Error("not a Lua 5.1 dump");
  const little = dump[6] === 1;
  const intSize = dump[7];
  const sizeT = dump[8];
  const instrSize = dump[9];
  const numberSize = dump[10];
  let at = 12;
  const int = () => {
    const n = intSize === 8 ? Number(v.getBigInt64(at, little)) : v.getInt32(at, little);
    at += intSize;
    return n;
  };
  const string = () => {
    const n = sizeT === 8 ? Number(v.getBigUint64(at, little)) : v.getUint32(at, little);
    at += sizeT;
    const s = n > 0 ? new TextDecoder().decode(dump.subarray(at, at + n - 1)) : "";
    at += n;
    return s;
  };
  // Reads one function; returns its parameter names.
  const fn = (): string[] => {
    string(); // source
    int(); // linedefined
    int(); // lastlinedefined
    const numparams = dump[at + 1];
    at += 4; // nups, numparams, is_vararg, maxstacksize
    const code = int(); // read before `at +=`: it moves `at`
    at += code * instrSize;
    for (let k = int(); k > 0; k--) {
      const type = dump[at++];
      if (type === 1) at += 1;
      else if (type === 3) at += numberSize;
      else if (type === 4) string();
    }
    for (let p = int(); p > 0; p--) fn();
    const lines = int();
    at += lines * intSize; // line info
    const names: string[] = [];
    for (let l = int(); l > 0; l--) {
      const name = string();
      at += 2 * intSize;
      if (names.length < numparams) names.push(name);
    }
    for (let u = int(); u > 0; u--) string();
    return names;
  };
  return fn();
}

export interface Detected {
  convention: Convention;
  why: string;
  /** The callbacks suggested different conventions (why lists them). */
  disagree?: boolean;
}

/** The convention the parameter lists suggest, and why; null when they say nothing either way. */
export function detectConvention(params: Record<string, string[]>): Detected | null {
  const votes: [Convention, string][] = [];
  const shape = (name: string) => `${name}(${params[name]!.join(", ")})`;
  const connect = params.on_connect;
  if (connect?.length) {
    if (connect.length === 1 && !ID_NAME.test(connect[0]!)) votes.push(["1.0.1", shape("on_connect")]);
    else if (ID_NAME.test(connect[0]!)) votes.push(["1.0.3", shape("on_connect")]);
  }
  const close = params.on_close;
  if (close?.length) {
    if (/^err/i.test(close[0]!) || (close.length === 2 && close[1] === "conn")) votes.push(["1.0.1", shape("on_close")]);
    else if (ID_NAME.test(close[0]!)) votes.push(["1.0.3", shape("on_close")]);
  }
  const handshake = params.on_handshake;
  if (handshake?.length) {
    if (/^headers?$/i.test(handshake[0]!) || (handshake.length === 2 && handshake[1] === "conn")) votes.push(["1.0.1", shape("on_handshake")]);
    else if (ID_NAME.test(handshake[0]!)) votes.push(["1.0.3", shape("on_handshake")]);
  }
  if (votes.length === 0) return null;
  const first = votes[0]![0];
  if (votes.some(([c]) => c !== first)) {
    const list = votes.map(([c, s]) => `${s} looks ${c}`).join(", ");
    return { convention: "1.0.3", why: `callbacks disagree (${list}); set the server's convention key to choose`, disagree: true };
  }
  return { convention: first, why: votes.map(([, s]) => s).join(", ") };
}

/** Reads the entry's callbacks in `vm`, tells its Lua side the convention, and returns it with the reason. */
export function applyConvention(vm: LuaVM<unknown>, setting: ConventionSetting | undefined): Detected {
  let result: Detected;
  if (setting === "1.0.1" || setting === "1.0.3") {
    result = { convention: setting, why: "set by the server's convention key" };
  } else {
    const dumps = vm.call(CALLBACK_DUMPS);
    const params: Record<string, string[]> = {};
    if (dumps && typeof dumps === "object" && !Array.isArray(dumps) && !(dumps instanceof Uint8Array)) {
      for (const [name, dump] of Object.entries(dumps)) if (dump instanceof Uint8Array) params[name] = paramNames(dump);
    }
    result = detectConvention(params) ?? { convention: "1.0.3", why: "no on_connect, on_close or on_handshake tells, the default" };
  }
  vm.call(SET_CONVENTION, result.convention);
  return result;
}
