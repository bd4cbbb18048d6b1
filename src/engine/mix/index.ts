// Every mix.* family the engine installs in its Lua servers' VMs (plus websocketEvents or socketEvents, by
// protocol). The VM installs each after the families it `uses`, so the order of this list does not matter.
import type { LuaFamily } from "../../lua/family";
import type { EngineHost } from "../host";
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

export const engineFamilies: LuaFamily<EngineHost>[] = [logging, json, codec, connection, entry, mesh, queue, server, http, redis];
