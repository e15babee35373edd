#!/usr/bin/env python3
"""Builds the SentencePiece fixtures of the Swift tests: SentencePiece models trained here on
Russian/English text written in the scripts, converted to tokenizer.json the way transformers
converts them, and what the Rust `tokenizers` library returns for every test line.

    python3 scripts/make-sentencepiece-fixtures.py   # writes Tests/RuEmbedTests/Fixtures/tokenizers/

Fixtures:
  xlmr-unigram      Unigram (nmt_nfkc charsmap) through XLMRobertaConverter, as XLM-R,
                    multilingual-e5 and bge-m3 ship: Precompiled, Strip, Replace(" {2,}"),
                    Metaspace pre-tokenizer and decoder, <s> $A </s>; <mask> with lstrip.
  spm-unigram-bytes Unigram with byte_fallback through SpmConverter's generic path (no
                    XLM-R id shuffle): Replace(\\A +| +\\z), Replace(\\A▁), Metaspace split
                    false, Replace/ByteFallback/Fuse/Strip decoders.
  spm-bpe           a SentencePiece BPE model through the same generic path (BPE, merges
                    ranked by score, byte_fallback).

Needs: pip install sentencepiece protobuf tokenizers transformers
(made with sentencepiece 0.2.3, tokenizers 0.23.3, transformers 5.24.0).
"""
import importlib.util
import json
import os
import sys
import tempfile

import sentencepiece as spm
import tokenizers
import transformers
from tokenizers import AddedToken, Tokenizer
from transformers.convert_slow_tokenizer import SpmConverter, XLMRobertaConverter, import_protobuf

HERE = os.path.dirname(os.path.abspath(__file__))
OUT = os.path.join(HERE, "..", "Tests", "RuEmbedTests", "Fixtures", "tokenizers")

# The sentences and test lines of the other tokenizer fixtures, so both cover the same traps.
_spec = importlib.util.spec_from_file_location("tokfix", os.path.join(HERE, "make-tokenizer-fixtures.py"))
tokfix = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(tokfix)

MORE_SENTENCES = [
    "The quick brown fox jumps over the lazy dog.",
    "Sentence embeddings map text to vectors of fixed size.",
    "Русский текст часто смешивается с English words в технических статьях.",
    "Библиотека tokenizers написана на Rust, а обёртка — на Python.",
    "Модель multilingual-e5 понимает запросы на ста языках.",
    "Вчера в Санкт-Петербурге шёл снег, а сегодня светит солнце.",
    "Квантовый компьютер решил задачу за 200 секунд.",
    "Этот файл весит 4,2 ГБ и содержит 10 000 000 строк.",
    "Самолёт вылетел из Шереметьево в 06:15 по московскому времени.",
    "Студенты сдали экзамен по линейной алгебре на «отлично».",
    "In 1961, Yuri Gagarin became the first human in outer space.",
    "Юрий Гагарин стал первым человеком в космосе 12 апреля 1961 года.",
    "She said \"hello\" and he replied ``hi'' in old-style quotes.",
    "Ёжики, ёлки, ёмкости и объём — всё с буквой ё.",
    "Файл ﬁnal_ﬂow.txt лежит в папке ①, а копия — в папке ②.",
    "Полноширинные ＡＢＣ и цифры １２３ встречаются в японских текстах.",
    "Гласные с ударением: за́мок и замо́к, му́ка и мука́.",
    "Мы пьём чай с лимоном и едим пирожки с капустой.",
    "Проверка орфографии исправила «превед» на «привет».",
    "Ненастоящий ключ API: sk-1234567890abcdef.",
]

EXTRA_LINES = [
    "ＡＢＣ１２３ и ａｂｃ",
    "ﬁ ﬂ ﬀ ﬃ лигатуры: ﬁnal ﬂow",
    "①②③ ⑴ ⒜ ㈠ обведённые",
    "e\u0301 и é, ё и е\u0308, Й и И\u0306",
    "``кавычки'' и ''ещё''",
    "  двойные  пробелы  и  хвост  ",
    "\u00a0\u00a0неразрывные\u00a0\u00a0",
    "\u2028разделитель строк\u2029абзацев",
    "№ 5, ™, ℃, ㎏, ㍻",
    "Ǆ ǅ ǆ Ĳ ĳ ŉ",
    "ｶﾀｶﾅ полуширинная",
    "\x00\x01\x02",
    "\u0301в начале комбинирующий знак",
    "a\u0300\u0301\u0302\u0303\u0304 много знаков",
    "👩\u200d❤\ufe0f\u200d💋\u200d👨 и 🏳\ufe0f\u200d🌈",
    "Антидисэстаблишментарианство" * 5,
    "ё" * 40 + " " + "Ё" * 40,
    "▁уже▁с▁метапробелами",
    "▁",
    " ▁ ",
    "<0xD0><0x81> похоже на байты",
    "абв ввв вввв аб ab abab бааб ёе\u0308 😀 х😀ц 𝐀",
    "тест<s>склейка</s>тест",
]


def training_lines():
    lines = tokfix.training_corpus()
    for repeat in range(3):
        for s in MORE_SENTENCES:
            lines += [s, s.lower(), s.upper()]
    return lines


def test_lines():
    return tokfix.test_lines() + MORE_SENTENCES + EXTRA_LINES


class SlowStandIn:
    """What the converters read from a slow tokenizer: the model file and the ids of <s>, </s>."""

    def __init__(self, path, vocab):
        self.vocab_file = path
        self._ids = {piece: i for i, (piece, _) in enumerate(vocab)}

    def convert_tokens_to_ids(self, token):
        return self._ids[token]


def train(workdir, name, **options):
    corpus = os.path.join(workdir, "corpus.txt")
    with open(corpus, "w", encoding="utf-8") as f:
        for line in training_lines():
            f.write(line.replace("\n", " ") + "\n")
    prefix = os.path.join(workdir, name)
    spm.SentencePieceTrainer.train(
        input=corpus, model_prefix=prefix, character_coverage=0.9995, hard_vocab_limit=False,
        num_threads=1, minloglevel=2, **options)
    return prefix + ".model"


def proto_of(path):
    m = import_protobuf().ModelProto()
    with open(path, "rb") as f:
        m.ParseFromString(f.read())
    return m


def xlmr_unigram(workdir):
    path = train(workdir, "xlmr", model_type="unigram", vocab_size=1500, normalization_rule_name="nmt_nfkc")
    vocab = XLMRobertaConverter(SlowStandIn(path, [])).vocab(proto_of(path))
    tok = XLMRobertaConverter(SlowStandIn(path, vocab)).converted()
    # What XLMRobertaTokenizerFast adds when it loads: <mask> takes the space before it.
    tok.add_special_tokens([AddedToken("<mask>", lstrip=True, special=True)])
    return tok


def generic(workdir, name, model_type, vocab_size):
    path = train(workdir, name, model_type=model_type, vocab_size=vocab_size, byte_fallback=True,
                 normalization_rule_name="nmt_nfkc")
    proto = proto_of(path)
    pieces = [(p.piece, p.score) for p in proto.pieces]
    vocab = pieces if model_type == "unigram" else {p: i for i, (p, _) in enumerate(pieces)}
    tok = SpmConverter.build_tokenizer_from_spm_proto(proto, vocab)
    # Control pieces are special added tokens, as transformers' loader makes them.
    specials = [p.piece for p in proto.pieces if p.type in (2, 3)]
    tok.add_special_tokens([AddedToken(s, special=True, normalized=False) for s in specials])
    return tok


def unigram_ties():
    """A hand-written Unigram vocabulary (no normalizer, Metaspace) for the Viterbi's rules:
    equal scores (the shorter piece ending first wins), unknown characters fused, byte
    fallback with some <0xNN> pieces missing (then the unknown token)."""
    from tokenizers import decoders, models, pre_tokenizers
    vocab = [("<unk>", 0.0), ("<s>", 0.0), ("</s>", 0.0), ("▁", -3.0), ("а", -2.0), ("б", -2.0), ("аб", -4.0),
             ("в", -1.5), ("вв", -3.0), ("ввв", -4.0), ("▁аб", -5.0), ("▁в", -4.5), ("е", -2.5), ("ё", -2.5),
             ("е\u0308", -1.0), ("a", -2.0), ("b", -2.0), ("ab", -3.9), ("▁ab", -6.0), (" ", -3.0)]
    vocab += [("<0x%02X>" % b, -10.0) for b in range(256) if b not in (0xF0, 0x9F)]
    vocab += [("а", -0.5)]  # a repeated piece: its last id wins
    tok = Tokenizer(models.Unigram(vocab, unk_id=0, byte_fallback=True))
    tok.pre_tokenizer = pre_tokenizers.Metaspace(replacement="▁", prepend_scheme="first", split=True)
    tok.decoder = decoders.Sequence([decoders.Metaspace(prepend_scheme="first"), decoders.ByteFallback(), decoders.Fuse()])
    tok.add_special_tokens(["<s>", "</s>"])
    return tok


def decode_or_none(decoder, tokens):
    """The decoded text, or None where the Rust library panics (Strip on an empty text)."""
    try:
        return decoder.decode(tokens)
    except BaseException as e:  # pyo3's PanicException is not an Exception
        if type(e).__name__ != "PanicException":
            raise
        return None


def components(xlmr_path):
    """Single normalizers on every test line: the charsmap of the XLM-R fixture and the
    regex Replace normalizers the converters write."""
    from tokenizers import Regex, normalizers
    with open(xlmr_path, encoding="utf-8") as f:
        charsmap = json.load(f)["normalizer"]["normalizers"][0]["precompiled_charsmap"]
    specs = {
        "precompiled": normalizers.Precompiled(__import__("base64").b64decode(charsmap)),
        "replace-runs": normalizers.Replace(Regex(" {2,}"), "▁"),
        "replace-ends": normalizers.Replace(Regex(r"\A +| +\z"), ""),
        "replace-start": normalizers.Replace(Regex(r"\A▁"), "▁▁"),
        "replace-literal": normalizers.Replace("``", '"'),
    }
    lines = [t for t in test_lines() if len(t) <= 400]
    out = {"lines": lines, "normalizers": {}, "pre_tokenizers": {}, "decoders": {}}
    for name, n in specs.items():
        out["normalizers"][name] = {"json": json.loads(n.__getstate__()), "outputs": [n.normalize_str(t) for t in lines]}

    # Metaspace as older files write it (add_prefix_space, no prepend_scheme) and the other
    # schemes, read by the library from JSON: pre-tokenizer pieces with offsets, and decoders
    # on the byte-fallback Unigram's tokens of every line (specials kept).
    with open(xlmr_path, encoding="utf-8") as f:
        base = json.load(f)
    # The special cases first and last in the list (and the sentences after them): every
    # trap, in a smaller file.
    short = lines[:100] + lines[-45:]
    out["short_lines"] = short
    metaspaces = {
        "metaspace-legacy-prefix": {"type": "Metaspace", "replacement": "▁", "add_prefix_space": True},
        "metaspace-legacy-no-prefix": {"type": "Metaspace", "replacement": "▁", "add_prefix_space": False, "prepend_scheme": "never"},
        "metaspace-first-nosplit": {"type": "Metaspace", "replacement": "▁", "prepend_scheme": "first", "split": False},
        "metaspace-never": {"type": "Metaspace", "replacement": "▁", "prepend_scheme": "never", "split": True},
    }
    for name, spec in metaspaces.items():
        tok = Tokenizer.from_str(json.dumps(dict(base, pre_tokenizer=spec, decoder=spec)))
        out["pre_tokenizers"][name] = {"json": spec, "outputs": [
            [[piece, list(offsets)] for piece, offsets in tok.pre_tokenizer.pre_tokenize_str(t)] for t in short]}
    source = Tokenizer.from_file(os.path.join(OUT, "spm-unigram-bytes.json"))
    token_lists = [source.encode(t).tokens for t in short]
    out["tokens"] = token_lists
    decoder_specs = dict(metaspaces)
    decoder_specs["sentencepiece-sequence"] = json.loads(source.to_str())["decoder"]
    decoder_specs["bytefallback-fuse"] = {"type": "Sequence", "decoders": [{"type": "ByteFallback"}, {"type": "Fuse"}]}
    # (Rust's Strip panics when the two cuts cross, so each fixture strips one side.)
    decoder_specs["strip-start"] = {"type": "Strip", "content": "▁", "start": 2, "stop": 0}
    decoder_specs["strip-stop"] = {"type": "Sequence", "decoders": [{"type": "Fuse"}, {"type": "Strip", "content": ".", "start": 0, "stop": 2}]}
    for name, spec in decoder_specs.items():
        tok = Tokenizer.from_str(json.dumps(dict(base, decoder=spec)))
        out["decoders"][name] = {"json": spec, "outputs": [decode_or_none(tok.decoder, tokens) for tokens in token_lists]}
    with open(os.path.join(OUT, "sentencepiece-components.json"), "w", encoding="utf-8") as f:
        json.dump(out, f, ensure_ascii=False, separators=(",", ":"))


def main():
    os.makedirs(OUT, exist_ok=True)
    lines = test_lines()
    with open(os.path.join(OUT, "sentencepiece-texts.jsonl"), "w", encoding="utf-8") as f:
        for t in lines:
            f.write(json.dumps({"text": t}, ensure_ascii=False) + "\n")
    with tempfile.TemporaryDirectory() as workdir:
        builders = {
            "xlmr-unigram": lambda: xlmr_unigram(workdir),
            "spm-unigram-bytes": lambda: generic(workdir, "uni", "unigram", 1200),
            "spm-bpe": lambda: generic(workdir, "bpe", "bpe", 1200),
            "unigram-ties": unigram_ties,
        }
        for name, build in builders.items():
            tok = build()
            tok.save(os.path.join(OUT, name + ".json"))
            tok = Tokenizer.from_file(os.path.join(OUT, name + ".json"))  # expectations from the saved file
            with open(os.path.join(OUT, name + ".expected.jsonl"), "w", encoding="utf-8") as f:
                for t in lines:
                    f.write(json.dumps(tokfix.record(tok, t), ensure_ascii=False) + "\n")
            print(f"{name}: vocab {tok.get_vocab_size()}", file=sys.stderr)
        components(os.path.join(OUT, "xlmr-unigram.json"))
    print(f"{len(lines)} lines, tokenizers {tokenizers.__version__}, sentencepiece {spm.__version__}, "
          f"transformers {transformers.__version__}", file=sys.stderr)


if __name__ == "__main__":
    main()
