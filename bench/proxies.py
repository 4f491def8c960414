#!/usr/bin/env python3
"""Proxy benchmark driver: `trawl crawl` directly and through real proxies.

Called by bench/proxies.sh, which builds the binaries, starts the two test
sites and the 16 proxies, and exports DEF_BASE, DEF_SITE_PID, DEF_TRUTH,
PLAIN_BASE, PLAIN_SITE_PID, PLAIN_TRUTH, PROXY_LIST, TMP, TRAWL,
RESULTS_DIR and the knobs (DEF_PAGES, DEFENDED, BAN_FOR, BAN_ANSWER,
BAN_BY, DEF_CAP_PER_PROXY, DEF_POOLS, PAGES, CONC, REPEAT). Standard library
only.

Part 1, the defended site: one crawl per pool size (DEF_POOLS), each after
the site's windows and bans from the previous run have expired. Direct:
`--retries 0` (a retry would only wait out the ban). Through N proxies:
`--proxy-cooldown 1s --proxy-attempts 50`, and `--max-pages N×cap` so the
slow runs stay bounded. Success = pages_ok / pages (from --stats-json);
ok pages/s = pages_ok / the crawl's elapsed_secs; wall = the process's wall
time (start-up included).

Part 2, proxy overhead on the undefended site: direct, through the first
tinyproxy, through the first microsocks; REPEAT rounds, interleaved; the
median run by wall time is shown. CPU = user+sys of the trawl process
(/usr/bin/time -v); proxy and site CPU = what their processes used during
the run (/proc/PID/stat). The proxied runs also pass `--proxy-cooldown 1s`
(see the note printed under the table).

Every run is checked (exit 0; complete crawls fetched every reachable page
OK; capped runs reached their cap; every proxy of a pool was used); a
failed check is printed as it happens and at the end, and the exit status
is 1.
"""

from __future__ import annotations

import json
import os
import re
import signal
import statistics
import subprocess
import sys
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

BENCH = Path(__file__).resolve().parent
ROOT = BENCH.parent
TMP = Path(os.environ["TMP"]).resolve()
TRAWL = Path(os.environ.get("TRAWL", ROOT / "target" / "release" / "trawl"))
DEF_BASE = os.environ["DEF_BASE"].rstrip("/")
PLAIN_BASE = os.environ["PLAIN_BASE"].rstrip("/")
DEF_SITE_PID = int(os.environ.get("DEF_SITE_PID", "0") or 0)
PLAIN_SITE_PID = int(os.environ.get("PLAIN_SITE_PID", "0") or 0)
DEF_TRUTH = int(os.environ["DEF_TRUTH"])
PLAIN_TRUTH = int(os.environ["PLAIN_TRUTH"])
DEF_PAGES = int(os.environ.get("DEF_PAGES", "2000"))
DEFENDED = os.environ.get("DEFENDED", "20/1s")
BAN_FOR = os.environ.get("BAN_FOR", "1s")
BAN_ANSWER = os.environ.get("BAN_ANSWER", "429")
BAN_BY = os.environ.get("BAN_BY", "ip")
DEF_CAP_PER_PROXY = int(os.environ.get("DEF_CAP_PER_PROXY", "300"))
DEF_POOLS = [int(x) for x in os.environ.get("DEF_POOLS", "0 1 4 16").split()]
PAGES = int(os.environ.get("PAGES", "5000"))
CONC = int(os.environ.get("CONC", "64"))
REPEAT = max(1, int(os.environ.get("REPEAT", "3")))
RESULTS_DIR = Path(os.environ.get("RESULTS_DIR", BENCH / "out"))
TIME = "/usr/bin/time"
CLK_TCK = os.sysconf("SC_CLK_TCK")
PROXIED_FLAGS = ["--proxy-cooldown", "1s", "--proxy-attempts", "50"]

PROBLEMS: list[str] = []
CHILD: subprocess.Popen | None = None


def log(msg: str = "") -> None:
    print(msg, flush=True)


def fail(msg: str) -> None:
    PROBLEMS.append(msg)
    print(f"   FAIL: {msg}", flush=True)


def on_signal(signum, _frame) -> None:
    """Ends the running trawl (its own process group) and exits."""
    if CHILD is not None and CHILD.poll() is None:
        try:
            os.killpg(CHILD.pid, signal.SIGTERM)
            CHILD.wait(timeout=5)
        except (ProcessLookupError, subprocess.TimeoutExpired):
            try:
                os.killpg(CHILD.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
    sys.exit(128 + signum)


def duration_secs(text: str) -> float:
    """`500ms`, `1s`, `2m`, `1h` (the test site's duration syntax)."""
    m = re.fullmatch(r"\s*([0-9.]+)\s*(ms|s|m|h)\s*", text)
    if not m:
        raise SystemExit(f"cannot parse the duration {text!r}")
    return float(m.group(1)) * {"ms": 0.001, "s": 1, "m": 60, "h": 3600}[m.group(2)]


# --------------------------------------------------------------------------
# Proxies and processes
# --------------------------------------------------------------------------


@dataclass
class Proxy:
    kind: str  # tinyproxy | microsocks
    url: str
    pid: int
    ip: str  # outgoing address: the client IP the site sees


def read_proxies() -> list[Proxy]:
    out = []
    for line in Path(os.environ["PROXY_LIST"]).read_text().splitlines():
        if line.strip():
            kind, url, pid, ip = line.split()
            out.append(Proxy(kind, url, int(pid), ip))
    return out


def proc_cpu(pid: int) -> float:
    """CPU seconds (user+sys, all threads) process `pid` has used so far."""
    if not pid:
        return 0.0
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return 0.0
    fields = stat[stat.rindex(")") + 2 :].split()
    return (int(fields[11]) + int(fields[12])) / CLK_TCK


def time_v(path: Path) -> dict:
    r = {"user": 0.0, "sys": 0.0, "rss": 0, "wall": 0.0}
    for line in path.read_text(errors="replace").splitlines():
        line = line.strip()
        val = line.rsplit(": ", 1)[-1]
        if line.startswith("User time (seconds):"):
            r["user"] = float(val)
        elif line.startswith("System time (seconds):"):
            r["sys"] = float(val)
        elif line.startswith("Maximum resident set size (kbytes):"):
            r["rss"] = int(val)
        elif line.startswith("Elapsed (wall clock) time"):
            secs = 0.0
            for part in val.split(":"):
                secs = secs * 60 + float(part)
            r["wall"] = secs
    return r


@dataclass
class Run:
    name: str
    rc: int
    wall: float
    cpu: float
    rss_kib: int
    stats: dict
    output: Path
    cpu_of: dict[int, float] = field(default_factory=dict)  # watched pid -> CPU s during the run

    def s(self, key: str, default=0):
        v = self.stats.get(key, default)
        return default if v is None else v

    def proxy_rows(self) -> list[dict]:
        return ((self.stats.get("proxies") or {}).get("proxies")) or []


def run_trawl(name: str, args: list[str], watch: list[int]) -> Run:
    """Runs `trawl crawl ARGS` under /usr/bin/time -v."""
    global CHILD
    out = TMP / f"{name}.jsonl"
    stats = TMP / f"{name}-stats.json"
    tv = TMP / f"{name}.time"
    for p in (out, stats):
        p.unlink(missing_ok=True)
    cmd = [TIME, "-v", "-o", str(tv), str(TRAWL), "crawl", *args, "-q", "-o", str(out),
           "--stats-json", str(stats)]
    before = {pid: proc_cpu(pid) for pid in watch}
    with open(TMP / f"{name}.log", "wb") as logf:
        CHILD = subprocess.Popen(cmd, stdout=logf, stderr=subprocess.STDOUT, start_new_session=True)
        rc = CHILD.wait()
        CHILD = None
    after = {pid: proc_cpu(pid) for pid in watch}
    t = time_v(tv)
    try:
        st = json.loads(stats.read_text())
    except (OSError, ValueError):
        st = {}
    r = Run(name, rc, t["wall"], t["user"] + t["sys"], t["rss"], st, out,
            {pid: after[pid] - before[pid] for pid in watch})
    if rc != 0:
        fail(f"{name}: exit code {rc}; last lines of {TMP / (name + '.log')}:")
        for line in (TMP / f"{name}.log").read_text(errors="replace").splitlines()[-10:]:
            log(f"   | {line}")
    if not st:
        fail(f"{name}: no --stats-json written")
    return r


def statuses(path: Path) -> Counter:
    """HTTP status (or "error" without a response) of every page in a JSONL output."""
    c: Counter = Counter()
    if path.exists():
        for line in path.open():
            if line.strip():
                d = json.loads(line)
                st = d.get("status")
                c[st if st is not None else "error"] += 1
    return c


# --------------------------------------------------------------------------
# Part 1: the defended site
# --------------------------------------------------------------------------


def pool_label(pool: list[Proxy]) -> str:
    if not pool:
        return "direct"
    kinds = Counter(p.kind for p in pool)
    return " + ".join(f"{n} {k}" for k, n in kinds.items())


def defended(proxies: list[Proxy]) -> list[dict]:
    tinies = [p for p in proxies if p.kind == "tinyproxy"]
    settle = duration_secs(DEFENDED.split("/", 1)[1]) + duration_secs(BAN_FOR) + 0.5
    rows = []
    for i, n in enumerate(DEF_POOLS):
        if n > len(proxies):
            fail(f"pool of {n}: only {len(proxies)} proxies")
            continue
        # tinyproxy only while there are enough; the full pool is mixed.
        pool = tinies[:n] if n <= len(tinies) else proxies[:n]
        name = f"defended-{n}"
        args = [DEF_BASE + "/", "-c", str(CONC), "--per-host", str(CONC)]
        cap = n * DEF_CAP_PER_PROXY if n and DEF_CAP_PER_PROXY > 0 else 0
        if cap and cap >= DEF_TRUTH:
            cap = 0
        if n == 0:
            args += ["--retries", "0"]
        else:
            for p in pool:
                args += ["--proxy", p.url]
            args += PROXIED_FLAGS
        if cap:
            args += ["--max-pages", str(cap)]
        if i:
            time.sleep(settle)  # the previous run's windows and bans expire
        log(f"\n== {name}: {pool_label(pool)}" + (f", --max-pages {cap}" if cap else ""))
        r = run_trawl(name, args, [DEF_SITE_PID] + [p.pid for p in pool])
        pages, ok = r.s("pages"), r.s("pages_ok")
        elapsed = r.s("elapsed_secs", 0.0)
        prow = r.proxy_rows()
        row = dict(
            n=n, pool=pool_label(pool), cap=cap, run=r, pages=pages, ok=ok,
            success=ok / pages if pages else 0.0,
            ok_ps=ok / elapsed if elapsed else 0.0,
            pages_ps=r.s("pages_per_sec", 0.0),
            statuses=statuses(r.output),
        )
        rows.append(row)
        log(f"   {pages} pages, {ok} ok ({100 * row['success']:.1f}%), {row['ok_ps']:.1f} ok pages/s, "
            f"{r.s('bans')} bans, {r.s('rotations')} rotations, {r.s('proxy_waits')} waits, "
            f"wall {r.wall:.2f} s")
        if n == 0:
            log(f"   statuses: {dict(row['statuses'])}")
            continue
        # Checks: a proxied run fetches everything it set out to, through every proxy.
        want = cap or DEF_TRUTH
        if ok < want:
            fail(f"{name}: {ok} pages OK, expected {want}")
        if len(prow) != n:
            fail(f"{name}: {len(prow)} proxies in the stats, expected {n}")
        unused = [p["proxy"] for p in prow if not p.get("requests")]
        if unused:
            fail(f"{name}: proxies never used: {unused}")
        if prow:
            req = [p.get("requests", 0) for p in prow]
            okp = [p.get("successes", 0) for p in prow]
            log(f"   per proxy: requests {min(req)}-{max(req)}, successes {min(okp)}-{max(okp)}")
    return rows


def defended_table(rows: list[dict]) -> list[str]:
    window = DEFENDED.split("/", 1)
    md = [
        f"## 1. Defended site: {DEF_PAGES}-page test site (--defended {DEFENDED} --ban-for {BAN_FOR} "
        f"--ban-answer {BAN_ANSWER} --ban-by {BAN_BY}), -c {CONC} --per-host {CONC}\n",
        f"The site bans a client IP for {BAN_FOR} after more than {window[0]} requests within "
        f"{window[1]}. Each proxy sends from its own",
        "loopback address (127.0.0.2 …), so the site sees one client per proxy. Direct: `--retries 0`;",
        "proxied: `--proxy-cooldown 1s --proxy-attempts 50` (round-robin), "
        + (f"stopped at {DEF_CAP_PER_PROXY} pages per proxy" if DEF_CAP_PER_PROXY > 0 else "no page cap"),
        f"(`--max-pages`; a full crawl is {DEF_TRUTH} pages). Success = pages OK / pages fetched; "
        "ok pages/s over the crawl's own",
        "elapsed time; wall includes process start-up. Bans = banned answers seen through proxies "
        "(each cools that proxy",
        "down for the site and moves the request to the next usable proxy: a rotation); waits = "
        "waits for a usable proxy",
        "(every proxy cooling down; `proxy_waits`).\n",
        "| proxies | pool | pages | OK | success | ok pages/s | bans | rotations | waits "
        "| requests | wall s | exit |",
        "|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for row in rows:
        r: Run = row["run"]
        bans = "–" if row["n"] == 0 else str(r.s("bans"))
        rot = "–" if row["n"] == 0 else str(r.s("rotations"))
        waits = "–" if row["n"] == 0 else str(r.s("proxy_waits"))
        md.append(
            f"| {row['n']} | {row['pool']} | {row['pages']} | {row['ok']} | {100 * row['success']:.1f}% "
            f"| {row['ok_ps']:.1f} | {bans} | {rot} | {waits} | {r.s('requests')} | {r.wall:.2f} | {r.rc} |"
        )
    md.append("")
    for row in rows:
        r = row["run"]
        if row["n"] == 0:
            st = row["statuses"]
            banned = sum(v for k, v in st.items() if k != 200)
            md.append(
                f"- direct: {banned} of {row['pages']} pages got the ban answer or failed "
                f"(statuses {dict(sorted(st.items(), key=str))}); the crawl ends early because "
                "banned pages yield no links"
            )
        else:
            prow = r.proxy_rows()
            if prow:
                by_kind: dict[str, list[int]] = {}
                for p in prow:
                    kind = "microsocks" if str(p.get("proxy", "")).startswith("socks5") else "tinyproxy"
                    by_kind.setdefault(kind, []).append(p.get("successes", 0))
                kinds = ", ".join(
                    f"{k} {statistics.mean(v):.0f} OK pages per proxy ({min(v)}-{max(v)})"
                    for k, v in by_kind.items()
                )
                md.append(
                    f"- {row['n']} prox{'y' if row['n'] == 1 else 'ies'}: {r.s('retries')} retries, {r.s('proxy_failures')} proxy "
                    f"failures; {kinds}"
                )
    base = next((row for row in rows if row["n"] == 1), None)
    if base and base["ok_ps"]:
        for row in rows:
            if row["n"] > 1:
                md.append(
                    f"- {row['n']} proxies vs 1: **{row['ok_ps'] / base['ok_ps']:.1f}x** ok pages/s"
                )
    md.append("")
    return md


# --------------------------------------------------------------------------
# Part 2: proxy overhead on the undefended site
# --------------------------------------------------------------------------


def overhead(proxies: list[Proxy]) -> dict[str, list[Run]]:
    tiny = next(p for p in proxies if p.kind == "tinyproxy")
    socks = next(p for p in proxies if p.kind == "microsocks")
    configs = [("direct", None), ("tinyproxy", tiny), ("microsocks", socks)]
    runs: dict[str, list[Run]] = {c: [] for c, _ in configs}
    for rep in range(1, REPEAT + 1):
        for cname, proxy in configs:
            name = f"plain-{cname}-{rep}"
            args = [PLAIN_BASE + "/", "-c", str(CONC), "--per-host", str(CONC)]
            watch = [PLAIN_SITE_PID]
            if proxy:
                args += ["--proxy", proxy.url, "--proxy-cooldown", "1s"]
                watch.append(proxy.pid)
            log(f"\n== {name}" + (f": {proxy.url} (outgoing {proxy.ip})" if proxy else ""))
            r = run_trawl(name, args, watch)
            r.proxy_pid = proxy.pid if proxy else 0  # type: ignore[attr-defined]
            runs[cname].append(r)
            log(f"   {r.s('pages')} pages, {r.s('pages_ok')} ok, wall {r.wall:.2f} s, CPU {r.cpu:.2f} s, "
                f"{r.s('retries')} retries, {r.s('proxy_failures')} proxy failures")
            if r.s("pages_ok") != PLAIN_TRUTH or r.s("pages") != PLAIN_TRUTH:
                fail(f"{name}: {r.s('pages')} pages, {r.s('pages_ok')} OK, expected {PLAIN_TRUTH}")
    return runs


def median_run(rs: list[Run]) -> Run:
    return sorted(rs, key=lambda r: r.wall)[(len(rs) - 1) // 2]


def overhead_table(runs: dict[str, list[Run]]) -> list[str]:
    md = [
        f"## 2. Proxy overhead: undefended {PAGES}-page test site ({PLAIN_TRUTH} pages reachable), "
        f"-c {CONC} --per-host {CONC}\n",
        f"Median of {REPEAT} runs by wall time (runs interleaved). pages/s = pages / wall time of "
        "the trawl process (start-up",
        "included). CPU = user+sys of trawl; proxy and site CPU = what those processes used during "
        f"the run. {os.cpu_count()} cores,",
        "crawler, proxy and site on the same machine.\n",
        "| run | pages | wall s | pages/s | vs direct | trawl CPU s | CPU µs/page | CPU vs direct "
        "| proxy CPU s | site CPU s | peak RSS MiB | retries | proxy failures | walls s |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|",
    ]
    direct = median_run(runs["direct"]) if runs.get("direct") else None
    for cname, rs in runs.items():
        if not rs:
            continue
        r = median_run(rs)
        pages = r.s("pages")
        pps = pages / r.wall if r.wall else 0.0
        dpps = direct.s("pages") / direct.wall if direct and direct.wall else 0.0
        pid = getattr(r, "proxy_pid", 0)
        proxy_cpu = f"{r.cpu_of.get(pid, 0.0):.2f}" if pid else "–"
        site_cpu = r.cpu_of.get(PLAIN_SITE_PID, 0.0)
        walls = ", ".join(f"{x.wall:.2f}" for x in rs)
        md.append(
            f"| {cname} | {pages} | {r.wall:.2f} | {pps:.0f} | "
            f"{(pps / dpps if dpps else 0):.2f}x | {r.cpu:.2f} | {(1e6 * r.cpu / pages if pages else 0):.0f} | "
            f"{(r.cpu / direct.cpu if direct and direct.cpu else 0):.2f}x | {proxy_cpu} | {site_cpu:.2f} "
            f"| {r.rss_kib / 1024:.1f} | {r.s('retries')} | {r.s('proxy_failures')} | {walls} |"
        )
    md.append("")
    tr = runs.get("tinyproxy") or []
    retries = sum(r.s("retries") for r in tr)
    failures = sum(r.s("proxy_failures") for r in tr)
    md.append(
        f"- tinyproxy, all {len(tr)} runs: {retries} retries, {failures} proxy failures "
        "(trawl does not reuse connections to HTTP proxies: tinyproxy 1.11 closes the client"
    )
    md.append("  connection after every response without saying so).")
    md.append("")
    return md


# --------------------------------------------------------------------------


def main() -> int:
    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    proxies = read_proxies()
    t0 = time.monotonic()
    log(f"# part 1: defended site, pools {DEF_POOLS}")
    rows = defended(proxies)
    log(f"\n# part 2: proxy overhead, {REPEAT} rounds")
    runs = overhead(proxies)
    total = time.monotonic() - t0

    md = [f"# trawl proxy benchmark ({os.cpu_count()} cores, loopback, "
          f"{sum(p.kind == 'tinyproxy' for p in proxies)} tinyproxy + "
          f"{sum(p.kind == 'microsocks' for p in proxies)} microsocks)\n"]
    md += defended_table(rows)
    md += overhead_table(runs)
    md.append(f"Total time of the runs: {total:.0f} s.")
    if PROBLEMS:
        md.append("")
        for p in PROBLEMS:
            md.append(f"- PROBLEM: {p}")
    text = "\n".join(md) + "\n"
    RESULTS_DIR.mkdir(parents=True, exist_ok=True)
    (RESULTS_DIR / "proxies-results.md").write_text(text)
    log()
    print(text, end="")
    log(f"(written to {RESULTS_DIR / 'proxies-results.md'})")
    return 1 if PROBLEMS else 0


if __name__ == "__main__":
    sys.exit(main())
