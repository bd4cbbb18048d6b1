// The entry-level hooks the engine calls after loading an entry: callback bytecode for the convention
// detection, the convention itself, and the script's init() (entry.lua).
import type { ApiFamily } from "../../lua/family";
import entryLua from "./entry.lua" with { type: "text" };

export const entry: ApiFamily = { name: "entry", lua: entryLua };
