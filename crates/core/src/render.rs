//! How a page is rendered in a browser, as data: the mode (`never`, `auto`,
//! `always`), what to wait for, the actions to run, what to block and what
//! to keep. A spider rule writes it; requests carry it (so a resumed or
//! distributed crawl renders the same way); `trawl-render` carries it out.

use std::time::Duration;

use serde::{Deserialize, Serialize};

/// When a page goes through the browser.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum RenderMode {
    /// Plain HTTP only.
    #[default]
    Never,
    /// Plain HTTP first; rendered only when the page needs it.
    Auto,
    /// Every page is rendered.
    Always,
}

impl std::str::FromStr for RenderMode {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "never" => Ok(RenderMode::Never),
            "auto" => Ok(RenderMode::Auto),
            "always" => Ok(RenderMode::Always),
            other => Err(format!(
                "unknown render mode `{other}` (expected never, auto or always)"
            )),
        }
    }
}

/// What one rule asks of the browser.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RenderSpec {
    #[serde(default)]
    pub mode: RenderMode,
    /// Conditions waited for in order after the navigation (none: `load`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub wait: Vec<Wait>,
    /// Run in order after the waits.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub actions: Vec<Action>,
    /// Resource kinds never loaded (default: images, media, fonts).
    #[serde(default = "default_block")]
    pub block: Vec<Blocked>,
    /// Keep the rendered HTML in the item (`_rendered_html`).
    #[serde(default, skip_serializing_if = "is_false")]
    pub html: bool,
    /// A full-page PNG per item.
    #[serde(default, skip_serializing_if = "is_false")]
    pub screenshot: bool,
    /// A PDF per item.
    #[serde(default, skip_serializing_if = "is_false")]
    pub pdf: bool,
    /// Selectors the page must have; in `auto` mode a plain page without
    /// them is rendered.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub require: Vec<String>,
    /// The whole page's deadline (default: the renderer's).
    #[serde(
        default,
        with = "opt_duration",
        skip_serializing_if = "Option::is_none"
    )]
    pub timeout: Option<Duration>,
}

fn is_false(b: &bool) -> bool {
    !*b
}

/// Images, media and fonts: what a crawler never needs.
pub fn default_block() -> Vec<Blocked> {
    vec![Blocked::Image, Blocked::Media, Blocked::Font]
}

impl RenderSpec {
    /// A spec with only a mode.
    pub fn mode(mode: RenderMode) -> RenderSpec {
        RenderSpec {
            mode,
            block: default_block(),
            ..RenderSpec::default()
        }
    }
}

/// Resource kinds that can be blocked.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Blocked {
    Image,
    Media,
    Font,
    Stylesheet,
    /// Every request to a host other than the page's.
    ThirdParty,
}

/// A condition the renderer waits for. Written as a table with one of
/// `event`, `network_idle`, `selector`, `js`, `delay`, and an optional
/// `timeout` (default 10 s).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(try_from = "WaitTable", into = "WaitTable")]
pub struct Wait {
    pub until: Until,
    pub timeout: Duration,
}

/// What a [`Wait`] waits for.
#[derive(Debug, Clone, PartialEq)]
pub enum Until {
    /// The `load` event.
    Load,
    /// `DOMContentLoaded`.
    DomContentLoaded,
    /// No request in flight for this long.
    NetworkIdle(Duration),
    /// An element matches the CSS selector.
    Selector(String),
    /// The JavaScript expression is truthy.
    Js(String),
    /// A fixed pause.
    Delay(Duration),
}

/// The default timeout of a wait or an action.
pub const STEP_TIMEOUT: Duration = Duration::from_secs(10);

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct WaitTable {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    event: Option<String>,
    #[serde(
        default,
        with = "opt_duration",
        skip_serializing_if = "Option::is_none"
    )]
    network_idle: Option<Duration>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    selector: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    js: Option<String>,
    #[serde(
        default,
        with = "opt_duration",
        skip_serializing_if = "Option::is_none"
    )]
    delay: Option<Duration>,
    #[serde(
        default,
        with = "opt_duration",
        skip_serializing_if = "Option::is_none"
    )]
    timeout: Option<Duration>,
}

impl TryFrom<WaitTable> for Wait {
    type Error = String;
    fn try_from(t: WaitTable) -> Result<Wait, String> {
        let mut found = Vec::new();
        if let Some(e) = t.event {
            found.push(match e.as_str() {
                "load" => Until::Load,
                "domcontentloaded" | "dom_content_loaded" => Until::DomContentLoaded,
                other => {
                    return Err(format!(
                        "unknown event `{other}` (expected load or domcontentloaded)"
                    ));
                }
            });
        }
        if let Some(d) = t.network_idle {
            found.push(Until::NetworkIdle(d));
        }
        if let Some(s) = t.selector {
            found.push(Until::Selector(s));
        }
        if let Some(js) = t.js {
            found.push(Until::Js(js));
        }
        if let Some(d) = t.delay {
            found.push(Until::Delay(d));
        }
        if found.len() != 1 {
            return Err(
                "a wait needs exactly one of event, network_idle, selector, js, delay".into(),
            );
        }
        let until = found.remove(0);
        let timeout = t.timeout.unwrap_or(match until {
            Until::Delay(d) => d + STEP_TIMEOUT,
            _ => STEP_TIMEOUT,
        });
        Ok(Wait { until, timeout })
    }
}

impl From<Wait> for WaitTable {
    fn from(w: Wait) -> WaitTable {
        let mut t = WaitTable {
            timeout: Some(w.timeout),
            ..WaitTable::default()
        };
        match w.until {
            Until::Load => t.event = Some("load".into()),
            Until::DomContentLoaded => t.event = Some("domcontentloaded".into()),
            Until::NetworkIdle(d) => t.network_idle = Some(d),
            Until::Selector(s) => t.selector = Some(s),
            Until::Js(js) => t.js = Some(js),
            Until::Delay(d) => t.delay = Some(d),
        }
        t
    }
}

/// One step run in the page. Written as a table with one of `scroll`
/// (times to scroll to the bottom), `click` (a selector), `type` (a
/// selector, with `text`), `wait` (a duration) or `wait_for` (a selector),
/// and optional `timeout` and `optional` (a click on nothing is no error).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(try_from = "ActionTable", into = "ActionTable")]
pub struct Action {
    pub step: Step,
    pub timeout: Duration,
    /// A missing element is skipped instead of failing the page.
    pub optional: bool,
}

/// What an [`Action`] does.
#[derive(Debug, Clone, PartialEq)]
pub enum Step {
    /// Scroll to the bottom this many times, each time waiting for the
    /// page to grow (or the step's timeout).
    Scroll(u32),
    /// Click the first element matching the selector, `times` times (each
    /// after the element is there again).
    Click { selector: String, times: u32 },
    /// Type text into the element matching the selector.
    Type { selector: String, text: String },
    /// Pause.
    Wait(Duration),
    /// Wait until the selector matches.
    WaitFor(String),
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct ActionTable {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    scroll: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    click: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    times: Option<u32>,
    #[serde(rename = "type", default, skip_serializing_if = "Option::is_none")]
    type_into: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    text: Option<String>,
    #[serde(
        default,
        with = "opt_duration",
        skip_serializing_if = "Option::is_none"
    )]
    wait: Option<Duration>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    wait_for: Option<String>,
    #[serde(
        default,
        with = "opt_duration",
        skip_serializing_if = "Option::is_none"
    )]
    timeout: Option<Duration>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    optional: Option<bool>,
}

impl TryFrom<ActionTable> for Action {
    type Error = String;
    fn try_from(t: ActionTable) -> Result<Action, String> {
        let mut found = Vec::new();
        if let Some(n) = t.scroll {
            found.push(Step::Scroll(n));
        }
        if let Some(selector) = t.click {
            found.push(Step::Click {
                selector,
                times: t.times.unwrap_or(1).max(1),
            });
        } else if t.times.is_some() {
            return Err("`times` goes with `click`".into());
        }
        match (t.type_into, t.text) {
            (Some(selector), Some(text)) => found.push(Step::Type { selector, text }),
            (Some(_), None) => return Err("`type` needs `text`".into()),
            (None, Some(_)) => return Err("`text` goes with `type`".into()),
            (None, None) => {}
        }
        if let Some(d) = t.wait {
            found.push(Step::Wait(d));
        }
        if let Some(s) = t.wait_for {
            found.push(Step::WaitFor(s));
        }
        if found.len() != 1 {
            return Err(
                "an action needs exactly one of scroll, click, type, wait, wait_for".into(),
            );
        }
        let step = found.remove(0);
        let timeout = t.timeout.unwrap_or(match &step {
            Step::Wait(d) => *d + STEP_TIMEOUT,
            _ => STEP_TIMEOUT,
        });
        Ok(Action {
            step,
            timeout,
            optional: t.optional.unwrap_or(false),
        })
    }
}

impl From<Action> for ActionTable {
    fn from(a: Action) -> ActionTable {
        let mut t = ActionTable {
            timeout: Some(a.timeout),
            optional: a.optional.then_some(true),
            ..ActionTable::default()
        };
        match a.step {
            Step::Scroll(n) => t.scroll = Some(n),
            Step::Click { selector, times } => {
                t.click = Some(selector);
                t.times = (times > 1).then_some(times);
            }
            Step::Type { selector, text } => {
                t.type_into = Some(selector);
                t.text = Some(text);
            }
            Step::Wait(d) => t.wait = Some(d),
            Step::WaitFor(s) => t.wait_for = Some(s),
        }
        t
    }
}

/// Durations written as "500ms", "2s", "1m" (humantime's forms), or a
/// number of seconds.
pub mod opt_duration {
    use std::time::Duration;

    use serde::{Deserialize, Deserializer, Serializer};

    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Written {
        Text(String),
        Seconds(f64),
    }

    pub fn serialize<S: Serializer>(d: &Option<Duration>, s: S) -> Result<S::Ok, S::Error> {
        match d {
            Some(d) => s.serialize_str(&format!("{}ms", d.as_millis())),
            None => s.serialize_none(),
        }
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Duration>, D::Error> {
        match Option::<Written>::deserialize(d)? {
            None => Ok(None),
            Some(Written::Seconds(s)) if s.is_finite() && s >= 0.0 => {
                Ok(Some(Duration::from_secs_f64(s)))
            }
            Some(Written::Seconds(s)) => {
                Err(serde::de::Error::custom(format!("invalid duration {s}")))
            }
            Some(Written::Text(t)) => parse(&t).map(Some).map_err(serde::de::Error::custom),
        }
    }

    /// "250ms", "2s", "1.5s", "1m".
    pub fn parse(text: &str) -> Result<Duration, String> {
        let t = text.trim();
        let split = t
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .unwrap_or(t.len());
        let (number, unit) = t.split_at(split);
        let n: f64 = number
            .parse()
            .map_err(|_| format!("invalid duration `{text}` (e.g. 500ms, 2s, 1m)"))?;
        let secs = match unit.trim() {
            "ms" => n / 1000.0,
            "s" | "" => n,
            "m" | "min" => n * 60.0,
            _ => return Err(format!("invalid duration `{text}` (e.g. 500ms, 2s, 1m)")),
        };
        Ok(Duration::from_secs_f64(secs))
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn waits_and_actions_read_from_tables_and_round_trip() {
        let spec: RenderSpec = serde_json::from_value(serde_json::json!({
            "mode": "always",
            "wait": [{"selector": "#list li", "timeout": "3s"}, {"network_idle": "500ms"}],
            "actions": [{"scroll": 3}, {"click": "button.more", "times": 2, "optional": true},
                        {"type": "input[name=q]", "text": "rust"}, {"wait": "200ms"}],
            "block": ["image", "third_party"],
            "screenshot": true
        }))
        .unwrap();
        assert_eq!(spec.mode, RenderMode::Always);
        assert_eq!(spec.wait[0].until, Until::Selector("#list li".into()));
        assert_eq!(spec.wait[0].timeout, Duration::from_secs(3));
        assert_eq!(
            spec.wait[1].until,
            Until::NetworkIdle(Duration::from_millis(500))
        );
        assert_eq!(spec.actions[0].step, Step::Scroll(3));
        assert!(spec.actions[1].optional);
        assert_eq!(
            spec.actions[1].step,
            Step::Click {
                selector: "button.more".into(),
                times: 2
            }
        );
        assert_eq!(spec.block, vec![Blocked::Image, Blocked::ThirdParty]);
        let back: RenderSpec =
            serde_json::from_value(serde_json::to_value(&spec).unwrap()).unwrap();
        assert_eq!(back, spec);
    }

    #[test]
    fn a_step_with_two_verbs_or_none_is_refused() {
        let two = serde_json::from_value::<Wait>(serde_json::json!({"selector": "a", "js": "1"}));
        assert!(two.unwrap_err().to_string().contains("exactly one"));
        let none = serde_json::from_value::<Action>(serde_json::json!({"timeout": "1s"}));
        assert!(none.unwrap_err().to_string().contains("exactly one"));
        let bad = serde_json::from_value::<Wait>(serde_json::json!({"event": "paint"}));
        assert!(bad.unwrap_err().to_string().contains("unknown event"));
        let dur = serde_json::from_value::<Wait>(serde_json::json!({"delay": "soon"}));
        assert!(dur.unwrap_err().to_string().contains("invalid duration"));
    }

    #[test]
    fn block_defaults_to_images_media_fonts() {
        let spec: RenderSpec = serde_json::from_value(serde_json::json!({})).unwrap();
        assert_eq!(spec.block, default_block());
        assert_eq!(spec.mode, RenderMode::Never);
    }
}
