#!/usr/bin/env python3
"""Trains small SentencePiece models on the `chinese-poetry` npm package and records
SentencePiece's own encodings and decodings of a fixed case list, as goldens for zh-llama's
tokenizer (fixtures/tokenizer/, see its README.md).

Needs Debian's `sentencepiece` + `python3-sentencepiece` (0.1.97) and, for the vocabulary
merge golden, `python3-protobuf`. Run from the repository root with the system python:

    /usr/bin/python3 tools/golden-tokenizer.py

Everything is deterministic (fixed seeds, one training thread) except that SentencePiece's
trainer may differ between versions, so re-running with another version rewrites the models
and the goldens together.
"""
import glob
import json
import os
import random
import sys
import tempfile

import sentencepiece as spm

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
OUT = os.path.join(ROOT, "fixtures", "tokenizer")
POETRY = os.path.join(ROOT, "node_modules", "chinese-poetry", "dist")
WORK = tempfile.mkdtemp(prefix="zh-llama-tokenizer-")


def strings_of(node, out):
    """Collects poem titles and lines from chinese-poetry's JSON files."""
    if isinstance(node, dict):
        for key in ("title", "rhythmic", "chapter"):
            if isinstance(node.get(key), str):
                out.append(node[key])
        for key in ("paragraphs", "content", "para"):
            value = node.get(key)
            if isinstance(value, list):
                out.extend(v for v in value if isinstance(v, str))
            elif isinstance(value, str):
                out.append(value)
        for value in node.values():
            if isinstance(value, (list, dict)):
                strings_of(value, out)
    elif isinstance(node, list):
        for value in node:
            strings_of(value, out)


def load(pattern, limit):
    lines = []
    for path in sorted(glob.glob(os.path.join(POETRY, pattern)))[:limit]:
        with open(path, encoding="utf-8") as f:
            strings_of(json.load(f), lines)
    return lines


def corpus():
    simplified = load("songci/ci.song.*.json", 8) + load("lunyu/*.json", 1) + load("mengxue/*.json", 20)
    traditional = load("quantangshi/poet.tang.*.json", 6)
    # A little English and digits so the BPE model learns Latin pieces the way LLaMA's did.
    english = []
    for path in [os.path.join(POETRY, "..", "README.md"), os.path.join(ROOT, "node_modules", "llama-tokenizer-js", "README.md")]:
        with open(path, encoding="utf-8") as f:
            english.extend(line.strip() for line in f if line.strip())
    # The base model sees traditional characters only, the model merged into it simplified
    # ones, so that (as with LLaMA and chinese_sp) the merge adds thousands of pieces.
    lines = traditional + english * 3
    random.Random(1).shuffle(lines)
    return simplified, traditional, lines


def train(name, lines, **options):
    # Relative paths inside WORK, so the trainer_spec the model records is the same every run.
    os.makedirs(WORK, exist_ok=True)
    os.chdir(WORK)
    with open(name + ".txt", "w", encoding="utf-8") as f:
        f.write("\n".join(lines) + "\n")
    spm.set_random_generator_seed(1)
    spm.SentencePieceTrainer.train(
        input=name + ".txt",
        model_prefix=name,
        num_threads=1,
        seed_sentencepiece_size=200000,
        minloglevel=2,
        **options,
    )
    model = os.path.join(OUT, name + ".model")
    os.replace(os.path.join(WORK, name + ".model"), model)
    return model


def merge_like_upstream(base_path, add_path, out_path):
    """Chinese-LLaMA-Alpaca v1 scripts/merge_tokenizer/merge_tokenizers.py, minus the HF save."""
    from sentencepiece import sentencepiece_model_pb2 as sp_pb2_model

    base = sp_pb2_model.ModelProto()
    base.ParseFromString(open(base_path, "rb").read())
    add = sp_pb2_model.ModelProto()
    add.ParseFromString(open(add_path, "rb").read())
    seen = set(p.piece for p in base.pieces)
    before = len(base.pieces)
    for p in add.pieces:
        if p.piece not in seen:
            new_p = sp_pb2_model.ModelProto().SentencePiece()
            new_p.piece = p.piece
            new_p.score = 0
            base.pieces.append(new_p)
    with open(out_path, "wb") as f:
        f.write(base.SerializeToString())
    return before, len(base.pieces)


def mark_unused(path, out_path):
    """zh-bpe with every 5th multi-character piece marked UNUSED: SentencePiece still merges
    through such a piece but then splits it back into the two pieces it was made of."""
    from sentencepiece import sentencepiece_model_pb2 as sp_pb2_model

    m = sp_pb2_model.ModelProto()
    m.ParseFromString(open(path, "rb").read())
    k = 0
    for p in m.pieces:
        if p.type == sp_pb2_model.ModelProto.SentencePiece.NORMAL and len(p.piece) > 1:
            k += 1
            if k % 5 == 0:
                p.type = sp_pb2_model.ModelProto.SentencePiece.UNUSED
    with open(out_path, "wb") as f:
        f.write(m.SerializeToString())
    return out_path


def cases(simplified, traditional):
    rng = random.Random(7)
    out = []

    def add(category, text):
        out.append({"id": len(out), "category": category, "text": text})

    add("empty", "")
    for line in rng.sample(simplified, 40):
        add("zh_simplified", line)
    for line in rng.sample(traditional, 40):
        add("zh_traditional", line)
    for text in [
        "我想在apple工作1314151天～",
        "LLaMA模型的中文词表扩展了20000个token。",
        "Chinese-LLaMA-Alpaca-2 使用 55296 个词，v1 是 49953。",
        "价格：￥1,299.00（含税），约$179.99",
        "第3章 第12节：GPT-4与LLaMA-2-7B的比较",
        "2023年7月18日，Meta发布了Llama 2。",
        "Python 3.11 和 Node.js 20 都支持。",
        "abc中文def汉字123ghi",
        "e=mc²，π≈3.14159",
        "HTTP/1.1 200 OK 请求成功",
    ]:
        add("mixed", text)
    for text in [
        "你好，世界！", "你好,世界!", "“引号”和\"引号\"", "（括号）(括号)", "【书名】《红楼梦》<标签>",
        "Ａｂｃ１２３", "全角空格：　结束", "：；？！、。", "...……——--", "①②③ⅠⅡⅢ", "ｶﾀｶﾅ と カタカナ",
    ]:
        add("punct_width", text)
    for text in [
        "🦙", "🦙🦙🦙", "中文🦙English", "😀😃😄😁", "👨‍👩‍👧‍👦 family", "🇨🇳🇺🇸", "✅❌",
        "𠀀𠀁𠀂", "𪚥是一个字", "𡃁𥫗𤭢", "Ꙋ🦙", "\u00e9\u0301 e\u0301", "\ufffd替换符",
    ]:
        add("emoji_extb_bytes", text)
    for text in [
        " ", "  ", "   ", "\t", "\n", "\n\n", "\r\n", " \n ", "a  b", "a   b    c",
        "  前导空格", "尾随空格  ", "\t制表符\t\t分隔", "换行\n\n\n三行", "混合 \t\n 空白",
        "    缩进四格\n        缩进八格", "\u3000全角\u3000空格", "x" + " " * 40 + "y",
    ]:
        add("whitespace", text)
    for text in [
        "<s>", "</s>", "<unk>", "<s>你好</s>", "Hello <s> world </s>", "<pad>", "<0x41>", "▁", "▁▁你好", "<<s>>",
        "<|user|>你好<|assistant|>", "用户说：你好", "<s>x", "<sep>分隔<cls>", " <|user|> ",
    ]:
        add("literal_special", text)
    for text in ["a", "中", "A", "1", "0.5", "12345678901234567890", "-1e-9"]:
        add("short", text)
    for text in [
        "\ufeff开头的BOM", "\ufeff", "a\rb", "\x00\x01\x1f控制字符", "不\u00a0换行空格", "行\u2028分隔",
        "ﬁ ligature ㍿ ㈱ ①②", "Ａ　Ｂ　Ｃ", "ｈｅｌｌｏ　ｗｏｒｌｄ", "\u200b零宽\u200c", "e\u0301 é",
    ]:
        add("controls_nfkc", text)
    long_zh = "".join(rng.sample(simplified, 400))
    add("long", long_zh)
    add("long", ("重复的文字" * 2000))
    add("long", " ".join(rng.sample(traditional, 200)))
    add("long", "a" * 5000)
    return out


def main():
    os.makedirs(OUT, exist_ok=True)
    simplified, traditional, lines = corpus()

    common = dict(
        input_sentence_size=200000, shuffle_input_sentence=True, max_sentence_length=4192,
        unk_id=0, bos_id=1, eos_id=2, pad_id=-1,
    )
    models = {}
    # LLaMA-like: BPE, byte fallback, digits split, identity normalizer, spaces kept.
    models["zh-bpe"] = train(
        "zh-bpe", lines, model_type="bpe", vocab_size=6000, character_coverage=0.99,
        byte_fallback=True, split_digits=True, allow_whitespace_only_pieces=True,
        remove_extra_whitespaces=False, normalization_rule_name="identity", **common)
    # chinese_sp-like: unigram with the nmt_nfkc normalizer, to be merged into zh-bpe.
    models["zh-unigram"] = train(
        "zh-unigram", simplified, model_type="unigram", vocab_size=8000,
        character_coverage=0.98, **common)
    # No byte fallback, nmt_nfkc, extra whitespace removed, user-defined and control pieces.
    models["zh-bpe-nfkc"] = train(
        "zh-bpe-nfkc", lines, model_type="bpe", vocab_size=5000, character_coverage=0.98,
        user_defined_symbols=["<|user|>", "<|assistant|>", "用户", "<s>x"], control_symbols=["<sep>", "<cls>"],
        **common)
    # Whitespace as suffix (the trainer flag the normalizer also obeys).
    models["zh-bpe-suffix"] = train(
        "zh-bpe-suffix", lines, model_type="bpe", vocab_size=5000, character_coverage=0.98, byte_fallback=True,
        treat_whitespace_as_suffix=True, remove_extra_whitespaces=False,
        normalization_rule_name="identity", **common)

    models["zh-bpe-unused"] = mark_unused(models["zh-bpe"], os.path.join(OUT, "zh-bpe-unused.model"))

    merged = os.path.join(OUT, "zh-merged.model")
    before, after = merge_like_upstream(models["zh-bpe"], models["zh-unigram"], merged)
    models["zh-merged"] = merged
    print(f"merged: {before} -> {after} pieces", file=sys.stderr)

    case_list = cases(simplified, traditional)
    with open(os.path.join(OUT, "cases.jsonl"), "w", encoding="utf-8") as f:
        for case in case_list:
            f.write(json.dumps(case, ensure_ascii=False) + "\n")

    rng = random.Random(11)
    for name, path in models.items():
        if name == "zh-unigram":
            continue  # only merged, never encoded by zh-llama (it encodes BPE models)
        sp = spm.SentencePieceProcessor(model_file=path)
        with open(os.path.join(OUT, name + ".encode.jsonl"), "w", encoding="utf-8") as f:
            for case in case_list:
                ids = sp.encode(case["text"], out_type=int)
                row = {"id": case["id"], "ids": ids}
                decoded = sp.decode(ids)
                if decoded != case["text"]:
                    row["decoded"] = decoded
                f.write(json.dumps(row, ensure_ascii=False) + "\n")
        # Decode goldens: random id runs that mix byte, control, unknown and normal pieces.
        n = sp.get_piece_size()
        special = [i for i in range(n) if sp.is_control(i) or sp.is_unknown(i) or sp.is_byte(i)]
        with open(os.path.join(OUT, name + ".decode.jsonl"), "w", encoding="utf-8") as f:
            for k in range(60):
                length = rng.randint(1, 24)
                ids = [rng.choice(special) if rng.random() < 0.4 else rng.randrange(n) for _ in range(length)]
                f.write(json.dumps({"ids": ids, "decoded": sp.decode(ids)}, ensure_ascii=False) + "\n")
    with open(os.path.join(OUT, "merge.json"), "w", encoding="utf-8") as f:
        json.dump({"base": "zh-bpe.model", "add": "zh-unigram.model", "out": "zh-merged.model",
                   "before": before, "after": after}, f, indent=2)
        f.write("\n")


if __name__ == "__main__":
    main()
