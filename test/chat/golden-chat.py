"""Golden prompts for the chat templates, built the way the upstream Python scripts build them.

Writes test/chat/golden-templates.json: for each case the conversation, the prompt string with
"<s>" / "</s>" written in it (as the upstream code does), and the ids SentencePiece gives for it
with fixtures/tokenizer/zh-bpe.model, splitting on the control pieces the way HF's slow
LlamaTokenizer does (each stretch between them encoded on its own) with a leading BOS
(add_special_tokens=True).

    /usr/bin/python3 test/chat/golden-chat.py     (Debian: apt-get install python3-sentencepiece)

The string builders follow (see ../shared/UPSTREAM.md section 3):
  Chinese-LLaMA-Alpaca-2 scripts/inference/gradio_demo.py predict() and generate_prompt(),
  scripts/openai_server_demo/openai_api_server.py (Mixtral: the same, system ignored),
  Chinese-LLaMA-Alpaca scripts/inference/inference_hf.py, Linly llama_dialogue.py.
"""
import json
import os
import re

import sentencepiece as spm

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..")
sp = spm.SentencePieceProcessor(model_file=os.path.join(ROOT, "fixtures/tokenizer/zh-bpe.model"))

DEFAULT_SYSTEM_PROMPT = "You are a helpful assistant. 你是一个乐于助人的助手。"
LONG_SYSTEM_PROMPT = "You are a helpful assistant. 你是一个乐于助人的助手。请你提供专业、有逻辑、内容真实、有价值的详细回复。"
TEMPLATE_WITH_SYSTEM_PROMPT = "[INST] <<SYS>>\n" "{system_prompt}\n" "<</SYS>>\n\n" "{instruction} [/INST]"
TEMPLATE_WITHOUT_SYSTEM_PROMPT = "[INST] {instruction} [/INST]"
ALPACA_V1 = (
    "Below is an instruction that describes a task. Write a response that appropriately completes the request.\n\n"
    "### Instruction:\n\n{instruction}\n\n### Response:\n\n"
)


def generate_prompt(instruction, response="", with_system_prompt=True, system_prompt=DEFAULT_SYSTEM_PROMPT):
    # v2 gradio_demo.py
    if with_system_prompt is True:
        prompt = TEMPLATE_WITH_SYSTEM_PROMPT.format_map({"instruction": instruction, "system_prompt": system_prompt})
    else:
        prompt = TEMPLATE_WITHOUT_SYSTEM_PROMPT.format_map({"instruction": instruction})
    if len(response) > 0:
        prompt += " " + response
    return prompt


def alpaca2(history, system_prompt=DEFAULT_SYSTEM_PROMPT, with_system_prompt=True):
    # v2 gradio_demo.py predict(): history is [[q, a], ..., [q_last, None]]
    prompt = ""
    for i, (q, a) in enumerate(history):
        if i == 0:
            prompt += generate_prompt(q, response=a or "", with_system_prompt=with_system_prompt, system_prompt=system_prompt)
        else:
            prompt += "<s>" + generate_prompt(q, response=a or "", with_system_prompt=False)
        if a is not None:
            prompt += "</s>"
    return prompt


def hf_slow_encode(text):
    """BOS + each stretch between <s> / </s> encoded on its own."""
    ids = [sp.bos_id()]
    for part in re.split(r"(<s>|</s>)", text):
        if part == "<s>":
            ids.append(sp.bos_id())
        elif part == "</s>":
            ids.append(sp.eos_id())
        elif part:
            ids.extend(sp.encode(part))
    return ids


def messages_of(history, system=None):
    out = [] if system is None else [{"role": "system", "content": system}]
    for q, a in history:
        out.append({"role": "user", "content": q})
        if a is not None:
            out.append({"role": "assistant", "content": a})
    return out


cases = []


def add(name, template, history, text, system=None):
    cases.append({"name": name, "template": template, "messages": messages_of(history, system), "text": text, "ids": hf_slow_encode(text)})


one = [["你好，请介绍一下北京。", None]]
three = [["你好", "你好！有什么可以帮你？"], ["讲个故事", "从前有座山。"], ["再讲一个 好吗？", None]]

add("alpaca-2 default system", "alpaca-2", one, alpaca2(one))
add("alpaca-2 own system", "alpaca-2", one, alpaca2(one, system_prompt="你是一个诗人。"), system="你是一个诗人。")
add("alpaca-2 empty system", "alpaca-2", one, alpaca2(one, with_system_prompt=False), system="")
add("alpaca-2 multi-turn", "alpaca-2", three, alpaca2(three))
add("alpaca-2-long", "alpaca-2-long", one, alpaca2(one, system_prompt=LONG_SYSTEM_PROMPT))
add("alpaca-2-long multi-turn", "alpaca-2-long", three, alpaca2(three, system_prompt=LONG_SYSTEM_PROMPT))
add("mixtral", "mixtral", one, alpaca2(one, with_system_prompt=False))
add("mixtral ignores system", "mixtral", one, alpaca2(one, with_system_prompt=False), system="ignored")
add("mixtral multi-turn", "mixtral", three, alpaca2(three, with_system_prompt=False))
add("alpaca", "alpaca", one, ALPACA_V1.format_map({"instruction": one[0][0]}))
add(
    "alpaca multi-turn",
    "alpaca",
    three,
    "Below is an instruction that describes a task. Write a response that appropriately completes the request.\n\n"
    + "".join("### Instruction:\n\n" + q + "\n\n### Response:\n\n" + (a + "\n\n" if a is not None else "") for q, a in three),
)
# Linly llama_dialogue.py: "User: " + u + "\nBot: " + a + "\n" ... "User: " + u + "\nBot: "
add("linly", "linly", one, "User: " + one[0][0] + "\nBot: ")
add("linly multi-turn", "linly", three, "".join("User: " + q + "\nBot: " + (a + "\n" if a is not None else "") for q, a in three))

with open(os.path.join(os.path.dirname(os.path.abspath(__file__)), "golden-templates.json"), "w", encoding="utf8") as f:
    made_by = "test/chat/golden-chat.py, SentencePiece " + spm.__version__ + ", fixtures/tokenizer/zh-bpe.model"
    f.write('{"made_by": ' + json.dumps(made_by) + ', "cases": [\n')
    f.write(",\n".join(json.dumps(c, ensure_ascii=False) for c in cases))
    f.write("\n]}\n")
