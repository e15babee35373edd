#!/usr/bin/env python3
"""A fake Hugging Face Hub on 127.0.0.1, for the tests of ru-embed's model downloads.

Serves one model folder (--repo DIR) under any repo id `test/<name>` (and under
`private/<name>` and `gated/<name>`, which want `Authorization: Bearer hf_test_token`):

  GET  /api/models/{org}/{name}[/revision/{rev}]    commit sha and siblings, as the hub's API
  GET  /api/models/{org}/{name}/tree/{rev}          the tree listing (huggingface_hub >= 1 asks it)
  HEAD/GET /{org}/{name}/resolve/{rev}/{path}       files with ETag, X-Repo-Commit; LFS files
                                                    (*.safetensors) redirect (302) to the "CDN"
                                                    with X-Linked-Etag (sha256) and X-Linked-Size
  GET  /cdn/{org}/{name}/{sha256}                   on a second port (another origin, as the real CDN)

Revisions: main and v1.0 name the one commit; the commit itself works too; anything else is a
404 RevisionNotFound. Errors carry X-Error-Code as the hub's do (RepoNotFound, RevisionNotFound,
EntryNotFound, GatedRepo).

Test hooks, per repo id (so tests running side by side do not see each other):
  GET /_control?repo=test/x&cut=N&ignore_range=0|1&delay=S&fail=STATUS
      cut: the next N CDN downloads send their headers and half the body, then close the
      connection; ignore_range: answer Range requests with the whole file (200);
      delay: seconds to sleep per 1 KiB of CDN body (to make concurrent clients overlap);
      fail: answer every resolve/CDN request of the repo with this status;
      get_redirect=1: GETs of small files redirect to the CDN (their HEADs do not).
  GET /_stats?repo=test/x      the requests seen so far: [{method, path, range, auth}]

Prints `hub http://127.0.0.1:PORT cdn http://127.0.0.1:PORT` on stdout once listening, and runs
until stdin closes (so it ends with the test process that started it) or it is killed.
"""
import argparse
import hashlib
import json
import os
import sys
import threading
import time
import urllib.parse
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

TOKEN = "hf_test_token"
REVISIONS = ("main", "v1.0")
LFS_SUFFIXES = (".safetensors", ".bin", ".onnx")


def git_blob_sha1(data: bytes) -> str:
    return hashlib.sha1(b"blob %d\0" % len(data) + data).hexdigest()


class Repo:
    def __init__(self, folder: str):
        self.files = {}
        for root, dirs, names in os.walk(folder):
            dirs.sort()
            for name in sorted(names):
                full = os.path.join(root, name)
                rel = os.path.relpath(full, folder).replace(os.sep, "/")
                with open(full, "rb") as f:
                    data = f.read()
                entry = {"data": data, "size": len(data), "sha256": hashlib.sha256(data).hexdigest()}
                if rel.endswith(LFS_SUFFIXES):
                    pointer = (
                        "version https://git-lfs.github.com/spec/v1\n"
                        f"oid sha256:{entry['sha256']}\nsize {len(data)}\n"
                    ).encode()
                    entry["lfs"] = True
                    entry["oid"] = git_blob_sha1(pointer)
                    entry["pointer_size"] = len(pointer)
                else:
                    entry["lfs"] = False
                    entry["oid"] = git_blob_sha1(data)
                self.files[rel] = entry
        tree = "".join(f"{p}\0{e['oid']}\n" for p, e in sorted(self.files.items()))
        self.commit = hashlib.sha1(tree.encode()).hexdigest()

    def commit_for(self, revision: str):
        if revision in REVISIONS or revision == self.commit:
            return self.commit
        return None


class State:
    def __init__(self, repo: Repo):
        self.repo = repo
        self.lock = threading.Lock()
        self.controls = {}   # repo id -> dict
        self.requests = {}   # repo id -> list
        self.cdn_base = ""

    def control(self, repo_id):
        with self.lock:
            return dict(self.controls.get(repo_id, {}))

    def record(self, repo_id, entry):
        with self.lock:
            self.requests.setdefault(repo_id, []).append(entry)

    def take_cut(self, repo_id) -> bool:
        with self.lock:
            c = self.controls.get(repo_id, {})
            if c.get("cut", 0) > 0:
                c["cut"] -= 1
                return True
            return False


def make_handler(state: State, role: str):
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"
        server_version = "fake-hub/1"

        def log_message(self, *args):
            pass

        # -- helpers ---------------------------------------------------------------------
        def send(self, status, body=b"", headers=None, content_type="text/plain; charset=utf-8"):
            self.send_response(status)
            self.send_header("Content-Type", content_type)
            for k, v in (headers or {}).items():
                self.send_header(k, v)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            if self.command != "HEAD":
                self.wfile.write(body)

        def error(self, status, code, message, headers=None):
            h = {"X-Error-Code": code, "X-Error-Message": message}
            h.update(headers or {})
            self.send(status, json.dumps({"error": message}).encode(), h, "application/json")

        def json(self, value):
            self.send(200, json.dumps(value).encode(), None, "application/json")

        def authorized(self, org) -> bool:
            if org == "test":
                return True
            return self.headers.get("Authorization") == f"Bearer {TOKEN}"

        def check_repo(self, org, name) -> bool:
            """Answers the request with the hub's error when the repo is not readable."""
            if org not in ("test", "private", "gated"):
                self.error(404, "RepoNotFound", f"Repository {org}/{name} not found")
                return False
            if not self.authorized(org):
                if org == "gated":
                    self.error(403, "GatedRepo", f"Access to model {org}/{name} is restricted. You must have access to it and be authenticated to access it. Please log in.")
                else:
                    self.error(401, "RepoNotFound", "Invalid username or password.")
                return False
            return True

        def serve_bytes(self, data, headers, repo_id, cdn=False):
            control = state.control(repo_id) if cdn else {}
            start, status = 0, 200
            rng = self.headers.get("Range")
            if rng and rng.startswith("bytes=") and not control.get("ignore_range"):
                first = rng[len("bytes="):].split("-")[0]
                start = int(first) if first else 0
                if start >= len(data):
                    self.send(416, b"", {"Content-Range": f"bytes */{len(data)}"})
                    return
                status = 206
                headers = dict(headers)
                headers["Content-Range"] = f"bytes {start}-{len(data) - 1}/{len(data)}"
            body = data[start:]
            self.send_response(status)
            self.send_header("Content-Type", "application/octet-stream")
            self.send_header("Accept-Ranges", "bytes")
            for k, v in headers.items():
                self.send_header(k, v)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            if self.command == "HEAD":
                return
            cut = cdn and state.take_cut(repo_id)
            limit = len(body) // 2 if cut else len(body)
            delay = float(control.get("delay", 0))
            step = 1024 if delay else 1 << 16
            for offset in range(0, limit, step):
                self.wfile.write(body[offset:min(offset + step, limit)])
                if delay:
                    self.wfile.flush()
                    time.sleep(delay)
            self.wfile.flush()
            if cut:
                self.close_connection = True
                try:
                    import socket
                    self.connection.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass

        # -- routes ----------------------------------------------------------------------
        def do_HEAD(self):
            self.route()

        def do_GET(self):
            self.route()

        def route(self):
            url = urllib.parse.urlsplit(self.path)
            parts = [urllib.parse.unquote(p) for p in url.path.split("/")[1:]]
            query = urllib.parse.parse_qs(url.query)
            if parts[:1] == ["_control"]:
                repo_id = query["repo"][0]
                with state.lock:
                    c = state.controls.setdefault(repo_id, {})
                    for key in ("cut", "fail", "get_redirect"):
                        if key in query:
                            c[key] = int(query[key][0])
                    if "ignore_range" in query:
                        c["ignore_range"] = query["ignore_range"][0] == "1"
                    if "delay" in query:
                        c["delay"] = float(query["delay"][0])
                return self.json({"ok": True})
            if parts[:1] == ["_stats"]:
                with state.lock:
                    return self.json(state.requests.get(query["repo"][0], []))

            if role == "cdn":
                # /cdn/{org}/{name}/{sha256}
                if len(parts) != 4 or parts[0] != "cdn":
                    return self.send(404, b"not found")
                repo_id = f"{parts[1]}/{parts[2]}"
                self.note(repo_id)
                if state.control(repo_id).get("fail"):
                    return self.send(state.control(repo_id)["fail"], b"failing on purpose")
                for entry in state.repo.files.values():
                    if entry["sha256"] == parts[3]:
                        md5 = hashlib.md5(entry["data"]).hexdigest()
                        return self.serve_bytes(entry["data"], {"ETag": f'"{md5}"'}, repo_id, cdn=True)
                return self.send(404, b"no such object")

            if parts[:2] == ["api", "models"] and len(parts) >= 4:
                org, name = parts[2], parts[3]
                repo_id = f"{org}/{name}"
                self.note(repo_id)
                if not self.check_repo(org, name):
                    return
                rest = parts[4:]
                revision = "main"
                if rest[:1] in (["revision"], ["tree"]) and len(rest) >= 2:
                    revision = rest[1]
                commit = state.repo.commit_for(revision)
                if commit is None:
                    return self.error(404, "RevisionNotFound", f"Invalid rev id: {revision}")
                if rest[:1] == ["tree"]:
                    return self.json(self.tree())
                return self.json({
                    "_id": "0" * 24, "id": repo_id, "modelId": repo_id, "author": org,
                    "sha": commit, "lastModified": "2026-11-29T00:00:00.000Z",
                    "private": org != "test", "gated": "manual" if org == "gated" else False,
                    "disabled": False, "tags": ["sentence-transformers"], "library_name": "sentence-transformers",
                    "siblings": [{"rfilename": p} for p in sorted(state.repo.files)],
                })

            if len(parts) >= 5 and parts[2] == "resolve":
                org, name, revision = parts[0], parts[1], parts[3]
                path = "/".join(parts[4:])
                repo_id = f"{org}/{name}"
                self.note(repo_id)
                if not self.check_repo(org, name):
                    return
                commit = state.repo.commit_for(revision)
                if commit is None:
                    return self.error(404, "RevisionNotFound", f"Invalid rev id: {revision}")
                if state.control(repo_id).get("fail"):
                    return self.send(state.control(repo_id)["fail"], b"failing on purpose", {"X-Repo-Commit": commit})
                entry = state.repo.files.get(path)
                if entry is None:
                    return self.error(404, "EntryNotFound", f"{path} does not exist on \"{revision}\"", {"X-Repo-Commit": commit})
                if entry["lfs"]:
                    location = f"{state.cdn_base}/cdn/{org}/{name}/{entry['sha256']}?X-Amz-Signature=fake"
                    return self.send(302, f"Found. Redirecting to {location}".encode(), {
                        "Location": location,
                        "X-Repo-Commit": commit,
                        "ETag": f'"{entry["oid"]}"',
                        "X-Linked-Etag": f'"{entry["sha256"]}"',
                        "X-Linked-Size": str(entry["size"]),
                    })
                if self.command == "GET" and state.control(repo_id).get("get_redirect"):
                    # A GET the hub sends elsewhere although its HEAD did not: the client must not
                    # carry the token to the other host.
                    location = f"{state.cdn_base}/cdn/{org}/{name}/{entry['sha256']}"
                    return self.send(302, b"", {"Location": location, "X-Repo-Commit": commit})
                return self.serve_bytes(entry["data"], {"ETag": f'"{entry["oid"]}"', "X-Repo-Commit": commit}, repo_id)

            self.send(404, b"not found")

        def note(self, repo_id):
            state.record(repo_id, {
                "server": role, "method": self.command, "path": urllib.parse.urlsplit(self.path).path,
                "range": self.headers.get("Range"), "auth": self.headers.get("Authorization"),
            })

        def tree(self):
            out, dirs = [], set()
            for path, e in sorted(state.repo.files.items()):
                parent = path.rsplit("/", 1)[0] if "/" in path else None
                if parent and parent not in dirs:
                    dirs.add(parent)
                    out.append({"type": "directory", "oid": "0" * 40, "size": 0, "path": parent})
                item = {"type": "file", "oid": e["oid"], "size": e["size"], "path": path}
                if e["lfs"]:
                    item["lfs"] = {"oid": e["sha256"], "size": e["size"], "pointerSize": e["pointer_size"]}
                out.append(item)
            return out

    return Handler


def start(repo_folder: str):
    """Starts both servers in threads; returns (hub_url, cdn_url, state)."""
    state = State(Repo(repo_folder))
    hub = ThreadingHTTPServer(("127.0.0.1", 0), make_handler(state, "hub"))
    cdn = ThreadingHTTPServer(("127.0.0.1", 0), make_handler(state, "cdn"))
    hub.daemon_threads = cdn.daemon_threads = True
    state.cdn_base = f"http://127.0.0.1:{cdn.server_address[1]}"
    for server in (hub, cdn):
        threading.Thread(target=server.serve_forever, daemon=True).start()
    return f"http://127.0.0.1:{hub.server_address[1]}", state.cdn_base, state


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repo", required=True, help="the model folder to serve")
    args = parser.parse_args()
    hub_url, cdn_url, state = start(args.repo)
    print(f"hub {hub_url} cdn {cdn_url} commit {state.repo.commit}", flush=True)
    try:
        sys.stdin.read()   # until the parent closes our stdin or dies
    except KeyboardInterrupt:
        pass


if __name__ == "__main__":
    main()
