export * from "./schema.ts";
export { ConfigError, loadConfig, parseConfig, readConfigText, type LoadOptions } from "./load.ts";
export { watchConfig, type ConfigWatcher, type WatchOptions } from "./watch.ts";
export { HotConfig, type ConfigListener, type HotKey } from "./hot.ts";
