//! InstanceName and HostName patterns: `{R:x}` numbers instances from x, `{R:x,F:y}` pads
//! the number to y digits, `{IP}` (HostName only) is the private IP. Without a pattern,
//! several instances get the suffix 1…n.

/// The name of instance `index` (0-based) of `count`.
pub fn expand(template: &str, index: u32, count: u32, ip: Option<&str>) -> String {
    let mut out = String::with_capacity(template.len() + 8);
    let mut found_pattern = false;
    let mut rest = template;
    while let Some(start) = rest.find('{') {
        out.push_str(&rest[..start]);
        let after = &rest[start..];
        match after
            .find('}')
            .and_then(|end| substitute(&after[1..end], index, ip).map(|s| (s, end)))
        {
            Some((text, end)) => {
                found_pattern = true;
                out.push_str(&text);
                rest = &after[end + 1..];
            }
            None => {
                out.push('{');
                rest = &after[1..];
            }
        }
    }
    out.push_str(rest);
    if !found_pattern && count > 1 {
        out.push_str(&(index + 1).to_string());
    }
    out
}

fn substitute(inner: &str, index: u32, ip: Option<&str>) -> Option<String> {
    if inner == "IP" {
        return ip.map(str::to_string);
    }
    let spec = inner.strip_prefix("R:")?;
    let (start, width) = match spec.split_once(",F:") {
        Some((s, w)) => (s, w.parse::<usize>().ok().filter(|w| *w <= 8)?),
        None => (spec, 0),
    };
    let start: u64 = start.parse().ok()?;
    Some(format!("{:0width$}", start + u64::from(index)))
}

/// Linux host names: 2–60 characters, segments of letters, digits and `-` between dots,
/// no dot or hyphen first, last or twice in a row.
pub fn is_valid_host_name(name: &str) -> bool {
    let len = name.chars().count();
    if !(2..=60).contains(&len) {
        return false;
    }
    let bytes = name.as_bytes();
    let edge = |b: u8| b == b'.' || b == b'-';
    if edge(bytes[0]) || edge(bytes[bytes.len() - 1]) {
        return false;
    }
    if name.contains("..") || name.contains("--") || name.contains(".-") || name.contains("-.") {
        return false;
    }
    name.bytes()
        .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'.')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn patterns_from_the_reference() {
        assert_eq!(expand("server_{R:3}", 0, 2, None), "server_3");
        assert_eq!(expand("server_{R:3}", 1, 2, None), "server_4");
        assert_eq!(expand("server_{R:3,F:3}", 1, 2, None), "server_004");
        assert_eq!(expand("app_{R:99,F:2}", 1, 2, None), "app_100");
        assert_eq!(expand("server_", 0, 2, None), "server_1");
        assert_eq!(expand("server_", 1, 2, None), "server_2");
        assert_eq!(expand("single", 0, 1, None), "single");
        assert_eq!(expand("a{}b", 0, 2, None), "a{}b1");
        assert_eq!(
            expand("node-{IP}", 0, 1, Some("10.0.12.8")),
            "node-10.0.12.8"
        );
        assert_eq!(expand("x{R:1}-{R:10}", 2, 3, None), "x3-12");
    }

    #[test]
    fn host_name_rules() {
        assert!(is_valid_host_name("web-1"));
        assert!(is_valid_host_name("node-10.0.12.8"));
        assert!(!is_valid_host_name("a"));
        assert!(!is_valid_host_name("-web"));
        assert!(!is_valid_host_name("web..1"));
        assert!(!is_valid_host_name("web_1"));
        assert!(!is_valid_host_name(&"a".repeat(61)));
    }
}
