#!/usr/bin/env python3
"""Merge whole-bus entries into entity-manager's FruDevice blocklist.

usage: acpigate-frudevice-blocklist.py FILE BUS [BUS ...]

FILE is the image's blacklist.json (whatever the recipe or the machine layer installed);
each BUS is added to its "buses" array as a plain number, which is the only entry that keeps
FruDevice off a bus: an entry {"bus": N, "addresses": [...]} blocks those addresses only,
FruDevice still reads every eeprom device on the bus through its driver, and listed after a
number it narrows that number back to its addresses. Such entries for BUS are therefore
replaced. Every other entry and key is kept; a missing FILE is created.
"""

import json
import os
import sys
import tempfile


def fail(message):
    print(f"acpigate-frudevice-blocklist: {message}", file=sys.stderr)
    sys.exit(1)


def bus_number(arg):
    if not arg.isdigit():
        fail(f"bus '{arg}' is not a bus number (the N of /dev/i2c-N)")
    return int(arg)


def merge(data, buses, path):
    if not isinstance(data, dict):
        fail(f"{path}: the top level is not a JSON object (FruDevice refuses such a file too)")
    entries = data.get("buses", [])
    if not isinstance(entries, list):
        fail(f"{path}: \"buses\" is not an array (FruDevice refuses such a file too)")
    kept = [
        e for e in entries
        if not (isinstance(e, dict) and "addresses" in e and e.get("bus") in buses)
    ]
    for bus in buses:
        if not any(type(e) is int and e == bus for e in kept):
            kept.append(bus)
    data["buses"] = kept
    return data


def main(argv):
    if len(argv) < 3:
        fail("usage: acpigate-frudevice-blocklist.py FILE BUS [BUS ...]")
    path = argv[1]
    buses = [bus_number(a) for a in argv[2:]]
    mode = 0o644
    data = {}
    if os.path.exists(path):
        mode = os.stat(path).st_mode & 0o7777
        with open(path, encoding="utf-8") as f:
            try:
                data = json.load(f)
            except json.JSONDecodeError as e:
                fail(f"{path}:{e.lineno}:{e.colno}: {e.msg} (FruDevice refuses such a file too)")
    merged = merge(data, buses, path)
    # Written beside and renamed over: the installed file may be read-only (0444).
    directory = os.path.dirname(path) or "."
    os.makedirs(directory, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=directory, prefix=".blacklist-")
    with os.fdopen(fd, "w", encoding="utf-8") as f:
        json.dump(merged, f, indent=4)
        f.write("\n")
    os.chmod(tmp, mode)
    os.replace(tmp, path)


if __name__ == "__main__":
    main(sys.argv)
