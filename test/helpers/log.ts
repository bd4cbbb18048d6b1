import { readFileSync } from "node:fs";
import { join } from "node:path";
import { log } from "../../src/log/logger.ts";
import { tempDir } from "./files.ts";

/** Sends this process's log (every level) to a temp file instead of stdout; the returned function reads it. */
export function captureLog(): () => string {
  const file = join(tempDir("log"), "test.log");
  log.configure({ filename: file, stdout: false, level: "debug", maxFiles: 1 });
  return () => {
    void log.flush(); // writes synchronously
    try {
      return readFileSync(file, "utf8");
    } catch {
      return "";
    }
  };
}
