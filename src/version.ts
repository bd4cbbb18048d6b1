// The version line the banner, the console and /version-style views show.
import pkg from "../package.json" with { type: "json" };

export function versionLine(): string {
  return `connmix${pkg.version}, bun${Bun.version}, lua5.1+bitop, ${process.platform}, ${process.arch}`;
}
