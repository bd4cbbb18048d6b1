export * from "./schema.ts";
export { ConfigError, loadConfig, parseConfig, readConfigText, type LoadOptions } from "./load.ts";
export {
  applyConfigChange,
  onConfigChange,
  watchConfig,
  type ConfigListener,
  type ConfigWatcher,
  type WatchOptions,
} from "./watch.ts";
