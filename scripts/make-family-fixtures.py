#!/usr/bin/env python3
"""Builds the BERT / XLM-RoBERTa / RoBERTa fixtures of ru-embed's tests (EncoderFamilyTests).

Tiny encoders (hidden 32-48, 2 layers) with EVERY parameter random (biases and LayerNorm
weights included: a fresh model's zero biases and unit LayerNorms hide bugs), tokenizers
trained here on Russian text written here, saved as sentence-transformers folders, with the
vectors sentence-transformers itself returns for them:

  bert-labse   BERT, WordPiece (case kept by the tokenizer), LaBSE-like: CLS pooling +
               Dense(48→32, Tanh) + Normalize; sentence-transformers 2.x metadata written
               by hand (sentence_transformers.models.*, pooling_mode_cls_token), weights as
               a BertForMaskedLM checkpoint (`bert.` prefix, `cls.predictions.*` head
               tensors), do_lower_case true, max_seq_length 40 below the tokenizer.json
               truncation (64), hidden_act gelu.
  bert-e5      BERT, WordPiece, e5-like: mean pooling, Normalize, prompts "query: " and
               "passage: "; sentence-transformers 6.x metadata as 6.2 saves it; hidden_act
               gelu_new; layer_norm_eps 1e-5.
  xlmr-pool    XLM-RoBERTa, byte-level BPE with <s> … </s> (pad id 1: positions start at 2
               and count non-pad tokens only), 6.x metadata; pooling modes max,
               mean_sqrt_len_tokens, weightedmean, lasttoken with include_prompt false;
               Dense(32→24, Identity, with bias); no Normalize; hidden_act relu;
               max_position_embeddings 66 (64 tokens), so long texts are cut.
  roberta-mean RoBERTa (model_type roberta), the same tokenizer, `roberta.` prefix
               (RobertaForMaskedLM checkpoint), 2.x metadata, mean pooling + Normalize,
               hidden_act gelu_pytorch_tanh.

expected.json: the texts, the prompts, and for the prompts "query", "passage" and none the
vectors of encode(..., normalize_embeddings=True) ("vectors") and normalize_embeddings=False
("raw"), plus the token ids sentence-transformers fed the model for each text with no prompt.
One text holds "<pad>", which the byte-level BPE tokenizers turn into the pad token.

    python3 scripts/make-family-fixtures.py   # writes Tests/RuEmbedTests/Fixtures/models/

Made with transformers 5.24, sentence-transformers 6.2, torch 2.13, tokenizers 0.23.
"""
import json
import os
import shutil

import torch
from safetensors.torch import save_file
from sentence_transformers import SentenceTransformer
from sentence_transformers import models as st_models
from tokenizers import Tokenizer, decoders, models, normalizers, pre_tokenizers, processors, trainers
from transformers import (BertConfig, BertForMaskedLM, BertModel, PreTrainedTokenizerFast, RobertaConfig,
                          RobertaForMaskedLM, XLMRobertaConfig, XLMRobertaModel)

OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "Tests", "RuEmbedTests", "Fixtures", "models")

CORPUS = """Москва — столица России, крупнейший город страны и один из крупнейших городов Европы.
Ёлка стоит во дворе, а Ёжик спит под ней и видит сны о лете.
Вчера МЫ гуляли по набережной и говорили о книгах, музыке и путешествиях.
Поезд отправляется в двенадцать часов сорок пять минут с третьей платформы.
Съешь же ещё этих мягких французских булок, да выпей чаю.
ШИРОКАЯ электрификация южных губерний даст мощный толчок подъёму сельского хозяйства.
Учёные изучают, как модели машинного обучения понимают смысл предложений.
Погода сегодня тёплая, но к вечеру обещают дождь и сильный ветер.
Библиотека открыта с девяти утра до восьми вечера, кроме воскресенья.
Она сказала: «Не опаздывай!» — и ушла, не дожидаясь ответа.
Пётр Ильич Чайковский родился в Воткинске. Кошка Мурка спит.
Для поиска похожих текстов мы превращаем каждое предложение в вектор.
Кошка сидит на подоконнике и смотрит, как падает снег.
В магазине закончился хлеб, поэтому пришлось идти в соседнюю пекарню.
Река замёрзла, и дети катались на коньках до самой темноты. query passage
"""

TEXTS = [
    "Привет, мир!",
    "Москва — СТОЛИЦА России.",
    "Ёлка стоит во дворе, а Ёжик спит под ней.",
    "Как превратить предложение в вектор?",
    "Цена: 3 999,99 руб. (скидка 15%) 🙂",
    "Учёные изучают, как модели понимают смысл, а кошка смотрит на снег.",
    # Longer than every context here: cut to the maximum length, prompt and specials counted.
    " ".join(["Река замёрзла, и дети катались на коньках до самой темноты, пока не зажглись фонари."] * 6),
    "Поезд отправляется в 12:45 с платформы №3.",
    # A pad token inside a text (RoBERTa/XLM-R: it takes position pad_token_id and the tokens
    # after it count on from the last non-pad one; BERT's WordPiece reads it as text).
    "Кошка <pad> спит, а ёжик — нет.",
]

PROMPTS = {"query": "query: ", "passage": "passage: "}


def wordpiece_tokenizer(truncation):
    """BERT's WordPiece with BertNormalizer keeping case (so do_lower_case shows)."""
    tok = Tokenizer(models.WordPiece(unk_token="[UNK]", max_input_chars_per_word=100))
    tok.normalizer = normalizers.BertNormalizer(clean_text=True, handle_chinese_chars=True, strip_accents=False,
                                                lowercase=False)
    tok.pre_tokenizer = pre_tokenizers.BertPreTokenizer()
    tok.decoder = decoders.WordPiece()
    specials = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]
    tok.train_from_iterator(CORPUS.splitlines(), trainers.WordPieceTrainer(vocab_size=600, special_tokens=specials))
    tok.post_processor = processors.TemplateProcessing(
        single="[CLS] $A [SEP]", pair="[CLS] $A [SEP] $B [SEP]",
        special_tokens=[("[CLS]", tok.token_to_id("[CLS]")), ("[SEP]", tok.token_to_id("[SEP]"))])
    if truncation:
        tok.enable_truncation(truncation)
    return PreTrainedTokenizerFast(tokenizer_object=tok, cls_token="[CLS]", sep_token="[SEP]", pad_token="[PAD]",
                                   unk_token="[UNK]", mask_token="[MASK]", model_max_length=512)


def bpe_tokenizer(max_length):
    """A RoBERTa-style byte-level BPE: <s> text </s>, <pad> = 1."""
    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    specials = ["<s>", "<pad>", "</s>", "<unk>", "<mask>"]
    tok.train_from_iterator(CORPUS.splitlines(), trainers.BpeTrainer(
        vocab_size=800, special_tokens=specials, initial_alphabet=pre_tokenizers.ByteLevel.alphabet()))
    tok.post_processor = processors.TemplateProcessing(
        single="<s> $A </s>", pair="<s> $A </s> </s> $B </s>",
        special_tokens=[("<s>", tok.token_to_id("<s>")), ("</s>", tok.token_to_id("</s>"))])
    return PreTrainedTokenizerFast(tokenizer_object=tok, bos_token="<s>", eos_token="</s>", cls_token="<s>",
                                   sep_token="</s>", pad_token="<pad>", unk_token="<unk>", mask_token="<mask>",
                                   model_max_length=max_length)


def randomize(model, seed):
    """Every parameter random, biases and LayerNorm included, at realistic scales."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, p in model.named_parameters():
            if "LayerNorm.weight" in name:
                p.copy_(1 + 0.2 * torch.randn(p.shape, generator=g))
            elif p.dim() == 1:
                p.copy_(0.1 * torch.randn(p.shape, generator=g))
            else:
                p.copy_(0.08 * torch.randn(p.shape, generator=g))


def expected(st):
    out = {"texts": TEXTS, "prompts": PROMPTS, "vectors": {}, "raw": {}}
    for mode, prompt_name in (("query", "query"), ("passage", "passage"), ("none", None)):
        kwargs = {"prompt_name": prompt_name} if prompt_name else {"prompt": ""}
        for key, norm in (("vectors", True), ("raw", False)):
            v = st.encode(TEXTS, normalize_embeddings=norm, convert_to_numpy=True, batch_size=3, **kwargs)
            out[key][mode] = [[float(x) for x in row] for row in v]
    out["ids"] = [st.tokenize([t])["input_ids"][0].tolist() for t in TEXTS]
    return out


def write_json(folder, name, value):
    with open(os.path.join(folder, name), "w", encoding="utf-8") as f:
        json.dump(value, f, ensure_ascii=False, indent=1 if name != "expected.json" else None)
        f.write("\n")


def same_vectors(a, b):
    return max(abs(x - y) for m in a["vectors"] for ra, rb in zip(a["vectors"][m], b["vectors"][m])
               for x, y in zip(ra, rb)) < 1e-6


def dense(in_features, out_features, activation, seed):
    layer = st_models.Dense(in_features, out_features, bias=True, activation_function=activation)
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in layer.parameters():
            p.copy_(0.3 * torch.randn(p.shape, generator=g))
    return layer


def make_bert_labse():
    name = "bert-labse"
    folder = os.path.join(OUT, name)
    tok = wordpiece_tokenizer(truncation=64)
    config = BertConfig(vocab_size=len(tok), hidden_size=48, num_hidden_layers=2, num_attention_heads=4,
                        intermediate_size=96, max_position_embeddings=128, type_vocab_size=2, hidden_act="gelu",
                        layer_norm_eps=1e-12, pad_token_id=0, architectures=["BertForMaskedLM"])
    mlm = BertForMaskedLM(config).eval()
    randomize(mlm, 11)
    tmp = folder + ".tmp"
    shutil.rmtree(tmp, ignore_errors=True)
    mlm.save_pretrained(tmp)  # bert.* and cls.predictions.* tensors
    tok.save_pretrained(tmp)
    transformer = st_models.Transformer(tmp, max_seq_length=40, do_lower_case=True)
    pooling = st_models.Pooling(48, pooling_mode="cls")
    head = dense(48, 32, torch.nn.Tanh(), 12)
    st = SentenceTransformer(modules=[transformer, pooling, head, st_models.Normalize()], prompts=PROMPTS).eval()
    exp = expected(st)
    shutil.rmtree(folder, ignore_errors=True)
    os.makedirs(os.path.join(folder, "1_Pooling"))
    os.makedirs(os.path.join(folder, "2_Dense"))
    for f in ("config.json", "model.safetensors", "tokenizer.json", "tokenizer_config.json"):
        shutil.copy(os.path.join(tmp, f), folder)
    shutil.rmtree(tmp)
    save_file({"linear.weight": head.linear.weight.detach().contiguous(),
               "linear.bias": head.linear.bias.detach().contiguous()},
              os.path.join(folder, "2_Dense", "model.safetensors"), metadata={"format": "pt"})
    write_json(folder, "2_Dense/config.json", {"in_features": 48, "out_features": 32, "bias": True,
                                               "activation_function": "torch.nn.modules.activation.Tanh"})
    write_json(folder, "modules.json", [
        {"idx": 0, "name": "0", "path": "", "type": "sentence_transformers.models.Transformer"},
        {"idx": 1, "name": "1", "path": "1_Pooling", "type": "sentence_transformers.models.Pooling"},
        {"idx": 2, "name": "2", "path": "2_Dense", "type": "sentence_transformers.models.Dense"},
        {"idx": 3, "name": "3", "path": "3_Normalize", "type": "sentence_transformers.models.Normalize"}])
    write_json(folder, "1_Pooling/config.json", {
        "word_embedding_dimension": 48, "pooling_mode_cls_token": True, "pooling_mode_mean_tokens": False,
        "pooling_mode_max_tokens": False, "pooling_mode_mean_sqrt_len_tokens": False,
        "pooling_mode_weightedmean_tokens": False, "pooling_mode_lasttoken": False, "include_prompt": True})
    write_json(folder, "sentence_bert_config.json", {"max_seq_length": 40, "do_lower_case": True})
    write_json(folder, "config_sentence_transformers.json", {
        "__version__": {"sentence_transformers": "2.2.2", "transformers": "4.31.0", "pytorch": "2.0.1"},
        "prompts": PROMPTS, "default_prompt_name": None})
    check = SentenceTransformer(folder).eval()
    assert same_vectors(expected(check), exp), "2.x metadata folder gives other vectors"
    assert max(len(i) for i in exp["ids"]) == 40
    write_json(folder, "expected.json", exp)


def make_bert_e5():
    name = "bert-e5"
    folder = os.path.join(OUT, name)
    tok = wordpiece_tokenizer(truncation=None)
    config = BertConfig(vocab_size=len(tok), hidden_size=32, num_hidden_layers=2, num_attention_heads=2,
                        intermediate_size=64, max_position_embeddings=64, type_vocab_size=2, hidden_act="gelu_new",
                        layer_norm_eps=1e-5, pad_token_id=0)
    model = BertModel(config, add_pooling_layer=True).eval()
    randomize(model, 21)
    tmp = folder + ".tmp"
    shutil.rmtree(tmp, ignore_errors=True)
    model.save_pretrained(tmp)  # with pooler.* tensors, which sentence-transformers ignores
    tok.save_pretrained(tmp)
    transformer = st_models.Transformer(tmp)
    pooling = st_models.Pooling(32, pooling_mode="mean")
    st = SentenceTransformer(modules=[transformer, pooling, st_models.Normalize()], prompts=PROMPTS,
                             default_prompt_name="query").eval()
    exp = expected(st)
    shutil.rmtree(folder, ignore_errors=True)
    st.save(folder)
    shutil.rmtree(tmp)
    if os.path.exists(os.path.join(folder, "README.md")):
        os.remove(os.path.join(folder, "README.md"))
    assert max(len(i) for i in exp["ids"]) == 64
    write_json(folder, "expected.json", exp)


def roberta_like(name, config_class, model_maker, prefix, seed, act, modules_style):
    folder = os.path.join(OUT, name)
    tok = bpe_tokenizer(max_length=64)
    config = config_class(vocab_size=len(tok), hidden_size=32, num_hidden_layers=2, num_attention_heads=4,
                          intermediate_size=80, max_position_embeddings=66, type_vocab_size=1, hidden_act=act,
                          layer_norm_eps=1e-5, pad_token_id=1, bos_token_id=0, eos_token_id=2)
    model = model_maker(config).eval()
    randomize(model, seed)
    tmp = folder + ".tmp"
    shutil.rmtree(tmp, ignore_errors=True)
    model.save_pretrained(tmp)
    tok.save_pretrained(tmp)
    transformer = st_models.Transformer(tmp)
    if modules_style == "6.x":
        pooling = st_models.Pooling(32, pooling_mode=["max", "mean_sqrt_len_tokens", "weightedmean", "lasttoken"],
                                    include_prompt=False)
        mods = [transformer, pooling, dense(128, 24, torch.nn.Identity(), seed + 1)]
    else:
        mods = [transformer, st_models.Pooling(32, pooling_mode="mean"), st_models.Normalize()]
    st = SentenceTransformer(modules=mods, prompts=PROMPTS).eval()
    exp = expected(st)
    shutil.rmtree(folder, ignore_errors=True)
    st.save(folder)
    shutil.rmtree(tmp)
    if os.path.exists(os.path.join(folder, "README.md")):
        os.remove(os.path.join(folder, "README.md"))
    if modules_style == "2.x":
        write_json(folder, "modules.json", [
            {"idx": 0, "name": "0", "path": "", "type": "sentence_transformers.models.Transformer"},
            {"idx": 1, "name": "1", "path": "1_Pooling", "type": "sentence_transformers.models.Pooling"},
            {"idx": 2, "name": "2", "path": "2_Normalize", "type": "sentence_transformers.models.Normalize"}])
        write_json(folder, "1_Pooling/config.json", {
            "word_embedding_dimension": 32, "pooling_mode_cls_token": False, "pooling_mode_mean_tokens": True,
            "pooling_mode_max_tokens": False, "pooling_mode_mean_sqrt_len_tokens": False,
            "pooling_mode_weightedmean_tokens": False, "pooling_mode_lasttoken": False, "include_prompt": True})
        write_json(folder, "sentence_bert_config.json", {"max_seq_length": 64, "do_lower_case": False})
        write_json(folder, "config_sentence_transformers.json", {
            "__version__": {"sentence_transformers": "2.2.2", "transformers": "4.31.0", "pytorch": "2.0.1"},
            "prompts": PROMPTS, "default_prompt_name": None})
    if prefix:
        # Weights as a task-head checkpoint stores them: prefixed, with head tensors.
        state = {prefix + k: v.contiguous() for k, v in model.state_dict().items() if "position_ids" not in k}
        state["lm_head.bias"] = torch.zeros(config.vocab_size)
        state["lm_head.dense.weight"] = torch.randn(32, 32)
        os.remove(os.path.join(folder, "model.safetensors"))
        save_file(state, os.path.join(folder, "model.safetensors"), metadata={"format": "pt"})
    check = SentenceTransformer(folder).eval()
    assert same_vectors(expected(check), exp), name + ": the saved folder gives other vectors"
    assert max(len(i) for i in exp["ids"]) == 64
    write_json(folder, "expected.json", exp)


def main():
    torch.manual_seed(0)
    os.makedirs(OUT, exist_ok=True)
    make_bert_labse()
    make_bert_e5()
    roberta_like("xlmr-pool", XLMRobertaConfig, lambda c: XLMRobertaModel(c, add_pooling_layer=False), None, 31,
                 "relu", "6.x")
    roberta_like("roberta-mean", RobertaConfig, lambda c: RobertaModel_(c), "roberta.", 41,
                 "gelu_pytorch_tanh", "2.x")
    print("wrote", OUT)


def RobertaModel_(config):
    from transformers import RobertaModel
    return RobertaModel(config, add_pooling_layer=False)


if __name__ == "__main__":
    main()
