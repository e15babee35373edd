#!/usr/bin/env python3
"""Builds the model fixtures of ru-embed's tests with transformers + sentence-transformers.

Two tiny DeBERTa-v1 encoders with EVERY parameter random (a fresh model has zero biases and
unit LayerNorm weights, which hide bugs), a small byte-level BPE tokenizer trained here on
Russian text written here, and the vectors sentence-transformers returns for them:

  deberta-abs  like USER-base: absolute positions (position_biased_input), no relative
               attention; f32 model.safetensors without prefix; sentence-transformers 2.x
               metadata (pooling_mode_mean_tokens, sentence_transformers.models.*), a
               Normalize module, include_prompt true.
  deberta-rel  relative attention c2p|p2c, max_relative_positions 64 (clamped on long texts),
               position_biased_input false, token types, embed_proj (embedding_size 48);
               weights rounded to f16 and stored as f16 with the `deberta.` prefix in two
               shards (model.safetensors.index.json); sentence-transformers 6.x metadata as
               6.2 saves it; mean pooling with include_prompt false; no Normalize module.

expected.json in each folder: the texts, and for the prompts "query", "passage" and none, the normalised
vectors of every text (encode(..., normalize_embeddings=True)); plus the unnormalised token
states of one text. Texts include two over 512 tokens and an empty one.

    python3 scripts/make-model-fixtures.py     # writes Tests/RuEmbedTests/Fixtures/models/

Made with transformers 5.24, sentence-transformers 6.2, torch 2.13, tokenizers 0.23.
"""
import json
import os
import shutil

import torch
from safetensors.torch import save_file
from sentence_transformers import SentenceTransformer
from sentence_transformers import models as st_models
from tokenizers import Tokenizer, decoders, models, pre_tokenizers, processors, trainers
from transformers import DebertaConfig, DebertaModel, PreTrainedTokenizerFast

OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "Tests", "RuEmbedTests", "Fixtures", "models")

CORPUS = """Москва — столица России, крупнейший город страны и один из крупнейших городов Европы.
Ёлка стоит во дворе, а ёжик спит под ней и видит сны о лете.
Вчера мы гуляли по набережной и говорили о книгах, музыке и путешествиях.
Поезд отправляется в двенадцать часов сорок пять минут с третьей платформы.
Съешь же ещё этих мягких французских булок, да выпей чаю.
Широкая электрификация южных губерний даст мощный толчок подъёму сельского хозяйства.
Учёные изучают, как модели машинного обучения понимают смысл предложений.
Погода сегодня тёплая, но к вечеру обещают дождь и сильный ветер.
Библиотека открыта с девяти утра до восьми вечера, кроме воскресенья.
Она сказала: «Не опаздывай!» — и ушла, не дожидаясь ответа.
Пётр Ильич Чайковский родился в тысяча восемьсот сороковом году в Воткинске.
Для поиска похожих текстов мы превращаем каждое предложение в вектор.
Кошка сидит на подоконнике и смотрит, как падает снег.
В магазине закончился хлеб, поэтому пришлось идти в соседнюю пекарню.
Река замёрзла, и дети катались на коньках до самой темноты.
"""

TEXTS = [
    "Привет, мир!",
    "Москва — столица России.",
    "Ёлка стоит во дворе, а ёжик спит под ней.",
    "",
    "Как превратить предложение в вектор?",
    "Цена: 3 999,99 руб. (скидка 15%) — USER-base 🙂",
    "Учёные изучают, как модели понимают смысл, а кошка смотрит на снег.",
    # Over 512 tokens: truncation to max_seq_length counts the prompt and special tokens.
    " ".join(["Река замёрзла, и дети катались на коньках до самой темноты, пока не зажглись фонари."] * 40),
    " ".join(["Библиотека открыта с девяти утра до восьми вечера; в читальном зале тихо."] * 30),
    "Поезд отправляется в 12:45 с платформы №3, не опаздывайте.",
]
TOKEN_STATE_TEXT = "Вчера мы гуляли по набережной и говорили о книгах, музыке и путешествиях."

PROMPTS = {"query": "query: ", "passage": "passage: "}


def train_tokenizer(folder):
    """A RoBERTa-like byte-level BPE with DeBERTa's [CLS] text [SEP] template."""
    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    specials = ["[PAD]", "[CLS]", "[SEP]", "[UNK]", "[MASK]"]
    trainer = trainers.BpeTrainer(vocab_size=700, special_tokens=specials,
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet())
    tok.train_from_iterator(CORPUS.splitlines(), trainer)
    tok.post_processor = processors.TemplateProcessing(
        single="[CLS] $A [SEP]", pair="[CLS] $A [SEP] $B [SEP]",
        special_tokens=[("[CLS]", tok.token_to_id("[CLS]")), ("[SEP]", tok.token_to_id("[SEP]"))])
    fast = PreTrainedTokenizerFast(tokenizer_object=tok, bos_token="[CLS]", eos_token="[SEP]", cls_token="[CLS]",
                                   sep_token="[SEP]", pad_token="[PAD]", unk_token="[UNK]", mask_token="[MASK]",
                                   model_max_length=512)
    return fast


def randomize(model, seed):
    """Every parameter random, biases and LayerNorm included, at scales that keep the
    activations in a realistic range (so float error is tested as it would be)."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, p in model.named_parameters():
            if "LayerNorm.weight" in name:
                p.copy_(1 + 0.2 * torch.randn(p.shape, generator=g))
            elif p.dim() == 1:
                p.copy_(0.1 * torch.randn(p.shape, generator=g))
            else:
                p.copy_(0.08 * torch.randn(p.shape, generator=g))


def expected_vectors(st_model):
    out = {}
    for mode, prompt_name in (("query", "query"), ("passage", "passage"), ("none", None)):
        kwargs = {"prompt_name": prompt_name} if prompt_name else {"prompt": ""}
        v = st_model.encode(TEXTS, normalize_embeddings=True, convert_to_numpy=True, batch_size=4, **kwargs)
        out[mode] = [[float(x) for x in row] for row in v]
    return out


def token_states(st_model):
    states = st_model.encode([TOKEN_STATE_TEXT], output_value="token_embeddings", prompt="")[0]
    ids = st_model.tokenize([TOKEN_STATE_TEXT])["input_ids"][0].tolist()
    return {"text": TOKEN_STATE_TEXT, "ids": ids, "states": [[float(x) for x in row] for row in states]}


def make_abs(tokenizer):
    folder = os.path.join(OUT, "deberta-abs")
    config = DebertaConfig(vocab_size=len(tokenizer), hidden_size=64, num_hidden_layers=2, num_attention_heads=4,
                           intermediate_size=128, max_position_embeddings=512, type_vocab_size=0,
                           relative_attention=False, position_biased_input=True, pos_att_type=None,
                           layer_norm_eps=1e-7, hidden_act="gelu", pad_token_id=0)
    model = DebertaModel(config).eval()
    randomize(model, 1)
    tmp = folder + ".tmp"
    shutil.rmtree(tmp, ignore_errors=True)
    model.save_pretrained(tmp)
    tokenizer.save_pretrained(tmp)
    transformer = st_models.Transformer(tmp, max_seq_length=512)
    pooling = st_models.Pooling(64, pooling_mode="mean")
    st = SentenceTransformer(modules=[transformer, pooling, st_models.Normalize()], prompts=PROMPTS,
                             default_prompt_name="query").eval()
    expected = {"texts": TEXTS, "prompts": PROMPTS, "vectors": expected_vectors(st), "token_states": token_states(st)}
    shutil.rmtree(folder, ignore_errors=True)
    os.makedirs(os.path.join(folder, "1_Pooling"))
    for name in ("config.json", "model.safetensors", "tokenizer.json", "tokenizer_config.json"):
        shutil.copy(os.path.join(tmp, name), folder)
    shutil.rmtree(tmp)
    # The sentence-transformers 2.x metadata USER-base was saved with, written out by hand.
    write_json(folder, "modules.json", [
        {"idx": 0, "name": "0", "path": "", "type": "sentence_transformers.models.Transformer"},
        {"idx": 1, "name": "1", "path": "1_Pooling", "type": "sentence_transformers.models.Pooling"},
        {"idx": 2, "name": "2", "path": "2_Normalize", "type": "sentence_transformers.models.Normalize"}])
    write_json(folder, "1_Pooling/config.json", {
        "word_embedding_dimension": 64, "pooling_mode_cls_token": False, "pooling_mode_mean_tokens": True,
        "pooling_mode_max_tokens": False, "pooling_mode_mean_sqrt_len_tokens": False,
        "pooling_mode_weightedmean_tokens": False, "pooling_mode_lasttoken": False, "include_prompt": True})
    write_json(folder, "sentence_bert_config.json", {"max_seq_length": 512, "do_lower_case": False})
    write_json(folder, "config_sentence_transformers.json", {
        "__version__": {"sentence_transformers": "2.2.2", "transformers": "4.31.0", "pytorch": "2.0.1"},
        "prompts": PROMPTS, "default_prompt_name": "query"})
    # The hand-written 2.x folder must load in sentence-transformers to the same vectors.
    check = SentenceTransformer(folder).eval()
    again = expected_vectors(check)
    assert max(abs(a - b) for m in again for ra, rb in zip(again[m], expected["vectors"][m])
               for a, b in zip(ra, rb)) < 1e-6, "2.x metadata folder gives other vectors"
    write_json(folder, "expected.json", expected)


def make_rel(tokenizer):
    folder = os.path.join(OUT, "deberta-rel")
    config = DebertaConfig(vocab_size=len(tokenizer), hidden_size=64, embedding_size=48, num_hidden_layers=2,
                           num_attention_heads=4, intermediate_size=96, max_position_embeddings=512,
                           type_vocab_size=2, relative_attention=True, max_relative_positions=64,
                           position_biased_input=False, pos_att_type=["c2p", "p2c"], layer_norm_eps=1e-7,
                           hidden_act="gelu", pad_token_id=0)
    model = DebertaModel(config).eval()
    randomize(model, 2)
    with torch.no_grad():
        for p in model.parameters():
            p.copy_(p.half().float())  # values an f16 file holds exactly
    shutil.rmtree(folder, ignore_errors=True)
    tmp = folder + ".tmp"
    shutil.rmtree(tmp, ignore_errors=True)
    model.save_pretrained(tmp)
    tokenizer.save_pretrained(tmp)
    transformer = st_models.Transformer(tmp, max_seq_length=512)
    pooling = st_models.Pooling(64, pooling_mode="mean", include_prompt=False)
    st = SentenceTransformer(modules=[transformer, pooling], prompts=PROMPTS, default_prompt_name="query").eval()
    expected = {"texts": TEXTS, "prompts": PROMPTS, "vectors": expected_vectors(st), "token_states": token_states(st)}
    st.save(folder)  # sentence-transformers 6.x metadata, as 6.2 writes it
    shutil.rmtree(tmp)
    # Weights as a task-head checkpoint stores them: `deberta.` prefix, f16, two shards.
    for name in os.listdir(folder):
        if name.startswith("model") and (name.endswith(".safetensors") or name.endswith(".index.json")):
            os.remove(os.path.join(folder, name))
    state = {"deberta." + k: v.half().contiguous() for k, v in model.state_dict().items()
             if k != "embeddings.position_ids"}
    names = sorted(state)
    shards = {"model-00001-of-00002.safetensors": names[: len(names) // 2],
              "model-00002-of-00002.safetensors": names[len(names) // 2:]}
    weight_map = {}
    for shard, keys in shards.items():
        save_file({k: state[k] for k in keys}, os.path.join(folder, shard), metadata={"format": "pt"})
        weight_map.update({k: shard for k in keys})
    write_json(folder, "model.safetensors.index.json", {"metadata": {}, "weight_map": weight_map})
    for junk in ("README.md",):
        if os.path.exists(os.path.join(folder, junk)):
            os.remove(os.path.join(folder, junk))
    write_json(folder, "expected.json", expected)


def write_json(folder, name, value):
    with open(os.path.join(folder, name), "w", encoding="utf-8") as f:
        json.dump(value, f, ensure_ascii=False, indent=1 if name != "expected.json" else None)
        f.write("\n")


def main():
    torch.manual_seed(0)
    os.makedirs(OUT, exist_ok=True)
    tokenizer = train_tokenizer(OUT)
    make_abs(tokenizer)
    make_rel(tokenizer)
    for folder in ("deberta-abs", "deberta-rel"):
        exp = json.load(open(os.path.join(OUT, folder, "expected.json")))
        print(folder, "token-state ids:", len(exp["token_states"]["ids"]))
    print("wrote", OUT)


if __name__ == "__main__":
    main()
