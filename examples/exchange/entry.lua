-- Exchange market data. Clients subscribe to public streams by name, and to their own account streams
-- after logging in with a token. Internally every stream is the channel "ex:" .. name, so a client can
-- only reach the channels this script maps, never arbitrary ones.
--   {"op":"subscribe","args":["btcusdt@depth","ethusdt@ticker"]}
--     public:  <symbol>@depth | @trades | @ticker | @kline | @markprice
--   {"op":"auth","token":"10001.<signature>"}      → {"op":"auth","status":"success","uid":"10001"}
--   {"op":"subscribe","args":["@balance","10001@order"]}
--     private: [<uid>]@balance | @order | @position | @account — own uid only, after auth
--   {"op":"unsubscribe","args":[...]}
--   {"op":"ping"}                                   → {"op":"pong"}
-- Replies: {"op":...,"status":"success","args":[resolved names]} or {"op":...,"status":"error","msg":...}.
-- The publisher sends {"stream":"btcusdt@ticker","data":{...}} to channel ex:btcusdt@ticker.
--
-- A token is "<uid>.<md5(uid .. ':' .. secret)>", the secret being the server option auth_secret;
-- a real deployment would check a JWT or ask its account service (see mix.http.request).

local PUBLIC = { depth = true, trades = true, ticker = true, kline = true, markprice = true }
local PRIVATE = { balance = true, order = true, position = true, account = true }

local function send(conn, tb)
  conn:send(mix.json_encode(tb))
end

local function fail(conn, op, msg)
  send(conn, { op = op, status = "error", msg = msg })
end

-- A stream name → its channel; nil and a reason when it is unknown or not this client's.
local function channel_of(conn, name)
  if type(name) ~= "string" then return nil, "stream names are strings" end
  local owner, kind = string.match(name, "^(%w*)@(%a+)$")
  if not owner then return nil, "bad stream: " .. name end
  if PUBLIC[kind] and owner ~= "" then return "ex:" .. string.lower(owner) .. "@" .. kind end
  if PRIVATE[kind] then
    local uid = conn:context_value("uid")
    if not uid then return nil, name .. " needs auth" end
    if owner ~= "" and owner ~= uid then return nil, name .. " is not yours" end
    return "ex:" .. uid .. "@" .. kind
  end
  return nil, "unknown stream: " .. name
end

-- subscribe / unsubscribe: all names are checked first, so a request either applies whole or not at all.
local function change(conn, op, args)
  if type(args) ~= "table" or #args == 0 then return fail(conn, op, "args: a list of stream names") end
  local channels, names = {}, {}
  for i, name in ipairs(args) do
    local ch, err = channel_of(conn, name)
    if not ch then return fail(conn, op, err) end
    channels[i] = ch
    names[i] = string.sub(ch, 4) -- without "ex:"
  end
  local err = conn[op](conn, unpack(channels))
  if err then return fail(conn, op, err) end
  send(conn, { op = op, status = "success", args = names })
end

local function auth(conn, token)
  if type(token) ~= "string" then return fail(conn, "auth", "token missing") end
  local secret = mix.server.option("auth_secret")
  if not secret or secret == "" then return fail(conn, "auth", "auth_secret is not configured") end
  local uid, sig = string.match(token, "^(%d+)%.(%x+)$")
  if not uid or sig ~= mix.md5(uid .. ":" .. secret) then return fail(conn, "auth", "invalid token") end
  if conn:context_value("uid") and conn:context_value("uid") ~= uid then
    return fail(conn, "auth", "already logged in as " .. conn:context_value("uid"))
  end
  conn:set_context_value("uid", uid)
  send(conn, { op = "auth", status = "success", uid = uid })
end

function on_handshake(client_id, headers, server)
end

function on_message(msg)
  local conn = mix.websocket()
  if msg.type ~= "text" then return fail(conn, nil, "text frames only") end
  local req = mix.json_decode(msg.data)
  if type(req) ~= "table" then return fail(conn, nil, "invalid json") end
  if req.op == "subscribe" or req.op == "unsubscribe" then return change(conn, req.op, req.args) end
  if req.op == "auth" then return auth(conn, req.token) end
  if req.op == "ping" then return send(conn, { op = "pong" }) end
  fail(conn, req.op, "unknown op: " .. tostring(req.op))
end

function on_close(client_id, err)
end
