//! Tests of CRD schema validation against the real Chaos Mesh, KServe and Argo CRDs and examples.

use super::*;
use serde_json::json;

fn load(file: &str) -> Value {
    let path = format!("{}/../../crds/{file}", env!("CARGO_MANIFEST_DIR"));
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"));
    serde_saphyr::from_str(&text).unwrap_or_else(|e| panic!("{path}: {e}"))
}

fn schema(crd: &str) -> Value {
    load(crd)["spec"]["versions"][0]["schema"]["openAPIV3Schema"].clone()
}

fn errors(schema: &Value, object: &Value) -> Vec<String> {
    validate(schema, object)
        .iter()
        .map(ToString::to_string)
        .collect()
}

fn pod(spec: Value) -> Value {
    json!({"apiVersion": "chaos-mesh.org/v1alpha1", "kind": "PodChaos", "metadata": {"name": "p"}, "spec": spec})
}

#[test]
fn upstream_examples_are_valid() {
    for (crd, example) in [
        (
            "chaos-mesh/podchaos.yaml",
            "chaos-mesh/examples/pod-failure-example.yaml",
        ),
        (
            "chaos-mesh/podchaos.yaml",
            "chaos-mesh/examples/pod-kill-example.yaml",
        ),
        (
            "chaos-mesh/networkchaos.yaml",
            "chaos-mesh/examples/network-delay-example.yaml",
        ),
        (
            "chaos-mesh/networkchaos.yaml",
            "chaos-mesh/examples/network-partition-example.yaml",
        ),
        (
            "chaos-mesh/stresschaos.yaml",
            "chaos-mesh/examples/burn-cpu.yaml",
        ),
        (
            "chaos-mesh/stresschaos.yaml",
            "chaos-mesh/examples/cause-pod-oom.yaml",
        ),
        (
            "chaos-mesh/statuscheck.yaml",
            "chaos-mesh/examples/statuscheck-example.yaml",
        ),
        (
            "chaos-mesh/schedule.yaml",
            "chaos-mesh/examples/schedule-podchaos.yaml",
        ),
        (
            "chaos-mesh/workflow.yaml",
            "chaos-mesh/examples/workflow/serial.yaml",
        ),
        (
            "chaos-mesh/workflow.yaml",
            "chaos-mesh/examples/workflow/parallel.yaml",
        ),
        (
            "kserve/inferenceservice-minimal.yaml",
            "kserve/examples/sklearn.yaml",
        ),
        (
            "kserve/inferenceservice.yaml",
            "kserve/examples/sklearn.yaml",
        ),
        ("argo/workflow.yaml", "argo/examples/hello-world.yaml"),
    ] {
        let (s, mut object) = (schema(crd), load(example));
        assert_eq!(errors(&s, &object), Vec::<String>::new(), "{example}");
        prune_and_default(&s, &mut object);
        assert_eq!(
            errors(&s, &object),
            Vec::<String>::new(),
            "{example} after defaulting"
        );
    }
}

#[test]
fn enum_required_and_type_messages() {
    let s = schema("chaos-mesh/podchaos.yaml");
    let spec = json!({"action": "pod-kill", "mode": "bogus", "selector": {}});
    assert_eq!(
        errors(&s, &pod(spec)),
        [
            r#"spec.mode: Unsupported value: "bogus": supported values: "one", "all", "fixed", "fixed-percent", "random-max-percent""#
        ]
    );
    assert_eq!(
        errors(&s, &pod(json!({"action": "pod-kill", "mode": "one"}))),
        ["spec.selector: Required value"]
    );
    assert_eq!(
        errors(&s, &json!({"kind": "PodChaos"})),
        ["spec: Required value"]
    );
    let spec = json!({"action": "pod-kill", "mode": "one", "selector": {}, "value": 5});
    assert_eq!(
        errors(&s, &pod(spec)),
        [
            r#"spec.value: Invalid value: "integer": spec.value in body must be of type string: "integer""#
        ]
    );
    let spec =
        json!({"action": "pod-kill", "mode": "one", "selector": {}, "containerNames": ["a", true]});
    assert_eq!(
        errors(&s, &pod(spec)),
        [
            r#"spec.containerNames[1]: Invalid value: "boolean": spec.containerNames[1] in body must be of type string: "boolean""#
        ]
    );
    let spec = json!({"action": "pod-kill", "mode": 3, "selector": "all"});
    assert_eq!(
        errors(&s, &pod(spec)),
        [
            r#"spec.mode: Invalid value: "integer": spec.mode in body must be of type string: "integer""#,
            r#"spec.mode: Unsupported value: 3: supported values: "one", "all", "fixed", "fixed-percent", "random-max-percent""#,
            r#"spec.selector: Invalid value: "string": spec.selector in body must be of type object: "string""#,
        ]
    );
    let spec = json!({"action": "pod-kill", "mode": "one", "selector": {"expressionSelectors": [{"key": "k"}]}});
    assert_eq!(
        errors(&s, &pod(spec)),
        ["spec.selector.expressionSelectors[0].operator: Required value"]
    );
}

#[test]
fn numbers_and_bounds() {
    let s = schema("chaos-mesh/podchaos.yaml");
    let with_grace = |g: Value| {
        pod(json!({"action": "pod-kill", "mode": "one", "selector": {}, "gracePeriod": g}))
    };
    assert_eq!(
        errors(&s, &with_grace(json!(-1))),
        [
            "spec.gracePeriod: Invalid value: -1: spec.gracePeriod in body should be greater than or equal to 0"
        ]
    );
    assert_eq!(
        errors(&s, &with_grace(json!(1.5))),
        [
            r#"spec.gracePeriod: Invalid value: "number": spec.gracePeriod in body must be of type integer: "number""#
        ]
    );
    assert!(
        errors(&s, &with_grace(json!(2.0))).is_empty(),
        "integral floats are integers"
    );
    assert!(errors(&s, &with_grace(json!(0))).is_empty());
    let s = schema("chaos-mesh/stresschaos.yaml");
    let cpu = |load: Value| json!({"kind": "StressChaos", "spec": {"mode": "all", "selector": {}, "stressors": {"cpu": {"workers": 1, "load": load}}}});
    assert_eq!(
        errors(&s, &cpu(json!(150))),
        [
            "spec.stressors.cpu.load: Invalid value: 150: spec.stressors.cpu.load in body should be less than or equal to 100"
        ]
    );
    assert_eq!(
        errors(&s, &cpu(json!(100.5))),
        [
            r#"spec.stressors.cpu.load: Invalid value: "number": spec.stressors.cpu.load in body must be of type integer: "number""#,
            "spec.stressors.cpu.load: Invalid value: 100.5: spec.stressors.cpu.load in body should be less than or equal to 100",
        ]
    );
    let bounds = json!({"type": "number", "minimum": 1.5, "exclusiveMinimum": true, "maximum": 2000000, "exclusiveMaximum": true});
    assert_eq!(
        errors(&bounds, &json!(1.5)),
        [": Invalid value: 1.5:  in body should be greater than 1.5"]
    );
    assert_eq!(
        errors(&bounds, &json!(3e6)),
        [": Invalid value: 3e+06:  in body should be less than 2e+06"]
    );
    assert_eq!(
        errors(&bounds, &json!(1)),
        [": Invalid value: 1:  in body should be greater than 1"]
    );
}

#[test]
fn pattern_on_network_delay() {
    let s = schema("chaos-mesh/networkchaos.yaml");
    let mut object = load("chaos-mesh/examples/network-delay-example.yaml");
    object["spec"]["delay"]["latency"] = json!("abc");
    assert_eq!(
        errors(&s, &object),
        [
            r#"spec.delay.latency: Invalid value: "abc": spec.delay.latency in body should match '^[0-9]+(\.[0-9]+)?(ns|us|ms|s|m|h)$'"#
        ]
    );
    object["spec"]["delay"]["latency"] = json!("1.5ms");
    assert!(errors(&s, &object).is_empty());
    object["spec"]["delay"]["latency"] = json!("١ms"); // Arabic-Indic digit: not [0-9]
    assert_eq!(errors(&s, &object).len(), 1);
    let digits = json!({"type": "string", "pattern": r"^\d+$"});
    assert_eq!(errors(&digits, &json!("12")).len(), 0);
    assert_eq!(
        errors(&digits, &json!("١٢")).len(),
        1,
        "Go's \\d is ASCII-only"
    );
    let broken = json!({"type": "string", "pattern": "("});
    assert!(errors(&broken, &json!("x"))[0].contains("should match '(, but pattern is invalid: "));
}

#[test]
fn strings_arrays_and_objects() {
    let s = json!({"type": "object", "properties": {
        "name": {"type": "string", "minLength": 2, "maxLength": 4},
        "tags": {"type": "array", "minItems": 1, "maxItems": 2, "items": {"type": "string"}},
        "one": {"type": "array", "maxItems": 1},
        "set": {"type": "array", "uniqueItems": true},
        "labels": {"type": "object", "additionalProperties": {"type": "string"}},
        "closed": {"type": "object", "additionalProperties": false, "properties": {"a": {}}},
        "maybe": {"type": "string", "nullable": true},
        "never": {"type": "string"},
        "when": {"type": "string", "format": "date-time"},
        "port": {"x-kubernetes-int-or-string": true, "anyOf": [{"type": "integer"}, {"type": "string"}]},
    }});
    let e = |v: Value| errors(&s, &v);
    assert_eq!(
        e(json!({"name": "a"})),
        [r#"name: Invalid value: "a": name in body should be at least 2 chars long"#]
    );
    assert_eq!(
        e(json!({"name": "abcde"})),
        ["name: Too long: may not be more than 4 bytes"]
    );
    assert_eq!(
        e(json!({"name": "äöüß"})),
        Vec::<String>::new(),
        "length counts characters"
    );
    assert_eq!(
        e(json!({"tags": []})),
        ["tags: Invalid value: 0: tags in body should have at least 1 items"]
    );
    assert_eq!(
        e(json!({"tags": ["a", "b", "c"]})),
        ["tags: Too many: 3: must have at most 2 items"]
    );
    assert_eq!(
        e(json!({"one": [1, 2]})),
        ["one: Too many: 2: must have at most 1 item"]
    );
    assert_eq!(
        e(json!({"set": [1, 1]})),
        [r#"set: Invalid value: "": set in body shouldn't contain duplicates"#]
    );
    assert_eq!(
        e(json!({"labels": {"a": "x", "b": 1}})),
        [
            r#"labels.b: Invalid value: "integer": labels.b in body must be of type string: "integer""#
        ]
    );
    assert_eq!(
        e(json!({"closed": {"a": 1, "z": 2}})),
        [r#"closed: Invalid value: "z": closed.z in body is a forbidden property"#]
    );
    assert!(e(json!({"maybe": null})).is_empty());
    assert_eq!(
        e(json!({"never": null})),
        [r#"never: Invalid value: "null": never in body must be of type string: "null""#]
    );
    assert!(e(json!({"when": "2024-02-29T12:00:00.5Z"})).is_empty());
    assert_eq!(
        e(json!({"when": "yesterday"})),
        [
            r#"when: Invalid value: "yesterday": when in body must be of type date-time: "yesterday""#
        ]
    );
    assert!(e(json!({"port": 80})).is_empty() && e(json!({"port": "http"})).is_empty());
    assert_eq!(
        e(json!({"port": true})),
        [
            r#"port: Invalid value: "boolean": port in body must be of type integer,string: "boolean""#,
            r#": Invalid value: "": port must validate at least one schema (anyOf)"#,
            r#"port: Invalid value: "boolean": port in body must be of type integer: "boolean""#,
        ]
    );
}

#[test]
fn embedded_resources() {
    let s = json!({"type": "object", "properties": {"template": {
        "type": "object", "x-kubernetes-embedded-resource": true, "x-kubernetes-preserve-unknown-fields": true}}});
    assert_eq!(
        errors(&s, &json!({"template": {"kind": 5}})),
        [
            "template.apiVersion: Required value: must not be empty",
            "template.kind: Invalid value: 5: must be a string"
        ]
    );
    assert!(
        errors(
            &s,
            &json!({"template": {"apiVersion": "v1", "kind": "Pod"}})
        )
        .is_empty()
    );
    let mut object = json!({"template": {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "x"}, "spec": {}}, "drop": 1});
    prune_and_default(&s, &mut object);
    assert_eq!(
        object,
        json!({"template": {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "x"}, "spec": {}}})
    );
}

#[test]
fn pruning_and_defaults() {
    let s = schema("chaos-mesh/networkchaos.yaml");
    let mut object = load("chaos-mesh/examples/network-partition-example.yaml");
    object["spec"]
        .as_object_mut()
        .map(|m| m.remove("direction"));
    object["spec"]["bogus"] = json!(1);
    object["spec"]["selector"]["nope"] = json!({"x": 1});
    object["metadata"]["labels"] = json!({"a": "b"});
    object["extra"] = json!(true);
    object["spec"]["remoteCluster"] = Value::Null;
    prune_and_default(&s, &mut object);
    assert_eq!(object["spec"]["direction"], "to", "default applied");
    assert!(object["spec"].get("bogus").is_none() && object.get("extra").is_none());
    assert!(object["spec"]["selector"].get("nope").is_none());
    assert!(
        object["spec"].get("remoteCluster").is_none(),
        "non-nullable null dropped"
    );
    assert_eq!(object["metadata"]["labels"]["a"], "b");
    assert_eq!(
        (&object["apiVersion"], &object["kind"]),
        (&json!("chaos-mesh.org/v1alpha1"), &json!("NetworkChaos"))
    );
    assert!(errors(&s, &object).is_empty());

    let s = schema("chaos-mesh/stresschaos.yaml");
    let mut object = load("chaos-mesh/examples/cause-pod-oom.yaml");
    object["spec"]["stressors"]["memory"]
        .as_object_mut()
        .map(|m| m.remove("oomScoreAdj"));
    prune_and_default(&s, &mut object);
    assert_eq!(object["spec"]["stressors"]["memory"]["oomScoreAdj"], 0);

    let s = schema("chaos-mesh/statuscheck.yaml");
    let mut object = load("chaos-mesh/examples/statuscheck-example.yaml");
    object["spec"]["http"]
        .as_object_mut()
        .map(|m| m.remove("method"));
    prune_and_default(&s, &mut object);
    assert_eq!(object["spec"]["http"]["method"], "GET");
    assert_eq!(
        (
            &object["spec"]["intervalSeconds"],
            &object["spec"]["failureThreshold"]
        ),
        (&json!(10), &json!(3))
    );

    let s = schema("kserve/inferenceservice-minimal.yaml");
    let mut object = load("kserve/examples/sklearn.yaml");
    object["spec"]["anything"] = json!({"kept": [1]});
    object["dropped"] = json!(1);
    prune_and_default(&s, &mut object);
    assert_eq!(
        object["spec"]["anything"],
        json!({"kept": [1]}),
        "x-kubernetes-preserve-unknown-fields"
    );
    assert!(object.get("dropped").is_none());
}

#[test]
fn odd_inputs_do_not_panic() {
    let odd = [
        json!(null),
        json!("x"),
        json!(1),
        json!([]),
        json!({"type": 5, "properties": []}),
        json!({"items": 3, "required": "a", "enum": {}, "minimum": "0", "anyOf": [1], "not": {}}),
        json!({"additionalProperties": true, "pattern": 7, "maxLength": -1, "type": ["integer", "null"]}),
    ];
    let data = [
        json!(null),
        json!({"a": [1, {"b": null}]}),
        json!([1.0, "s", u64::MAX]),
        json!(-0.0),
        json!(""),
    ];
    for s in &odd {
        for d in &data {
            let _ = validate(s, d);
            prune_and_default(s, &mut d.clone());
        }
    }
}

#[test]
fn go_formatting() {
    assert_eq!(go_float(1.5), "1.5");
    assert_eq!(go_float(100.0), "100");
    assert_eq!(go_float(123456.0), "123456");
    assert_eq!(go_float(1e6), "1e+06");
    assert_eq!(go_float(1.25e-5), "1.25e-05");
    assert_eq!(go_float(-0.0001), "-0.0001");
    assert_eq!(go_quote("a\"b\\c\n\u{1}é"), r#""a\"b\\c\n\x01é""#);
    assert_eq!(go_regex(r"^\d[\w.]\\d$"), r"^(?-u:\d)[(?-u:\w).]\\d$");
}

#[test]
fn validation_is_fast() {
    let s = schema("chaos-mesh/networkchaos.yaml");
    let object = load("chaos-mesh/examples/network-delay-example.yaml");
    let start = std::time::Instant::now();
    for _ in 0..1000 {
        assert!(validate(&s, &object).is_empty());
    }
    // Microseconds in release; generous for unoptimised test builds on a busy machine.
    assert!(
        start.elapsed() < std::time::Duration::from_millis(500),
        "{:?}",
        start.elapsed()
    );
}
