// A reader for deploy/Dockerfile, so the tests check the file itself: stages with their instructions
// (continuation lines joined, comments dropped).
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { ROOT } from "../helpers/process.ts";

export interface Instruction {
  op: string; // upper case: FROM, RUN, COPY, ...
  args: string;
  line: number;
}

export interface Stage {
  from: string;
  name: string | null;
  steps: Instruction[];
}

export const DOCKERFILE = join(ROOT, "deploy/Dockerfile");

export function readDockerfile(path = DOCKERFILE): Stage[] {
  const stages: Stage[] = [];
  const lines = readFileSync(path, "utf8").split("\n");
  for (let i = 0; i < lines.length; i++) {
    const start = i + 1;
    let text = lines[i]!.trim();
    if (text === "" || text.startsWith("#")) continue;
    while (text.endsWith("\\") && i + 1 < lines.length) text = `${text.slice(0, -1).trimEnd()} ${lines[++i]!.trim()}`;
    const [, op, args] = /^(\S+)\s+(.*)$/.exec(text) ?? [];
    if (!op) throw new Error(`${path}:${start}: cannot read ${JSON.stringify(text)}`);
    const ins = { op: op.toUpperCase(), args: args!, line: start };
    if (ins.op === "FROM") {
      const [, from, name] = /^(\S+)(?:\s+AS\s+(\S+))?$/i.exec(ins.args) ?? [];
      stages.push({ from: from!, name: name ?? null, steps: [] });
    } else {
      if (!stages.length) throw new Error(`${path}:${start}: ${ins.op} before FROM`);
      stages.at(-1)!.steps.push(ins);
    }
  }
  return stages;
}

/** The JSON array form of CMD/ENTRYPOINT. */
export const execForm = (ins: Instruction | undefined): string[] => (ins ? JSON.parse(ins.args) : []);

export const last = (stage: Stage, op: string) => stage.steps.filter((s) => s.op === op).at(-1);
