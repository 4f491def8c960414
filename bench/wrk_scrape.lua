-- wrk script: POST /v1/scrape for a uniformly random /p/{i} page of the
-- test site, with one field rule and the links. Usage:
--   wrk -t2 -c100 -d20s --latency -s bench/wrk_scrape.lua http://API -- SITE_URL PAGES

local site = "http://127.0.0.1:8081"
local pages = 10000
local counter = 0

function setup(thread)
  counter = counter + 1
  thread:set("id", counter)
end

function init(args)
  if args[1] then site = args[1] end
  if args[2] then pages = tonumber(args[2]) end
  math.randomseed(os.time() * 1000 + (id or 0))
end

function request()
  local body = '{"url": "' .. site .. '/p/' .. math.random(0, pages - 1) ..
    '", "formats": ["json", "links"], "fields": {"title": {"selector": "title"}}}'
  return wrk.format("POST", "/v1/scrape", {["Content-Type"] = "application/json"}, body)
end

-- Count answers that are not 200 (wrk counts only non-2xx/3xx).
local bad = 0
function response(status, headers, body)
  if status ~= 200 then bad = bad + 1 end
end
