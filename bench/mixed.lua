-- wrk: the default wallex bench mix over wallets b1..b1000 (created first):
-- 60% transfers, 20% credits, 20% debits, small amounts so few are refused.
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
local wallets = tonumber(os.getenv("WALLETS") or "1000")
request = function()
  local r = math.random(1, 100)
  local a = math.random(1, wallets)
  if r <= 60 then
    local b = math.random(1, wallets - 1)
    if b >= a then b = b + 1 end
    return wrk.format(nil, "/transfers",
      nil, '{"fromWalletId":"b' .. a .. '","toWalletId":"b' .. b .. '","amount":"0.01"}')
  elseif r <= 80 then
    return wrk.format(nil, "/wallets/b" .. a .. "/credit", nil, '{"amount":"0.01"}')
  else
    return wrk.format(nil, "/wallets/b" .. a .. "/debit", nil, '{"amount":"0.01"}')
  end
end
