-- wrk: credits of 0.01 to one of 1000 pre-created wallets b1..b1000.
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
-- The server's admin token (WALLEX_TOKEN), when it has authentication on.
local token = os.getenv("WALLEX_TOKEN")
if token and token ~= "" then
  wrk.headers["Authorization"] = "Bearer " .. token
end
wrk.body = '{"amount":"0.01"}'
request = function()
  return wrk.format(nil, "/wallets/b" .. math.random(1, tonumber(os.getenv("WALLETS") or "1000")) .. "/credit")
end
