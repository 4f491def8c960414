"""Checks the client against a running server (used by the test suite):

    python3 check_client.py API_URL KEY SITE_URL

It fails (exit 1, with the reason) when the client misses an operation of
/openapi.json or a call does not behave as documented.
"""

import json
import sys
import urllib.request

from trawl_client import Client, TrawlError


def main(api_url, key, site_url):
    spec = json.load(urllib.request.urlopen(api_url + "/openapi.json"))
    operations = {op["operationId"] for item in spec["paths"].values() for op in item.values()}
    missing = operations - set(Client.OPERATIONS)
    assert not missing, f"the client lacks {sorted(missing)}"
    for name in Client.OPERATIONS:
        assert hasattr(Client, name), name

    api = Client(api_url, key=key)
    assert api.healthz() and api.readyz()
    page = api.scrape(url=site_url + "/", formats=["json", "links", "markdown"],
                      fields={"heading": {"selector": "h1"}})
    assert page["status"] == 200, page
    assert page["links"] and page["markdown"], page
    site_map = api.map(url=site_url + "/", limit=20)
    assert 1 <= len(site_map["links"]) <= 20, site_map

    job = api.create_crawl(seeds=[site_url + "/"], settings={"max_pages": 15})
    items = list(api.crawl_items(job["id"]))
    done = api.get_crawl(job["id"])
    assert done["state"] == "done", done
    assert len(items) == done["items"] == 15, (len(items), done)
    rest = list(api.crawl_items(job["id"], after=10))
    assert rest == items[10:], "resumed after 10"
    assert any(j["id"] == job["id"] for j in api.list_crawls())

    try:
        api.scrape(url="ftp://nowhere/")
        raise AssertionError("a bad URL was accepted")
    except TrawlError as e:
        assert (e.status, e.code, e.pointer) == (400, "invalid_url", "/url"), e
    try:
        Client(api_url, key="wrong").list_crawls()
        raise AssertionError("a wrong key was accepted")
    except TrawlError as e:
        assert (e.status, e.code) == (401, "unauthorized"), e
    try:
        api.get_crawl("no-such-job")
        raise AssertionError("an unknown job was found")
    except TrawlError as e:
        assert (e.status, e.code) == (404, "not_found"), e
    print(f"client ok: {len(operations)} operations, {len(items)} items")


if __name__ == "__main__":
    main(*sys.argv[1:4])
