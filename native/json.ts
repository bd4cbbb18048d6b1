// mix.json_encode, mix.json_decode and mix.null as C functions (json.c, which includes json-encode.c and
// json-decode.c), loaded by compile.ts. JS never calls them: their addresses are registered in Lua as
// lua_CFunctions (a family's `native` functions), so a call from Lua stays in C.
import { loadC } from "./compile";
import { functionAddress } from "./ffi";

const { symbols } = loadC({
  library: "json",
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
