//! Which playbooks a run selects: a playbook's `//!` header (its title, and tags from a
//! `//! tags: network, mlflow` line) and `--filter` patterns over names and tags.

/// What a playbook's leading `//!` lines say about it.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Header {
    /// The first `//!` line.
    pub title: Option<String>,
    /// From `//! tags: a, b` (commas or spaces), lower case.
    pub tags: Vec<String>,
    /// From `//! higher is worse: KEY, ...` and `//! lower is worse: KEY, ...`: records whose
    /// change `playbook report --baseline` judges (key, `higher` or `lower`).
    pub worse_if: Vec<(String, String)>,
}

impl Header {
    /// Reads the `//!` lines at the top of `text` (blank lines between them are allowed).
    pub fn parse(text: &str) -> Header {
        let mut h = Header::default();
        for line in text.lines().map(str::trim) {
            if line.is_empty() {
                continue;
            }
            let Some(doc) = line.strip_prefix("//!") else {
                break;
            };
            let doc = doc.trim();
            if let Some(tags) = doc
                .strip_prefix("tags:")
                .or_else(|| doc.strip_prefix("Tags:"))
            {
                h.tags.extend(
                    tags.split(|c: char| c == ',' || c.is_whitespace())
                        .filter(|t| !t.is_empty())
                        .map(str::to_lowercase),
                );
            } else if let Some((dir, keys)) = doc
                .strip_prefix("higher is worse:")
                .map(|k| ("higher", k))
                .or_else(|| doc.strip_prefix("lower is worse:").map(|k| ("lower", k)))
            {
                h.worse_if.extend(
                    keys.split(|c: char| c == ',' || c.is_whitespace())
                        .filter(|k| !k.is_empty())
                        .map(|k| (k.to_string(), dir.to_string())),
                );
            } else if h.title.is_none() && !doc.is_empty() {
                h.title = Some(doc.to_string());
            }
        }
        h
    }
}

/// `--filter` patterns: a playbook is selected when any matches (or when there are none).
#[derive(Debug, Clone, Default)]
pub struct Filter(pub Vec<String>);

impl Filter {
    /// Whether the playbook `name` (its path) with `tags` is selected. A pattern matches a tag
    /// exactly (case-insensitive), or the name: as a glob (`*`, `?`) over the whole path or the
    /// file name, else as a substring. `tag:NAME` matches tags only.
    pub fn matches(&self, name: &str, tags: &[String]) -> bool {
        self.0.is_empty() || self.0.iter().any(|p| one(p, name, tags))
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

fn one(pattern: &str, name: &str, tags: &[String]) -> bool {
    let has_tag = |t: &str| tags.iter().any(|x| x.eq_ignore_ascii_case(t.trim()));
    if let Some(tag) = pattern.strip_prefix("tag:") {
        return has_tag(tag);
    }
    if has_tag(pattern) {
        return true;
    }
    let file = name.rsplit(['/', '\\']).next().unwrap_or(name);
    if pattern.contains(['*', '?']) {
        glob(pattern, name) || glob(pattern, file)
    } else {
        name.to_lowercase().contains(&pattern.to_lowercase())
    }
}

/// `*` matches any run of characters, `?` one character; everything else itself.
fn glob(pattern: &str, text: &str) -> bool {
    let p: Vec<char> = pattern.chars().collect();
    let t: Vec<char> = text.chars().collect();
    let (mut pi, mut ti) = (0, 0);
    let mut star: Option<(usize, usize)> = None;
    while ti < t.len() {
        if pi < p.len() && (p[pi] == '?' || p[pi] == t[ti]) {
            pi += 1;
            ti += 1;
        } else if pi < p.len() && p[pi] == '*' {
            star = Some((pi, ti));
            pi += 1;
        } else if let Some((sp, st)) = star {
            pi = sp + 1;
            ti = st + 1;
            star = Some((sp, st + 1));
        } else {
            return false;
        }
    }
    p[pi..].iter().all(|c| *c == '*')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_header_gives_title_and_tags() {
        let h = Header::parse(
            "//! Kills a predictor pod.\n//!\n//! tags: network, MLflow  kserve\nlet x = 1;\n//! tags: late\n",
        );
        assert_eq!(h.title.as_deref(), Some("Kills a predictor pod."));
        assert_eq!(h.tags, ["network", "mlflow", "kserve"]);
        assert_eq!(Header::parse("let x = 1;"), Header::default());
    }

    #[test]
    fn patterns_match_names_globs_and_tags() {
        let tags = vec!["network".to_string()];
        let f = |p: &str| Filter(vec![p.into()]);
        let name = "playbooks/network-delay.rhai";
        assert!(f("delay").matches(name, &[]));
        assert!(f("DELAY").matches(name, &[]));
        assert!(f("network-*").matches(name, &[]));
        assert!(f("playbooks/*.rhai").matches(name, &[]));
        assert!(f("net?ork-delay.rhai").matches(name, &[]));
        assert!(!f("pod-*").matches(name, &[]));
        assert!(f("network").matches("a.rhai", &tags));
        assert!(f("tag:Network").matches("a.rhai", &tags));
        assert!(!f("tag:delay").matches(name, &tags));
        assert!(Filter::default().matches("x", &[]));
        assert!(Filter(vec!["nope".into(), "delay".into()]).matches(name, &[]));
    }
}
