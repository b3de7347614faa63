#!/usr/bin/env python3
"""The tiny Karlo fixture's tokenizer as transformers 5 saves it: tokenizer.json (the tokenizers library's format)
and tokenizer_config.json only, no vocab.json or merges.txt — the layout of hub folders saved today. The converter
test assembles a hub folder from it and the other tiny-karlo components.

    weights-tools/.venv/bin/python weights-tools/reference/make_tokenizer5_fixture.py \
        Tests/UnCLIPTests/Fixtures/tiny-karlo/tokenizer Tests/UnCLIPTests/Fixtures/tiny-karlo-tokenizer-hub5
"""
import os
import sys

import transformers
from transformers import CLIPTokenizer


def main():
    src, out = sys.argv[1], sys.argv[2]
    assert transformers.__version__.startswith("5."), f"needs transformers 5 (has {transformers.__version__})"
    tok = CLIPTokenizer.from_pretrained(src)
    tok.save_pretrained(out)
    files = sorted(os.listdir(out))
    assert "vocab.json" not in files and "merges.txt" not in files and "tokenizer.json" in files, files
    print(f"wrote {out}: {', '.join(files)} (transformers {transformers.__version__}, pad {tok.pad_token!r} id {tok.pad_token_id})")


if __name__ == "__main__":
    main()
