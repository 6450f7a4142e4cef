"""The official Python `kubernetes` client against `playbook sim serve`: CRUD, list, watch,
patch, scale, custom objects, dry runs and invalid writes. The expected answers are a real API
server's (messages as upstream). Run by tests/sim_api/python.rs with the kubeconfig as argv[1]."""
import json
import sys

from kubernetes import client, config, watch
from kubernetes.client.rest import ApiException

config.load_kube_config(config_file=sys.argv[1])
core = client.CoreV1Api()
apps = client.AppsV1Api()
custom = client.CustomObjectsApi()
NS = "default"


def fails(fn, code, message=None, reason=None):
    try:
        fn()
    except ApiException as e:
        body = json.loads(e.body)
        assert e.status == code, (e.status, body)
        if message is not None:
            assert body["message"] == message, body["message"]
        if reason is not None:
            assert body["details"]["causes"][0]["reason"] == reason, body
        return body
    raise AssertionError("expected HTTP %d" % code)


dep = {
    "apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "web"},
    "spec": {"replicas": 1, "selector": {"matchLabels": {"app": "web"}},
             "template": {"metadata": {"labels": {"app": "web"}},
                          "spec": {"containers": [{"name": "web", "image": "nginx:1.27"}]}}},
}
apps.create_namespaced_deployment(NS, dep)
names = [d.metadata.name for d in apps.list_namespaced_deployment(NS).items]
assert names == ["web"], names

# pkg/apis/apps/validation/validation.go: replicas >= 0, on a strategic merge patch.
fails(lambda: apps.patch_namespaced_deployment("web", NS, {"spec": {"replicas": -1}}), 422,
      'Deployment.apps "web" is invalid: spec.replicas: Invalid value: -1: must be greater than or equal to 0')
# handlers/create.go transformDecodeError, in a dry run.
bad = json.loads(json.dumps(dep))
bad["metadata"]["name"] = "three"
bad["spec"]["replicas"] = "three"
# (the typed API checks types client-side: the untyped one sends the body as it is)
fails(lambda: custom.create_namespaced_custom_object("apps", "v1", NS, "deployments", bad, dry_run="All"), 400,
      'Deployment in version "v1" cannot be handled as a Deployment: json: cannot unmarshal string '
      'into Go struct field DeploymentSpec.spec.replicas of type int32')
# core ValidatePodSpec: containers required.
# (the typed API refuses it client-side; sent as it is through the client's REST layer)
rest = core.api_client.rest_client
resp = rest.request("POST", core.api_client.configuration.host + "/api/v1/namespaces/default/pods?dryRun=All",
                    headers={"Content-Type": "application/json"},
                    body={"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p"}, "spec": {}})
status = json.loads(resp.read() if hasattr(resp, "read") else resp.data)
assert resp.status == 422, status
assert status["message"] == 'Pod "p" is invalid: spec.containers: Required value', status
assert status["details"]["causes"][0]["reason"] == "FieldValueRequired", status
# A dry run changes nothing.
dry = json.loads(json.dumps(dep))
dry["metadata"]["name"] = "dry"
apps.create_namespaced_deployment(NS, dry, dry_run="All")
fails(lambda: apps.read_namespaced_deployment("dry", NS), 404, 'deployments.apps "dry" not found')

# scale subresource
apps.patch_namespaced_deployment_scale("web", NS, {"spec": {"replicas": 3}})
assert apps.read_namespaced_deployment_scale("web", NS).spec.replicas == 3

# watch: the ADDED event of the deployment
w = watch.Watch()
seen = [ev["type"] for ev in w.stream(apps.list_namespaced_deployment, NS, timeout_seconds=1)]
assert "ADDED" in seen, seen

# custom objects: pruning, defaulting, strict field validation
G, V = "chaos-mesh.org", "v1alpha1"
nc = {"apiVersion": "chaos-mesh.org/v1alpha1", "kind": "NetworkChaos", "metadata": {"name": "n"},
      "spec": {"action": "delay", "mode": "all", "selector": {"namespaces": [NS]},
               "delay": {"latency": "10ms"}, "durtion": "30s"}}
created = custom.create_namespaced_custom_object(G, V, NS, "networkchaos", nc)
assert created["spec"]["direction"] == "to", created
assert "durtion" not in created["spec"], created
fails(lambda: custom.create_namespaced_custom_object(G, V, NS, "networkchaos", dict(nc, metadata={"name": "m"}),
                                                      field_validation="Strict"),
      400, 'strict decoding error: unknown field "spec.durtion"')
got = custom.list_namespaced_custom_object(G, V, NS, "networkchaos")
assert [i["metadata"]["name"] for i in got["items"]] == ["n"], got
custom.patch_namespaced_custom_object(G, V, NS, "networkchaos", "n", {"spec": {"mode": "one"}})
fails(lambda: custom.patch_namespaced_custom_object(G, V, NS, "networkchaos", "n", {"spec": {"direction": "up"}}),
      422, reason="FieldValueNotSupported")
custom.delete_namespaced_custom_object(G, V, NS, "networkchaos", "n")
fails(lambda: custom.get_namespaced_custom_object(G, V, NS, "networkchaos", "n"), 404)
print("python client: ok")
