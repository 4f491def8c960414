-- wrk script: GET a uniformly random /p/{i} page of the test site, i.e. the
-- same page mix a full crawl fetches. Usage:
--   wrk -t2 -c256 -d10s -s bench/wrk_random.lua http://127.0.0.1:PORT -- PAGES

local pages = 50000
local counter = 0

-- Runs in the main Lua state once per thread: give each thread an id.
function setup(thread)
  counter = counter + 1
  thread:set("id", counter)
end

-- Runs in each thread's own Lua state.
function init(args)
  if args[1] then
    pages = tonumber(args[1])
  end
  math.randomseed(os.time() * 1000 + (id or 0))
end

function request()
  return wrk.format("GET", "/p/" .. math.random(0, pages - 1))
end
