"""Drives a patchpilot sandbox with Debian's python3-kubernetes, a client no one here wrote, and prints what the API
server answered as one JSON object. Usage: python_client.py KUBECONFIG POD_NAMESPACE POD_NAME NODE."""
import json
import sys

from kubernetes import client, config, watch
from kubernetes.client.rest import ApiException

kubeconfig, pod_namespace, pod_name, node = sys.argv[1:5]
config.load_kube_config(config_file=kubeconfig)
core = client.CoreV1Api()
policy = client.PolicyV1Api()
coordination = client.CoordinationV1Api()
out = {}


def failure(call):
    try:
        call()
        return {"status": "ok"}
    except ApiException as e:
        body = json.loads(e.body) if e.body else {}
        return {"status": e.status, "reason": body.get("reason"), "message": body.get("message"), "causes": (body.get("details") or {}).get("causes")}


def evict(dry_run=None):
    body = client.V1Eviction(metadata=client.V1ObjectMeta(name=pod_name, namespace=pod_namespace),
                             delete_options=client.V1DeleteOptions(dry_run=dry_run) if dry_run else None)
    return failure(lambda: core.create_namespaced_pod_eviction(pod_name, pod_namespace, body))


labels_before = core.read_node(node).metadata.labels
out["labelsNotAMap"] = failure(lambda: core.patch_node(node, {"metadata": {"labels": "not-a-map"}}))
out["labelsKept"] = core.read_node(node).metadata.labels == labels_before
out["unschedulableYes"] = failure(lambda: core.patch_node(node, {"spec": {"unschedulable": "yes"}}))
out["badLabelKey"] = failure(lambda: core.patch_node(node, {"metadata": {"labels": {"bad key!": "x"}}}))
out["leaseSixty"] = failure(lambda: coordination.create_namespaced_lease("default", {
    "apiVersion": "coordination.k8s.io/v1", "kind": "Lease", "metadata": {"name": "sixty"}, "spec": {"leaseDurationSeconds": "sixty"}}))
out["eventInOsPatch"] = failure(lambda: core.create_namespaced_event("os-patch", {
    "metadata": {"name": node + ".py1"}, "involvedObject": {"kind": "Node", "name": node, "apiVersion": "v1"}, "reason": "Test", "message": "m"}))
out["eventInDefault"] = failure(lambda: core.create_namespaced_event("default", {
    "metadata": {"name": node + ".py2"}, "involvedObject": {"kind": "Node", "name": node, "apiVersion": "v1"}, "reason": "Test", "message": "m"}))

# A budget that allows no disruption: its status comes from the pods, and the eviction is refused.
pod_labels = core.read_namespaced_pod(pod_name, pod_namespace).metadata.labels
pdb = {"apiVersion": "policy/v1", "kind": "PodDisruptionBudget", "metadata": {"name": "py-all"},
       "spec": {"maxUnavailable": 0, "selector": {"matchLabels": pod_labels}}}
policy.create_namespaced_pod_disruption_budget(pod_namespace, pdb)
status = policy.read_namespaced_pod_disruption_budget("py-all", pod_namespace).status
out["pdbStatus"] = {"disruptionsAllowed": status.disruptions_allowed, "currentHealthy": status.current_healthy,
                    "desiredHealthy": status.desired_healthy, "expectedPods": status.expected_pods,
                    "observedGeneration": status.observed_generation}
out["evictionRefused"] = evict()
out["evictionRefusedDryRun"] = evict(["All"])
policy.delete_namespaced_pod_disruption_budget("py-all", pod_namespace)
out["evictionDryRun"] = evict(["All"])
out["podAfterDryRun"] = core.read_namespaced_pod(pod_name, pod_namespace).metadata.deletion_timestamp is None
out["deleteNodeDryRun"] = failure(lambda: core.delete_node(node, dry_run="All"))
out["nodeAfterDryRun"] = core.read_node(node).metadata.name

# watch=True, as this client sends it, is a watch: ADDED events for every node, then the stream ends on its timeout.
seen = []
for event in watch.Watch().stream(core.list_node, timeout_seconds=2):
    seen.append(event["type"] + " " + event["object"].metadata.name)
out["watch"] = seen

out["nodeLeases"] = sorted(l.metadata.name for l in coordination.list_namespaced_lease("kube-node-lease").items)
lease = coordination.read_namespaced_lease(node, "kube-node-lease")
out["nodeLease"] = {"holder": lease.spec.holder_identity, "duration": lease.spec.lease_duration_seconds,
                    "renewed": lease.spec.renew_time is not None}
print(json.dumps(out))
