// The entry-level hooks the engine calls after loading an entry: callback bytecode for the convention
// detection, the convention itself (exported to the event families as `legacy`), and the script's init().
import type { LuaFamily } from "../../lua/family";
import { CALLBACK_DUMPS, INIT, SET_CONVENTION } from "./contract";
import entryLua from "./entry.lua" with { type: "text" };

export const entry: LuaFamily = { name: "entry", lua: entryLua, uses: ["server"], hooks: [CALLBACK_DUMPS, INIT, SET_CONVENTION] };
