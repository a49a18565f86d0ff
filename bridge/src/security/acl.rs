//! Mosquitto ACL files (`acl_file`): the one source of topic rights for both
//! the embedded front and an external Mosquitto.
//!
//! The format, as Mosquitto 2.0 reads it:
//!
//! ```text
//! # a comment
//! user hearth-node-1                        # rules below belong to this user
//! topic write hearth-node/hearth-node-1/telemetry
//! topic read hearth-node/hearth-node-1/valve/set
//! topic hearth/#                            # no access word: readwrite
//! topic deny hearth/secret/#                # nothing under it, whatever else allows
//! pattern write devices/%u/#                # every user; %u = user name, %c = client id
//! ```
//!
//! `topic` lines before the first `user` line are for anonymous clients
//! (never consulted for a named user). A user named in two blocks gets the
//! rules of both (as Mosquitto merges them).
//!
//! Decisions (documented where they differ from Mosquitto):
//! - A `deny` rule wins wherever it is in the file (Mosquitto 2.0 takes the
//!   first matching rule in file order; the files `hearth certs` writes put
//!   no deny before an allow, so both agree on them).
//! - Subscribing needs the filter COVERED by one read/readwrite rule: every
//!   topic the filter can match must be matched by that rule (rule `a/+/c`
//!   covers `a/b/c` and `a/+/c`, not `a/#`), and no deny rule may overlap
//!   it. A filter covered only by the union of several rules is refused
//!   (conservative).
//! - Patterns never apply to a user name containing `+`, `#` or `/` (as
//!   Mosquitto: such a name could widen its own substituted rule). `%c`
//!   patterns only apply when the client id is given
//!   ([`Acl::may_publish_client`]); otherwise they are skipped.
//! - Lines are checked strictly: an unknown keyword, access word or an invalid
//!   filter is an error naming the line (Mosquitto ignores unknown keywords).

use std::fmt;
use std::path::Path;

/// What a rule grants.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Access {
    Read,
    Write,
    ReadWrite,
    Deny,
}

impl Access {
    fn reads(self) -> bool {
        matches!(self, Access::Read | Access::ReadWrite)
    }
    fn writes(self) -> bool {
        matches!(self, Access::Write | Access::ReadWrite)
    }
    /// The word in the file.
    pub fn word(self) -> &'static str {
        match self {
            Access::Read => "read",
            Access::Write => "write",
            Access::ReadWrite => "readwrite",
            Access::Deny => "deny",
        }
    }
}

/// One `topic`/`pattern` line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rule {
    pub access: Access,
    pub filter: String,
}

/// A parsed ACL file.
#[derive(Debug, Clone, Default)]
pub struct Acl {
    anonymous: Vec<Rule>,
    /// In file order of first appearance; a user's blocks are merged.
    users: Vec<(String, Vec<Rule>)>,
    patterns: Vec<Rule>,
}

/// A line of the file that is not what the format allows.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AclError {
    /// 1-based.
    pub line: usize,
    /// What the parser expected there.
    pub expected: String,
    /// What it found (capped).
    pub found: String,
}

impl fmt::Display for AclError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "ACL line {}: expected {}, found `{}`",
            self.line, self.expected, self.found
        )
    }
}

impl std::error::Error for AclError {}

fn err(line: usize, expected: &str, found: &str) -> AclError {
    let found: String = found.chars().take(80).collect();
    AclError {
        line,
        expected: expected.to_string(),
        found,
    }
}

impl Acl {
    /// Parses the text of an ACL file.
    pub fn parse(text: &str) -> Result<Acl, AclError> {
        let mut acl = Acl::default();
        let mut current: Option<usize> = None;
        for (i, raw) in text.lines().enumerate() {
            let n = i + 1;
            let line = raw.trim_end_matches('\r').trim_start();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            let (keyword, rest) = match line.split_once([' ', '\t']) {
                Some((k, r)) => (k, r.trim_start()),
                None => (line, ""),
            };
            match keyword {
                "user" => {
                    let name = rest.trim_end();
                    if name.is_empty() {
                        return Err(err(n, "a user name after `user`", line));
                    }
                    let idx = match acl.users.iter().position(|(u, _)| u == name) {
                        Some(idx) => idx,
                        None => {
                            acl.users.push((name.to_string(), Vec::new()));
                            acl.users.len() - 1
                        }
                    };
                    current = Some(idx);
                }
                "topic" | "pattern" => {
                    let rule = parse_rule(n, keyword, rest)?;
                    if keyword == "pattern" {
                        acl.patterns.push(rule);
                    } else {
                        match current {
                            Some(idx) => acl.users[idx].1.push(rule),
                            None => acl.anonymous.push(rule),
                        }
                    }
                }
                _ => {
                    return Err(err(
                        n,
                        "`user NAME`, `topic [read|write|readwrite|deny] FILTER`, `pattern ...`, a comment or a blank line",
                        line,
                    ));
                }
            }
        }
        Ok(acl)
    }

    /// Reads and parses an ACL file.
    pub fn load(path: &Path) -> anyhow::Result<Acl> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| anyhow::anyhow!("ACL file {}: {e}", path.display()))?;
        Acl::parse(&text).map_err(|e| anyhow::anyhow!("ACL file {}: {e}", path.display()))
    }

    /// Whether the file has a `user NAME` line for this user.
    pub fn has_user(&self, user: &str) -> bool {
        self.users.iter().any(|(u, _)| u == user)
    }

    /// Users named in the file, in order of first appearance.
    pub fn users(&self) -> impl Iterator<Item = &str> {
        self.users.iter().map(|(u, _)| u.as_str())
    }

    /// The rules of a user block (merged), without patterns.
    pub fn user_rules(&self, user: &str) -> &[Rule] {
        self.users
            .iter()
            .find(|(u, _)| u == user)
            .map(|(_, r)| r.as_slice())
            .unwrap_or(&[])
    }

    /// May `user` publish to `topic` (a topic name, no wildcards)? A
    /// write/readwrite rule of the user or a pattern matches it and no deny
    /// rule does. `%c` patterns are skipped (no client id).
    pub fn may_publish(&self, user: &str, topic: &str) -> bool {
        self.may_publish_client(user, None, topic)
    }

    /// [`Acl::may_publish`] with the client id for `%c` patterns.
    pub fn may_publish_client(&self, user: &str, client_id: Option<&str>, topic: &str) -> bool {
        if !valid_topic_name(topic) {
            return false;
        }
        let rules = self.effective_rules(user, client_id);
        if rules
            .iter()
            .any(|r| r.access == Access::Deny && filter_matches(&r.filter, topic))
        {
            return false;
        }
        rules
            .iter()
            .any(|r| r.access.writes() && filter_matches(&r.filter, topic))
    }

    /// May `user` subscribe to `filter`? One read/readwrite rule must cover
    /// every topic the filter can match, and no deny rule may overlap it.
    pub fn may_subscribe(&self, user: &str, filter: &str) -> bool {
        self.may_subscribe_client(user, None, filter)
    }

    /// [`Acl::may_subscribe`] with the client id for `%c` patterns.
    pub fn may_subscribe_client(&self, user: &str, client_id: Option<&str>, filter: &str) -> bool {
        if !valid_filter(filter) {
            return false;
        }
        let rules = self.effective_rules(user, client_id);
        if rules
            .iter()
            .any(|r| r.access == Access::Deny && filters_overlap(&r.filter, filter))
        {
            return false;
        }
        rules
            .iter()
            .any(|r| r.access.reads() && filter_covers(&r.filter, filter))
    }

    /// The user's rules plus the patterns substituted for this user.
    fn effective_rules(&self, user: &str, client_id: Option<&str>) -> Vec<Rule> {
        let mut rules: Vec<Rule> = self.user_rules(user).to_vec();
        let dangerous = |s: &str| s.contains(['+', '#', '/']);
        if dangerous(user) || client_id.is_some_and(dangerous) {
            return rules;
        }
        for p in &self.patterns {
            if let Some(filter) = substitute(&p.filter, user, client_id) {
                rules.push(Rule {
                    access: p.access,
                    filter,
                });
            }
        }
        rules
    }
}

/// `%u` -> user, `%c` -> client id (None when the pattern needs a client id
/// that is not known).
fn substitute(pattern: &str, user: &str, client_id: Option<&str>) -> Option<String> {
    let mut out = String::with_capacity(pattern.len() + user.len());
    let mut chars = pattern.chars().peekable();
    while let Some(c) = chars.next() {
        if c == '%' {
            match chars.peek() {
                Some('u') => {
                    chars.next();
                    out.push_str(user);
                    continue;
                }
                Some('c') => {
                    chars.next();
                    out.push_str(client_id?);
                    continue;
                }
                _ => {}
            }
        }
        out.push(c);
    }
    Some(out)
}

fn parse_rule(n: usize, keyword: &str, rest: &str) -> Result<Rule, AclError> {
    let rest = rest.trim_end();
    if rest.is_empty() {
        return Err(err(
            n,
            &format!("a topic filter after `{keyword}`"),
            keyword,
        ));
    }
    let (access, filter) = match rest.split_once([' ', '\t']) {
        None => (Access::ReadWrite, rest),
        Some((word, filter)) => {
            let access = match word {
                "read" => Access::Read,
                "write" => Access::Write,
                "readwrite" => Access::ReadWrite,
                "deny" => Access::Deny,
                _ => {
                    return Err(err(
                        n,
                        "an access word (read, write, readwrite or deny) before the filter",
                        word,
                    ));
                }
            };
            (access, filter.trim_start())
        }
    };
    if !valid_filter(filter) {
        return Err(err(
            n,
            "a valid MQTT topic filter (`+` a whole level, `#` only the whole last level)",
            filter,
        ));
    }
    Ok(Rule {
        access,
        filter: filter.to_string(),
    })
}

/// A valid subscription filter: non-empty, `+` and `#` only as whole
/// levels, `#` only last, no NUL.
pub fn valid_filter(filter: &str) -> bool {
    if filter.is_empty() || filter.contains('\0') {
        return false;
    }
    let levels: Vec<&str> = filter.split('/').collect();
    let last = levels.len() - 1;
    levels.iter().enumerate().all(|(i, l)| match *l {
        "#" => i == last,
        "+" => true,
        l => !l.contains(['+', '#']),
    })
}

/// A valid topic name for PUBLISH: non-empty, no wildcard, no NUL.
pub fn valid_topic_name(topic: &str) -> bool {
    !topic.is_empty() && !topic.contains(['+', '#', '\0'])
}

/// MQTT matching of a topic name against a filter (MQTT 3.1.1 §4.7): `+` one
/// level, `#` the rest including none (`a/#` matches `a`); topics starting
/// with `$` are not matched by a leading wildcard.
pub fn filter_matches(filter: &str, topic: &str) -> bool {
    if topic.starts_with('$') && filter.starts_with(['+', '#']) {
        return false;
    }
    let mut f = filter.split('/');
    let mut t = topic.split('/');
    loop {
        match (f.next(), t.next()) {
            (Some("#"), _) => return true,
            (None, None) => return true,
            (Some("+"), Some(_)) => {}
            (Some(fl), Some(tl)) if fl == tl => {}
            _ => return false,
        }
    }
}

/// Whether `rule` matches every topic `filter` can match.
pub fn filter_covers(rule: &str, filter: &str) -> bool {
    // A literal `$` first level: the rule must not start with a wildcard
    // (it would not match those topics). A wildcard first level in the
    // filter matches no `$` topic, so nothing to check.
    if filter.starts_with('$') && rule.starts_with(['+', '#']) {
        return false;
    }
    let mut r = rule.split('/');
    let mut f = filter.split('/');
    loop {
        match (r.next(), f.next()) {
            (Some("#"), _) => return true,
            (None, None) => return true,
            // The filter's `#` or `+` matches levels only the same
            // wildcard in the rule matches (`#` handled above).
            (Some("+"), Some("+")) => {}
            (_, Some("#")) | (_, Some("+")) => return false,
            (Some("+"), Some(_)) => {}
            (Some(rl), Some(fl)) if rl == fl => {}
            _ => return false,
        }
    }
}

/// Whether some topic is matched by both filters.
pub fn filters_overlap(a: &str, b: &str) -> bool {
    let dollar = |s: &str| s.starts_with('$');
    let wild = |s: &str| s.starts_with(['+', '#']);
    if (dollar(a) && wild(b)) || (dollar(b) && wild(a)) {
        return false;
    }
    let mut x = a.split('/');
    let mut y = b.split('/');
    loop {
        match (x.next(), y.next()) {
            (Some("#"), _) | (_, Some("#")) => return true,
            (None, None) => return true,
            (Some("+"), Some(_)) | (Some(_), Some("+")) => {}
            (Some(p), Some(q)) if p == q => {}
            _ => return false,
        }
    }
}

/// Text of a `user` block: `user NAME` then one `topic ACCESS FILTER` line
/// per rule, then a blank line.
pub fn user_block(user: &str, comment: Option<&str>, rules: &[Rule]) -> String {
    let mut s = format!("user {user}\n");
    if let Some(c) = comment {
        for l in c.lines() {
            s.push_str(&format!("# {l}\n"));
        }
    }
    for r in rules {
        s.push_str(&format!("topic {} {}\n", r.access.word(), r.filter));
    }
    s.push('\n');
    s
}

/// The file text without `user`'s blocks: each runs from its `user NAME`
/// line to the next `user` or `pattern` line (comments and blank lines
/// inside go with it).
pub fn remove_user_blocks(text: &str, user: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut skipping = false;
    for line in text.split_inclusive('\n') {
        let t = line.trim_end_matches(['\n', '\r']).trim_start();
        let keyword = t.split([' ', '\t']).next().unwrap_or("");
        if keyword == "user" || keyword == "pattern" {
            skipping = keyword == "user"
                && t.split_once([' ', '\t'])
                    .is_some_and(|(_, name)| name.trim() == user);
        }
        if !skipping {
            out.push_str(line);
        }
    }
    out
}

/// The file text with `user`'s blocks replaced by `block` (appended at the
/// end). Idempotent: the same block twice gives the same text.
pub fn replace_user_block(text: &str, user: &str, block: &str) -> String {
    let mut out = remove_user_blocks(text, user);
    if !out.is_empty() && !out.ends_with('\n') {
        out.push('\n');
    }
    if !out.is_empty() && !out.ends_with("\n\n") {
        out.push('\n');
    }
    out.push_str(block);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn matching_follows_mqtt() {
        assert!(filter_matches("a/+/c", "a/b/c"));
        assert!(filter_matches("a/+/c", "a//c"));
        assert!(!filter_matches("a/+/c", "a/b/c/d"));
        assert!(!filter_matches("a/+/c", "a/c"));
        assert!(filter_matches("a/#", "a"));
        assert!(filter_matches("a/#", "a/b/c"));
        assert!(!filter_matches("a/#", "ab"));
        assert!(filter_matches("#", "x/y"));
        assert!(!filter_matches("#", "$SYS/broker"));
        assert!(!filter_matches("+/broker", "$SYS/broker"));
        assert!(filter_matches("$SYS/#", "$SYS/broker"));
        assert!(filter_matches("+", "x"));
        assert!(!filter_matches("+", "x/y"));
        assert!(filter_matches("a/b", "a/b"));
        assert!(!filter_matches("a/b", "a/b/"));
        assert!(filter_matches("a/b/+", "a/b/"));
    }

    #[test]
    fn coverage() {
        assert!(filter_covers("a/+/c", "a/b/c"));
        assert!(filter_covers("a/+/c", "a/+/c"));
        assert!(!filter_covers("a/+/c", "a/#"));
        assert!(!filter_covers("a/+/c", "a/+/+"));
        assert!(filter_covers("a/#", "a/b/#"));
        assert!(filter_covers("a/#", "a/#"));
        assert!(filter_covers("a/#", "a"));
        assert!(filter_covers("a/#", "a/+/x"));
        assert!(!filter_covers("a/b/#", "a/#"));
        // `a/+/#` matches `a/x` (# also matches the parent level).
        assert!(filter_covers("a/+/#", "a/+"));
        // ...but not `a` itself, which `a/#` matches.
        assert!(!filter_covers("a/+/#", "a/#"));
        assert!(!filter_covers("a/b", "a/+"));
        assert!(!filter_covers("a/b", "a/b/c"));
        assert!(!filter_covers("a/b/c", "a/b"));
        assert!(filter_covers("#", "#"));
        assert!(filter_covers("#", "+/x"));
        assert!(!filter_covers("#", "$SYS/#"));
        assert!(!filter_covers("+/#", "$SYS/x"));
        assert!(filter_covers("$SYS/#", "$SYS/x/+"));
        assert!(!filter_covers("+", "#"));
    }

    #[test]
    fn overlap() {
        assert!(filters_overlap("a/#", "a"));
        assert!(filters_overlap("a/+/c", "a/b/+"));
        assert!(filters_overlap("+/b", "a/+"));
        assert!(!filters_overlap("a/b", "a/c"));
        assert!(!filters_overlap("a/+", "a/b/c"));
        assert!(filters_overlap("#", "x"));
        assert!(!filters_overlap("#", "$SYS/x"));
        assert!(filters_overlap("$SYS/#", "$SYS/+"));
    }

    const FILE: &str = "\
# written by hand
topic read public/#

user alice
topic write hearth-node/alice/telemetry
topic read hearth-node/alice/valve/set
topic   readwrite   shared/#
topic deny shared/secret/#
user bob
topic bob/#
pattern write users/%u/out
pattern read clients/%c/in
user alice
topic write hearth-node/alice/status
";

    #[test]
    fn parse_and_decide() {
        let acl = Acl::parse(FILE).unwrap();
        assert!(acl.has_user("alice") && acl.has_user("bob"));
        assert!(!acl.has_user("carol"));
        assert_eq!(acl.users().collect::<Vec<_>>(), ["alice", "bob"]);
        // write vs read
        assert!(acl.may_publish("alice", "hearth-node/alice/telemetry"));
        assert!(!acl.may_subscribe("alice", "hearth-node/alice/telemetry"));
        assert!(acl.may_subscribe("alice", "hearth-node/alice/valve/set"));
        assert!(!acl.may_publish("alice", "hearth-node/alice/valve/set"));
        // the second alice block is merged
        assert!(acl.may_publish("alice", "hearth-node/alice/status"));
        // another user's topics
        assert!(!acl.may_publish("alice", "bob/x"));
        assert!(!acl.may_publish("bob", "hearth-node/alice/telemetry"));
        // no access word = readwrite
        assert!(acl.may_publish("bob", "bob/x/y") && acl.may_subscribe("bob", "bob/#"));
        // deny wins, for publish and for any overlapping subscription
        assert!(acl.may_publish("alice", "shared/x"));
        assert!(!acl.may_publish("alice", "shared/secret/x"));
        assert!(acl.may_subscribe("alice", "shared/x/+"));
        assert!(!acl.may_subscribe("alice", "shared/#"));
        assert!(!acl.may_subscribe("alice", "shared/+/x"));
        // anonymous rules are not a named user's
        assert!(!acl.may_subscribe("alice", "public/x"));
        assert!(!acl.may_subscribe("carol", "public/x"));
        // patterns: %u for every user, %c only with the client id
        assert!(acl.may_publish("carol", "users/carol/out"));
        assert!(!acl.may_publish("carol", "users/alice/out"));
        assert!(!acl.may_subscribe("carol", "clients/c1/in"));
        assert!(acl.may_subscribe_client("carol", Some("c1"), "clients/c1/in"));
        assert!(!acl.may_subscribe_client("carol", Some("c1"), "clients/c2/in"));
        // a user name with a wildcard cannot widen a pattern
        assert!(!acl.may_publish("+", "users/x/out"));
        assert!(!acl.may_publish("a/b", "users/a/b/out"));
        // invalid topic names / filters are refused
        assert!(!acl.may_publish("bob", "bob/+"));
        assert!(!acl.may_subscribe("bob", "bob/#/x"));
        assert!(!acl.may_subscribe("bob", ""));
    }

    #[test]
    fn subscribe_needs_one_covering_rule() {
        let acl = Acl::parse("user u\ntopic read a/+/c\ntopic read x/#\n").unwrap();
        assert!(acl.may_subscribe("u", "a/b/c"));
        assert!(acl.may_subscribe("u", "a/+/c"));
        assert!(!acl.may_subscribe("u", "a/#"));
        assert!(!acl.may_subscribe("u", "#"));
        assert!(!acl.may_subscribe("u", "+/+/c"));
        assert!(acl.may_subscribe("u", "x/y/#"));
        assert!(acl.may_subscribe("u", "x"));
    }

    #[test]
    fn errors_name_the_line() {
        let e = Acl::parse("user a\n\ntopic sometimes a/b\n").unwrap_err();
        assert_eq!(e.line, 3);
        assert!(e.expected.contains("access word"), "{e}");
        assert!(e.to_string().contains("line 3"), "{e}");
        let e = Acl::parse("# c\nuser\n").unwrap_err();
        assert_eq!(e.line, 2);
        assert!(e.expected.contains("user name"));
        let e = Acl::parse("usr a\n").unwrap_err();
        assert_eq!(e.line, 1);
        let e = Acl::parse("user a\ntopic read a/#/b\n").unwrap_err();
        assert_eq!(e.line, 2);
        assert!(e.expected.contains("filter"));
        let e = Acl::parse("user a\ntopic\n").unwrap_err();
        assert_eq!(e.line, 2);
        let e = Acl::parse("user a\ntopic read a+b\n").unwrap_err();
        assert_eq!(e.line, 2);
    }

    #[test]
    fn crlf_and_spaces_in_names() {
        let acl = Acl::parse("user my device\r\ntopic write a b/c\r\n").unwrap();
        assert!(acl.has_user("my device"));
        assert!(acl.may_publish("my device", "a b/c"));
    }

    #[test]
    fn blocks_replace_and_remove() {
        let b1 = user_block(
            "dev1",
            Some("node"),
            &[Rule {
                access: Access::Write,
                filter: "d/dev1/t".into(),
            }],
        );
        let b2 = user_block(
            "dev2",
            None,
            &[Rule {
                access: Access::Read,
                filter: "d/dev2/set".into(),
            }],
        );
        let base = "user hearth-bridge\ntopic readwrite #\n\n";
        let t = replace_user_block(base, "dev1", &b1);
        let t = replace_user_block(&t, "dev2", &b2);
        // idempotent
        assert_eq!(replace_user_block(&t, "dev1", &b1), {
            let without = remove_user_blocks(&t, "dev1");
            replace_user_block(&without, "dev1", &b1)
        });
        let again = replace_user_block(&replace_user_block(&t, "dev2", &b2), "dev2", &b2);
        assert_eq!(again, replace_user_block(&t, "dev2", &b2));
        let acl = Acl::parse(&t).unwrap();
        assert!(acl.may_publish("dev1", "d/dev1/t"));
        assert!(acl.may_subscribe("dev2", "d/dev2/set"));
        // re-issuing dev1 with other rules replaces them
        let b1b = user_block(
            "dev1",
            None,
            &[Rule {
                access: Access::Write,
                filter: "d/dev1/other".into(),
            }],
        );
        let t2 = replace_user_block(&t, "dev1", &b1b);
        let acl = Acl::parse(&t2).unwrap();
        assert!(!acl.may_publish("dev1", "d/dev1/t"));
        assert!(acl.may_publish("dev1", "d/dev1/other"));
        assert!(acl.may_subscribe("dev2", "d/dev2/set"));
        assert!(acl.may_publish("hearth-bridge", "anything"));
        let t3 = remove_user_blocks(&t2, "dev1");
        let acl = Acl::parse(&t3).unwrap();
        assert!(!acl.has_user("dev1"));
        assert!(acl.has_user("dev2") && acl.has_user("hearth-bridge"));
        // a user whose name starts with another's is untouched
        let t4 = replace_user_block("user dev10\ntopic a\n", "dev1", &b1);
        assert!(Acl::parse(&t4).unwrap().has_user("dev10"));
        assert!(
            Acl::parse(&remove_user_blocks(&t4, "dev1"))
                .unwrap()
                .has_user("dev10")
        );
    }
}
