"""Scrapy baseline for the trawl spider (item extraction) benchmark.

A plain scrapy.Spider (no CrawlSpider / LinkExtractor) doing what
bench/spider.sh's trawl spider file does: from the shop listings follow
`a.product-link` (product pages) and `a.next` (pagination), and on every
product page extract the same 10 fields with the same CSS selectors,
converted the same way as trawl's field types:

    number  -> float (first number, thousands separators dropped)
    integer -> int   ("(342 reviews)" -> 342)
    bool    -> "In stock" / "Out of stock" -> True / False
    list    -> every matching element's text
    date    -> the ISO date (already YYYY-MM-DD in time[datetime])

A field with no value is left out of the item, as trawl does.

Run (bench/spider.sh does this):
    scrapy runspider bench/scrapy_products.py -a start=http://127.0.0.1:PORT/shop/ \
        -s CONCURRENT_REQUESTS=64 -s CONCURRENT_REQUESTS_PER_DOMAIN=64 \
        -O bench/out/spider-scrapy.jsonl:jsonlines
"""

import re

import scrapy

_NUMBER = re.compile(r"\d[\d,]*(?:\.\d+)?")
_TRUE = {"in stock", "instock", "true", "yes", "available"}
_FALSE = {"out of stock", "outofstock", "false", "no", "sold out", "unavailable"}


def _text(sel, css):
    """Whitespace-collapsed text of the first match (None if empty)."""
    for el in sel.css(css):
        value = " ".join(" ".join(el.css("::text").getall()).split())
        if value:
            return value
    return None


def _attr(sel, css, name):
    value = sel.css(f"{css}::attr({name})").get()
    value = value.strip() if value else None
    return value or None


def _number(s):
    m = _NUMBER.search(s) if s else None
    return float(m.group().replace(",", "")) if m else None


def _integer(s):
    m = _NUMBER.search(s) if s else None
    if not m or "." in m.group():
        return None
    return int(m.group().replace(",", ""))


def _bool(s):
    if not s:
        return None
    word = s.strip().lower()
    if word in _TRUE:
        return True
    if word in _FALSE:
        return False
    return None


class ProductSpider(scrapy.Spider):
    name = "trawl_products_bench"

    custom_settings = {
        "ROBOTSTXT_OBEY": True,
        "AUTOTHROTTLE_ENABLED": False,
        "DOWNLOAD_DELAY": 0,
        "LOG_LEVEL": "WARNING",
        "TELNETCONSOLE_ENABLED": False,
        "HTTPCACHE_ENABLED": False,
        # Overridden with -s by bench/spider.sh; these apply when run by hand.
        "CONCURRENT_REQUESTS": 64,
        "CONCURRENT_REQUESTS_PER_DOMAIN": 64,
    }

    def __init__(self, start=None, *args, **kwargs):
        super().__init__(*args, **kwargs)
        if not start:
            raise ValueError("pass -a start=BASE_URL/shop/ (comma-separated for several)")
        self.start_urls = [u for u in start.split(",") if u]

    def parse(self, response):
        """A listing page: follow products and the next listing page."""
        for href in response.css("a.product-link::attr(href)").getall():
            yield response.follow(href, callback=self.parse_product)
        for href in response.css("a.next::attr(href)").getall():
            yield response.follow(href, callback=self.parse)

    def parse_product(self, response):
        fields = {
            "name": _text(response, "h1.product-title"),
            "price": _number(_text(response, "span.price")),
            "currency": _attr(response, "span.price", "data-currency"),
            "sku": _text(response, "span.sku"),
            "brand": _text(response, "span.brand"),
            "rating": _number(_attr(response, "div.rating", "data-rating")),
            "reviews": _integer(_text(response, "span.reviews")),
            "in_stock": _bool(_text(response, "span.stock")),
            "tags": [
                t
                for t in (
                    " ".join(" ".join(li.css("::text").getall()).split())
                    for li in response.css("ul.tags li")
                )
                if t
            ]
            or None,
            "released": _attr(response, "time", "datetime"),
            "image": _attr(response, "img.product-image", "src"),
        }
        # trawl: price and sku are required (missing -> error record, no item).
        if fields["price"] is None or fields["sku"] is None:
            self.logger.warning("missing required field on %s", response.url)
            return
        item = {"url": response.url}
        item.update((k, v) for k, v in fields.items() if v is not None)
        yield item
