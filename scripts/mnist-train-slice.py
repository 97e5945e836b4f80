#!/usr/bin/env python3
"""Cut the first N samples of the MNIST *training* set into gzipped IDX files.

Writes `train-5k-images.idx3-ubyte.gz` and `train-5k-labels.idx1-ubyte.gz` (for the default
N = 5000) into OUT_DIR and prints the sha256 of each uncompressed file and of each .gz, the
figures assets/README.md records. Standard library only; the gzip header carries no name and
mtime 0, so the same zlib writes the same bytes.

    python3 scripts/mnist-train-slice.py ../shared/data/mnist assets/mnist [N]
"""

import gzip
import hashlib
import struct
import sys
from pathlib import Path


def cut(src: Path, n: int, item: int, magic: int) -> bytes:
    """The IDX file `src` with its first `n` items of `item` bytes, count rewritten."""
    data = gzip.decompress(src.read_bytes())
    dims = data[3]
    got_magic, count = struct.unpack(">II", data[:8])
    if got_magic != magic or count < n:
        sys.exit(f"{src}: magic {got_magic}, {count} items; want magic {magic}, >= {n} items")
    header = 4 + 4 * dims
    return data[:4] + struct.pack(">I", n) + data[8:header] + data[header : header + n * item]


def main() -> None:
    if len(sys.argv) not in (3, 4):
        sys.exit(__doc__)
    src, out = Path(sys.argv[1]), Path(sys.argv[2])
    n = int(sys.argv[3]) if len(sys.argv) == 4 else 5000
    tag = f"{n // 1000}k" if n % 1000 == 0 else str(n)
    out.mkdir(parents=True, exist_ok=True)
    for kind, item, magic in (("images.idx3", 28 * 28, 2051), ("labels.idx1", 1, 2049)):
        raw = cut(src / f"train-{kind.split('.')[0]}.{kind.split('.')[1]}-ubyte.gz", n, item, magic)
        path = out / f"train-{tag}-{kind}-ubyte.gz"
        packed = gzip.compress(raw, compresslevel=9, mtime=0)
        path.write_bytes(packed)
        print(f"{path.name}: {len(packed)} B gz, sha256 gz {hashlib.sha256(packed).hexdigest()}, "
              f"uncompressed {len(raw)} B sha256 {hashlib.sha256(raw).hexdigest()}")


if __name__ == "__main__":
    main()
