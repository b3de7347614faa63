#!/usr/bin/env python3
"""Token ids of a corpus of awkward strings, from transformers' CLIPTokenizer with the real CLIP BPE vocabulary
(the tiny Karlo fixture's tokenizer files), for the Swift tokenizer test.

    weights-tools/.venv/bin/python weights-tools/reference/make_tokenizer_corpus.py \
        Tests/UnCLIPTests/Fixtures/tiny-karlo/tokenizer Tests/UnCLIPTests/Fixtures/tokenizer-corpus.json

Each entry: the text and its 77 ids (truncated, padded with the pad id) as the pipelines call the tokenizer
(padding="max_length", max_length=77, truncation=True); trailing pad ids are dropped to keep the file small.
"""
import json
import os
import random
import sys

from transformers import CLIPTokenizer

FIXED = [
    "", " ", "a red circle on top of a blue square", "A Red CIRCLE", "an orange square", "  leading and   inner   spaces  ",
    "tabs\tand\nnewlines\r\n", "don't you're we've I'm they'll he'd it's", "DON'T YOU'RE", "'sup 'tis o'clock rock'n'roll",
    "numbers 1234567890 and 3.14159 and 1,000,000", "½ ² ³ ⅷ ٣ ௫", "emoji 😀🎉👍🏽 👨‍👩‍👧‍👦 ❤️", "punctuation!!! ??? ... --- ;;; ()[]{}",
    "mixed!?words,with.punct", "café naïve résumé coöperate", "cafe\u0301 (combining accent, NFC)", "Ǆ ǅ ǆ", "İstanbul ΣΊΣΥΦΟΣ ΟΔΟΣ",
    "日本語のテキスト", "中文文本测试", "한국어 텍스트", "русский текст", "עברית", "العربية", "हिन्दी", "ไทย",
    "non\u00a0breaking\u2003em\u3000ideographic spaces", "zero\u200bwidth", "soft\u00adhyphen", "<|startoftext|>", "<|endoftext|>",
    "text with <|endoftext|> inside", "<|ENDOFTEXT|> upper", "a" * 300, "word " * 100, "supercalifragilisticexpialidocious",
    "http://example.com/path?query=1&b=2", "email@example.com", "#hashtag @mention $money %percent ^caret &amp *star",
    "\"quoted\" 'single' `back`", "ﬁ ligature ﬂ", "Ｆｕｌｌｗｉｄｔｈ", "ⓒⓘⓡⓒⓛⓔ", "x²+y²=z²", "naïve ÆØÅ æøå ß ẞ", "\U0001d400\U0001d401 math bold",
    "a\u0000b", "tab\x0bvertical\x0cformfeed", "line\u2028separator\u2029para", "ﷺ", "🇫🇷🇯🇵", "1st 2nd 3rd 4th", "i.e. e.g. etc.",
]


def randomized(rng, n):
    pieces = ["red", "green", "blue", "yellow", "purple", "orange", "circle", "square", "triangle", "large", "small", "on top of",
              "above", "below", "under", "to the left of", "right of", "a", "an", "the", "photo", "of", "!", "?", ".", ",",
              "'s", "'t", "'ll", "42", "7", "😀", "é", "ü", "ß", "日本", "Σ", "  ", "\t", "\n", "-", "--", "...", "&", "\u00a0",
              "Hello", "WORLD", "CamelCase", "snake_case", "kebab-case", "x1y2z3", "3D", "4K", "α", "β", "γ", "ω", "ǅ"]
    out = []
    for _ in range(n):
        k = rng.randint(1, 30)
        out.append("".join(rng.choice(pieces) + rng.choice(["", " ", " ", ""]) for _ in range(k)))
        if rng.random() < 0.1:  # random code points from many blocks
            out.append("".join(chr(rng.choice([rng.randint(0x21, 0x7e), rng.randint(0xa0, 0x2fff), rng.randint(0x3000, 0x9fff),
                                               rng.randint(0x1f300, 0x1faff)])) for _ in range(rng.randint(1, 40))))
    return out


def main():
    tok_dir, out = sys.argv[1], sys.argv[2]
    tok = CLIPTokenizer(os.path.join(tok_dir, "vocab.json"), os.path.join(tok_dir, "merges.txt"), pad_token="!", model_max_length=77)
    rng = random.Random(20261126)
    texts = FIXED + randomized(rng, 1100)
    texts = [t for t in texts if "\ud800" <= t[:1] <= "\udfff" or True]
    # long single words (hostile input: BPE on one long word must stay near-linear), appended so the entries above
    # keep their order; their own generator
    lrng = random.Random(20261202)
    texts += ["".join(lrng.choice("abcdefghijklmnopqrstuvwxyz") for _ in range(n)) for n in (300, 1000, 4000, 20000)]
    texts += ["".join(lrng.choice("aeiouyéüßxz") for _ in range(3000)), "ab" * 5000, "zq" * 3000 + "!" * 200]
    entries = []
    for t in texts:
        enc = tok(t, padding="max_length", max_length=77, truncation=True)
        ids = enc["input_ids"]
        n = sum(enc["attention_mask"])
        assert len(ids) == 77 and all(i == tok.pad_token_id for i in ids[n:])
        entries.append({"text": t, "ids": ids[:n]})
    with open(out, "w", encoding="utf-8") as f:
        json.dump({"pad_id": tok.pad_token_id, "length": 77, "command": " ".join(["weights-tools/.venv/bin/python"] + sys.argv),
                   "entries": entries}, f, ensure_ascii=False, separators=(",", ":"))
    print(f"wrote {out}: {len(entries)} strings")


if __name__ == "__main__":
    main()
