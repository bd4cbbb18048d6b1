-- User message centre: a client proves who it is with a token, then receives what backends push to it.
--   {"op":"auth","token":"..."}           the auth backend (server option auth_url) maps the token to a uid
--   {"op":"subscribe","channel":"@user"}  subscribes this connection to user:<uid>
--   {"op":"ping"}                         keeps the connection alive (readTimeout)
-- Every request is answered with {"op":...,"status":"success"} or {"op":...,"status":"error","msg":...}.
-- Backends push to a user by publishing to channel user:<uid> (POST /v1/mesh/publish on any engine).

local AUTH_URL = mix.server.option("auth_url")
local CHANNELS = { ["@user"] = "user:" } -- channel name in requests -> prefix of the real channel

local function reply(conn, op, err, extra)
  local out = extra or {}
  out.op, out.status, out.msg = op, err and "error" or "success", err
  conn:send(mix.json_encode(out))
end

-- Asks the auth backend for the uid of a token: uid, or nil and a reason for the client.
local function lookup(token)
  local resp, err = mix.http.request("POST", AUTH_URL, {
    body = mix.json_encode({ token = token }),
    headers = { ["Content-Type"] = "application/json" },
    timeout = "3s",
  })
  if not resp then
    mix.log(mix.WARN, "auth backend " .. AUTH_URL .. ": " .. err)
    return nil, "auth service unavailable"
  end
  if resp.status_code == 401 then return nil, "invalid token" end
  local body = resp.status_code == 200 and mix.json_decode(resp.body)
  local kind = type(body) == "table" and type(body.uid)
  if kind ~= "number" and kind ~= "string" then
    mix.log(mix.WARN, "auth backend answered " .. resp.status_code .. ": " .. resp.body)
    return nil, "auth service unavailable"
  end
  return body.uid
end

local function auth(conn, req)
  if type(req.token) ~= "string" or req.token == "" then return reply(conn, "auth", "token required") end
  local uid, err = lookup(req.token)
  if not uid then return reply(conn, "auth", err) end
  -- Signing in again (maybe as someone else) drops the previous user's channels.
  for ch in pairs(conn:context_value("channels") or {}) do conn:unsubscribe(ch) end
  conn:set_context_value("channels", {})
  conn:set_context_value("uid", uid)
  reply(conn, "auth", nil, { uid = uid })
end

local function subscribe(conn, req)
  local uid = conn:context_value("uid")
  if not uid then return reply(conn, "subscribe", "auth first") end
  local prefix = CHANNELS[req.channel]
  if not prefix then return reply(conn, "subscribe", "unknown channel: " .. tostring(req.channel)) end
  local channel = prefix .. uid
  local err = conn:subscribe(channel)
  if err then return reply(conn, "subscribe", err) end
  conn:context_value("channels")[channel] = true
  reply(conn, "subscribe", nil, { channel = req.channel })
end

function on_message(msg, conn)
  if msg.type ~= "text" then return reply(conn, nil, "text frames only") end
  local req = mix.json_decode(msg.data)
  if type(req) ~= "table" then return reply(conn, nil, "invalid json") end
  if req.op == "auth" then return auth(conn, req) end
  if req.op == "subscribe" then return subscribe(conn, req) end
  if req.op == "ping" then return reply(conn, "ping") end
  reply(conn, req.op, "unknown op: " .. tostring(req.op))
end
