// What every cluster link of this process authenticates with: the keys of cluster.secret (applied live when
// the config changes: new links use them) and cluster.tls. Built once per process (src/app/modes.ts) and handed
// to the registry, its client and the mesh.
import type { Config } from "../config/schema";
import type { HotConfig } from "../config/hot";
import { log } from "../log/logger";
import { checkSecrets, readSecretFile } from "../config/cluster";
import { Keys } from "./auth";
import { watchFiles } from "./file-watch";
import { TlsMaterial } from "./tls";

/** How often cluster.secretFile and the cluster.tls files are checked for changes. */
const RELOAD_MS = 10_000;

export interface ClusterSecurity {
  keys: Keys;
  tls: TlsMaterial | null;
  stop(): void;
}

/** `hot`: the process's hot config, which cluster.secret edits come from. */
export function clusterSecurity(config: Config, hot: HotConfig): ClusterSecurity {
  const keys = new Keys(config.cluster.secret);
  let tls: TlsMaterial | null = null;
  if (config.cluster.tls) {
    try {
      tls = new TlsMaterial(config.cluster.tls, RELOAD_MS);
    } catch (e) {
      throw new Error(`cluster.tls: ${(e as Error).message}`);
    }
  }
  const unfollow = hot.follow(["cluster.secret[]", "cluster.secretFile"], (next) => keys.set(next.cluster.secret));
  const file = config.cluster.secretFile;
  const unwatch = file ? watchFiles([file], RELOAD_MS, () => reloadSecretFile(file, keys)) : () => {};
  return {
    keys,
    tls,
    stop() {
      unfollow();
      unwatch();
      tls?.stop();
    },
  };
}

/** A changed cluster.secretFile (a rotated Kubernetes Secret): new links use its secrets. */
function reloadSecretFile(file: string, keys: Keys): boolean {
  try {
    const fail = (path: string, reason: string): never => {
      throw new Error(`${path} ${reason}`);
    };
    const secrets = checkSecrets(readSecretFile(file), (i) => `line ${i + 1}`, { fail });
    if (!secrets.length) throw new Error("no secret in it");
    keys.set(secrets);
  } catch (e) {
    log.warn(`cluster.secretFile ${file}: ${(e as Error).message}; keeping the secrets in use`);
    return false;
  }
  log.info(`cluster.secretFile ${file} reloaded; new links use its secrets`);
  return true;
}

/** The start-up WARN of protected mode, once per port that is in it. */
export function warnIfProtected(sec: ClusterSecurity, what: string): void {
  if (!sec.keys.open) return;
  log.warn(
    `no cluster.secret is set: the ${what} takes connections from loopback addresses only (protected mode). ` +
      "To let other hosts join, set cluster.secret to the same secret on every node (docs/security.md)",
  );
}
