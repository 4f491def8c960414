#!/usr/bin/env python3
"""Rendering benchmark: trawl's browser tabs against Playwright for Python
driving the same Debian Chromium, and plain vs `auto` vs `always` on a site
where 10 % of the pages need JavaScript.

Called by bench/render.sh (which builds trawl and installs nginx, chromium,
python3.11-doc and Playwright). Needs only the standard library and
playwright.

The site, from Debian's python3.11-doc HTML (real documentation pages):
page i holds the body of the i-th documentation page and links to the next
LINKS pages. A script-built page is a shell (`<div id="app"></div>` and a
script) whose script fetches `/api/i.json` (that page's HTML) and inserts
it. Part 1 is served by nginx as fast as it can; part 2 by nginx with
`limit_rate RATE` (default 64k per response): a 20 KB page takes ~0.3 s
to arrive, as from a real origin, not in the microseconds of loopback.

1. Rendered pages/s with 1, 2 and 4 tabs (TABS): every page script-built
   (JS_PAGES of them). trawl crawls them (`--render always --wait-for
   "#app h1" --render-tabs T`); Playwright opens the same URLs in T pages
   of one context (each `goto` with wait_until="load", then
   `wait_for_selector("#app h1")`, then `content()`), with images, media and
   fonts blocked as trawl blocks them. Pages/s, peak RSS and CPU seconds of
   the whole process tree (trawl or python + node driver, plus Chromium).
2. The mixed site (MIXED pages, every 10th script-built): `--render never`,
   `auto`, `always`; wall time, and how many pages were rendered.

Printed as tables and written to bench/out/render-results.md.

Knobs (environment): TABS ("1 2 4"), JS_PAGES (200), MIXED (500), LINKS
(3), RATE (64k; 0: none), CONC (32), PER_HOST (16), PARTS ("1 2"), TRAWL
(target/release/trawl), CHROMIUM (/usr/bin/chromium).
"""

from __future__ import annotations

import asyncio
import html
import json
import os
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

from ports import free_port, wait_port

BENCH = Path(__file__).resolve().parent
ROOT = BENCH.parent
TRAWL = Path(os.environ.get("TRAWL", ROOT / "target" / "release" / "trawl"))
CHROMIUM = os.environ.get("CHROMIUM", "/usr/bin/chromium")
TABS = [int(x) for x in os.environ.get("TABS", "1 2 4").split()]
JS_PAGES = int(os.environ.get("JS_PAGES", "200"))
MIXED = int(os.environ.get("MIXED", "500"))
LINKS = int(os.environ.get("LINKS", "3"))
RATE = os.environ.get("RATE", "64k")
CONC = int(os.environ.get("CONC", "32"))
PER_HOST = int(os.environ.get("PER_HOST", "16"))
PARTS = os.environ.get("PARTS", "1 2").split()
DOCS = Path("/usr/share/doc/python3.11/html")
PAGE_JS = """(async () => {
  const n = location.pathname.match(/(\\d+)\\.html/)[1];
  const d = await (await fetch('/api/' + n + '.json')).json();
  document.getElementById('app').innerHTML = d.html;
})();
"""


def doc_bodies(n: int) -> list[str]:
    """The inner HTML of `<div class="body">` of n documentation pages,
    without their own links (they point into the real doc tree)."""
    out: list[str] = []
    for path in sorted(DOCS.rglob("*.html")):
        text = path.read_text(errors="replace")
        m = re.search(r'<div class="body" role="main">(.*?)<div class="sphinxsidebar"', text, re.S)
        if not m:
            continue
        body = re.sub(r"<a\s[^>]*>", "<span>", m.group(1))
        body = body.replace("</a>", "</span>")
        title = re.search(r"<title>(.*?)</title>", text, re.S)
        t = html.unescape(title.group(1)) if title else path.stem
        out.append(f"<h1>{html.escape(t)}</h1>{body}")
        if len(out) == n:
            break
    if not out:
        raise SystemExit(f"no pages in {DOCS}: install python3.11-doc")
    while len(out) < n:
        out.extend(out[: n - len(out)])
    return out


def make_site(root: Path, name: str, pages: int, js_every: int) -> None:
    """`/NAME/i.html` for i < pages; every js_every-th page (1: all) is
    built by script."""
    d = root / name
    api = root / "api" / name
    d.mkdir(parents=True)
    api.mkdir(parents=True)
    (d / "page.js").write_text(PAGE_JS.replace("/api/", f"/api/{name}/"))
    bodies = doc_bodies(pages)
    for i in range(pages):
        nav = " ".join(
            f'<a href="/{name}/{(i + k) % pages}.html">next {k}</a>' for k in range(1, LINKS + 1)
        )
        inner = bodies[i] + f"<nav>{nav}</nav>"
        if js_every and i % js_every == js_every - 1:
            (api / f"{i}.json").write_text(json.dumps({"html": inner}))
            page = (
                f'<!DOCTYPE html><html><head><meta charset="utf-8"><title>Page {i}</title></head>'
                f'<body><div id="app"></div><script src="/{name}/page.js"></script></body></html>'
            )
        else:
            page = (
                f'<!DOCTYPE html><html><head><meta charset="utf-8"><title>Page {i}</title></head>'
                f'<body><div id="app">{inner}</div></body></html>'
            )
        (d / f"{i}.html").write_text(page)


def start_nginx(tmp: Path, root: Path, limit: str) -> tuple[subprocess.Popen, int]:
    port = free_port()
    d = tmp / f"nginx-{port}"
    d.mkdir()
    rate = "" if limit in ("0", "") else f"limit_rate {limit};"
    (d / "nginx.conf").write_text(
        f"""worker_processes 1;
pid {d}/nginx.pid;
error_log {d}/error.log warn;
events {{ worker_connections 8192; }}
http {{
  include /etc/nginx/mime.types;
  client_body_temp_path {d}/cb; proxy_temp_path {d}/px; fastcgi_temp_path {d}/fc;
  uwsgi_temp_path {d}/uw; scgi_temp_path {d}/sc;
  access_log off;
  keepalive_requests 100000;
  sendfile off;
  server {{
    listen 127.0.0.1:{port};
    root {root};
    {rate}
    location / {{ index index.html; }}
  }}
}}
"""
    )
    proc = subprocess.Popen(
        ["nginx", "-p", str(d), "-c", str(d / "nginx.conf"), "-g", "daemon off; master_process off;"],
        stdout=subprocess.DEVNULL,
        stderr=open(d / "stderr.log", "w"),
    )
    wait_port(port)
    return proc, port


class TreeSampler:
    """Peak memory and CPU seconds of a process and all its descendants,
    sampled every 50 ms from /proc (Chromium's helpers are grandchildren;
    getrusage would miss those killed with their browser). Memory is the
    sum of proportional set sizes (smaps_rollup Pss): the libraries and
    shared memory Chromium's processes share count once."""

    def __init__(self, pid: int):
        self.pid = pid
        self.peak_rss = 0
        self.cpu: dict[int, float] = {}
        self.stop = False
        self.tick = os.sysconf("SC_CLK_TCK")
        self.thread = threading.Thread(target=self.run, daemon=True)
        self.thread.start()

    def tree(self) -> list[int]:
        children: dict[int, list[int]] = {}
        for e in os.listdir("/proc"):
            if not e.isdigit():
                continue
            try:
                stat = Path(f"/proc/{e}/stat").read_text()
            except OSError:
                continue
            ppid = int(stat[stat.rfind(")") + 2 :].split()[1])
            children.setdefault(ppid, []).append(int(e))
        out, todo = [], [self.pid]
        while todo:
            p = todo.pop()
            out.append(p)
            todo.extend(children.get(p, []))
        return out

    def run(self) -> None:
        while not self.stop:
            rss = 0
            for p in self.tree():
                try:
                    stat = Path(f"/proc/{p}/stat").read_text()
                    fields = stat[stat.rfind(")") + 2 :].split()
                    self.cpu[p] = (int(fields[11]) + int(fields[12])) / self.tick
                    rollup = Path(f"/proc/{p}/smaps_rollup").read_text()
                    m = re.search(r"^Pss:\s+(\d+)", rollup, re.M)
                    rss += int(m.group(1)) * 1024 if m else 0
                except (OSError, ValueError, IndexError):
                    pass
            self.peak_rss = max(self.peak_rss, rss)
            time.sleep(0.05)

    def finish(self) -> tuple[float, float]:
        self.stop = True
        self.thread.join()
        return self.peak_rss / 2**20, sum(self.cpu.values())


def run_trawl(seed: str, mode: str, tabs: int, extra: list[str]) -> dict:
    out = Path(tempfile.mkdtemp()) / "items.jsonl"
    stats = out.with_name("stats.json")
    cmd = [
        str(TRAWL), "crawl", seed, "-q", "--ignore-robots", "-o", str(out),
        "--stats-json", str(stats), "-c", str(CONC), "--per-host", str(PER_HOST),
        "--render", mode, "--render-tabs", str(tabs), "--chromium", CHROMIUM,
        "--scope", "prefix",
    ] + extra
    started = time.time()
    proc = subprocess.Popen(cmd)
    sampler = TreeSampler(proc.pid)
    code = proc.wait()
    wall = time.time() - started
    rss, cpu = sampler.finish()
    if code != 0:
        raise SystemExit(f"trawl exited {code}: {' '.join(cmd)}")
    s = json.loads(stats.read_text())
    items = [json.loads(l) for l in out.read_text().splitlines()]
    rendered = sum(1 for i in items if "_render" in i)
    ok = sum(1 for i in items if i.get("status") == 200 and not i.get("error"))
    filled = sum(1 for i in items if i.get("links_count", 0) >= LINKS)
    shutil.rmtree(out.parent, ignore_errors=True)
    return {
        "pages": len(items), "ok": ok, "rendered": rendered, "with_links": filled,
        "wall": wall, "rss": rss, "cpu": cpu, "stats": s,
    }


PLAYWRIGHT = r"""
import asyncio, sys, json, time
from playwright.async_api import async_playwright

async def main():
    chromium, tabs, urls = sys.argv[1], int(sys.argv[2]), sys.argv[3:]
    todo = list(urls)
    done = 0
    async with async_playwright() as p:
        browser = await p.chromium.launch(executable_path=chromium, args=["--no-sandbox"])
        context = await browser.new_context()
        async def block(route):
            if route.request.resource_type in ("image", "media", "font"):
                await route.abort()
            else:
                await route.continue_()
        await context.route("**/*", block)
        async def worker():
            nonlocal done
            page = await context.new_page()
            while todo:
                url = todo.pop()
                await page.goto(url, wait_until="load")
                await page.wait_for_selector("#app h1")
                html = await page.content()
                if "<h1>" in html:
                    done += 1
            await page.close()
        started = time.time()
        await asyncio.gather(*[worker() for _ in range(tabs)])
        wall = time.time() - started
        await browser.close()
    print(json.dumps({"done": done, "wall": wall}))

asyncio.run(main())
"""


def run_playwright(urls: list[str], tabs: int) -> dict:
    started = time.time()
    proc = subprocess.Popen(
        [sys.executable, "-c", PLAYWRIGHT, CHROMIUM, str(tabs), *urls],
        stdout=subprocess.PIPE,
    )
    sampler = TreeSampler(proc.pid)
    out, _ = proc.communicate()
    wall = time.time() - started
    rss, cpu = sampler.finish()
    if proc.returncode != 0:
        raise SystemExit("playwright run failed")
    r = json.loads(out)
    return {"pages": r["done"], "wall": wall, "inner": r["wall"], "rss": rss, "cpu": cpu}


def main() -> int:
    if not TRAWL.exists():
        raise SystemExit(f"{TRAWL} missing: cargo build --release -p trawl")
    tmp = Path(tempfile.mkdtemp(prefix="trawl-render-bench-"))
    lines: list[str] = []

    def say(line: str = "") -> None:
        print(line, flush=True)
        lines.append(line)

    servers = []
    try:
        site = tmp / "site"
        make_site(site, "js", JS_PAGES, 1)
        make_site(site, "mixed", MIXED, 10)
        fast, fast_port = start_nginx(tmp, site, "0")
        slow, slow_port = start_nginx(tmp, site, RATE)
        servers = [fast, slow]
        base = f"http://127.0.0.1:{fast_port}"
        cores = os.cpu_count()
        say(f"# Rendering benchmark ({cores} cores; pages from python3.11-doc)")
        say()
        if "1" not in PARTS:
            TABS.clear()
        say(f"## 1. Rendered pages/s: {JS_PAGES} script-built pages, wait for `#app h1`, "
            "nginx without limits (rendering is the work)")
        say()
        say("| tabs | tool | pages | wall s | pages/s | peak memory MiB (PSS) | CPU s | ratio |")
        say("|---:|---|---:|---:|---:|---:|---:|---:|")
        urls = [f"{base}/js/{i}.html" for i in range(JS_PAGES)]
        for tabs in TABS:
            t = run_trawl(f"{base}/js/0.html", "always", tabs, ["--wait-for", "#app h1"])
            p = run_playwright(urls, tabs)
            t_rate = t["ok"] / t["wall"]
            p_rate = p["pages"] / p["wall"]
            say(f"| {tabs} | trawl | {t['ok']} | {t['wall']:.1f} | {t_rate:.1f} | {t['rss']:.0f} | {t['cpu']:.1f} | {t_rate / p_rate:.2f}× |")
            say(f"| {tabs} | Playwright | {p['pages']} | {p['wall']:.1f} | {p_rate:.1f} | {p['rss']:.0f} | {p['cpu']:.1f} | 1.00× |")
        say()
        base = f"http://127.0.0.1:{slow_port}"
        say(f"## 2. Plain vs auto vs always: {MIXED} pages, every 10th script-built, "
            f"nginx `limit_rate {RATE}` per response (an origin's pace, not loopback's)")
        say()
        say("| mode | pages | rendered | pages with their links | wall s | vs never |")
        say("|---|---:|---:|---:|---:|---:|")
        plain = None
        for mode in ("never", "auto", "always") if "2" in PARTS else ():
            r = run_trawl(f"{base}/mixed/0.html", mode, 4, [])
            plain = plain or r["wall"]
            say(f"| {mode} | {r['pages']} | {r['rendered']} | {r['with_links']} | {r['wall']:.1f} | {r['wall'] / plain:.2f}× |")
    finally:
        for server in servers:
            server.kill()
        shutil.rmtree(tmp, ignore_errors=True)
    out = BENCH / "out"
    out.mkdir(exist_ok=True)
    (out / "render-results.md").write_text("\n".join(lines) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
