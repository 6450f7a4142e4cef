"""Writes, as JSON on stdout, the Chaos Toolkit experiment equivalent to playbooks/pod-failure.rhai,
with stock chaostoolkit-kubernetes activities and HTTP probes against `playbook sim serve` at
argv[1]: the same steady state (InferenceService Ready, every predictor available), the same 30
prediction requests before and after, the same PodChaos (pod-kill, one predictor, 30 s), the same
waits (disruption seen within 15 s, recovery within 30 s) and the PodChaos deleted at the end."""
import json
import sys

server = sys.argv[1].rstrip("/")
ns = "kserve-inference"
isvc = "sklearn-iris"
deploy = f"{isvc}-predictor"
selector = "serving.kserve.io/inferenceservice=sklearn-iris,component=predictor"


def py(title, module, func, **arguments):
    return {"type": "probe", "name": title,
            "provider": {"type": "python", "module": module, "func": func, "arguments": arguments}}


def isvc_ready(title):
    p = py(title, "chaosk8s.crd.probes", "get_custom_object", group="serving.kserve.io",
           version="v1beta1", plural="inferenceservices", name=isvc, ns=ns)
    p["tolerance"] = {"type": "jsonpath", "path": '$.status.conditions[*][?(@.type = "Ready")].status',
                      "expect": "True"}
    return p


def predictions(label):
    url = f"{server}/api/v1/namespaces/{ns}/services/{deploy}:80/proxy/v1/models/{isvc}:predict"
    return [{"type": "probe", "name": f"predict {label} {i}",
             "provider": {"type": "http", "url": url, "method": "POST", "timeout": 5,
                          "headers": {"Content-Type": "application/json"},
                          "arguments": {"instances": [[6.8, 2.8, 4.8, 1.4], [6.0, 3.4, 4.5, 1.6]]}}}
            for i in range(30)]


chaos = {"apiVersion": "chaos-mesh.org/v1alpha1", "kind": "PodChaos",
         "metadata": {"name": "ctk-pod-kill", "namespace": ns},
         "spec": {"action": "pod-kill", "mode": "one", "duration": "30s",
                  "selector": {"namespaces": [ns], "labelSelectors": {
                      "serving.kserve.io/inferenceservice": isvc, "component": "predictor"}}}}
ready = py("every predictor available", "chaosk8s.deployment.probes", "deployment_fully_available",
           name=deploy, ns=ns, timeout=5)
ready["tolerance"] = True
experiment = {
    "version": "1.0.0",
    "title": "Pod failure: kill one KServe predictor pod (the Chaos Toolkit equivalent of pod-failure.rhai)",
    "description": "Stock chaostoolkit-kubernetes activities; see bench/vs-chaostoolkit.",
    "steady-state-hypothesis": {"title": "InferenceService Ready, every predictor ready",
                                "probes": [isvc_ready("InferenceService Ready"), ready]},
    "method": [py("replicas before", "chaosk8s.pod.probes", "count_pods", label_selector=selector, ns=ns)]
    + predictions("before")
    + [{"type": "action", "name": "kill one predictor pod",
        "provider": {"type": "python", "module": "chaosk8s.crd.actions", "func": "create_custom_object",
                     "arguments": {"group": "chaos-mesh.org", "version": "v1alpha1", "plural": "podchaos",
                                   "ns": ns, "resource": chaos}}},
       py("PodChaos injected", "chaosk8s.crd.probes", "get_custom_object", group="chaos-mesh.org",
          version="v1alpha1", plural="podchaos", name="ctk-pod-kill", ns=ns),
       py("disruption seen", "chaosk8s.deployment.probes", "deployment_not_fully_available",
          name=deploy, ns=ns, timeout=15),
       py("fully Ready again", "chaosk8s.deployment.probes", "deployment_fully_available",
          name=deploy, ns=ns, timeout=30),
       isvc_ready("InferenceService Ready again"),
       py("replicas after", "chaosk8s.pod.probes", "count_pods", label_selector=selector, ns=ns)]
    + predictions("after"),
    "rollbacks": [{"type": "action", "name": "remove the PodChaos",
                   "provider": {"type": "python", "module": "chaosk8s.crd.actions",
                                "func": "delete_custom_object",
                                "arguments": {"group": "chaos-mesh.org", "version": "v1alpha1",
                                              "plural": "podchaos", "name": "ctk-pod-kill", "ns": ns}}}],
}
json.dump(experiment, sys.stdout, indent=1)
