-- Newline-delimited JSON-RPC for `socket` servers: each line is one JSON object with a string `method`,
-- optional `params` and optional `id` (JSON-RPC 2.0 shape; "jsonrpc": "2.0" is accepted, not required).
-- decode returns the request table, so on_message gets { method = ..., params = ..., id = ... }. A line
-- that is not such an object is answered with a JSON-RPC error (-32700 parse error, -32600 invalid
-- request) and the connection is closed, as connmix's own module closes it. Lines are capped at 65535
-- bytes like protocols.text. connmix's calling styles work too: decode(str) inside a callback, and
-- encode_table(tb) -> line, err.
--
--   local jsonrpc = require("protocols.jsonrpc")
--   protocol_input, protocol_decode, protocol_encode = jsonrpc.input, jsonrpc.decode, jsonrpc.encode
--   function on_message(req, conn)
--     if req.method == "add" then jsonrpc.result(conn, req.id, req.params[1] + req.params[2])
--     else jsonrpc.error(conn, req.id, jsonrpc.METHOD_NOT_FOUND, "no method " .. req.method) end
--   end
local text = require("protocols.text")
local find, gsub = string.find, string.gsub

local M = {
  PARSE_ERROR = -32700, INVALID_REQUEST = -32600, METHOD_NOT_FOUND = -32601,
  INVALID_PARAMS = -32602, INTERNAL_ERROR = -32603,
}

M.input = text.input

-- The JSON text of an id: a request's own id, or null.
local function id_json(id)
  if id == nil or id == mix.null then return "null" end
  return (mix.json_encode(id))
end

-- Writes one response object; `body` is the JSON of its "result" or "error" member.
local function respond(conn, member, body, id)
  return conn:send('{"jsonrpc":"2.0","' .. member .. '":' .. body .. ',"id":' .. id_json(id) .. "}\n")
end

function M.result(conn, id, result)
  local body, err = mix.json_encode(result == nil and mix.null or result)
  if not body then return err end
  return respond(conn, "result", body, id)
end

function M.error(conn, id, code, message, data)
  local body, err = mix.json_encode({ code = code, message = tostring(message), data = data })
  if not body then return err end
  return respond(conn, "error", body, id)
end

-- A notification (no id) as one line, e.g. for conn:send or mix.mesh.send.
function M.notification(method, params)
  return (mix.json_encode({ jsonrpc = "2.0", method = method, params = params })) .. "\n"
end

-- Answers a bad request with its error and closes the connection.
local function refuse(conn, id, code, message)
  M.error(conn, id, code, message)
  conn:close()
  return nil
end

function M.decode(line, conn)
  conn = conn or mix.socket.tcp()
  line = text.decode(line)
  if not find(line, "%S") then return nil end -- blank lines are ignored
  local req, err = mix.json_decode(line)
  if type(req) ~= "table" then
    return refuse(conn, nil, M.PARSE_ERROR, "parse error: " .. tostring(err or "not a JSON object"))
  end
  if type(req.method) ~= "string" then
    return refuse(conn, req.id, M.INVALID_REQUEST, "invalid request: method must be a string")
  end
  return req
end

-- protocol_encode: pushed data (a JSON text) becomes one line. Raw line breaks can only be whitespace
-- in valid JSON, so they are removed to keep the message on one line.
function M.encode(data)
  if find(data, "[\r\n]") then data = gsub(data, "[\r\n]", "") end
  return data .. "\n"
end

-- A table as one JSON line (connmix's encode_table): line, or nil and the error.
function M.encode_table(tb)
  local s, err = mix.json_encode(tb)
  if not s then return nil, err end
  return M.encode(s), nil
end

return M
