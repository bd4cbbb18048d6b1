#!/usr/bin/env bun
import { runCli } from "./cli/index.ts";
import { WORKER_ARG } from "./workers/messages.ts";

const argv = process.argv.slice(2);
// A multi-core engine starts its workers as this same program (src/workers, src/app/worker.ts).
if (argv[0] === WORKER_ARG) (await import("./app/worker.ts")).runWorker();
else await runCli(argv);
