-- wrk: the mixed workload of mixed.lua, paced: each connection waits
-- PACE_MS between requests (set by bench/run through the environment), so
-- the offered load is about connections * 1000 / PACE_MS requests/s.
local pace = tonumber(os.getenv("PACE_MS") or "10")
dofile(os.getenv("BENCH_DIR") .. "/mixed.lua")
function delay()
  return pace
end
