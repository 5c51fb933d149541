"""deploy/: the container image, the Kubernetes manifests and the Grafana dashboard,
checked statically (no container engine, no cluster): the manifests against the
Kubernetes API schema, and the three held to each other and to `v6diag serve`
(its options, its metric names, its port)."""

from __future__ import annotations

import copy
import json
import re
import shlex
from pathlib import Path

import kubernetes_validate
import pytest
import yaml
from typer.testing import CliRunner

from tests.conftest import ROOT

DEPLOY = ROOT / "deploy"
CONTAINERFILE = DEPLOY / "Containerfile"
DASHBOARD = DEPLOY / "grafana" / "v6diag.json"
K8S_VERSION = "1.30"
CORE_KINDS = {"Namespace", "ServiceAccount", "DaemonSet"}  # validated against the API schema
PORT = 9469
# what the serve watchers need, and nothing else: the Containerfile's comments say why
CAPABILITIES = {"BPF", "PERFMON", "SYS_ADMIN", "NET_ADMIN", "NET_RAW", "SYS_RESOURCE"}
NODE_PATHS = {"/sys/kernel/tracing", "/sys/kernel/btf", "/lib/modules", "/usr/src"}  # bcc and tracefs
SERVE_OPTIONS = {"--listen", "--watch", "--netns", "--probe", "--log-format", "--discover-interval", "--ready-file"}


def manifests() -> list[tuple[Path, dict]]:
    docs = []
    for path in sorted((DEPLOY / "kubernetes").glob("*.yaml")):
        docs += [(path, doc) for doc in yaml.safe_load_all(path.read_text()) if doc is not None]
    return docs


def one(kind: str) -> dict:
    found = [doc for _, doc in manifests() if doc["kind"] == kind]
    assert len(found) == 1, f"{len(found)} {kind} documents in deploy/kubernetes"
    return found[0]


def daemonset() -> dict:
    return one("DaemonSet")


def container() -> dict:
    (c,) = daemonset()["spec"]["template"]["spec"]["containers"]
    return c


def instructions() -> list[tuple[str, str]]:
    """The Containerfile's (INSTRUCTION, arguments), continuation lines joined."""
    out, pending = [], ""
    for line in CONTAINERFILE.read_text().splitlines():
        if not pending and (not line.strip() or line.lstrip().startswith("#")):
            continue
        if line.rstrip().endswith("\\"):
            pending += line.rstrip()[:-1] + " "
            continue
        word, _, rest = (pending + line).strip().partition(" ")
        out.append((word.upper(), rest.strip()))
        pending = ""
    assert not pending, "the Containerfile ends inside a continued line"
    return out


def args_of(name: str) -> list[str]:
    found = [rest for word, rest in instructions() if word == name]
    assert found, f"no {name} in the Containerfile"
    return found


def exec_form(name: str) -> list[str]:
    """The last ENTRYPOINT or CMD, which must be JSON (exec form: signals reach v6diag, not a shell)."""
    return json.loads(args_of(name)[-1])


# --- Kubernetes manifests ---------------------------------------------------------


def test_every_document_is_a_known_kind_in_the_v6diag_namespace():
    kinds = sorted(doc["kind"] for _, doc in manifests())
    assert kinds == ["DaemonSet", "Namespace", "PodMonitor", "ServiceAccount"]
    for _, doc in manifests():
        ns = doc["metadata"]["name"] if doc["kind"] == "Namespace" else doc["metadata"].get("namespace")
        assert ns == "v6diag", doc["kind"]


@pytest.mark.parametrize("kind", sorted(CORE_KINDS))
def test_core_documents_validate_against_the_kubernetes_schema(kind):
    assert kubernetes_validate.validate(one(kind), K8S_VERSION, strict=True) == K8S_VERSION


def _host_network_yes(ds):
    ds["spec"]["template"]["spec"]["hostNetwork"] = "yes"


def _misspelled_pod_field(ds):
    spec = ds["spec"]["template"]["spec"]
    spec["hostNetwrok"] = spec.pop("hostNetwork")


def _port_as_text(ds):
    ds["spec"]["template"]["spec"]["containers"][0]["ports"][0]["containerPort"] = str(PORT)


def _unknown_security_field(ds):
    ds["spec"]["template"]["spec"]["containers"][0]["securityContext"]["capabilites"] = {"add": ["BPF"]}


@pytest.mark.parametrize("breakage", [_host_network_yes, _misspelled_pod_field, _port_as_text,
                                      _unknown_security_field])
def test_a_broken_daemonset_is_rejected(breakage):
    """Proof that the validation above really runs, and strictly."""
    broken = copy.deepcopy(daemonset())
    breakage(broken)
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(broken, K8S_VERSION, strict=True)


def test_podmonitor_selects_the_daemonset_pods_on_the_metrics_port():
    # a CRD (prometheus-operator): no schema in kubernetes_validate, so its fields by hand
    pm = one("PodMonitor")
    assert pm["apiVersion"] == "monitoring.coreos.com/v1"
    assert pm["metadata"]["name"] == "v6diag"
    pod_labels = daemonset()["spec"]["template"]["metadata"]["labels"]
    match = pm["spec"]["selector"]["matchLabels"]
    assert match and all(pod_labels.get(k) == v for k, v in match.items()), (match, pod_labels)
    (endpoint,) = pm["spec"]["podMetricsEndpoints"]
    (port,) = container()["ports"]
    assert endpoint["port"] == port["name"] == "metrics"
    assert endpoint.get("path", "/metrics") == "/metrics"
    assert re.fullmatch(r"\d+s", endpoint["interval"])


def test_daemonset_selects_its_own_pods_and_runs_on_every_node():
    ds = daemonset()
    assert ds["spec"]["selector"]["matchLabels"].items() <= ds["spec"]["template"]["metadata"]["labels"].items()
    pod = ds["spec"]["template"]["spec"]
    assert {"operator": "Exists"} in pod["tolerations"]  # every taint, control plane included
    assert "priorityClassName" not in pod  # system-node-critical is kube-system's only
    assert pod["serviceAccountName"] == one("ServiceAccount")["metadata"]["name"]


def test_daemonset_watches_the_node_network():
    pod = daemonset()["spec"]["template"]["spec"]
    assert pod["hostNetwork"] is True
    assert pod.get("hostPID", False) is False
    assert pod["dnsPolicy"] == "ClusterFirstWithHostNet"


def test_daemonset_runs_as_uid_0_with_exactly_the_needed_capabilities():
    sc = container()["securityContext"]
    # Kubernetes gives no ambient capabilities: added ones only reach UID 0
    assert sc["runAsUser"] == 0 and sc["runAsNonRoot"] is False
    assert sc["privileged"] is False and sc["allowPrivilegeEscalation"] is False
    assert sc["readOnlyRootFilesystem"] is True
    assert sc["capabilities"]["drop"] == ["ALL"]
    assert len(sc["capabilities"]["add"]) == len(CAPABILITIES)
    assert set(sc["capabilities"]["add"]) == CAPABILITIES


def test_containerfile_explains_exactly_the_capabilities_the_daemonset_adds():
    comments = "\n".join(line for line in CONTAINERFILE.read_text().splitlines() if line.lstrip().startswith("#"))
    named = set(re.findall(r"\bCAP_([A-Z_]+[A-Z])\b", comments))
    assert named == CAPABILITIES
    assert "kubernetes/kubernetes#56374" in comments  # why UID 0, not the image's user


def test_node_paths_are_mounted_read_only_except_tracefs():
    pod = daemonset()["spec"]["template"]["spec"]
    host = {v["name"]: v["hostPath"]["path"] for v in pod["volumes"] if "hostPath" in v}
    assert NODE_PATHS <= set(host.values())
    assert all("type" not in v["hostPath"] for v in pod["volumes"] if "hostPath" in v)  # no mkdir in sysfs
    mounts = {m["name"]: m for m in container()["volumeMounts"]}
    for name, path in host.items():
        assert name in mounts, f"hostPath {path} is never mounted"
        assert mounts[name]["mountPath"] == path  # where bcc, tracefs and `ip netns` look
        # tracefs is written: v6diag traces in a private instance it creates under instances/
        assert mounts[name].get("readOnly", False) is (path != "/sys/kernel/tracing"), path
    assert mounts[next(n for n, p in host.items() if p == "/run/netns")]["mountPropagation"] == "HostToContainer"


def test_read_only_root_has_a_writable_tmp_for_bcc_and_caches():
    pod = daemonset()["spec"]["template"]["spec"]
    empty = {v["name"] for v in pod["volumes"] if "emptyDir" in v}
    tmp = [m for m in container()["volumeMounts"] if m["mountPath"] == "/tmp"]
    assert len(tmp) == 1 and tmp[0]["name"] in empty and not tmp[0].get("readOnly", False)
    env = {e["name"]: e.get("value") for e in container().get("env", [])}
    assert env["XDG_CACHE_HOME"].startswith("/tmp/")


def test_scrape_annotations_probes_and_port_agree():
    ds = daemonset()
    notes = ds["spec"]["template"]["metadata"]["annotations"]
    (port,) = container()["ports"]
    assert port["containerPort"] == PORT and port["name"] == "metrics"
    assert notes["prometheus.io/scrape"] == "true"
    assert int(notes["prometheus.io/port"]) == port["containerPort"]
    assert notes["prometheus.io/path"] == "/metrics"
    probes = {k: v for k, v in container().items() if k.endswith("Probe")}
    assert {"readinessProbe", "livenessProbe"} <= set(probes)
    for name, probe in probes.items():
        assert probe["httpGet"] == {"path": "/healthz", "port": "metrics"}, name
    args = container()["args"]
    assert args[args.index("--listen") + 1].endswith(f":{PORT}")


def test_resources_are_requested_and_limited():
    res = container()["resources"]
    assert set(res["requests"]) == set(res["limits"]) == {"cpu", "memory"}


def test_image_tag_is_this_version():
    from v6diag import __version__

    image = container()["image"]
    assert image == f"ghcr.io/v6diag/v6diag:{__version__}"


def test_args_use_only_options_serve_accepts():
    """Each --flag of the DaemonSet's args and the image's CMD is one `v6diag serve --help` lists."""
    from v6diag import app as cli

    if not cli.app.registered_commands:  # _register() adds every command again each call
        cli._register()
    result = CliRunner().invoke(cli.app, ["serve", "--help"],
                                env={"COLUMNS": "200", "TERMINAL_WIDTH": "200", "NO_COLOR": "1"})
    assert result.exit_code == 0, f"`v6diag serve --help` failed (is serve registered?):\n{result.output}"
    text = re.sub(r"\x1b\[[0-9;]*m", "", result.output)
    offered = set(re.findall(r"(?<![\w-])--[a-z][a-z0-9-]*", text))
    assert SERVE_OPTIONS <= offered, SERVE_OPTIONS - offered
    for source, args in (("DaemonSet", container()["args"]), ("Containerfile CMD", exec_form("CMD"))):
        assert args[0] == "serve", source
        used = {a.partition("=")[0] for a in args if a.startswith("--")}
        assert used and used <= offered, (source, used - offered)


# --- Grafana ------------------------------------------------------------------------


def dashboard() -> dict:
    return json.loads(DASHBOARD.read_text())


def panels(dash: dict) -> list[dict]:
    out = []
    for p in dash["panels"]:
        out.append(p)
        out += p.get("panels", [])  # collapsed rows hold their panels
    return out


def test_dashboard_identity_and_variables():
    dash = dashboard()
    assert dash["uid"] == "v6diag"
    assert dash["title"] == "v6diag: drops, conntrack, checksums"
    assert dash["schemaVersion"] == 39
    variables = {v["name"]: v for v in dash["templating"]["list"]}
    assert variables["datasource"]["type"] == "datasource" and variables["datasource"]["query"] == "prometheus"
    node = variables["node"]
    assert node["type"] == "query" and node["datasource"]["uid"] == "${datasource}"
    query = node["query"]["query"] if isinstance(node["query"], dict) else node["query"]
    assert query == "label_values(v6diag_build_info, instance)"


def test_dashboard_panels_use_the_datasource_variable_and_unique_ids():
    ps = panels(dashboard())
    ids = [p["id"] for p in ps]
    assert len(ids) == len(set(ids)), ids
    for p in ps:
        if p["type"] == "row":
            continue
        assert p["datasource"] == {"type": "prometheus", "uid": "${datasource}"}, p["title"]
        assert p["targets"], p["title"]
        for t in p["targets"]:
            assert t.get("datasource", p["datasource"]) == p["datasource"], p["title"]
            assert 'instance=~"$node"' in t["expr"], p["title"]  # the node picker applies everywhere


def test_dashboard_queries_only_metrics_serve_exports_and_shows_each():
    from v6diag.serve.metrics import NAMES

    dash = dashboard()
    exprs = [t["expr"] for p in panels(dash) for t in p.get("targets", [])]
    used = {m for e in exprs for m in re.findall(r"v6diag_[a-z_]+", e)}
    assert used and used <= set(NAMES), used - set(NAMES)
    variables = json.dumps(dash["templating"])
    shown = used | set(re.findall(r"v6diag_[a-z_]+", variables))
    assert set(NAMES) <= shown, f"no panel shows {set(NAMES) - shown}"
    for e in exprs:  # counters are only ever read as rates
        for counter in re.findall(r"v6diag_[a-z_]+_total", e):
            assert re.search(rf"rate\({counter}\{{[^}}]*\}}\[\$__rate_interval\]\)", e), e


# --- Containerfile --------------------------------------------------------------------


def test_containerfile_builds_on_debian_bookworm_in_two_stages():
    froms = args_of("FROM")
    assert len(froms) == 2
    assert all(f.split()[0].startswith("debian:bookworm") for f in froms), froms
    assert any("pip wheel --no-deps -w /dist ." in r for w, r in instructions() if w == "RUN")
    assert any(r.startswith("--from=") for r in args_of("COPY"))  # the runtime stage takes only the wheel


def test_containerfile_installs_bcc_into_a_venv_that_sees_it():
    runs = args_of("RUN")
    apt = [r for r in runs if "apt-get install" in r]
    runtime_apt = apt[-1]
    for pkg in ("python3", "python3-venv", "python3-bpfcc", "iproute2", "conntrack", "nftables"):
        assert pkg in shlex.split(runtime_apt), pkg
    for r in apt:
        assert "--no-install-recommends" in r and "rm -rf /var/lib/apt/lists" in r, r
    venv = next(r for r in runs if "-m venv" in r)
    assert "--system-site-packages /opt/v6diag" in venv
    assert "/opt/v6diag/bin/pip install" in venv


def test_containerfile_defaults_to_a_non_root_user_and_runs_serve():
    user = args_of("USER")[-1]
    assert user not in ("root", "0") and not user.startswith(("0:", "root:"))
    assert any("--uid 10001" in r and r.rstrip().endswith(user) for r in args_of("RUN"))
    assert exec_form("ENTRYPOINT") == ["/opt/v6diag/bin/v6diag"]
    cmd = exec_form("CMD")
    assert cmd[:3] == ["serve", "--listen", f"[::]:{PORT}"]


def test_containerfile_port_and_healthcheck_match_the_daemonset():
    (expose,) = args_of("EXPOSE")
    assert expose.split() == [str(PORT)]
    assert int(expose.split("/")[0]) == container()["ports"][0]["containerPort"]
    (check,) = args_of("HEALTHCHECK")
    assert f"http://127.0.0.1:{PORT}/healthz" in check
    assert "urllib" in check and "curl" not in check  # the slim image has no curl
