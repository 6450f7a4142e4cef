//! The JUnit report through a real XML parser: the common schema's shape (GitLab, Jenkins,
//! GitHub Actions), counts that match the testcases, and escaping that survives parsing.

use super::{FIXTURES, Reports, run_with_reports};

/// Attribute `name` of `node`, which must be there.
pub fn attr<'a>(node: roxmltree::Node<'a, '_>, name: &str) -> &'a str {
    node.attribute(name)
        .unwrap_or_else(|| panic!("<{}> has no {name}", node.tag_name().name()))
}

fn elements<'a, 'i>(node: roxmltree::Node<'a, 'i>, tag: &str) -> Vec<roxmltree::Node<'a, 'i>> {
    node.children()
        .filter(|c| c.is_element() && c.tag_name().name() == tag)
        .collect()
}

fn number(node: roxmltree::Node, name: &str) -> usize {
    attr(node, name).parse().unwrap()
}

#[test]
fn junit_has_the_common_shape_and_the_right_counts() {
    let r = Reports::new();
    run_with_reports(&r, &[FIXTURES], 3);
    let text = r.junit();
    let doc = roxmltree::Document::parse(&text).unwrap_or_else(|e| panic!("{e}\n{text}"));
    let root = doc.root_element();
    assert_eq!(root.tag_name().name(), "testsuites");
    let allowed_children = ["properties", "testcase", "system-out", "system-err"];
    let mut totals = (0, 0, 0, 0);
    let mut per_suite = Vec::new();
    for suite in elements(root, "testsuite") {
        for a in [
            "name",
            "tests",
            "failures",
            "errors",
            "skipped",
            "time",
            "timestamp",
        ] {
            attr(suite, a);
        }
        let time: f64 = attr(suite, "time").parse().unwrap();
        assert!(time >= 0.0);
        let ts = attr(suite, "timestamp");
        assert!(ts.len() == 19 && ts.as_bytes()[10] == b'T', "{ts}");
        for child in suite.children().filter(|c| c.is_element()) {
            assert!(
                allowed_children.contains(&child.tag_name().name()),
                "{child:?}"
            );
        }
        let cases = elements(suite, "testcase");
        let count = |tag: &str| {
            cases
                .iter()
                .filter(|c| !elements(**c, tag).is_empty())
                .count()
        };
        for case in &cases {
            for a in ["name", "classname", "time"] {
                attr(*case, a);
            }
            assert!(attr(*case, "time").parse::<f64>().unwrap() >= 0.0);
            for f in elements(*case, "failure")
                .into_iter()
                .chain(elements(*case, "error"))
            {
                attr(f, "message");
                attr(f, "type");
            }
        }
        let (n, f, e, s) = (
            cases.len(),
            count("failure"),
            count("error"),
            count("skipped"),
        );
        assert_eq!(
            (
                number(suite, "tests"),
                number(suite, "failures"),
                number(suite, "errors"),
                number(suite, "skipped")
            ),
            (n, f, e, s),
            "{}",
            attr(suite, "name")
        );
        totals = (totals.0 + n, totals.1 + f, totals.2 + e, totals.3 + s);
        let names: Vec<&str> = cases.iter().map(|c| attr(*c, "name")).collect();
        per_suite.push((attr(suite, "name").to_string(), (n, f, e), names));
    }
    assert_eq!(
        (
            number(root, "tests"),
            number(root, "failures"),
            number(root, "errors"),
            number(root, "skipped")
        ),
        totals
    );
    let want = [
        (
            "expect_fails",
            (2, 1, 0),
            vec!["expect: latency back under 200ms", "cleanup"],
        ),
        ("fail_called", (2, 1, 0), vec!["fail", "cleanup"]),
        (
            "pod_kill_passes",
            (5, 0, 0),
            vec![
                "steady_state: the API answers",
                "expect: pods ready again",
                "always: no error budget burnt",
                "steady_state (after cleanup): the API answers",
                "cleanup",
            ],
        ),
        ("script_error", (2, 0, 1), vec!["script error", "cleanup"]),
    ];
    assert_eq!(per_suite.len(), want.len());
    for ((name, counts, names), (w, wc, wn)) in per_suite.iter().zip(want) {
        assert!(name.contains(w), "{name}");
        assert_eq!(*counts, wc, "{name}");
        assert_eq!(*names, wn, "{name}");
    }

    // Escaping survives a real parser: quotes, <, & in messages and in the log.
    let failure = root
        .descendants()
        .find(|n| n.has_tag_name("failure") && attr(*n, "type") == "expect")
        .unwrap();
    assert!(
        attr(failure, "message").contains("a <b> & \"c\""),
        "{failure:?}"
    );
    assert!(
        failure
            .text()
            .unwrap()
            .contains("observed: note: a <b> & \"c\", p99_ms: 512")
    );
    let error = root
        .descendants()
        .find(|n| n.has_tag_name("error"))
        .unwrap();
    assert_eq!(attr(error, "type"), "script");
    assert!(attr(error, "message").contains("array index 5 out of bounds"));
    let out = root
        .descendants()
        .filter(|n| n.has_tag_name("system-out"))
        .map(|n| n.text().unwrap_or_default().to_string())
        .collect::<String>();
    assert!(
        out.contains("restoring the <test> & \"quoted\" state"),
        "{out}"
    );
    let props: Vec<(&str, &str)> = root
        .descendants()
        .filter(|n| n.has_tag_name("property"))
        .map(|n| (attr(n, "name"), attr(n, "value")))
        .collect();
    assert!(props.contains(&("recovery_ms", "5444.8")), "{props:?}");
    assert!(props.contains(&("p99_before_ms", "120.5")), "{props:?}");
}
