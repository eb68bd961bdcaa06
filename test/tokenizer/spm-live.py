"""Encodes/decodes with the installed SentencePiece for the live tests.
stdin: {"model": path, "texts": [...], "decode": [[ids]...]}; stdout: {"ids": [...], "decoded": [...]}"""
import json
import sys

import sentencepiece as spm

job = json.load(sys.stdin)
sp = spm.SentencePieceProcessor(model_file=job["model"])
out = {
    "version": spm.__version__,
    "ids": [sp.encode(t, out_type=int) for t in job.get("texts", [])],
    "decoded": [sp.decode(ids) for ids in job.get("decode", [])],
}
json.dump(out, sys.stdout, ensure_ascii=False)
