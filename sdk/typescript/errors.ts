// The SDK's one error type: the engine's error code and message (docs/api.md), or code 0 for what happened
// on the way (no engine connected, the connection closed, no answer in time).
import { CODE, type ErrorCode } from "../../src/api/protocol.ts";

export { CODE, type ErrorCode };

/** Code of errors raised by the SDK itself rather than by an engine. */
export const TRANSPORT = 0;

export class ConnmixError extends Error {
  constructor(readonly code: ErrorCode | typeof TRANSPORT, message: string) {
    super(message);
    this.name = "ConnmixError";
  }
}
