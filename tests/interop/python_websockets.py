#!/usr/bin/python3
# Interoperability: Debian's python3-websockets (10.4), a client nobody here
# wrote, against courier-hub's /ws mount (PROTOCOL.md, "WebSocket").
#
#   /usr/bin/python3 python_websockets.py PATH/TO/courier-hub
#
# Starts its own hub on an ephemeral port, exits 1 with "FAIL: ..." on the
# first failed check, and never runs longer than HARD_TIMEOUT seconds.
import asyncio
import json
import os
import signal
import subprocess
import sys
import urllib.request

import websockets
from websockets.extensions import permessage_deflate

HARD_TIMEOUT = 60  # seconds, for the whole script
RECV_TIMEOUT = 5   # seconds, for any one expected frame

hub = None  # the courier-hub we started; killed by PID at exit


class Failure(Exception):
    pass


def check(cond, what):
    if not cond:
        raise Failure(what)


def stop_hub():
    if hub is not None and hub.poll() is None:
        os.kill(hub.pid, signal.SIGTERM)
        try:
            hub.wait(timeout=5)
        except subprocess.TimeoutExpired:
            os.kill(hub.pid, signal.SIGKILL)
            hub.wait()


def on_alarm(signum, frame):
    # The last resort: whatever hangs, the test ends and takes the hub with it.
    print(f"FAIL: still running after {HARD_TIMEOUT} s", file=sys.stderr)
    stop_hub()
    os._exit(1)


# Count the compressed (RSV1) frames the client decodes, to show that the
# server really compressed something rather than only agreeing to.
compressed_frames = 0
_decode = permessage_deflate.PerMessageDeflate.decode


def counting_decode(self, frame, *, max_size=None):
    global compressed_frames
    if frame.rsv1:
        compressed_frames += 1
    return _decode(self, frame, max_size=max_size)


permessage_deflate.PerMessageDeflate.decode = counting_decode


def start_hub(path):
    global hub
    hub = subprocess.Popen([path, "--port", "0", "--address", "127.0.0.1", "--threads", "1", "--history", "50"],
                           stdout=subprocess.PIPE, text=True)
    line = hub.stdout.readline()  # "courier-hub listening on http://127.0.0.1:PORT ..."
    check("listening on http://" in line, f"hub did not start: {line!r}")
    return line.split("listening on ")[1].split()[0]


def http_publish_sync(base, mount, topic, body):
    req = urllib.request.Request(f"{base}/{mount}/{topic}", data=body.encode(), method="POST",
                                 headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(req, timeout=RECV_TIMEOUT) as r:
        check(r.status == 200, f"POST /{mount}/{topic} answered {r.status}")
        answer = json.loads(r.read())
    check(answer.get("topic") == topic and isinstance(answer.get("id"), str), f"publish answer {answer}")
    return answer["id"]


async def http_publish(base, mount, topic, body):
    return await asyncio.to_thread(http_publish_sync, base, mount, topic, body)


async def recv(ws, what):
    try:
        frame = await asyncio.wait_for(ws.recv(), RECV_TIMEOUT)
    except asyncio.TimeoutError:
        raise Failure(f"no frame within {RECV_TIMEOUT} s while waiting for {what}")
    check(isinstance(frame, str), f"{what}: got a binary frame {frame!r}")
    return frame


def envelope(id_, topic, data):
    """The exact bytes PROTOCOL.md promises for a message."""
    return f'{{"id":"{id_}","topic":"{topic}","data":{data}}}'


async def main(base):
    ws_base = base.replace("http://", "ws://", 1)

    # 1. Connect to P/{topic}; python websockets offers permessage-deflate by
    #    default, and the server must accept it without context takeover.
    async with websockets.connect(f"{ws_base}/ws/room") as ws:
        ext = ws.response_headers.get("Sec-WebSocket-Extensions", "")
        check("permessage-deflate" in ext and "server_no_context_takeover" in ext,
              f"Sec-WebSocket-Extensions is {ext!r}")

        # Publish through the socket: the ack and the envelope, byte for byte.
        # Insignificant whitespace goes, characters and digits stay.
        sent = '{ "text" : "héllo ✓", "n" : 123456789012345678901234567890, "x" : 1.50, "l" : [1, {"k": null}] }'
        stored = '{"text":"héllo ✓","n":123456789012345678901234567890,"x":1.50,"l":[1,{"k":null}]}'
        await ws.send(f'{{"op":"publish","topic":"room","data":{sent},"ref":1}}')
        # The two frames' order is not specified: accept either.
        frames = [await recv(ws, "ack of publish ref 1"), await recv(ws, "envelope of publish ref 1")]
        ack = next((f for f in frames if f.startswith('{"op":"ack"')), None)
        check(ack is not None, f"no ack among {frames}")
        id1 = json.loads(ack)["id"]
        check(ack == f'{{"op":"ack","ref":1,"id":"{id1}"}}', f"ack is {ack}")
        other = frames[1] if frames[0] is ack else frames[0]
        check(other == envelope(id1, "room", stored), f"envelope is {other}, expected {envelope(id1, 'room', stored)}")

        # Published over HTTP on another mount: arrives on the socket as is.
        for mount in ("ws", "sse"):
            pid = await http_publish(base, mount, "room", f'{{"via":"{mount}"}}')
            got = await recv(ws, f"message POSTed to /{mount}/room")
            check(got == envelope(pid, "room", f'{{"via":"{mount}"}}'), f"POST /{mount}/room arrived as {got}")

        # A large compressible message: the client sends it compressed (the
        # server inflates), the server sends its envelope compressed.
        before = compressed_frames
        big = json.dumps({"text": "courier " * 640}, separators=(",", ":"))  # about 5 KB, compact
        await ws.send(f'{{"op":"publish","topic":"room","data":{big},"ref":"big"}}')
        frames = [await recv(ws, "ack of the 5 KB publish"), await recv(ws, "the 5 KB envelope")]
        ack = next((f for f in frames if f.startswith('{"op":"ack"')), None)
        check(ack is not None, f"no ack for the 5 KB publish: {[f[:80] for f in frames]}")
        big_id = json.loads(ack)["id"]
        got = frames[1] if frames[0] is ack else frames[0]
        check(got == envelope(big_id, "room", big), f"the 5 KB message arrived changed ({len(got)} bytes)")
        check(compressed_frames > before, "the 5 KB envelope did not arrive compressed")

        # The client's ping gets its pong.
        pong = await ws.ping(b"are you there")
        await asyncio.wait_for(pong, RECV_TIMEOUT)

        # Malformed ops get an error frame, and the connection stays open.
        await ws.send("not json")
        err = json.loads(await recv(ws, "error for 'not json'"))
        check(err.get("op") == "error" and err.get("ref") is None and isinstance(err.get("error"), str)
              and isinstance(err.get("message"), str), f"'not json' answered {err}")
        await ws.send('{"op":"nope"}')
        err = json.loads(await recv(ws, 'error for {"op":"nope"}'))
        check(err.get("op") == "error" and err.get("ref") is None, f'{{"op":"nope"}} answered {err}')
        await ws.send('{"op":"nope","ref":7}')
        err = json.loads(await recv(ws, 'error for {"op":"nope","ref":7}'))
        check(err.get("op") == "error" and err.get("ref") == 7, f'{{"op":"nope","ref":7}} answered {err}')
        await ws.send('{"op":"publish","topic":"bad topic!","data":1,"ref":8}')
        err = json.loads(await recv(ws, "error for a publish to an invalid topic"))
        check(err.get("op") == "error" and err.get("ref") == 8, f"publish to 'bad topic!' answered {err}")
        await ws.send('{"op":"publish","topic":"room","data":"still here","ref":9}')
        frames = [await recv(ws, "ack after the errors"), await recv(ws, "envelope after the errors")]
        check(any(f.startswith('{"op":"ack","ref":9,') for f in frames), f"after the errors: {frames}")

        # Close cleanly.
        await ws.close()
        check(ws.close_code == 1000, f"close code {ws.close_code}")

    # 2. GET P, then subscribe with since=earliest: the retained backlog of
    #    topic a, in order.
    a_ids = [await http_publish(base, "poll", "a", f'{{"n":{n}}}') for n in range(3)]
    async with websockets.connect(f"{ws_base}/ws") as ws:
        await ws.send('{"op":"subscribe","topic":"a","since":"earliest","ref":"s"}')
        got = []
        while len(got) < 3:
            f = await recv(ws, f"backlog message {len(got)} of topic a")
            if f.startswith('{"op":"ack","ref":"s"'):
                continue  # the server acknowledges a subscribe that carries a ref
            got.append(f)
        expected = [envelope(i, "a", f'{{"n":{n}}}') for n, i in enumerate(a_ids)]
        check(got == expected, f"backlog of a is {got}, expected {expected}")
        await ws.close()
        check(ws.close_code == 1000, f"close code {ws.close_code}")

    # 3. Resume with ?since=<id>: exactly the messages after it. A marker
    #    published afterwards must be the very next frame (nothing extra).
    r_ids = [await http_publish(base, "sse", "resume", f'{{"n":{n}}}') for n in range(5)]
    async with websockets.connect(f"{ws_base}/ws/resume?since={r_ids[1]}") as ws:
        for n in range(2, 5):
            got = await recv(ws, f"resumed message {n}")
            check(got == envelope(r_ids[n], "resume", f'{{"n":{n}}}'), f"resumed message {n} is {got}")
        marker = await http_publish(base, "ws", "resume", '"marker"')
        got = await recv(ws, "the marker after the resumed messages")
        check(got == envelope(marker, "resume", '"marker"'), f"after the resumed messages came {got}")
        await ws.close()
        check(ws.close_code == 1000, f"close code {ws.close_code}")

    # 4. No compression: no extension is negotiated, everything still works.
    async with websockets.connect(f"{ws_base}/ws/room", compression=None) as ws:
        check("Sec-WebSocket-Extensions" not in ws.response_headers,
              f"extensions without an offer: {ws.response_headers.get('Sec-WebSocket-Extensions')}")
        before = compressed_frames
        big_id = await http_publish(base, "ws", "room", big)
        got = await recv(ws, "the 5 KB message, uncompressed")
        check(got == envelope(big_id, "room", big), f"the 5 KB message arrived changed ({len(got)} bytes)")
        check(compressed_frames == before, "a compressed frame arrived without permessage-deflate")
        await ws.send('{"op":"publish","topic":"room","data":[],"ref":"plain"}')
        frames = [await recv(ws, "ack without compression"), await recv(ws, "envelope without compression")]
        check(any(f.startswith('{"op":"ack","ref":"plain",') for f in frames), f"without compression: {frames}")
        await ws.close()
        check(ws.close_code == 1000, f"close code {ws.close_code}")


def run():
    if len(sys.argv) != 2:
        print("usage: python_websockets.py PATH/TO/courier-hub", file=sys.stderr)
        return 2
    signal.signal(signal.SIGALRM, on_alarm)
    signal.alarm(HARD_TIMEOUT)
    try:
        base = start_hub(sys.argv[1])
        asyncio.run(asyncio.wait_for(main(base), HARD_TIMEOUT - 5))
        print(f"python websockets {websockets.__version__}: every check passed against {base}")
        return 0
    except Failure as e:
        print(f"FAIL: {e}", file=sys.stderr)
    except asyncio.TimeoutError:
        print(f"FAIL: did not finish within {HARD_TIMEOUT - 5} s", file=sys.stderr)
    except Exception as e:  # a connection refused or closed early, a bad HTTP status...
        print(f"FAIL: {type(e).__name__}: {e}", file=sys.stderr)
    finally:
        stop_hub()
    return 1


if __name__ == "__main__":
    sys.exit(run())
