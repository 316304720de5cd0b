#!/usr/bin/env python3
"""Example client for soundloc's UNIX socket protocol (docs/PROTOCOL.md), standard library only.

Connects, prints the banner, subscribes (optionally with maps) and prints one line per FRAME:

    python3 Tools/soundloc_client.py --socket /run/soundloc/soundloc.sock --maps
    python3 Tools/soundloc_client.py --poll          # just the latest frame, then exit
"""
import argparse
import json
import socket
import sys


def send(sock, message):
    """Commands are one JSON object per line, like everything else."""
    sock.sendall((json.dumps(message) + "\n").encode("utf-8"))


def describe_frame(frame):
    latency_ms = (frame["publish_ns"] - frame["capture_ns"]) / 1e6
    if frame["silence"]:
        what = "silence"
    elif not frame["sounding"]:
        what = "nothing sounding in view"
    else:
        what = "  ".join(
            f"{s['class']} {s['score']:.2f} at ({s['peak'][0]:.2f},{s['peak'][1]:.2f})" for s in frame["sounding"]
        )
    top = sorted(frame["audio"].items(), key=lambda kv: -kv[1])[:3]
    parts = [
        f"#{frame['seq']}",
        what,
        "silent: " + (", ".join(frame["silent_visible"]) or "-"),
        "audio: " + " ".join(f"{name} {p:.2f}" for name, p in top),
        f"{latency_ms:.1f} ms",
    ]
    unlocated = frame.get("unlocated") or []  # heard but not placed, and why (newer servers)
    if unlocated:
        parts.append("heard, not located: " + ", ".join(
            f"{u['class']} ({u['reason']} {u['value']:.2f} < {u['threshold']:g})" for u in unlocated))
    if frame["dropped_messages"]:
        parts.append(f"missed {frame['dropped_messages']} frames (reading too slowly)")
    maps = frame.get("maps")
    if maps:
        # The sounding-area map is 14x14, row-major; report where it peaks.
        area = maps["sounding_area"]
        cell = max(range(len(area)), key=area.__getitem__)
        parts.append(f"area peak {area[cell]:.2f} at cell (row {cell // 14}, col {cell % 14})")
    return " | ".join(parts)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--socket", default="/run/soundloc/soundloc.sock", help="the appliance's socket")
    parser.add_argument("--maps", action="store_true", help="also receive the class and sounding-area maps")
    parser.add_argument("--poll", action="store_true", help="print the latest frame once and exit")
    parser.add_argument("--frames", type=int, default=0, help="exit after this many frames (0: never)")
    args = parser.parse_args()

    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        sock.connect(args.socket)
    except OSError as error:
        sys.exit(f"cannot connect to {args.socket}: {error.strerror or error}")
    lines = sock.makefile("r", encoding="utf-8", newline="\n")

    banner = json.loads(lines.readline())
    print(
        f"{banner['server']} {banner['release']} (protocol {banner['protocol']}), model {banner['model']['name']}, "
        f"{len(banner['classes'])} classes: {', '.join(banner['classes'])}"
    )

    if args.poll:
        # Pause the stream so the only FRAME that comes is the answer to POLL.
        send(sock, {"class": "WATCH", "enable": False, "maps": args.maps})
        send(sock, {"class": "POLL"})
    elif args.maps:
        send(sock, {"class": "WATCH", "maps": True})

    frames = 0
    try:
        for line in lines:
            message = json.loads(line)
            kind = message.get("class")
            if kind == "FRAME":
                print(describe_frame(message), flush=True)
                frames += 1
                if args.poll or (args.frames and frames >= args.frames):
                    break
            elif kind == "STATUS":
                print(f"status: {message['device']} {message['state']}: {message['message']}", flush=True)
            elif kind == "ERROR":
                print(f"server says: {message['message']}", file=sys.stderr)
                if args.poll:
                    return 1
            elif kind == "WATCH":
                pass  # the server confirms the subscription settings
            # Unknown classes are ignored: newer servers may add some.
        else:
            print("server closed the connection", file=sys.stderr)
    except KeyboardInterrupt:
        pass
    except BrokenPipeError:  # e.g. piped into `head`
        pass
    finally:
        sock.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
