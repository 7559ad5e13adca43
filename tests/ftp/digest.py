#!/usr/bin/env python3
"""Prints `SHA256 BYTES LINES` of the concatenation of the files named (`.gz` ones
decompressed), or of standard input without arguments; reads 1 MiB at a time, so any size
fits. tests/it/ftp.rs compares what a generator sent with what lc delivered this way."""

import gzip
import hashlib
import sys


def main():
    digest, size, lines = hashlib.sha256(), 0, 0
    sources = sys.argv[1:] or [None]
    for name in sources:
        if name is None:
            f = sys.stdin.buffer
        elif name.endswith(".gz"):
            f = gzip.open(name, "rb")
        else:
            f = open(name, "rb")
        with f:
            while chunk := f.read(1 << 20):
                digest.update(chunk)
                size += len(chunk)
                lines += chunk.count(b"\n")
    print(digest.hexdigest(), size, lines)


if __name__ == "__main__":
    main()
