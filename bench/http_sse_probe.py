#!/usr/bin/env python3
"""Opens N concurrent SSE streams (POST /v1/completions, "stream": true) on a
running lstmserve's HTTP front from one thread (selectors), and reports the
server's threads and resident memory before, at their peak while the N are open
(sampled every 50 ms) and after,
plus how many streams completed with [DONE] and the wall time.

  bench/http_sse_probe.py --port 8000 --pid $(pidof lstmserve) --streams 256 \
      --model shakespeare --max-tokens 200
"""
import argparse
import json
import selectors
import socket
import time


def proc_status(pid):
    out = {}
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            key, _, value = line.partition(":")
            if key in ("Threads", "VmRSS"):
                out[key] = value.strip()
    return out


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--port", type=int, required=True)
    ap.add_argument("--pid", type=int, required=True)
    ap.add_argument("--streams", type=int, default=256)
    ap.add_argument("--model", default="shakespeare")
    ap.add_argument("--max-tokens", type=int, default=200)
    args = ap.parse_args()

    before = proc_status(args.pid)
    sel = selectors.DefaultSelector()
    got = {}
    start = time.time()
    for i in range(args.streams):
        body = json.dumps({"model": args.model, "prompt": "ROMEO:\n", "max_tokens": args.max_tokens,
                           "temperature": 0.8, "seed": i, "stream": True}).encode()
        s = socket.create_connection(("127.0.0.1", args.port))
        s.sendall(b"POST /v1/completions HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                  b"Content-Length: %d\r\n\r\n" % len(body) + body)
        sel.register(s, selectors.EVENT_READ)
        got[s] = b""
    peak_threads = peak_rss_kb = 0
    last_sample = 0.0
    done = 0
    while got:
        if time.time() - last_sample > 0.05:
            now = proc_status(args.pid)
            peak_threads = max(peak_threads, int(now["Threads"]))
            peak_rss_kb = max(peak_rss_kb, int(now["VmRSS"].split()[0]))
            last_sample = time.time()
        for key, _ in sel.select(timeout=120):
            s = key.fileobj
            data = s.recv(65536)
            got[s] += data
            if not data or got[s].endswith(b"0\r\n\r\n"):
                done += b"data: [DONE]" in got[s]
                sel.unregister(s)
                s.close()
                del got[s]
    wall = time.time() - start
    after = proc_status(args.pid)
    print(json.dumps({"streams": args.streams, "completed_with_done": done, "wall_s": round(wall, 2),
                      "server_before": before, "server_peak_while_streaming": {"Threads": peak_threads, "VmRSS_kB": peak_rss_kb},
                      "server_after": after}, indent=1))


if __name__ == "__main__":
    main()
