-- wrk: folder creation, every request a tree change (bench/pg_probe files):
-- POST /folders under one of PARENTS folders p0.. (created first), each
-- name unique (a random prefix per wrk thread and a counter), so none is
-- refused for its name: what is measured is the tree's own cost.
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
local token = os.getenv("WALLEX_TOKEN")
if token and token ~= "" then
  wrk.headers["Authorization"] = "Bearer " .. token
end
local parents = tonumber(os.getenv("PARENTS") or "64")
local prefix, n = nil, 0
-- Each wrk thread has a Lua state of its own; a table's address tells
-- them (and two wrk processes) apart.
init = function(args)
  math.randomseed(os.time() + tonumber(tostring({}):match("0x(%x+)"), 16) % 1000003)
  prefix = string.format("%x", math.random(1, 2 ^ 30))
end
request = function()
  n = n + 1
  return wrk.format(nil, "/folders", nil, '{"name":"' .. prefix .. "-" .. n ..
    '","parentId":"p' .. math.random(0, parents - 1) .. '"}')
end
