"""Cross-checks the engine's tensor checksums with an independent implementation: reads a unclip GGUF file with
PyPI's `gguf` reader and recomputes every tensor's XXH64 (seed 0, its bytes without padding) with PyPI's `xxhash`,
against the `unclip.tensor_xxh64` array the Swift writer stored.

    weights-tools/.venv/bin/python weights-tools/reference/check_checksums.py model.gguf

Exit 0 when every checksum matches, 1 otherwise (or when the file has none)."""
import sys

import gguf
import xxhash


def main(path: str) -> int:
    r = gguf.GGUFReader(path)
    field = r.fields.get("unclip.tensor_xxh64")
    if field is None:
        print(f"{path}: no unclip.tensor_xxh64 array")
        return 1
    stored = [int(field.parts[i][0]) for i in field.data]
    if len(stored) != len(r.tensors):
        print(f"{path}: {len(stored)} checksums for {len(r.tensors)} tensors")
        return 1
    bad = 0
    for t, want in zip(r.tensors, stored):
        got = xxhash.xxh64_intdigest(t.data.tobytes(), seed=0)
        if got != want:
            bad += 1
            print(f"{t.name}: xxh64 {got:016x}, stored {want:016x}")
    print(f"{path}: {len(stored) - bad}/{len(stored)} tensor checksums match python-xxhash {xxhash.VERSION}")
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1]))
