#!/usr/bin/env python3
"""Benchmark driver: trawl vs wget2 vs Scrapy on the local test site.

Called by bench/run.sh (which installs the tools and builds the binaries);
standard library only. Every request goes to the test site on 127.0.0.1.

Knobs (environment): PAGES, CONC, FANOUT, PAGE_BYTES, SEED, SCRAPY_PAGES,
WRK_SECS, CRAWLERS (comma list of trawl,wget2,scrapy; default all),
SCRAPY_CANONICALIZE (1: the spider's LinkExtractor canonicalizes URLs),
BENCH_OUT (output directory, default bench/out).
"""

from __future__ import annotations

import json
import os
import re
import shlex
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from ports import free_port

BENCH = Path(__file__).resolve().parent
ROOT = BENCH.parent
OUT = Path(os.environ.get("BENCH_OUT", BENCH / "out")).resolve()
BIN = Path(os.environ.get("TRAWL_BIN_DIR", ROOT / "target" / "release"))
TRAWL = BIN / "trawl"
TESTSITE = BIN / "trawl-testsite"
SCRAPY = BENCH / ".venv" / "bin" / "scrapy"
TIME = "/usr/bin/time"
CLK_TCK = os.sysconf("SC_CLK_TCK")


def env_int(name: str, default: int) -> int:
    v = os.environ.get(name, "")
    return int(v) if v.strip() else default


PAGES = env_int("PAGES", 50000)
CONC = env_int("CONC", 256)
FANOUT = env_int("FANOUT", 80)
PAGE_BYTES = env_int("PAGE_BYTES", 10000)
SEED = env_int("SEED", 1)
SCRAPY_PAGES = env_int("SCRAPY_PAGES", 10000)
WRK_SECS = env_int("WRK_SECS", 10)
CRAWLERS = [
    c.strip()
    for c in os.environ.get("CRAWLERS", "trawl,wget2,scrapy").split(",")
    if c.strip()
]

WARNINGS: list[str] = []
NOTES: list[str] = []


def log(msg: str) -> None:
    print(msg, flush=True)


def warn(msg: str) -> None:
    WARNINGS.append(msg)
    print(f"WARNING: {msg}", flush=True)


# --------------------------------------------------------------------------
# Test site
# --------------------------------------------------------------------------

SITE_ARGS = [
    "--pages", str(PAGES),
    "--fanout", str(FANOUT),
    "--page-bytes", str(PAGE_BYTES),
    "--seed", str(SEED),
]  # fmt: skip


class Site:
    """One trawl-testsite process on loopback (one per measurement, so each
    crawler gets fresh server counters)."""

    def __init__(self) -> None:
        self.port = free_port()
        self.proc = subprocess.Popen(
            [str(TESTSITE), "--addr", f"127.0.0.1:{self.port}", "--no-log", *SITE_ARGS],
            stdout=subprocess.PIPE,
            stdin=subprocess.DEVNULL,
            text=True,
        )
        (OUT / "site.pid").write_text(f"{self.proc.pid}\n")
        assert self.proc.stdout is not None
        line = self.proc.stdout.readline().strip()
        if not line.startswith("http://"):
            self.stop()
            raise SystemExit(f"trawl-testsite did not print its base URL (got {line!r})")
        self.base = line.rstrip("/")
        self.hostport = self.base.removeprefix("http://")
        # Wait until it answers.
        for _ in range(100):
            try:
                self.stats()
                break
            except OSError:
                time.sleep(0.05)

    def stats(self) -> dict:
        with urllib.request.urlopen(f"{self.base}/__testsite/stats", timeout=30) as r:
            return json.load(r)

    def cpu_seconds(self) -> float:
        try:
            fields = Path(f"/proc/{self.proc.pid}/stat").read_text().rsplit(")", 1)[1].split()
            return (int(fields[11]) + int(fields[12])) / CLK_TCK
        except (OSError, IndexError, ValueError):
            return float("nan")

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGINT)
            try:
                self.proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        try:
            (OUT / "site.pid").unlink()
        except FileNotFoundError:
            pass

    def __enter__(self) -> "Site":
        return self

    def __exit__(self, *exc) -> None:
        self.stop()


def ground_truth() -> list[str]:
    out = subprocess.run(
        [str(TESTSITE), *SITE_ARGS, "--print-ground-truth"],
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    return [line for line in out.splitlines() if line]


PAGE_RE = re.compile(r"^/p/(0|[1-9][0-9]*)$")


def html_pages_served(by_path: dict[str, int]) -> set[str]:
    """Paths the site answers 200 with an HTML page: `/` and canonical
    `/p/{i}`, i < PAGES (it answers 404 to other spellings)."""
    out = set()
    for path, n in by_path.items():
        if n <= 0:
            continue
        if path == "/":
            out.add(path)
            continue
        m = PAGE_RE.match(path)
        if m and int(m.group(1)) < PAGES:
            out.add(path)
    return out


# --------------------------------------------------------------------------
# Measurement
# --------------------------------------------------------------------------


def system_busy_seconds() -> float:
    """Busy CPU seconds of the whole machine so far (all cores)."""
    with open("/proc/stat") as f:
        parts = f.readline().split()[1:]
    vals = [int(x) for x in parts]
    idle = vals[3] + (vals[4] if len(vals) > 4 else 0)
    # guest/guest_nice are already included in user/nice.
    total = sum(vals[:8])
    return (total - idle) / CLK_TCK


@dataclass
class Result:
    name: str
    cmd: list[str]
    rc: int = 0
    wall: float = 0.0
    user: float = 0.0
    sys: float = 0.0
    rss_kib: int = 0
    pages: int = 0  # distinct HTML pages the site served to this crawler
    requests: int = 0  # all requests the site saw during the run
    items: int | None = None  # records in the crawler's own output
    gt_covered: int = 0
    gt_size: int = 0
    server_cpu: float = 0.0
    other_cpu: float = 0.0  # CPU used by neither crawler nor site (machine busy?)
    max_conc: int = 0
    load_before: float = 0.0
    extra: dict = field(default_factory=dict)

    @property
    def cpu(self) -> float:
        return self.user + self.sys

    @property
    def pps(self) -> float:
        return self.pages / self.wall if self.wall > 0 else 0.0

    @property
    def cpu_per_k(self) -> float:
        return self.cpu / self.pages * 1000 if self.pages else float("nan")

    @property
    def rss_mib(self) -> float:
        return self.rss_kib / 1024


def parse_time_v(path: Path) -> tuple[float, float, int]:
    user = sys_ = 0.0
    rss = 0
    for line in path.read_text(errors="replace").splitlines():
        line = line.strip()
        if line.startswith("User time (seconds):"):
            user = float(line.split(":")[-1])
        elif line.startswith("System time (seconds):"):
            sys_ = float(line.split(":")[-1])
        elif line.startswith("Maximum resident set size (kbytes):"):
            rss = int(line.split(":")[-1])
    return user, sys_, rss


def measure(name: str, site: Site, cmd: list[str], gt: set[str], ok_rcs=(0,)) -> Result:
    res = Result(name=name, cmd=cmd, gt_size=len(gt))
    timefile = OUT / f"{name}.time"
    logfile = OUT / f"{name}.log"
    before = site.stats()
    res.load_before = os.getloadavg()[0]
    log(f"\n== {name}: {shlex.join(cmd)}")
    log(f"   (load average before: {res.load_before:.2f})")
    srv0, sys0 = site.cpu_seconds(), system_busy_seconds()
    t0 = time.perf_counter()
    with open(logfile, "w") as lf:
        # Own process group, so an interrupted run can end both
        # /usr/bin/time and the crawler under it.
        proc = subprocess.Popen(
            [TIME, "-v", "-o", str(timefile), *cmd],
            stdout=lf,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            cwd=ROOT,
            start_new_session=True,
        )
        try:
            res.rc = proc.wait()
        except BaseException:
            try:
                os.killpg(proc.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            proc.wait()
            raise
    res.wall = time.perf_counter() - t0
    srv1, sys1 = site.cpu_seconds(), system_busy_seconds()
    after = site.stats()
    res.user, res.sys, res.rss_kib = parse_time_v(timefile)
    res.server_cpu = srv1 - srv0
    res.other_cpu = max(0.0, (sys1 - sys0) - res.cpu - res.server_cpu)
    res.requests = after["requests"] - before["requests"]
    bp0 = before.get("by_path", {})
    delta = {p: n - bp0.get(p, 0) for p, n in after.get("by_path", {}).items()}
    served = html_pages_served(delta)
    res.pages = len(served)
    res.gt_covered = len(served & gt)
    res.max_conc = max((h.get("max_concurrency", 0) for h in after.get("hosts", {}).values()), default=0)
    res.extra["non_page_paths"] = sorted(p for p, n in delta.items() if n > 0 and p not in served)
    res.extra["refetched"] = sum(n - 1 for p, n in delta.items() if p in served and n > 1)
    if res.rc not in ok_rcs:
        warn(f"{name} exited with status {res.rc} (see {logfile})")
    log(
        f"   rc={res.rc} wall={res.wall:.2f}s pages={res.pages} requests={res.requests} "
        f"pages/s={res.pps:.0f} rss={res.rss_mib:.1f}MiB cpu={res.cpu:.2f}s "
        f"site-cpu={res.server_cpu:.2f}s other-cpu={res.other_cpu:.2f}s"
    )
    return res


def count_lines(path: Path) -> int:
    if not path.exists():
        return 0
    with open(path, "rb") as f:
        return sum(1 for _ in f)


# --------------------------------------------------------------------------
# The runs
# --------------------------------------------------------------------------


def run_wrk() -> dict:
    with Site() as site:
        cmd = [
            "wrk", "-t2", f"-c{CONC}", f"-d{WRK_SECS}s", "--latency",
            "-s", str(BENCH / "wrk_random.lua"), site.base, "--", str(PAGES),
        ]  # fmt: skip
        log(f"\n== wrk (server ceiling): {shlex.join(cmd)}")
        log(f"   (load average before: {os.getloadavg()[0]:.2f})")
        srv0 = site.cpu_seconds()
        p = subprocess.run(cmd, capture_output=True, text=True, cwd=ROOT)
        srv1 = site.cpu_seconds()
        (OUT / "wrk.log").write_text(p.stdout + p.stderr)
        print("   " + p.stdout.strip().replace("\n", "\n   "), flush=True)
        if p.returncode != 0:
            warn(f"wrk exited with status {p.returncode}: {p.stderr.strip()}")
        m = re.search(r"Requests/sec:\s*([0-9.]+)", p.stdout)
        rps = float(m.group(1)) if m else 0.0
        m = re.search(r"Transfer/sec:\s*(\S+)", p.stdout)
        tps = m.group(1) if m else "?"
        non2xx = re.search(r"Non-2xx or 3xx responses:\s*(\d+)", p.stdout)
        if non2xx:
            warn(f"wrk saw {non2xx.group(1)} non-2xx responses")
        errs = re.search(r"Socket errors:.*", p.stdout)
        if errs:
            warn(f"wrk {errs.group(0)}")
        log(f"   site CPU during wrk: {srv1 - srv0:.1f}s over {WRK_SECS}s")
        return {"rps": rps, "transfer": tps, "server_cpu": srv1 - srv0}


def run_trawl(gt: set[str]) -> Result:
    out = OUT / "trawl.jsonl"
    stats = OUT / "trawl-stats.json"
    for p in (out, stats):
        p.unlink(missing_ok=True)
    with Site() as site:
        cmd = [
            str(TRAWL), "crawl", f"{site.base}/", "-o", str(out),
            "--concurrency", str(CONC), "--per-host", str(CONC),
            "--quiet", "--stats-json", str(stats),
        ]  # fmt: skip
        res = measure("trawl", site, cmd, gt)
        base = site.base
    res.items = count_lines(out)
    # Which paths did trawl write, and with which status?
    paths: set[str] = set()
    bad_status = 0
    with open(out) as f:
        for line in f:
            item = json.loads(line)
            url = item.get("final_url") or item.get("url") or ""
            if url.startswith(base):
                paths.add(url[len(base) :] or "/")
            if item.get("status") != 200:
                bad_status += 1
    try:
        res.extra["stats"] = json.loads(stats.read_text())
    except (OSError, ValueError) as e:
        warn(f"cannot read trawl's --stats-json: {e}")
    if res.items != len(gt):
        warn(f"trawl wrote {res.items} items but the ground truth has {len(gt)} pages")
    missing, extra = gt - paths, paths - gt
    if missing or extra:
        warn(
            f"trawl's items differ from the ground truth: {len(missing)} missing "
            f"(e.g. {sorted(missing)[:5]}), {len(extra)} extra (e.g. {sorted(extra)[:5]})"
        )
    if bad_status:
        warn(f"trawl wrote {bad_status} items with a status other than 200")
    if res.requests != res.pages + 1:  # + /robots.txt
        NOTES.append(
            f"trawl sent {res.requests} requests for {res.pages} pages "
            f"(non-page paths: {res.extra['non_page_paths'][:8]}, re-fetched pages: {res.extra['refetched']})"
        )
    return res


def run_wget2(gt: set[str]) -> Result:
    prefix = OUT / "wget2"
    subprocess.run(["rm", "-rf", str(prefix)], check=True)
    with Site() as site:
        cmd = [
            "wget2", "-r", "-l", "inf", f"--max-threads={CONC}",
            "--delete-after", "-q", "--no-verbose", "-P", str(prefix),
            # wget2 1.99.1 (Debian 12) sends "Host: 127.0.0.1" without the
            # port; the site echoes the Host into absolute links, which then
            # point at port 80. Send the correct header instead.
            "--header", f"Host: {site.hostport}",
            f"{site.base}/",
        ]  # fmt: skip
        # Exit status 8 = "server issued an error response" (404s).
        res = measure("wget2", site, cmd, gt, ok_rcs=(0, 8))
    NOTES.append(
        "wget2 is given `--header 'Host: 127.0.0.1:PORT'`: wget2 1.99.1 sends the Host "
        "header without the port, and the site builds its absolute links from Host"
    )
    subprocess.run(["rm", "-rf", str(prefix)], check=True)
    if res.gt_covered < len(gt):
        warn(f"wget2 fetched {res.gt_covered} of the {len(gt)} ground-truth pages")
    nonpage = res.extra["non_page_paths"]
    junk = [p for p in nonpage if "%3E" in p or ">" in p]
    if junk:
        NOTES.append(
            f"wget2 requested {len(junk)} bogus URLs such as {junk[0]!r}: its HTML "
            "parser keeps the '>' of unquoted attribute values (href=/p/1>Page); they get 404"
        )
    return res


def run_scrapy(gt: set[str]) -> Result:
    out = OUT / "scrapy.jsonl"
    out.unlink(missing_ok=True)
    settings = {
        "CONCURRENT_REQUESTS": CONC,
        "CONCURRENT_REQUESTS_PER_DOMAIN": CONC,
        "ROBOTSTXT_OBEY": "True",
        "AUTOTHROTTLE_ENABLED": "False",
        "DOWNLOAD_DELAY": 0,
        "LOG_LEVEL": "WARNING",
        "TELNETCONSOLE_ENABLED": "False",
        "HTTPCACHE_ENABLED": "False",
        "CLOSESPIDER_PAGECOUNT": SCRAPY_PAGES,
    }
    with Site() as site:
        cmd = [
            str(SCRAPY), "runspider", str(BENCH / "scrapy_spider.py"),
            "-a", f"start={site.base}/",
            "-a", f"canonicalize={os.environ.get('SCRAPY_CANONICALIZE', '1')}",
        ]  # fmt: skip
        for k, v in settings.items():
            cmd += ["-s", f"{k}={v}"]
        cmd += ["-O", f"{out}:jsonlines"]
        res = measure("scrapy", site, cmd, gt)
    if os.environ.get("SCRAPY_CANONICALIZE", "1") not in ("0", "false", "False", ""):
        NOTES.append(
            "Scrapy's LinkExtractor runs with canonicalize=True: the site serves pages only "
            "under the canonical spelling (/p/1, not /%70/%31) and Scrapy does not normalise "
            "percent-encoding otherwise"
        )
    res.items = count_lines(out)
    urls = set()
    with open(out) as f:
        for line in f:
            urls.add(json.loads(line).get("url"))
    res.extra["distinct_items"] = len(urls)
    return res


# --------------------------------------------------------------------------
# Report
# --------------------------------------------------------------------------


def fmt_ratio(a: float, b: float) -> str:
    return f"{a / b:.2f}x" if b else "n/a"


def tool_version(cmd: list[str]) -> str:
    try:
        p = subprocess.run(cmd, capture_output=True, text=True, timeout=30)
        return (p.stdout or p.stderr).strip().splitlines()[0]
    except (OSError, IndexError, subprocess.TimeoutExpired):
        return "?"


def report(results: dict[str, Result], wrk: dict | None, gt_size: int, load0, load1) -> str:
    lines = []
    lines.append(
        f"Site: {PAGES} pages ({gt_size} reachable), fanout {FANOUT}, median page "
        f"{PAGE_BYTES} B, seed {SEED}; concurrency {CONC}; Scrapy capped at {SCRAPY_PAGES} pages."
    )
    lines.append(
        f"Machine: {os.cpu_count()} cores; load average {load0[0]:.2f}/{load0[1]:.2f}/{load0[2]:.2f} "
        f"at start, {load1[0]:.2f}/{load1[1]:.2f}/{load1[2]:.2f} at end. "
        "Crawler and site share the machine."
    )
    lines.append("")
    hdr = (
        "| crawler | pages | requests | wall s | pages/s | peak RSS MiB | CPU s | "
        "CPU s / 1k pages | site CPU s | other CPU s |"
    )
    lines.append(hdr)
    lines.append("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    for r in results.values():
        lines.append(
            f"| {r.name} | {r.pages} | {r.requests} | {r.wall:.2f} | {r.pps:,.0f} | "
            f"{r.rss_mib:.1f} | {r.cpu:.2f} | {r.cpu_per_k:.2f} | {r.server_cpu:.2f} | {r.other_cpu:.2f} |"
        )
    if wrk:
        lines.append(
            f"| wrk ceiling | | {wrk['rps'] * WRK_SECS:,.0f} | {WRK_SECS} | {wrk['rps']:,.0f} req/s | | | | "
            f"{wrk['server_cpu']:.2f} | |"
        )
    lines.append("")
    lines.append(
        "pages = distinct HTML pages (`/`, `/p/{i}`) the site answered 200 to, counted "
        "server-side; requests = all requests the site saw (robots.txt, sitemaps, 404s included). "
        "CPU = user+sys of the crawler process (from `/usr/bin/time -v`); site CPU = the test "
        "site's CPU; other CPU = the rest of the machine's busy time during the run (another "
        "job competing for the 2 cores shows here)."
    )
    lines.append("")
    t = results.get("trawl")
    ratios = []
    if t:
        for other in ("wget2", "scrapy"):
            o = results.get(other)
            if o:
                ratios.append(f"- trawl / {other} pages/s: **{fmt_ratio(t.pps, o.pps)}**")
                ratios.append(
                    f"- trawl / {other} peak RSS: {fmt_ratio(t.rss_mib, o.rss_mib)} "
                    f"({t.rss_mib:.1f} vs {o.rss_mib:.1f} MiB)"
                )
                ratios.append(
                    f"- trawl / {other} CPU per page: {fmt_ratio(t.cpu_per_k, o.cpu_per_k)} "
                    f"({t.cpu_per_k:.2f} vs {o.cpu_per_k:.2f} CPU s / 1k pages)"
                )
        if wrk and wrk["rps"]:
            ratios.append(
                f"- trawl pages/s as a fraction of the wrk ceiling: **{t.pps / wrk['rps']:.1%}** "
                f"({t.pps:,.0f} / {wrk['rps']:,.0f})"
            )
    lines.extend(ratios)
    s = results.get("scrapy")
    if s:
        lines.append("")
        lines.append(
            f"Scrapy stops at CLOSESPIDER_PAGECOUNT={SCRAPY_PAGES}; its pages/s comes from the "
            f"{s.pages} pages it fetched ({s.extra.get('distinct_items', '?')} distinct item URLs)."
        )
    w = results.get("wget2")
    if w:
        lines.append(
            f"wget2 covered {w.gt_covered} of {gt_size} ground-truth pages with {w.requests} requests."
        )
    if t:
        lines.append(
            f"trawl wrote {t.items} items for a ground truth of {gt_size} pages "
            f"({'match' if t.items == gt_size else 'MISMATCH'})."
        )
    return "\n".join(lines)


def _on_term(signum, frame):
    raise KeyboardInterrupt(f"signal {signum}")


def main() -> int:
    signal.signal(signal.SIGTERM, _on_term)
    OUT.mkdir(parents=True, exist_ok=True)
    for tool in (TRAWL, TESTSITE):
        if not tool.exists():
            raise SystemExit(f"missing {tool}: build with cargo build --release -p trawl -p trawl-testsite")
    load0 = os.getloadavg()
    log(f"load average at start: {load0[0]:.2f} {load0[1]:.2f} {load0[2]:.2f} ({os.cpu_count()} cores)")
    gt = set(ground_truth())
    log(
        f"ground truth: {len(gt)} reachable pages (of {PAGES}; fanout {FANOUT}, "
        f"page bytes {PAGE_BYTES}, seed {SEED})"
    )

    wrk = run_wrk()
    results: dict[str, Result] = {}
    runners = {"trawl": run_trawl, "wget2": run_wget2, "scrapy": run_scrapy}
    for name in CRAWLERS:
        if name not in runners:
            raise SystemExit(f"unknown crawler {name!r} in CRAWLERS")
        results[name] = runners[name](gt)
    load1 = os.getloadavg()

    table = report(results, wrk, len(gt), load0, load1)
    versions = [
        f"trawl: {tool_version([str(TRAWL), '--version'])}",
        f"wget2: {tool_version(['wget2', '--version'])}",
        f"Scrapy: {tool_version([str(SCRAPY), 'version'])}",
        f"wrk: {tool_version(['wrk', '--version'])}",
    ]
    md = ["# trawl benchmark", "", f"Run: {time.strftime('%Y-%m-%d %H:%M:%S %Z')}", "", table]
    if NOTES or WARNINGS:
        md += ["", "Notes:"] + [f"- {n}" for n in NOTES] + [f"- WARNING: {w}" for w in WARNINGS]
    md += ["", "Versions: " + "; ".join(versions), ""]
    (OUT / "results.md").write_text("\n".join(md))

    log("\n" + "=" * 78)
    log(table)
    if NOTES:
        log("\nNotes:")
        for n in NOTES:
            log(f"- {n}")
    if WARNINGS:
        log("\nWarnings:")
        for w in WARNINGS:
            log(f"- {w}")
    log("\nVersions: " + "; ".join(versions))
    log(f"\nWrote {OUT / 'results.md'}")
    return 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    except KeyboardInterrupt as e:
        print(f"\nbench: interrupted ({e or 'SIGINT'}); crawler and site stopped", file=sys.stderr)
        sys.exit(130)
