#!/usr/bin/python3
"""Reads TensorBoard event files independently of ddm's writer (src/io/tfevents.c).

The TFRecord framing is parsed here and both CRC-32Cs of every record are checked with a bitwise CRC-32C
(a different algorithm from the writer's table); the payloads are decoded by Debian's python3-protobuf from
the Event / SessionLog / Summary / Summary.Value / Summary.Image messages, declared below with the
descriptor API from TensorFlow's event.proto and summary.proto (only the fields ddm writes; the field
numbers and types are TensorFlow's).

    /usr/bin/python3 tools/tfevents_read.py EVENTFILE [--json OUT.json] [--dump-images DIR] [--tensorboard]

prints one line per event and, with --json, writes them as a list of objects:
{"wall_time", "step", "file_version"?, "session_log"?, "values": [{"tag", "simple_value"?, "image"?:
{"height", "width", "colorspace", "png_sha256", "png_size"}}]}. --tensorboard also loads the directory with
TensorBoard's own EventAccumulator when TensorBoard is installed (it is not packaged by Debian; the check
says so and is skipped). Exit status 0, or 1 on a bad CRC, a truncated record or an undecodable payload.
"""
import argparse
import hashlib
import json
import os
import struct
import sys

from google.protobuf import descriptor_pb2, descriptor_pool, message_factory


def crc32c(data):
    """Bitwise CRC-32C (Castagnoli, reflected polynomial 0x82F63B78)."""
    c = 0xFFFFFFFF
    for b in data:
        c ^= b
        for _ in range(8):
            c = (c >> 1) ^ (0x82F63B78 if c & 1 else 0)
    return c ^ 0xFFFFFFFF


def masked(data):
    c = crc32c(data)
    return (((c >> 15) | (c << 17)) + 0xA282EAD8) & 0xFFFFFFFF


def messages():
    F = descriptor_pb2.FieldDescriptorProto
    fdp = descriptor_pb2.FileDescriptorProto(name="ddm_tfevents_check.proto", package="tensorflow",
                                             syntax="proto3")

    def msg(name, fields, parent=None):
        m = (parent.nested_type if parent else fdp.message_type).add(name=name)
        for fname, num, ftype, label, tname in fields:
            f = m.field.add(name=fname, number=num, type=ftype, label=label)
            if tname:
                f.type_name = tname
        return m

    opt, rep = F.LABEL_OPTIONAL, F.LABEL_REPEATED
    summary = msg("Summary", [("value", 1, F.TYPE_MESSAGE, rep, ".tensorflow.Summary.Value")])
    msg("Image", [("height", 1, F.TYPE_INT32, opt, None), ("width", 2, F.TYPE_INT32, opt, None),
                  ("colorspace", 3, F.TYPE_INT32, opt, None),
                  ("encoded_image_string", 4, F.TYPE_BYTES, opt, None)], summary)
    msg("Value", [("tag", 1, F.TYPE_STRING, opt, None), ("simple_value", 2, F.TYPE_FLOAT, opt, None),
                  ("image", 4, F.TYPE_MESSAGE, opt, ".tensorflow.Summary.Image")], summary)
    msg("SessionLog", [("status", 1, F.TYPE_INT32, opt, None)])
    msg("Event", [("wall_time", 1, F.TYPE_DOUBLE, opt, None), ("step", 2, F.TYPE_INT64, opt, None),
                  ("file_version", 3, F.TYPE_STRING, opt, None),
                  ("summary", 5, F.TYPE_MESSAGE, opt, ".tensorflow.Summary"),
                  ("session_log", 6, F.TYPE_MESSAGE, opt, ".tensorflow.SessionLog")])
    pool = descriptor_pool.DescriptorPool()
    pool.Add(fdp)
    desc = pool.FindMessageTypeByName("tensorflow.Event")
    if hasattr(message_factory, "GetMessageClass"):
        return message_factory.GetMessageClass(desc)
    return message_factory.MessageFactory(pool).GetPrototype(desc)


def records(path):
    data = open(path, "rb").read()
    pos, k = 0, 0
    while pos < len(data):
        if pos + 12 > len(data):
            raise ValueError(f"record {k}: truncated length header at byte {pos}")
        head = data[pos:pos + 8]
        (n,) = struct.unpack("<Q", head)
        (hc,) = struct.unpack("<I", data[pos + 8:pos + 12])
        if hc != masked(head):
            raise ValueError(f"record {k}: length CRC mismatch")
        body = data[pos + 12:pos + 12 + n]
        if len(body) != n or pos + 16 + n > len(data):
            raise ValueError(f"record {k}: truncated payload ({len(body)} of {n} bytes)")
        (bc,) = struct.unpack("<I", data[pos + 12 + n:pos + 16 + n])
        if bc != masked(body):
            raise ValueError(f"record {k}: payload CRC mismatch")
        yield body
        pos += 16 + n
        k += 1


def decode(path, dump_images=None):
    Event = messages()
    out = []
    for k, body in enumerate(records(path)):
        e = Event()
        e.ParseFromString(body)
        ev = {"wall_time": e.wall_time, "step": e.step, "values": []}
        if e.file_version:
            ev["file_version"] = e.file_version
        if e.HasField("session_log"):
            ev["session_log"] = e.session_log.status
        for v in e.summary.value:
            d = {"tag": v.tag}
            if v.HasField("image"):
                png = v.image.encoded_image_string
                d["image"] = {"height": v.image.height, "width": v.image.width, "colorspace": v.image.colorspace,
                              "png_sha256": hashlib.sha256(png).hexdigest(), "png_size": len(png),
                              "png_signature_ok": png[:8] == b"\x89PNG\r\n\x1a\n"}
                if dump_images:
                    name = os.path.join(dump_images, f"{k}_{v.tag.replace('/', '_')}.png")
                    with open(name, "wb") as f:
                        f.write(png)
                    d["image"]["file"] = name
            else:
                d["simple_value"] = v.simple_value
            ev["values"].append(d)
        out.append(ev)
    return out


def tensorboard_check(path, events):
    try:
        from tensorboard.backend.event_processing import event_accumulator
    except ImportError:
        print("tfevents_read: TensorBoard is not installed (Debian does not package it): its own reader SKIPPED")
        return True
    acc = event_accumulator.EventAccumulator(os.path.dirname(os.path.abspath(path)), size_guidance={"scalars": 0, "images": 0})
    acc.Reload()
    tags = acc.Tags()
    ok = True
    for ev in events:
        for v in ev["values"]:
            kind = "images" if "image" in v else "scalars"
            ok &= v["tag"] in tags.get(kind, [])
    print(f"tfevents_read: TensorBoard's EventAccumulator sees {tags.get('scalars')} / {tags.get('images')}: "
          f"{'OK' if ok else 'MISSING TAGS'}")
    return ok


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("path")
    ap.add_argument("--json")
    ap.add_argument("--tensorboard", action="store_true")
    ap.add_argument("--dump-images", help="write each image's PNG bytes to DIR/<event>_<tag>.png")
    a = ap.parse_args()
    try:
        events = decode(a.path, a.dump_images)
    except Exception as e:  # noqa: BLE001 - any decoding failure is the finding
        print(f"tfevents_read: {a.path}: {e}", file=sys.stderr)
        sys.exit(1)
    for ev in events:
        print(json.dumps(ev))
    if a.json:
        with open(a.json, "w") as f:
            json.dump(events, f)
    if a.tensorboard and not tensorboard_check(a.path, events):
        sys.exit(1)


if __name__ == "__main__":
    main()
