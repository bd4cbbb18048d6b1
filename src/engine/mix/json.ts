// mix.json_encode / mix.json_decode / mix.null: C functions (native/json.c, docs/lua-codec.md "JSON"), so a
// call from Lua never enters JS; json.lua adds mix.json_object and the object marker they read.
import { jsonFunctions } from "../../../native/json";
import type { LuaFamily } from "../../lua/family";
import jsonLua from "./json.lua" with { type: "text" };

export const json: LuaFamily = { name: "json", lua: jsonLua, native: jsonFunctions };
