-- wrk: credits of 0.01 to one of 1000 pre-created wallets b1..b1000.
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
wrk.body = '{"amount":"0.01"}'
request = function()
  return wrk.format(nil, "/wallets/b" .. math.random(1, tonumber(os.getenv("WALLETS") or "1000")) .. "/credit")
end
