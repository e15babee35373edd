#!/usr/bin/env python3
"""Makes a full-size model of deepvk/USER-base's exact shape with random weights, for bench/embed.

USER-base cannot be downloaded here, so: DeBERTa-v1, 12 layers, hidden 768, 12 heads, FFN 3072,
absolute positions (512), no relative attention, ~50k byte-level BPE vocabulary trained on the
Encodechka corpora in ../shared/data/encodechka, mean pooling + Normalize, prompts
"query: " / "passage: " with "query" the default, saved as USER-base was (sentence-transformers
2.x metadata, f32 model.safetensors). Every parameter random, biases included.

    python3 scripts/make-bench-model.py [OUT]     # default bench/out/user-base-random (gitignored)
"""
import csv
import glob
import json
import os
import re
import sys

import torch
from tokenizers import Tokenizer, decoders, models, pre_tokenizers, processors, trainers
from transformers import DebertaConfig, DebertaModel, PreTrainedTokenizerFast

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DATA = os.path.join(ROOT, "..", "shared", "data", "encodechka")
CYRILLIC = re.compile("[а-яА-ЯёЁ]")


def corpus_texts():
    texts = []
    csv.field_size_limit(1 << 30)
    for path in sorted(glob.glob(os.path.join(DATA, "*.csv"))):
        with open(path, encoding="utf-8", newline="") as f:
            rows = list(csv.DictReader(f))
        columns = [c for c in rows[0] if sum(1 for r in rows[:200] if r[c] and CYRILLIC.search(r[c])) > 100]
        texts += [r[c] for r in rows for c in columns if r[c]]
    return texts


def main():
    out = sys.argv[1] if len(sys.argv) > 1 else os.path.join(ROOT, "bench", "out", "user-base-random")
    if os.path.exists(os.path.join(out, "model.safetensors")):
        print("exists:", out)
        return
    os.makedirs(os.path.join(out, "1_Pooling"), exist_ok=True)
    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    specials = ["[PAD]", "[CLS]", "[SEP]", "[UNK]", "[MASK]"]
    tok.train_from_iterator(corpus_texts(), trainers.BpeTrainer(
        vocab_size=50265, min_frequency=2, show_progress=False, special_tokens=specials,
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet()))
    tok.post_processor = processors.TemplateProcessing(
        single="[CLS] $A [SEP]", pair="[CLS] $A [SEP] $B [SEP]",
        special_tokens=[("[CLS]", tok.token_to_id("[CLS]")), ("[SEP]", tok.token_to_id("[SEP]"))])
    fast = PreTrainedTokenizerFast(tokenizer_object=tok, cls_token="[CLS]", sep_token="[SEP]", pad_token="[PAD]",
                                   unk_token="[UNK]", mask_token="[MASK]", bos_token="[CLS]", eos_token="[SEP]",
                                   model_max_length=512)
    fast.save_pretrained(out)

    config = DebertaConfig(vocab_size=len(fast), hidden_size=768, num_hidden_layers=12, num_attention_heads=12,
                           intermediate_size=3072, max_position_embeddings=512, type_vocab_size=0,
                           relative_attention=False, position_biased_input=True, pos_att_type=None,
                           layer_norm_eps=1e-7, hidden_act="gelu", pad_token_id=0)
    torch.manual_seed(0)
    model = DebertaModel(config).eval()
    with torch.no_grad():
        for name, p in model.named_parameters():
            if "LayerNorm.weight" in name:
                p.copy_(1 + 0.1 * torch.randn_like(p))
            elif p.dim() == 1:
                p.copy_(0.02 * torch.randn_like(p))
            else:
                p.copy_(0.03 * torch.randn_like(p))
    model.save_pretrained(out)

    def write(name, value):
        with open(os.path.join(out, name), "w") as f:
            json.dump(value, f, indent=2)
    write("modules.json", [
        {"idx": 0, "name": "0", "path": "", "type": "sentence_transformers.models.Transformer"},
        {"idx": 1, "name": "1", "path": "1_Pooling", "type": "sentence_transformers.models.Pooling"},
        {"idx": 2, "name": "2", "path": "2_Normalize", "type": "sentence_transformers.models.Normalize"}])
    write("1_Pooling/config.json", {"word_embedding_dimension": 768, "pooling_mode_cls_token": False,
                                    "pooling_mode_mean_tokens": True, "pooling_mode_max_tokens": False,
                                    "pooling_mode_mean_sqrt_len_tokens": False, "include_prompt": True})
    write("sentence_bert_config.json", {"max_seq_length": 512, "do_lower_case": False})
    write("config_sentence_transformers.json", {"prompts": {"query": "query: ", "passage": "passage: "},
                                                "default_prompt_name": "query"})
    print("wrote", out, sum(p.numel() for p in model.parameters()), "parameters")


if __name__ == "__main__":
    main()
