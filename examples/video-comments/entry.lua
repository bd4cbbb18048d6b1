-- Live-video comments ("barrage"). Viewers subscribe to a video's channel; comments from viewers and
-- messages a backend publishes to video:<id> reach everyone watching, on every engine.
--   {"op":"subscribe","channel":"100001@video"}     watch video 100001 (channel video:100001)
--   {"op":"unsubscribe","channel":"100001@video"}
--   {"op":"comment","channel":"100001@video","nick":"ann","msg":"nice!"}   post to a video you watch
--   {"op":"ping"}                                   heartbeat
-- Replies: {"op":<op>,"status":"success"} or {"op":<op>,"status":"error","msg":...}.
-- Comments arrive as {"channel":"100001@video","client_id":...,"nick":"ann","msg":"nice!"}.

local MAX_COMMENT = 200 -- characters (bytes) per comment

local function reply(conn, op, err)
  if err then
    conn:send(mix.json_encode({ op = op, status = "error", msg = err }))
  else
    conn:send(mix.json_encode({ op = op, status = "success" }))
  end
end

-- "100001@video" → "video:100001"; nil and a reason for anything else.
local function channel_of(name)
  if type(name) ~= "string" then return nil, "channel missing" end
  local id, kind = string.match(name, "^(%d+)@(%a+)$")
  if not id then return nil, "bad channel: " .. name end
  if kind ~= "video" then return nil, "unknown channel type: " .. kind end
  return "video:" .. id
end

-- The channels this connection watches, kept in its context (a set).
local function watching(conn)
  local set = conn:context_value("watching")
  if not set then
    set = {}
    conn:set_context_value("watching", set)
  end
  return set
end

local ops = {}

function ops.subscribe(conn, req)
  local ch, err = channel_of(req.channel)
  if not ch then return err end
  local sub_err = conn:subscribe(ch)
  if sub_err then return sub_err end
  watching(conn)[ch] = true
end

function ops.unsubscribe(conn, req)
  local ch, err = channel_of(req.channel)
  if not ch then return err end
  watching(conn)[ch] = nil
  return conn:unsubscribe(ch)
end

function ops.comment(conn, req)
  local ch, err = channel_of(req.channel)
  if not ch then return err end
  if not watching(conn)[ch] then return "subscribe to " .. req.channel .. " first" end
  if type(req.msg) ~= "string" or req.msg == "" then return "msg missing" end
  if #req.msg > MAX_COMMENT then return "comment longer than " .. MAX_COMMENT .. " bytes" end
  local nick = type(req.nick) == "string" and req.nick ~= "" and req.nick or nil
  mix.mesh.publish(ch, mix.json_encode({
    channel = req.channel, client_id = conn:client_id(), nick = nick, msg = req.msg,
  }))
end

function ops.ping() end

function on_handshake(client_id, headers, server)
end

function on_message(msg)
  local conn = mix.websocket()
  if msg.type ~= "text" then return reply(conn, nil, "text frames only") end
  local req = mix.json_decode(msg.data)
  if type(req) ~= "table" then return reply(conn, nil, "invalid json") end
  local op = ops[req.op]
  if not op then return reply(conn, req.op, "unknown op: " .. tostring(req.op)) end
  reply(conn, req.op, op(conn, req))
end

function on_close(client_id, err)
end
