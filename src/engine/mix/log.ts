// mix.log (to the engine log, with the Lua caller) and print (to stdout).
import type { LuaFamily } from "../../lua/family";
import { log, type LogLevel as Level } from "../../log/logger";
import { toString } from "../../lua/stack";
import { lua } from "../../../native/lua";
import logLua from "./log.lua" with { type: "text" };

export const logging: LuaFamily = {
  name: "log",
  lua: logLua,
  functions: {
    log_enabled(L) {
      lua.lua_pushboolean(L, log.enabled(toString(L, 1) as Level) ? 1 : 0);
      return 1;
    },
    log(L) {
      log.write(toString(L, 1) as Level, toString(L, 2) ?? "", toString(L, 3) ?? "?");
      return 0;
    },
    print(L) {
      process.stdout.write((toString(L, 1) ?? "") + "\n");
      return 0;
    },
  },
};
