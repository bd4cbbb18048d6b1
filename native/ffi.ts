// What bun:ffi does at run time that bun-types does not declare, typed once here instead of cast at each use.
import type { Pointer } from "bun:ffi";

/** The C address of a function bound by `dlopen` or `cc`: bun:ffi sets `.ptr` on each, bun-types omits it. */
export function functionAddress(fn: object): Pointer {
  const address = (fn as { ptr?: Pointer }).ptr;
  if (!address) throw new Error("bun:ffi gave no address for this function");
  return address;
}

/**
 * Bound symbols whose `ptr` results are typed as bun:ffi returns them: a number, or null for NULL.
 * bun-types also allows a bigint there, which bun:ffi never returns for a pointer.
 */
export type NumberPointers<Symbols> = {
  [K in keyof Symbols]: Symbols[K] extends (...args: infer A) => infer R
    ? (...args: A) => Pointer | bigint | null extends R ? Exclude<R, bigint> : R
    : Symbols[K];
};
