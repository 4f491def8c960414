"""A small client for trawl's Scraper API, written from its /openapi.json.

Standard library only (urllib). One method per operation, named by its
operationId:

    from trawl_client import Client
    api = Client("http://127.0.0.1:8080", key="trawl_...")
    page = api.scrape(url="https://docs.example/", formats=["markdown", "links"])
    job = api.create_crawl(seeds=["https://docs.example/"], settings={"max_pages": 100})
    for item in api.crawl_items(job["id"]):
        print(item["url"])

Errors raise TrawlError with the API's stable `code`, its `message`, the
`pointer` of the offending value and, for 429, `retry_after` (seconds).
"""

import json
import urllib.error
import urllib.parse
import urllib.request


class TrawlError(Exception):
    """A failed call: `{"error": {"code", "message", "pointer"}}`."""

    def __init__(self, status, code, message, pointer=None, retry_after=None):
        super().__init__(f"{status} {code}: {message}" + (f" (at {pointer})" if pointer else ""))
        self.status = status
        self.code = code
        self.message = message
        self.pointer = pointer
        self.retry_after = retry_after


class Client:
    """The operations of /openapi.json."""

    OPERATIONS = (
        "scrape",
        "map",
        "create_crawl",
        "list_crawls",
        "get_crawl",
        "cancel_crawl",
        "crawl_items",
        "healthz",
        "readyz",
    )

    def __init__(self, base_url, key=None, timeout=60):
        self.base_url = base_url.rstrip("/")
        self.key = key
        self.timeout = timeout

    # -- transport ---------------------------------------------------------

    def _request(self, method, path, body=None, query=None):
        url = self.base_url + path
        if query:
            url += "?" + urllib.parse.urlencode(query)
        data = None if body is None else json.dumps(body).encode()
        request = urllib.request.Request(url, data=data, method=method)
        if data is not None:
            request.add_header("Content-Type", "application/json")
        if self.key:
            request.add_header("Authorization", f"Bearer {self.key}")
        try:
            return urllib.request.urlopen(request, timeout=self.timeout)
        except urllib.error.HTTPError as e:
            raise _error(e) from None

    def _json(self, method, path, body=None):
        with self._request(method, path, body) as response:
            return json.load(response)

    # -- operations --------------------------------------------------------

    def scrape(self, url, **options):
        """POST /v1/scrape: one URL; options are ScrapeRequest's fields
        (fields, formats, headers, render, proxy_pool, timeout)."""
        return self._json("POST", "/v1/scrape", {"url": url, **options})

    def map(self, url, **options):
        """POST /v1/map: the site's URLs (limit, search, sitemaps, subdomains)."""
        return self._json("POST", "/v1/map", {"url": url, **options})

    def create_crawl(self, **request):
        """POST /v1/crawls: seeds, settings, spider, webhook → the job (202)."""
        return self._json("POST", "/v1/crawls", request)

    def list_crawls(self):
        """GET /v1/crawls: this key's jobs."""
        return self._json("GET", "/v1/crawls")["crawls"]

    def get_crawl(self, id):
        """GET /v1/crawls/{id}: state and live stats."""
        return self._json("GET", f"/v1/crawls/{_segment(id)}")

    def cancel_crawl(self, id):
        """DELETE /v1/crawls/{id}: stop it; its items stay."""
        return self._json("DELETE", f"/v1/crawls/{_segment(id)}")

    def crawl_items(self, id, after=0):
        """GET /v1/crawls/{id}/items: yields items as they arrive, until the
        job ends. Resume a broken stream with after=<items read>."""
        query = {"after": after} if after else None
        with self._request("GET", f"/v1/crawls/{_segment(id)}/items", query=query) as response:
            for line in response:
                if line.strip():
                    yield json.loads(line)

    def healthz(self):
        """GET /healthz."""
        with self._request("GET", "/healthz") as response:
            return response.read().decode().strip() == "ok"

    def readyz(self):
        """GET /readyz."""
        with self._request("GET", "/readyz") as response:
            return response.read().decode().strip() == "ready"


def _segment(value):
    return urllib.parse.quote(str(value), safe="")


def _error(e):
    retry_after = e.headers.get("Retry-After")
    try:
        body = json.loads(e.read())["error"]
        code, message, pointer = body["code"], body["message"], body.get("pointer")
    except (ValueError, KeyError, TypeError):
        code, message, pointer = "http_error", str(e), None
    return TrawlError(e.code, code, message, pointer, int(retry_after) if retry_after else None)
