-- wrk: the default wallex bench mix over wallets b1..b1000 (created first):
-- 60% transfers, 20% credits, 20% debits, small amounts so few are refused.
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
-- The server's admin token (WALLEX_TOKEN), when it has authentication on.
local token = os.getenv("WALLEX_TOKEN")
if token and token ~= "" then
  wrk.headers["Authorization"] = "Bearer " .. token
end
local wallets = tonumber(os.getenv("WALLETS") or "1000")
-- Wallet ids are PREFIX .. N for N in FIRST .. FIRST + WALLETS - 1 (b1..b1000
-- by default; wallex bench uses <prefix>-0 ..).
local prefix = os.getenv("WALLET_PREFIX") or "b"
local first = tonumber(os.getenv("WALLET_FIRST") or "1")
-- Percent transfers and credits; debits are the rest (60/20/20 by default).
local mix_transfer = tonumber(os.getenv("MIX_TRANSFER") or "60")
local mix_credit = tonumber(os.getenv("MIX_CREDIT") or "20")
request = function()
  local r = math.random(1, 100)
  local a = math.random(0, wallets - 1)
  if r <= mix_transfer then
    local b = math.random(0, wallets - 2)
    if b >= a then b = b + 1 end
    return wrk.format(nil, "/transfers", nil, '{"fromWalletId":"' .. prefix .. (first + a) ..
      '","toWalletId":"' .. prefix .. (first + b) .. '","amount":"0.01"}')
  elseif r <= mix_transfer + mix_credit then
    return wrk.format(nil, "/wallets/" .. prefix .. (first + a) .. "/credit", nil,
      '{"amount":"0.01"}')
  else
    return wrk.format(nil, "/wallets/" .. prefix .. (first + a) .. "/debit", nil,
      '{"amount":"0.01"}')
  end
end
