// mix.json_encode, mix.json_decode and mix.null as C functions (json.c, which includes json-encode.c and
// json-decode.c), compiled with bun:ffi's built-in TinyCC. JS never calls them: their addresses are
// registered in Lua as lua_CFunctions (a family's `native` functions), so a call from Lua stays in C.
import { cc } from "bun:ffi";
import jsonSource from "./json.c" with { type: "file" };
import encodeSource from "./json-encode.c" with { type: "file" };
import decodeSource from "./json-decode.c" with { type: "file" };
import { functionAddress } from "./ffi";
import { loadLuaLibraries, materialize } from "./libs";

loadLuaLibraries(); // the Lua API must already be visible globally when TinyCC links json.c

materialize(encodeSource, "json-encode.c");
materialize(decodeSource, "json-decode.c");
const { symbols } = cc({
  source: materialize(jsonSource, "json.c"),
  symbols: {
    json_encode: { args: ["ptr"], returns: "i32" },
    json_decode: { args: ["ptr"], returns: "i32" },
    json_null: { args: ["ptr"], returns: "i32" },
  } as const,
});

/** The lua_CFunction addresses: (value) -> string | nil, err; (string) -> value | nil, err; () -> mix.null. */
export const jsonFunctions = {
  json_encode: functionAddress(symbols.json_encode),
  json_decode: functionAddress(symbols.json_decode),
  json_null: functionAddress(symbols.json_null),
};
