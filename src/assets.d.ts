// Files that are not TypeScript, imported with an attribute that tells Bun what the default export is.

/** A Lua source imported `with { type: "text" }`: the file's contents. */
declare module "*.lua" {
  const source: string;
  export default source;
}

/**
 * A file imported `with { type: "file" }` (native/runtime.c, the Lua shared libraries in native/libs.ts):
 * its path, which is the file itself from a checkout and a `/$bunfs/` path inside a compiled binary.
 */
declare module "*.c" {
  const path: string;
  export default path;
}
declare module "*.so.0" {
  const path: string;
  export default path;
}

