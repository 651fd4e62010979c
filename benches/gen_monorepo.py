#!/usr/bin/env python3
"""Generate a synthetic monorepo as a `git fast-import` stream on stdout.

    gen_monorepo.py IMAGES FILES_PER_IMAGE [REGISTRY] | git -C repo.git fast-import

Commit 1: IMAGES services under svc/NNNN/, each with a Dockerfile (every tenth builds FROM the
in-repo base image), a .dockerignore and FILES_PER_IMAGE files (src/ is copied, docs/ is not),
plus base/ (the in-repo base) and ferry.toml. Commit 2 changes exactly one copied file.
With REGISTRY, ferry.toml also gives every service a repository REGISTRY/svc/NNNN (what
`ferry-detect changed --base published` asks the registry about).
"""
import sys

images = int(sys.argv[1])
per_image = int(sys.argv[2])
registry = sys.argv[3] if len(sys.argv) > 3 else None
out = sys.stdout.buffer


def blob(mark, data):
    data = data.encode()
    out.write(b"blob\nmark :%d\ndata %d\n" % (mark, len(data)) + data + b"\n")


blob(1, "print('hello')\n")
blob(2, "# docs\n")
blob(3, "FROM python:3.12-slim\nWORKDIR /app\nCOPY src/ ./src/\nCOPY requirements.txt ./\nRUN pip install -r requirements.txt\n")
blob(4, "FROM docker.io/acme/base:1\nWORKDIR /app\nCOPY src/ ./src/\nCOPY requirements.txt ./\n")
blob(5, "docs/\n*.md\n")
blob(6, "flask\n")
blob(7, "FROM python:3.12-slim\nCOPY requirements.txt /req.txt\nRUN pip install -r /req.txt\n")
config = '[images."base"]\nrepository = "docker.io/acme/base"\n'
if registry:
    for i in range(images):
        config += '[images."svc/%04d"]\nrepository = "%s/svc/%04d"\n' % (i, registry, i)
blob(8, config)
blob(9, "print('changed')\n")


def commit(ref, mark, parent, msg, lines):
    msg = msg.encode()
    out.write(b"commit %s\nmark :%d\n" % (ref.encode(), mark))
    out.write(b"author ferry-bench <bench@example.invalid> 1700000000 +0000\n")
    out.write(b"committer ferry-bench <bench@example.invalid> 1700000000 +0000\n")
    out.write(b"data %d\n" % len(msg) + msg + b"\n")
    if parent:
        out.write(b"from :%d\n" % parent)
    for line in lines:
        out.write(line.encode() + b"\n")
    out.write(b"\n")


def inline(path, text):
    data = text.encode()
    return "M 100644 inline %s\ndata %d\n%s" % (path, len(data), text)


def files():
    yield "M 100644 :8 ferry.toml"
    yield "M 100644 :7 base/Dockerfile"
    yield "M 100644 :6 base/requirements.txt"
    code = per_image * 2 // 3
    for i in range(images):
        d = "svc/%04d" % i
        yield "M 100644 :%d %s/Dockerfile" % (4 if i % 10 == 0 else 3, d)
        yield "M 100644 :5 %s/.dockerignore" % d
        yield "M 100644 :6 %s/requirements.txt" % d
        # One file per directory is unique to the image, so no two trees are alike (as in a
        # real repository) and nothing can be skipped by recognising a repeated subtree.
        for p in range(20):
            yield inline("%s/src/pkg%02d/__init__.py" % (d, p), "# %s pkg%02d\n" % (d, p))
        yield inline("%s/docs/index.md" % d, "# %s\n" % d)
        for f in range(code - 20):
            yield "M 100644 :1 %s/src/pkg%02d/mod%04d.py" % (d, f % 20, f)
        for f in range(per_image - code - 4):
            yield "M 100644 :2 %s/docs/page%04d.md" % (d, f)


commit("refs/heads/main", 100, None, "initial", files())
commit("refs/heads/main", 101, 100, "change one file", ["M 100644 :9 svc/0042/src/pkg07/mod0007.py"])
out.write(b"done\n")
