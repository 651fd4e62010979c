#!/usr/bin/env python3
"""Push one small two-platform OCI index per repository to a plain-HTTP registry, annotated with
org.opencontainers.image.revision = REVISION (what `ferry-detect changed --base published`
reads back), as REPO:latest.

    push_published.py ADDR REVISION REPO...

Only the registry API (monolithic blob uploads, manifest PUTs); no Docker needed.
"""
import hashlib
import http.client
import json
import sys
from concurrent.futures import ThreadPoolExecutor

addr, revision, repos = sys.argv[1], sys.argv[2], sys.argv[3:]
OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
OCI_INDEX = "application/vnd.oci.image.index.v1+json"


def digest(data):
    return "sha256:" + hashlib.sha256(data).hexdigest()


def request(conn, method, path, body=b"", content_type=None):
    headers = {"Content-Length": str(len(body))}
    if content_type:
        headers["Content-Type"] = content_type
    conn.request(method, path, body=body, headers=headers)
    r = conn.getresponse()
    data = r.read()
    if r.status >= 300:
        raise SystemExit(f"{method} {path}: {r.status} {data[:200]!r}")
    return r


def push_blob(conn, repo, data):
    d = digest(data)
    r = request(conn, "POST", f"/v2/{repo}/blobs/uploads/")
    loc = r.getheader("Location")
    sep = "&" if "?" in loc else "?"
    path = loc.split(addr, 1)[-1] if loc.startswith("http") else loc
    request(conn, "PUT", f"{path}{sep}digest={d}", data, "application/octet-stream")
    return d, len(data)


def push(repo):
    conn = http.client.HTTPConnection(addr, timeout=30)
    children = []
    for arch in ("amd64", "arm64"):
        layer = f"layer {repo} {arch}".encode()
        ld, ls = push_blob(conn, repo, layer)
        cfg = json.dumps({"architecture": arch, "os": "linux",
                          "rootfs": {"type": "layers", "diff_ids": [ld]}}).encode()
        cd, cs = push_blob(conn, repo, cfg)
        m = json.dumps({"schemaVersion": 2, "mediaType": OCI_MANIFEST,
                        "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": cd, "size": cs},
                        "layers": [{"mediaType": "application/vnd.oci.image.layer.v1.tar+gzip", "digest": ld, "size": ls}]}).encode()
        md = digest(m)
        request(conn, "PUT", f"/v2/{repo}/manifests/{md}", m, OCI_MANIFEST)
        children.append({"mediaType": OCI_MANIFEST, "digest": md, "size": len(m),
                         "platform": {"architecture": arch, "os": "linux"}})
    index = json.dumps({"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": children,
                        "annotations": {"org.opencontainers.image.revision": revision}}).encode()
    request(conn, "PUT", f"/v2/{repo}/manifests/latest", index, OCI_INDEX)
    conn.close()


with ThreadPoolExecutor(8) as pool:
    list(pool.map(push, repos))
print(f"pushed {len(repos)} images annotated with revision {revision[:12]}")
