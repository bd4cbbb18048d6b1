-- Backend-driven chat: the script decides nothing. Every frame goes to queue "chat", together with the
-- uid the backend gave this connection (nil before login); the backend (backend.ts) consumes the queue
-- over an engine's /ws/v1 and answers with mesh.send, broadcasts with mesh.publish, and completes a
-- login with conn.call set_context_value("uid", ...).
--   {"op":"login","name":"alice"}   {"op":"send","msg":"hello"}   {"op":"ping"}
-- A login holds this connection's later frames until the backend has answered, so a "send" right after
-- "login" already carries the uid.

local function fail(conn, msg)
  conn:send(mix.json_encode({ op = "error", msg = msg }))
end

function on_handshake(client_id, headers, server)
end

function on_message(msg)
  local conn = mix.websocket()
  if msg.type ~= "text" then return fail(conn, "text frames only") end
  local frame = mix.json_decode(msg.data)
  if type(frame) ~= "table" then return fail(conn, "invalid json") end
  if frame.op == "ping" then return end -- a heartbeat; nothing for the backend

  local uid = conn:context_value("uid")
  local _, err = mix.queue.push("chat", { uid = uid, frame = frame })
  if err then return fail(conn, "server busy: " .. err) end

  if frame.op == "login" and uid == nil then
    -- The backend sets uid to the user's id, or to false when it refuses the login.
    if conn:wait_context_value("uid") == false then conn:set_context_value("uid", nil) end
  end
end

function on_close(client_id, err)
end
