//! Fixtures shared by this crate's unit and integration tests; not part of
//! the API.

use trawl_core::{Request, Url};

/// A request carrying every per-request field a spider rule can set, for
/// round trips through a frontier's storage.
///
/// # Panics
/// Never: the URL is a constant.
#[allow(clippy::missing_panics_doc)]
pub fn rich_request() -> Request {
    let url = Url::parse("http://a.test/item/1?x=1").unwrap_or_else(|_| unreachable!());
    let mut r = Request::child_of(url, 2, "http://a.test/list".into());
    r.priority = 3;
    r.etag = Some("\"v1\"".into());
    r.last_modified = Some("Wed, 21 Oct 2015 07:28:00 GMT".into());
    r.callback = Some("parse_item".into());
    r.headers = Some(
        vec![
            ("Accept-Language".into(), "de".into()),
            ("X-Token".into(), "a b".into()),
            ("X-Token".into(), "second".into()),
        ]
        .into(),
    );
    r.proxy_pool = Some("residential".into());
    r
}
