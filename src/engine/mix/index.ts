// Every Lua API family, in installation order (later families may use what earlier ones put in P).
import type { ApiFamily } from "../../lua/family";
import { logging } from "./log";
import { json } from "./json";
import { codec } from "./codec";
import { connection } from "./connection";
import { entry } from "./entry";
import { mesh } from "./mesh";
import { queue } from "./queue";
import { server } from "./server";
import { http } from "./http";
import { redis } from "./redis";

export const engineFamilies: ApiFamily[] = [logging, json, codec, connection, entry, mesh, queue, server, http, redis];
